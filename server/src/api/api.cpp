// Ubuzima Sync — MIT licence.
// The request edge: routing, authentication, body size limits, gzip both ways, error mapping.
#include "api/api.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "http/compression.hpp"

namespace ubuzima::server {

namespace {

constexpr std::size_t kGzipThreshold = 1024;  // smaller bodies gain less than gzip's overhead

enum class Access { Public, User };

struct RouteMatch {
    std::string allow;  ///< method the path accepts ("" = unknown path)
    Access access = Access::User;
    std::string param;  ///< {id} of /v1/conflicts/{id}/resolve
};

RouteMatch match(const std::string& path) {
    if (path == "/v1/health") return {"GET", Access::Public, ""};
    if (path == "/v1/auth/login" || path == "/v1/auth/refresh") return {"POST", Access::Public, ""};
    if (path == "/v1/admin/users" || path == "/v1/sync") return {"POST", Access::User, ""};
    if (path == "/v1/conflicts") return {"GET", Access::User, ""};
    const std::string prefix = "/v1/conflicts/";
    const std::string suffix = "/resolve";
    if (path.size() > prefix.size() + suffix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
        std::string id = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
        if (id.find('/') == std::string::npos) return {"POST", Access::User, id};
    }
    return {"", Access::User, ""};
}

bool contains_token(const std::string& header, const std::string& token) {
    // Good enough for Accept-Encoding: "gzip", "gzip, deflate", "br;q=1.0, gzip;q=0.8".
    return header.find(token) != std::string::npos;
}

HttpResponse maybe_gzip(const HttpRequest& request, HttpResponse response) {
    if (response.body.size() <= kGzipThreshold || !contains_token(request.header("accept-encoding"), "gzip"))
        return response;
    auto packed = gzip_compress(response.body);
    if (!packed.ok()) return response;  // plain is always acceptable
    response.body = std::move(*packed);
    response.headers["Content-Encoding"] = "gzip";
    response.headers["Vary"] = "Accept-Encoding";
    return response;
}

}  // namespace

HttpResponse json_response(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.headers["Content-Type"] = "application/json";
    r.body = std::move(body);
    return r;
}

HttpResponse error_response(const Status& status) {
    HttpResponse r = json_response(http_status(status.code()), sync::encode_error(status));
    if (r.status == 503) r.headers["Retry-After"] = "1";
    return r;
}

Result<std::unique_ptr<Api>> Api::create(Store& store, ServerOptions options) {
    std::unique_ptr<Api> api(new Api(store, std::move(options)));
    UBUZIMA_TRY(api->m_sync.apply_seeds());
    UBUZIMA_TRY(api->m_auth.bootstrap_admin());
    return api;
}

Api::Api(Store& store, ServerOptions options)
    : m_options(std::move(options)),
      m_store(store),
      m_clock(m_options.wall, store.saved_clock()),
      m_auth(store, m_options),
      m_sync(store, m_options, m_clock) {}

HttpResponse Api::handle(const HttpRequest& request) noexcept {
    try {
        HttpResponse response = dispatch(request);
        if (response.status >= 500) {
            std::fprintf(stderr, "ubuzima-server: %s %s -> %d %s\n", request.method.c_str(), request.path.c_str(),
                         response.status, response.body.c_str());
        }
        return maybe_gzip(request, std::move(response));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ubuzima-server: %s %s threw: %s\n", request.method.c_str(), request.path.c_str(), e.what());
    } catch (...) {
        std::fprintf(stderr, "ubuzima-server: %s %s threw\n", request.method.c_str(), request.path.c_str());
    }
    HttpResponse r;
    r.status = 500;
    r.headers["Content-Type"] = "application/json";
    r.body = R"({"error":{"code":"internal","message":"internal server error"}})";
    return r;
}

HttpResponse Api::dispatch(const HttpRequest& request) {
    const RouteMatch route = match(request.path);
    if (route.allow.empty()) return error_response(Status(ErrorCode::NotFound, "no route " + request.path));
    if (request.method != route.allow) {
        HttpResponse r = error_response(
            Status(ErrorCode::MethodNotAllowed, request.method + " is not allowed on " + request.path));
        r.headers["Allow"] = route.allow;
        return r;
    }

    // Size first (cheap), then who is asking, and only then spend CPU on inflating the body.
    // A body of unannounced length (chunked) could only be measured by reading all of it: refused
    // before reading, like a Content-Length over the limit.
    if (!request.header("transfer-encoding").empty())
        return error_response(Status(ErrorCode::LengthRequired,
                                     "send the body with a Content-Length; chunked request bodies are not accepted"));
    const std::string& length = request.header("content-length");
    if (!length.empty()) {
        char* end = nullptr;
        const unsigned long long n = std::strtoull(length.c_str(), &end, 10);
        if (end == length.c_str() || *end != '\0') return error_response(Status(ErrorCode::BadRequest, "bad Content-Length"));
        if (n > m_options.max_body_bytes)
            return error_response(Status(ErrorCode::TooLarge, "body exceeds " + std::to_string(m_options.max_body_bytes) + " bytes"));
    }
    if (request.body.size() > m_options.max_body_bytes)
        return error_response(Status(ErrorCode::TooLarge, "body exceeds " + std::to_string(m_options.max_body_bytes) + " bytes"));

    std::optional<AuthUser> user;
    if (route.access == Access::User) {
        auto who = m_auth.authenticate(request.header("authorization"));
        if (!who.ok()) {
            HttpResponse r = error_response(who.status());
            if (r.status == 401) r.headers["WWW-Authenticate"] = "Bearer";
            return r;
        }
        user = std::move(*who);
    }

    std::string inflated;
    const std::string* body = &request.body;
    const std::string& encoding = request.header("content-encoding");
    if (encoding == "gzip" || encoding == "x-gzip") {
        auto out = gzip_decompress(request.body, m_options.max_body_bytes);
        if (!out.ok()) return error_response(out.status());
        inflated = std::move(*out);
        body = &inflated;
    } else if (!encoding.empty() && encoding != "identity") {
        return error_response(Status(ErrorCode::UnsupportedMedia, "Content-Encoding " + encoding + " is not supported"));
    }

    const std::string& p = request.path;
    if (p == "/v1/health") return health();
    if (p == "/v1/auth/login") return login(*body);
    if (p == "/v1/auth/refresh") return refresh(*body);
    if (p == "/v1/admin/users") return create_user(*user, *body);
    if (p == "/v1/sync") return sync(*user, *body);
    if (p == "/v1/conflicts") return list_conflicts(*user, request);
    return resolve_conflict(*user, route.param, *body);
}

}  // namespace ubuzima::server
