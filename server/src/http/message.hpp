// Ubuzima Sync — MIT licence.
// The server's one HTTP request/response pair, independent of the listener that produced it, so
// the API runs (and is tested) without a socket and the listener can be swapped.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ubuzima::server::http {

struct Request {
    std::string method;                         ///< "GET", "POST", ... as received
    /// The path as received, still percent-encoded, without the query. Routing splits it on '/'
    /// first and decodes each segment after, so "%2F" inside a segment never becomes a separator.
    std::string raw_path;
    std::map<std::string, std::string> query;   ///< decoded query parameters
    std::map<std::string, std::string> headers; ///< keys in lower case
    std::string body;                           ///< raw bytes as received (maybe gzipped)
    std::string remote_address;                 ///< peer IP address; "" in-process
    bool secure = false;                        ///< arrived over TLS

    /// The header value, or "" when absent. `name` must be lower case.
    const std::string& header(const std::string& name) const {
        static const std::string kEmpty;
        auto it = headers.find(name);
        return it == headers.end() ? kEmpty : it->second;
    }
};

/// Receives a streamed response body chunk by chunk.
class BodyWriter {
public:
    virtual ~BodyWriter() = default;
    /// Sends one chunk; blocks while the client is slower than the producer (bounded buffer).
    /// False when the client went away: the producer should stop.
    virtual bool write(std::string_view chunk) = 0;
};

struct Response {
    int status = 200;
    std::map<std::string, std::string> headers;  ///< as sent
    std::string body;
    /// When set, the body is what this producer writes (sent chunked) and `body` is ignored.
    /// It runs after the status line and headers have gone out, on a thread that may block;
    /// returning false (or stopping on a failed write) cuts the connection, so a client never
    /// mistakes half a body for all of it.
    std::function<bool(BodyWriter&)> stream;
};

/// The one 500 answer: a bug or an exception reached the edge; nothing was changed.
Response internal_error();

/// Percent-decodes one path segment or query component ("+" stays "+" in paths).
std::string percent_decode(std::string_view text, bool plus_is_space);
/// Splits a raw path ("/v1/admin/users/a%2Fb") into decoded segments ({"v1","admin","users","a/b"}).
/// Empty segments (a doubled or trailing '/') are kept as "" so that such paths match nothing.
std::vector<std::string> split_path(std::string_view raw_path);
/// "/" + decoded segments, for messages and logs.
std::string display_path(std::string_view raw_path);
/// Parses "a=1&b=x%20y" into decoded pairs (later duplicates win).
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace ubuzima::server::http
