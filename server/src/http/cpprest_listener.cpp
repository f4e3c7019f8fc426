// Ubuzima Sync — MIT licence.
// The only translation unit that includes cpprestsdk: it converts http_request to HttpRequest
// and HttpResponse back, and never lets an exception reach cpprestsdk.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cpprest/http_listener.h>
#include <cstdio>
#include <pplx/threadpool.h>

#include "http/listener.hpp"

namespace ubuzima::server {

namespace http = web::http;
using web::http::experimental::listener::http_listener;

struct HttpListener::Impl {
    http_listener listener;
    Handler handler;
    std::size_t max_body = 0;
    bool open = false;
};

namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

void reply(http::http_request request, const HttpResponse& out) {
    try {
        http::http_response response(static_cast<http::status_code>(out.status));
        response.set_body(std::vector<unsigned char>(out.body.begin(), out.body.end()));
        for (const auto& [name, value] : out.headers) response.headers()[name] = value;  // after set_body: wins
        request.reply(response).then([](pplx::task<void> t) {
            try {
                t.get();
            } catch (...) {
                // The client went away; nothing to tell it.
            }
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ubuzima-server: reply failed: %s\n", e.what());
    }
}

HttpResponse internal_error() {
    HttpResponse r;
    r.status = 500;
    r.headers["Content-Type"] = "application/json";
    r.body = R"({"error":{"code":"internal","message":"internal server error"}})";
    return r;
}

void serve(HttpListener::Impl* impl, http::http_request request) {
    try {
        HttpRequest in;
        in.method = request.method();
        const web::uri& rel = request.relative_uri();
        in.path = web::uri::decode(rel.path());
        for (const auto& [k, v] : web::uri::split_query(rel.query()))
            in.query[web::uri::decode(k)] = web::uri::decode(v);
        for (const auto& [name, value] : request.headers()) in.headers[lower(name)] = value;
        const auto announced = request.headers().content_length();
        if (announced > impl->max_body || in.headers.count("transfer-encoding")) {
            // Refuse before reading: the API answers 413 from the Content-Length alone, and 411
            // to a chunked body (its size is unknown until all of it has been buffered).
            reply(request, impl->handler(in));
            return;
        }
        request.extract_vector().then([impl, request, in](pplx::task<std::vector<unsigned char>> body) mutable {
            try {
                const std::vector<unsigned char> bytes = body.get();
                in.body.assign(bytes.begin(), bytes.end());
                reply(request, impl->handler(in));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "ubuzima-server: reading body failed: %s\n", e.what());
                reply(request, internal_error());
            }
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ubuzima-server: request failed: %s\n", e.what());
        reply(request, internal_error());
    }
}

}  // namespace

void init_http_threads(std::size_t threads) {
    try {
        crossplat::threadpool::initialize_with_threads(threads);
    } catch (const std::exception&) {
        // Already initialised: keep the pool that exists.
    }
}

Result<int> pick_free_port(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), "0", &hints, &found) != 0 || !found)
        return Status(ErrorCode::InvalidArgument, "cannot resolve listen host " + host);
    int port = -1;
    const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd >= 0 && bind(fd, found->ai_addr, found->ai_addrlen) == 0) {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
            port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                              : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        }
    }
    if (fd >= 0) ::close(fd);
    freeaddrinfo(found);
    if (port <= 0) return Status(ErrorCode::IoError, "cannot find a free port on " + host);
    return port;
}

HttpListener::HttpListener(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

HttpListener::~HttpListener() { close(); }

Result<std::unique_ptr<HttpListener>> HttpListener::open(const std::string& host, int port, std::size_t max_body_bytes,
                                                         Handler handler) {
    try {
        auto impl = std::make_unique<Impl>();
        impl->handler = std::move(handler);
        impl->max_body = max_body_bytes;
        impl->listener = http_listener(web::uri("http://" + host + ":" + std::to_string(port)));
        Impl* raw = impl.get();
        // The callback is held by the listener; `raw` lives as long as the listener does.
        impl->listener.support([raw](http::http_request request) { serve(raw, std::move(request)); });
        impl->listener.open().wait();
        impl->open = true;
        return std::unique_ptr<HttpListener>(new HttpListener(std::move(impl)));
    } catch (const std::exception& e) {
        return Status(ErrorCode::IoError, "cannot listen on " + host + ":" + std::to_string(port) + ": " + e.what());
    }
}

void HttpListener::close() {
    if (!m_impl || !m_impl->open) return;
    m_impl->open = false;
    try {
        m_impl->listener.close().wait();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ubuzima-server: closing the listener failed: %s\n", e.what());
    }
}

}  // namespace ubuzima::server
