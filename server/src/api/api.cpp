// Ubuzima Sync — MIT licence.
// The request edge: rate limits, routing from the one table, method and media checks, body
// limits per route, authentication and roles, gzip both ways, error mapping.
#include "api/api.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "http/compression.hpp"
#include "http/listener.hpp"

namespace ubuzima::server {

namespace {

constexpr std::size_t kGzipThreshold = 1024;  // smaller bodies gain less than gzip's overhead

bool contains_token(const std::string& header, const std::string& token) {
    // Good enough for Accept-Encoding: "gzip", "gzip, deflate", "br;q=1.0, gzip;q=0.8".
    return header.find(token) != std::string::npos;
}

http::Response finish(const http::Request& request, http::Response response) {
    // Tokens and personal data travel in these answers: no cache may keep them.
    response.headers.emplace("Cache-Control", "no-store");
    response.headers.emplace("X-Content-Type-Options", "nosniff");
    if (request.secure) response.headers.emplace("Strict-Transport-Security", "max-age=31536000");
    if (response.stream || response.body.size() <= kGzipThreshold ||
        !contains_token(request.header("accept-encoding"), "gzip"))
        return response;
    auto packed = gzip_compress(response.body);
    if (!packed.ok()) return response;  // plain is always acceptable
    response.body = std::move(*packed);
    response.headers["Content-Encoding"] = "gzip";
    response.headers["Vary"] = "Accept-Encoding";
    return response;
}

std::int64_t retry_seconds(std::int64_t ms) { return ms <= 0 ? 1 : (ms + 999) / 1000; }

// The internal metrics listener answers only these: a scraper and a load balancer need nothing else.
bool serves_on_ops_listener(const std::string& pattern) {
    return pattern == "/metrics" || pattern == "/v1/health" || pattern == "/v1/health/live" ||
           pattern == "/v1/health/ready";
}

bool is_json_media(const std::string& content_type) {
    const std::string base = content_type.substr(0, content_type.find(';'));
    std::string lower;
    for (char c : base)
        if (c != ' ') lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return lower == "application/json";
}

}  // namespace

http::Response json_response(int status, std::string body) {
    http::Response r;
    r.status = status;
    r.headers["Content-Type"] = "application/json";
    r.body = std::move(body);
    return r;
}

http::Response error_response(const Status& status, std::int64_t retry_after_s) {
    http::Response r = json_response(http_status(status.code()), sync::encode_error(status));
    if (r.status == 503 || r.status == 429) r.headers["Retry-After"] = std::to_string(std::max<std::int64_t>(1, retry_after_s));
    if (r.status == 401) r.headers["WWW-Authenticate"] = "Bearer";
    return r;
}

Result<std::unique_ptr<Api>> Api::create(ServerStore& store, ServerOptions options) {
    std::unique_ptr<Api> api(new Api(store, std::move(options)));
    UBUZIMA_TRY(api->m_sync.apply_seeds());
    UBUZIMA_TRY(api->m_auth.bootstrap_admin());
    return api;
}

Api::Api(ServerStore& store, ServerOptions options)
    : m_options(std::move(options)),
      m_counters(m_metrics),
      m_started_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count()),
      m_store(store),
      m_clock(m_options.wall, store.saved_clock()),
      m_auth(store, m_options),
      m_users(store, m_auth),
      m_sync(store, m_options, m_clock),
      m_address_limit(m_options.rate.per_address_per_s, m_options.rate.per_address_burst),
      m_device_limit(m_options.rate.per_device_per_s, m_options.rate.per_device_burst) {
    m_address_limit.share(store.shared_rate_buckets(), "addr:");
    m_device_limit.share(store.shared_rate_buckets(), "device:");
    add_auth_routes();
    add_sync_routes();
    add_admin_routes();
    add_ops_routes();
    add_indicator_routes();
    add_ops_gauges();
}

void Api::add(Route route) {
    const std::size_t id = m_routes.size();
    if (!m_router.add(route.method, route.pattern, id)) {
        std::fprintf(stderr, "ubuzima-server: bad route %s %s\n", route.method.c_str(), route.pattern.c_str());
        std::abort();  // a programming error in the route table, found by every test run
    }
    m_routes.push_back(std::move(route));
}

http::Response Api::handle(const http::Request& request) noexcept { return serve(request, false); }

http::Response Api::handle_ops(const http::Request& request) noexcept { return serve(request, true); }

http::Response Api::serve(const http::Request& request, bool ops_surface) noexcept {
    const auto started = std::chrono::steady_clock::now();
    const std::int64_t arrived_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch()).count();
    RequestNote note;
    http::Response response = http::internal_error();
    try {
        response = dispatch(request, note, ops_surface);
        if (response.status >= 500) {
            std::fprintf(stderr, "ubuzima-server: %s %s -> %d %s\n", request.method.c_str(),
                         http::display_path(request.raw_path).c_str(), response.status, response.body.c_str());
        }
        response = finish(request, std::move(response));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ubuzima-server: %s %s threw: %s\n", request.method.c_str(),
                     http::display_path(request.raw_path).c_str(), e.what());
        response = http::internal_error();
    } catch (...) {
        std::fprintf(stderr, "ubuzima-server: %s threw\n", request.method.c_str());
        response = http::internal_error();
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    observe(request, response, note, arrived_ms, took.count());
    return response;
}

void Api::observe(const http::Request& request, const http::Response& response, const RequestNote& note,
                  std::int64_t arrived_ms, double seconds) noexcept {
    try {
        const std::string method = ops::method_label(request.method);
        const std::string route = note.route ? note.route->pattern : ops::kUnmatchedRoute;
        m_counters.requests.with({method, route, std::to_string(response.status)}).inc();
        m_counters.duration.with({method, route}).observe(seconds);
        if (!m_access_log || !m_access_log->enabled()) return;
        ops::AccessRecord r;
        r.ts_ms = arrived_ms;
        r.method = method;
        r.route = route;
        r.status = response.status;
        r.duration_ms = seconds * 1000;
        r.user = note.user_id;
        r.device = note.device_id;
        r.rows_in = note.rows_in;
        r.rows_out = note.rows_out;
        r.bytes_in = static_cast<std::int64_t>(request.body.size());
        r.bytes_out = response.stream ? -1 : static_cast<std::int64_t>(response.body.size());
        r.address = request.remote_address;
        m_access_log->write(r);
    } catch (...) {
        // out of memory while counting: the answer still goes out
    }
}

http::Response Api::dispatch(const http::Request& request, RequestNote& note, bool ops_surface) {
    const std::int64_t now = m_options.wall();
    // Routing first, only to know the route for the metrics; the address limit still answers
    // before anything else is looked at.
    const std::vector<std::string> segments = http::split_path(request.raw_path);
    http::Router::Match match = m_router.match(request.method, segments);
    const std::string shown = http::display_path(request.raw_path);
    // The metrics listener knows no other route, not even to answer 405 for one.
    if (ops_surface && (!match.id || !serves_on_ops_listener(m_routes[*match.id].pattern))) match = {};
    if (match.id) note.route = &m_routes[*match.id];
    // A front proxy on this machine makes every client 127.0.0.1: address limits would throttle
    // everyone at once, so loopback peers are limited per device only (docs/SECURITY.md). The
    // internal metrics listener is for a scraper, not for clients: no limit there.
    if (!ops_surface && !request.remote_address.empty() && !is_loopback_host(request.remote_address)) {
        if (const std::int64_t wait = m_address_limit.take(request.remote_address, now)) {
            m_counters.rate_limited.with({"address"}).inc();
            return error_response(Status(ErrorCode::RateLimited, "too many requests from this address"),
                                  retry_seconds(wait));
        }
    }
    if (!match.path_known) return error_response(Status(ErrorCode::NotFound, "no route " + shown));
    if (!match.id) {
        // Every method no route declares, TRACE and OPTIONS included (cpprestsdk's own TRACE
        // echoed the request, bearer token and all).
        http::Response r = error_response(
            Status(ErrorCode::MethodNotAllowed, request.method + " is not allowed on " + shown));
        r.headers["Allow"] = match.allow;
        return r;
    }
    const Route& route = m_routes[*match.id];

    // Size first (cheap), then who is asking, and only then spend CPU on inflating the body.
    // A body of unannounced length (chunked) could only be measured by reading all of it: refused
    // before reading, like a Content-Length over the limit.
    if (!request.header("transfer-encoding").empty())
        return error_response(Status(ErrorCode::LengthRequired,
                                     "send the body with a Content-Length; chunked request bodies are not accepted"));
    const Status too_large(ErrorCode::TooLarge, request.method + " " + route.pattern + " takes a body of at most " +
                                                    std::to_string(route.max_body) + " bytes");
    const std::string& length = request.header("content-length");
    if (!length.empty()) {
        char* end = nullptr;
        errno = 0;
        const unsigned long long n = std::strtoull(length.c_str(), &end, 10);
        if (end == length.c_str() || *end != '\0' || errno == ERANGE || length[0] == '-')
            return error_response(Status(ErrorCode::BadRequest, "bad Content-Length"));
        if (n > route.max_body) return error_response(too_large);
    }
    if (request.body.size() > route.max_body) return error_response(too_large);
    if (!request.body.empty() && !is_json_media(request.header("content-type")))
        return error_response(Status(ErrorCode::UnsupportedMedia, "send the body as Content-Type: application/json"));
    const std::string& encoding = request.header("content-encoding");
    const bool gzipped = encoding == "gzip" || encoding == "x-gzip";
    if (!encoding.empty() && encoding != "identity" && !(gzipped && route.gzip_body))
        return error_response(Status(ErrorCode::UnsupportedMedia,
                                     "Content-Encoding " + encoding + " is not accepted on " + route.pattern));

    std::optional<AuthUser> user;
    // On the internal metrics listener the interface is the access control (docs/OPERATIONS.md).
    if (!route.roles.empty() && !ops_surface) {
        auto who = m_auth.authenticate(request.header("authorization"));
        if (!who.ok()) {
            count_auth_failure("bearer", who.status());
            return error_response(who.status());
        }
        note.user_id = who->id;
        note.device_id = who->device_id;
        if (!route.roles.has(who->role)) {
            count_auth_failure("role", Status(ErrorCode::Forbidden, ""));
            return error_response(Status(ErrorCode::Forbidden, "only " + route.roles.to_string() + " may " +
                                                                   request.method + " " + route.pattern));
        }
        if (const std::int64_t wait = m_device_limit.take(who->device_id, now)) {
            m_counters.rate_limited.with({"device"}).inc();
            return error_response(Status(ErrorCode::RateLimited, "too many requests from this device"),
                                  retry_seconds(wait));
        }
        user = std::move(*who);
    }

    std::string inflated;
    std::string_view body = request.body;
    if (gzipped) {
        auto out = gzip_decompress(request.body, route.max_body);
        if (!out.ok()) return error_response(out.status().code() == ErrorCode::TooLarge ? too_large : out.status());
        inflated = std::move(*out);
        body = inflated;
    }
    Call call{request, user ? &*user : nullptr, body, match.params, note};
    return (this->*route.handler)(call);
}

}  // namespace ubuzima::server
