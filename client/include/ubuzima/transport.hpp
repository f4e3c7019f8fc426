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

/// Timeouts and trust of the default transport. Certificates are always verified (chain and
/// host name, TLS 1.2 at least); there is no option to turn that off. Plain http:// is sent only
/// to this machine (127.0.0.0/8, ::1, localhost), where no network can read it.
struct TransportOptions {
    std::int64_t connect_timeout_ms = 10'000;  ///< TCP + TLS handshake
    std::int64_t timeout_ms = 60'000;          ///< whole request, including the body
    /// Certificate authorities to trust, from a PEM file. Empty: the system's bundle.
    std::string ca_file;
    /// The same from PEM text in memory (an Android app has no CA path curl can use); used
    /// instead of ca_file when both are set.
    std::string ca_pem;
    /// Public-key pins, curl's form: "sha256//<base64 of the SPKI's SHA-256>" joined by ';'
    /// (pin the current key and a backup whose private half is kept offline, or a key change
    /// locks every device out). A server whose key matches none is refused before any request
    /// byte is sent. Empty: no pinning.
    std::string pinned_public_keys;
};

/// HttpTransport over libcurl. One easy handle is reused, so consecutive requests to one server
/// share a keep-alive connection (and a TLS session); gzip/deflate responses are accepted and
/// decompressed. See TransportOptions for trust. Thread-safe: requests are serialised by a mutex.
class CurlTransport final : public HttpTransport {
public:
    explicit CurlTransport(TransportOptions options = {});
    ~CurlTransport() override;
    CurlTransport(const CurlTransport&) = delete;
    CurlTransport& operator=(const CurlTransport&) = delete;

    /// See HttpTransport::post. Errors: Network (with curl's message: a certificate that does
    /// not verify, a pin that does not match, a refused connection), Timeout, InvalidArgument
    /// (plain http:// to another machine, an unparsable URL), Internal when curl could not be
    /// initialised.
    Result<HttpResponse> post(const std::string& url, const std::string& body, const HttpHeaders& headers) override;

private:
    Result<HttpResponse> perform(const std::string& url, const std::string& body, const HttpHeaders& headers);
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace ubuzima
