// Ubuzima Sync — MIT licence.
// The HTTP listener behind a small interface, so cpprestsdk headers stay in one translation unit.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "http/http_types.hpp"
#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// Sizes the cpprestsdk thread pool (its default of 40 threads thrashes a 2-core host). Call
/// once, before any listener opens; later calls are ignored.
void init_http_threads(std::size_t threads);

/// Asks the kernel for a free TCP port on `host` (bind to port 0, read it back, release it):
/// cpprestsdk cannot report the port it bound.
Result<int> pick_free_port(const std::string& host);

/// An open HTTP listener calling `handler` for each request (on pool threads, concurrently).
class HttpListener {
public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;

    /// Listens on http://host:port. Bodies announced larger than `max_body_bytes` are answered
    /// by the handler without being read (it sees Content-Length and an empty body).
    static Result<std::unique_ptr<HttpListener>> open(const std::string& host, int port, std::size_t max_body_bytes,
                                                      Handler handler);
    ~HttpListener();
    HttpListener(const HttpListener&) = delete;
    HttpListener& operator=(const HttpListener&) = delete;

    /// Stops accepting and waits for the listener to close. Idempotent.
    void close();

    struct Impl;

private:
    explicit HttpListener(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace ubuzima::server
