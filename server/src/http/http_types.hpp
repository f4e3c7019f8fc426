// Ubuzima Sync — MIT licence.
// Transport-neutral HTTP request/response, so the API runs (and is tested) without a socket.
#pragma once

#include <map>
#include <string>

namespace ubuzima::server {

struct HttpRequest {
    std::string method;                         ///< "GET", "POST", ...
    std::string path;                           ///< "/v1/sync", without the query
    std::map<std::string, std::string> query;   ///< decoded query parameters
    std::map<std::string, std::string> headers; ///< keys in lower case
    std::string body;                           ///< raw bytes as received (maybe gzipped)

    /// The header value, or "" when absent. `name` must be lower case.
    const std::string& header(const std::string& name) const {
        static const std::string kEmpty;
        auto it = headers.find(name);
        return it == headers.end() ? kEmpty : it->second;
    }
};

struct HttpResponse {
    int status = 200;
    std::map<std::string, std::string> headers;
    std::string body;
};

}  // namespace ubuzima::server
