// Ubuzima Sync — MIT licence.
// The HTTP(S) listener behind a small interface: handlers see only http::Request/Response, so
// the listener is swapped without touching them, and each implementation's heavy headers stay
// in its one translation unit (cpprest_listener.cpp, beast_listener.cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "http/message.hpp"
#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

class TlsServerContext;

/// What a listener enforces on every connection before a handler sees a request. The cpprestsdk
/// listener can only honour max_body_bytes (docs/SECURITY.md, "Slow clients"); the Beast
/// listener honours all of them.
struct ListenerLimits {
    std::size_t max_body_bytes = 32u * 1024 * 1024;  ///< larger announced bodies are not read
    std::size_t max_header_bytes = 16 * 1024;       ///< request line + headers
    int header_timeout_ms = 10'000;                 ///< from the first byte to the end of the headers
    int body_timeout_ms = 60'000;                   ///< to receive the whole body
    int idle_timeout_ms = 30'000;                   ///< keep-alive: waiting for the next request
    int write_timeout_ms = 60'000;                  ///< to send one response (or one chunk)
    int max_connections = 1024;                     ///< open at once; more are closed at accept
    int max_connections_per_address = 128;          ///< from one peer address
    std::size_t handler_threads = 4;                ///< requests served at once
};

struct ListenOptions {
    std::string host = "127.0.0.1";
    int port = 0;  ///< 0 = a free port (the listener reports it)
    /// Serves HTTPS when set (shared with the caller, which may reload it on SIGHUP).
    std::shared_ptr<TlsServerContext> tls;
    ListenerLimits limits;
};

/// Runs `handler` for each request (on pool threads, concurrently); the handler never throws.
using RequestHandler = std::function<http::Response(const http::Request&)>;

/// An open listener. Thread-safe; closing waits for requests in flight.
class HttpListener {
public:
    virtual ~HttpListener() = default;
    /// Stops accepting and waits for the listener to close. Idempotent.
    virtual void close() = 0;
    /// The port actually listened on.
    virtual int port() const = 0;
    /// "https://host:port" or "http://host:port".
    std::string url(const std::string& host) const;
    /// Whether the listener serves TLS.
    virtual bool secure() const = 0;
};

enum class ListenerKind {
    Cpprest,  ///< cpprestsdk's http_listener (the default; see docs/SECURITY.md for its limits)
    Beast,    ///< Boost.Beast: header/body/idle timeouts, header limit, connection caps
};

/// Opens a listener of the given kind. IoError when the address cannot be bound.
Result<std::unique_ptr<HttpListener>> open_listener(ListenerKind kind, const ListenOptions& options,
                                                    RequestHandler handler);

Result<std::unique_ptr<HttpListener>> open_cpprest_listener(const ListenOptions& options, RequestHandler handler);
Result<std::unique_ptr<HttpListener>> open_beast_listener(const ListenOptions& options, RequestHandler handler);

/// Sizes the cpprestsdk thread pool (its default of 40 threads thrashes a 2-core host). Call
/// once, before any cpprestsdk listener opens; later calls are ignored.
void init_http_threads(std::size_t threads);

/// Asks the kernel for a free TCP port on `host` (bind to port 0, read it back, release it).
Result<int> pick_free_port(const std::string& host);

/// True for 127.0.0.0/8, ::1 and "localhost": addresses only this machine reaches.
bool is_loopback_host(const std::string& host);

}  // namespace ubuzima::server
