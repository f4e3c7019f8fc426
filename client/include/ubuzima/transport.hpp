// Ubuzima Sync — MIT licence.
// The HTTP transport seam: an abstract POST interface, and the libcurl implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ubuzima/sync/status.hpp"

namespace ubuzima {

/// Request headers as (name, value) pairs, sent in order.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/// A complete HTTP response: status code and (already decompressed) body.
struct HttpResponse {
    int status = 0;
    std::string body;
    /// The Retry-After header (429/503) in ms; -1 when absent or the transport cannot tell.
    std::int64_t retry_after_ms = -1;
};

/// Sends HTTP POST requests for the sync session. Implement it to plug in the platform's own
/// networking (OkHttp, NSURLSession) or a fake in tests.
///
/// Thread-safety: the library calls post() from the thread that called Database::sync() or
/// Database::login(), never concurrently on one Database. An instance shared by several
/// databases must be thread-safe itself (CurlTransport is).
class HttpTransport {
public:
    virtual ~HttpTransport() = default;
    /// Sends one POST request.
    /// @param url     absolute URL ("https://moh.example/v1/sync")
    /// @param body    request body (JSON)
    /// @param headers extra request headers (Content-Type, Authorization, ...)
    /// @return the response for any HTTP status (4xx/5xx are responses, not errors); an error
    ///         only when no response arrived: Network (DNS, refused, TLS, reset) or Timeout.
    virtual Result<HttpResponse> post(const std::string& url, const std::string& body, const HttpHeaders& headers) = 0;
};

/// Timeouts of the default transport.
struct TransportOptions {
    std::int64_t connect_timeout_ms = 10'000;  ///< TCP + TLS handshake
    std::int64_t timeout_ms = 60'000;          ///< whole request, including the body
};

/// HttpTransport over libcurl. One easy handle is reused, so consecutive requests to one server
/// share a keep-alive connection; gzip/deflate responses are accepted and decompressed.
/// Certificates are verified (curl defaults). Thread-safe: requests are serialised by a mutex.
class CurlTransport final : public HttpTransport {
public:
    explicit CurlTransport(TransportOptions options = {});
    ~CurlTransport() override;
    CurlTransport(const CurlTransport&) = delete;
    CurlTransport& operator=(const CurlTransport&) = delete;

    /// See HttpTransport::post. Errors: Network (with curl's message), Timeout, Internal when
    /// curl could not be initialised.
    Result<HttpResponse> post(const std::string& url, const std::string& body, const HttpHeaders& headers) override;

private:
    Result<HttpResponse> perform(const std::string& url, const std::string& body, const HttpHeaders& headers);
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace ubuzima
