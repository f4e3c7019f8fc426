// Ubuzima Sync — MIT licence.
// HttpTransport over one reused libcurl easy handle (keep-alive, gzip, timeouts, no signals).
#include <curl/curl.h>
#include <zlib.h>

#include <cctype>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "ubuzima/transport.hpp"

namespace ubuzima {

namespace {

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

// curl_global_init is not thread-safe and must run once per process before any handle exists.
CURLcode global_init() {
    static std::once_flag once;
    static CURLcode rc = CURLE_OK;
    std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    return rc;
}

extern "C" size_t append_body(char* data, size_t size, size_t count, void* user) {
    auto* body = static_cast<std::string*>(user);
    try {
        body->append(data, size * count);
    } catch (...) {
        return 0;  // makes curl abort the transfer with CURLE_WRITE_ERROR instead of unwinding through C
    }
    return size * count;
}

// Bodies below this gain less from gzip than its ~20-byte frame and the CPU cost.
constexpr std::size_t kGzipRequestThreshold = 1024;

bool has_header(const HttpHeaders& headers, const char* wanted) {
    for (const auto& header : headers) {
        const std::string& name = header.first;
        std::size_t i = 0;
        for (; i < name.size() && wanted[i]; ++i)
            if (std::tolower(static_cast<unsigned char>(name[i])) != wanted[i]) break;
        if (i == name.size() && !wanted[i]) return true;
    }
    return false;
}

// gzip (RFC 1952) of a request body; false means "send it plain".
bool gzip_body(const std::string& in, std::string& out) {
    if (in.size() > UINT_MAX / 2) return false;
    z_stream zs{};
    // Level 1: a push is still ~180 bytes per ~820-byte record (0.17x PouchDB's, bench/); level 6
    // saved another 40 bytes for ~3x the CPU (deflate was ~18% of a push's client instructions).
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    out.resize(deflateBound(&zs, static_cast<uLong>(in.size())));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    const auto produced = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return false;
    out.resize(produced);
    return true;
}

// Tracks whether the header block of the last response ended with its blank line. curl reports
// success for a connection closed inside the headers (it reads "HTTP/1.1 200 OK" and EOF as a
// complete body-less answer), which would hand the session a truncated 200.
extern "C" size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* complete = static_cast<bool*>(user);
    const size_t n = size * count;
    if (n >= 5 && std::memcmp(data, "HTTP/", 5) == 0) {
        *complete = false;  // a new status line (after 100 Continue or a redirect)
    } else if ((n == 2 && data[0] == '\r' && data[1] == '\n') || (n == 1 && data[0] == '\n')) {
        *complete = true;
    }
    return n;
}

struct UrlDeleter {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStringDeleter {
    void operator()(char* p) const { curl_free(p); }
};

bool is_loopback(const std::string& host) {
    if (host == "localhost" || host == "[::1]" || host == "::1") return true;
    // 127.0.0.0/8 as a dotted quad.
    unsigned a = 0, b = 0, c = 0, d = 0;
    char tail = 0;
    return std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 &&
           d < 256;
}

/// Only http and https, and http only to this machine: a request in clear to anywhere else would
/// carry the bearer token and health data across a network anyone on it can read.
Status check_url(const std::string& url) {
    std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
    if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        return Status(ErrorCode::InvalidArgument, "not a valid URL: " + url);
    char* raw_scheme = nullptr;
    char* raw_host = nullptr;
    curl_url_get(u.get(), CURLUPART_SCHEME, &raw_scheme, 0);
    curl_url_get(u.get(), CURLUPART_HOST, &raw_host, 0);
    std::unique_ptr<char, CurlStringDeleter> scheme(raw_scheme), host(raw_host);
    const std::string s = scheme ? scheme.get() : "";
    if (s == "https") return {};
    if (s == "http" && host && is_loopback(host.get())) return {};
    if (s == "http")
        return Status(ErrorCode::InvalidArgument, "plain http:// is sent only to this machine (127.0.0.1, ::1, "
                                                  "localhost): use https:// for " + url);
    return Status(ErrorCode::InvalidArgument, "only https:// (and http:// to this machine) URLs are supported: " + url);
}

}  // namespace

struct CurlTransport::Impl {
    TransportOptions options;
    std::mutex mutex;
    EasyHandle easy;
};

CurlTransport::CurlTransport(TransportOptions options) : m_impl(std::make_unique<Impl>()) {
    m_impl->options = options;
}

CurlTransport::~CurlTransport() = default;

Result<HttpResponse> CurlTransport::post(const std::string& url, const std::string& body, const HttpHeaders& headers) {
    try {
        return perform(url, body, headers);
    } catch (const std::exception& e) {  // bad_alloc: no exception crosses the API
        return Status(ErrorCode::Internal, std::string("HTTP request failed: ") + e.what());
    }
}

Result<HttpResponse> CurlTransport::perform(const std::string& url, const std::string& body,
                                            const HttpHeaders& headers) {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    if (global_init() != CURLE_OK) return Status(ErrorCode::Internal, "curl_global_init failed");
    if (!m_impl->easy) {
        m_impl->easy.reset(curl_easy_init());
        if (!m_impl->easy) return Status(ErrorCode::Internal, "curl_easy_init failed");
    }
    UBUZIMA_TRY(check_url(url));
    CURL* h = m_impl->easy.get();
    // Reset clears the options of the previous request but keeps the connection cache, so the
    // next request to the same server reuses the open (TLS) connection.
    curl_easy_reset(h);

    // Pushes are most of the upload on a metered link: gzip them (the server inflates
    // Content-Encoding: gzip) unless the caller already encoded the body.
    std::string packed;
    const bool gzipped = body.size() >= kGzipRequestThreshold && !has_header(headers, "content-encoding") &&
                         gzip_body(body, packed) && packed.size() < body.size();
    const std::string& sent = gzipped ? packed : body;

    HeaderList list;
    if (gzipped) {
        list.reset(curl_slist_append(nullptr, "Content-Encoding: gzip"));
        if (!list) return Status(ErrorCode::Internal, "out of memory building request headers");
    }
    for (const auto& [name, value] : headers) {
        curl_slist* next = curl_slist_append(list.get(), (name + ": " + value).c_str());
        if (!next) return Status(ErrorCode::Internal, "out of memory building request headers");
        (void)list.release();
        list.reset(next);
    }
    // Without this, curl waits for "100 Continue" before sending larger bodies: a wasted round
    // trip on a 2 s rural link.
    curl_slist* next = curl_slist_append(list.get(), "Expect:");
    if (!next) return Status(ErrorCode::Internal, "out of memory building request headers");
    (void)list.release();
    list.reset(next);

    HttpResponse response;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, sent.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(sent.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get());
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // every encoding curl supports (gzip, deflate)
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_impl->options.connect_timeout_ms));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(m_impl->options.timeout_ms));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // signals are unsafe in a library inside an app
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    // Trust: set explicitly rather than relied on as defaults, and no way to turn it off.
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    const TransportOptions& trust = m_impl->options;
    curl_blob ca_blob{};
    if (!trust.ca_pem.empty()) {
        ca_blob.data = const_cast<char*>(trust.ca_pem.data());
        ca_blob.len = trust.ca_pem.size();
        ca_blob.flags = CURL_BLOB_NOCOPY;  // the options outlive the request
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca_blob);
    } else if (!trust.ca_file.empty()) {
        curl_easy_setopt(h, CURLOPT_CAINFO, trust.ca_file.c_str());
    }
    if (!trust.pinned_public_keys.empty())
        curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, trust.pinned_public_keys.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
    bool headers_complete = false;
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &headers_complete);

    const CURLcode rc = curl_easy_perform(h);
    // The header list and error buffer die with this call: make sure the handle forgets them.
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    if (rc != CURLE_OK) {
        const std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
        if (rc == CURLE_OPERATION_TIMEDOUT) return Status(ErrorCode::Timeout, "POST " + url + ": " + detail);
        return Status(ErrorCode::Network, "POST " + url + ": " + detail);
    }
    if (!headers_complete)
        return Status(ErrorCode::Network, "POST " + url + ": connection closed inside the response headers");
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    curl_off_t retry_after_s = 0;  // 0 when the header is absent (HTTP-date values are parsed too)
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after_s) == CURLE_OK && retry_after_s > 0)
        response.retry_after_ms = static_cast<std::int64_t>(retry_after_s) * 1000;
    return response;
}

}  // namespace ubuzima
