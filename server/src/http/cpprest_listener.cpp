// Ubuzima Sync — MIT licence.
// The only translation unit that includes cpprestsdk: it converts http_request to http::Request
// and http::Response back, sets up TLS, and never lets an exception reach cpprestsdk.
//
// What this listener cannot do (cpprestsdk 2.10 reads headers into an unbounded buffer with no
// timer, and has no connection limit): bound header size, time out slow or idle clients, cap
// connections. docs/SECURITY.md measures that and names the defence (the Beast listener, or a
// front proxy).
#include <cctype>
#include <chrono>
#include <cpprest/http_listener.h>
#include <cpprest/producerconsumerstream.h>
#include <cstdio>
#include <pplx/threadpool.h>
#include <thread>

#include "http/listener.hpp"
#include "http/tls_server.hpp"

namespace ubuzima::server {

namespace cp = web::http;
using web::http::experimental::listener::http_listener;
using web::http::experimental::listener::http_listener_config;

namespace {

// A streamed body waits for the client once this much is buffered and unsent.
constexpr std::size_t kStreamBufferLimit = 1u << 20;

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

void log_reply_failure(pplx::task<void> t) {
    try {
        t.get();
    } catch (...) {
        // The client went away; nothing to tell it.
    }
}

class StreamWriter final : public http::BodyWriter {
public:
    explicit StreamWriter(concurrency::streams::producer_consumer_buffer<unsigned char> buf) : m_buf(std::move(buf)) {}
    bool write(std::string_view chunk) override {
        try {
            // producer_consumer_buffer grows without bound: wait while the client lags behind.
            for (int waited_ms = 0; m_buf.in_avail() > kStreamBufferLimit; ++waited_ms) {
                if (waited_ms > 60'000) return false;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            const auto* data = reinterpret_cast<const unsigned char*>(chunk.data());
            return m_buf.putn_nocopy(data, chunk.size()).get() == chunk.size();
        } catch (const std::exception&) {
            return false;
        }
    }

private:
    concurrency::streams::producer_consumer_buffer<unsigned char> m_buf;
};

void reply(cp::http_request request, http::Response out) {
    try {
        cp::http_response response(static_cast<cp::status_code>(out.status));
        if (!out.stream) {
            response.set_body(std::vector<unsigned char>(out.body.begin(), out.body.end()));
            for (const auto& [name, value] : out.headers) response.headers()[name] = value;  // after set_body: wins
            request.reply(response).then(log_reply_failure);
            return;
        }
        concurrency::streams::producer_consumer_buffer<unsigned char> buf;
        response.set_body(buf.create_istream());  // no length: sent chunked
        for (const auto& [name, value] : out.headers) response.headers()[name] = value;
        request.reply(response).then(log_reply_failure);
        StreamWriter writer(buf);
        bool complete = false;
        try {
            complete = out.stream(writer);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ubuzima-server: a streamed body failed: %s\n", e.what());
        }
        if (complete) {
            buf.close(std::ios_base::out).wait();
        } else {
            // Ending the stream with an error makes cpprestsdk drop the connection before the
            // final chunk: the client cannot take half a body for the whole.
            buf.close(std::ios_base::out, std::make_exception_ptr(std::runtime_error("body producer stopped"))).wait();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ubuzima-server: reply failed: %s\n", e.what());
    }
}

class CpprestListener final : public HttpListener {
public:
    CpprestListener(RequestHandler handler, std::size_t max_body, int port, bool secure)
        : m_handler(std::move(handler)), m_max_body(max_body), m_port(port), m_secure(secure) {}
    ~CpprestListener() override { close(); }

    Status open(const std::string& host, std::shared_ptr<TlsServerContext> tls) {
        try {
            http_listener_config config;
            if (tls) {
                m_tls = std::move(tls);
                TlsServerContext* raw = m_tls.get();
                // Called by cpprestsdk for every accepted connection, on a fresh context.
                config.set_ssl_context_callback([raw](boost::asio::ssl::context& ctx) {
                    Status s = raw->configure(ctx.native_handle());
                    if (!s.ok()) throw std::runtime_error(s.to_string());  // cpprestsdk then drops the connection
                });
            }
            const bool v6 = host.find(':') != std::string::npos;
            const std::string uri = std::string(m_secure ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) +
                                    ":" + std::to_string(m_port);
            m_listener = http_listener(web::uri(uri), config);
            // Without explicit handlers, cpprestsdk answers OPTIONS and TRACE itself before any
            // catch-all, and TRACE echoes the request (bearer token included): route them too.
            auto serve = [this](cp::http_request request) { this->serve(std::move(request)); };
            m_listener.support(cp::methods::OPTIONS, serve);
            m_listener.support(cp::methods::TRCE, serve);
            m_listener.support(serve);
            m_listener.open().wait();
            m_open = true;
            return {};
        } catch (const std::exception& e) {
            return Status(ErrorCode::IoError, "cannot listen on " + host + ":" + std::to_string(m_port) + ": " + e.what());
        }
    }

    void close() override {
        if (!m_open) return;
        m_open = false;
        try {
            m_listener.close().wait();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ubuzima-server: closing the listener failed: %s\n", e.what());
        }
    }

    int port() const override { return m_port; }
    bool secure() const override { return m_secure; }

private:
    void serve(cp::http_request request) {
        try {
            http::Request in;
            in.method = request.method();
            const web::uri& rel = request.relative_uri();
            in.raw_path = rel.path();
            in.query = http::parse_query(rel.query());
            for (const auto& [name, value] : request.headers()) in.headers[lower(name)] = value;
            in.remote_address = request.remote_address();
            in.secure = m_secure;
            const auto announced = request.headers().content_length();
            if (announced > m_max_body || in.headers.count("transfer-encoding")) {
                // Refuse before reading: the API answers 413 from the Content-Length alone, and
                // 411 to a chunked body (its size is unknown until all of it has been buffered).
                reply(request, m_handler(in));
                return;
            }
            request.extract_vector().then([this, request, in](pplx::task<std::vector<unsigned char>> body) mutable {
                try {
                    const std::vector<unsigned char> bytes = body.get();
                    in.body.assign(bytes.begin(), bytes.end());
                    reply(request, m_handler(in));
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "ubuzima-server: reading a body failed: %s\n", e.what());
                    reply(request, http::internal_error());
                }
            });
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ubuzima-server: request failed: %s\n", e.what());
            reply(request, http::internal_error());
        }
    }

    RequestHandler m_handler;
    const std::size_t m_max_body;
    const int m_port;
    const bool m_secure;
    std::shared_ptr<TlsServerContext> m_tls;  // referenced by the context callback
    http_listener m_listener;
    bool m_open = false;
};

}  // namespace

void init_http_threads(std::size_t threads) {
    try {
        crossplat::threadpool::initialize_with_threads(threads);
    } catch (const std::exception&) {
        // Already initialised: keep the pool that exists.
    }
}

Result<std::unique_ptr<HttpListener>> open_cpprest_listener(const ListenOptions& options, RequestHandler handler) {
    int port = options.port;
    if (port == 0) {
        // cpprestsdk cannot report the port it bound.
        auto free_port = pick_free_port(options.host);
        if (!free_port.ok()) return free_port.status();
        port = *free_port;
    }
    auto listener = std::make_unique<CpprestListener>(std::move(handler), options.limits.max_body_bytes, port,
                                                      options.tls != nullptr);
    UBUZIMA_TRY(listener->open(options.host, options.tls));
    return std::unique_ptr<HttpListener>(std::move(listener));
}

}  // namespace ubuzima::server
