// Ubuzima Sync — MIT licence.
// The HTTP API of the server on listener-neutral requests. One route table says, per method and
// path, which roles may call it, how large its body may be and whether it may come gzipped; the
// edge (api.cpp) enforces all of that before any handler runs, so no handler can forget it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/rate_limiter.hpp"
#include "auth/auth_service.hpp"
#include "auth/user_admin.hpp"
#include "config.hpp"
#include "http/message.hpp"
#include "http/router.hpp"
#include "ops/access_log.hpp"
#include "ops/metrics.hpp"
#include "ops/server_metrics.hpp"
#include "replication/sync_service.hpp"
#include "storage/server_store.hpp"

namespace ubuzima::server {

struct Route;

/// What the edge learns of one request, for its metrics and its access-log line. Handlers add
/// what only they know (rows moved, who logged in).
struct RequestNote {
    const Route* route = nullptr;  ///< null: no route matched
    std::optional<std::string> user_id;
    std::optional<std::string> device_id;
    std::int64_t rows_in = -1;   ///< sync only
    std::int64_t rows_out = -1;  ///< sync only
};

/// One request as a handler sees it: authenticated (on non-public routes), body decoded and
/// within its route's size.
struct Call {
    const http::Request& request;
    const AuthUser* user;                       ///< null on public routes
    std::string_view body;                      ///< decoded (gunzipped) body
    std::map<std::string, std::string> params;  ///< {name} segments of the path, decoded
    RequestNote& note;
};

class Api;

struct Route {
    std::string method;
    std::string pattern;   ///< "/v1/admin/users/{username}"
    RoleSet roles;         ///< who may call it; empty = public (no token)
    std::size_t max_body;  ///< decoded body bytes at most (checked before and after gunzip)
    bool gzip_body;        ///< Content-Encoding: gzip accepted (never on public routes)
    http::Response (Api::*handler)(const Call&);
    std::string summary;   ///< one line, for docs/PROTOCOL.md
};

/// Thread-safe: handle() may run on many listener threads at once.
class Api {
public:
    /// Builds the API on an open store: inserts missing seed rows and, when configured and the
    /// store has no users, creates the bootstrap admin. `store` must outlive the Api.
    static Result<std::unique_ptr<Api>> create(ServerStore& store, ServerOptions options);

    Api(const Api&) = delete;
    Api& operator=(const Api&) = delete;

    /// Answers one request. Never throws: any failure becomes a JSON error response.
    http::Response handle(const http::Request& request) noexcept;
    /// Answers one request of the internal metrics listener (--metrics-listen): only GET
    /// /metrics, unauthenticated, and the health routes; everything else is 404.
    http::Response handle_ops(const http::Request& request) noexcept;

    /// Where each request's JSON line goes (null or "off": nowhere). Set before serving.
    void set_access_log(std::shared_ptr<ops::AccessLog> log) { m_access_log = std::move(log); }
    /// The registry behind /metrics; storage backends add their gauges with add_gauge_callback.
    ops::Metrics& metrics() { return m_metrics; }

    const ServerOptions& options() const { return m_options; }
    const std::vector<Route>& routes() const { return m_routes; }
    AuthService& auth() { return m_auth; }
    UserAdmin& users() { return m_users; }
    SyncService& sync_service() { return m_sync; }

private:
    Api(ServerStore& store, ServerOptions options);
    http::Response serve(const http::Request& request, bool ops_surface) noexcept;
    http::Response dispatch(const http::Request& request, RequestNote& note, bool ops_surface);
    void observe(const http::Request& request, const http::Response& response, const RequestNote& note,
                 std::int64_t arrived_ms, double seconds) noexcept;
    void add_ops_gauges();    // ops_routes.cpp
    void count_auth_failure(const char* step, const Status& status);  // ops_routes.cpp
    void add(Route route);
    void add_auth_routes();   // auth_routes.cpp
    void add_sync_routes();   // sync_routes.cpp
    void add_admin_routes();  // admin_routes.cpp
    void add_ops_routes();    // ops_routes.cpp
    void add_indicator_routes();  // indicator_routes.cpp

    // auth_routes.cpp
    http::Response health(const Call& call);
    http::Response login(const Call& call);
    http::Response refresh(const Call& call);
    http::Response logout(const Call& call);
    // ops_routes.cpp
    http::Response health_live(const Call& call);
    http::Response health_ready(const Call& call);
    http::Response metrics_page(const Call& call);
    // indicator_routes.cpp
    http::Response indicator(const Call& call);
    // sync_routes.cpp
    http::Response sync(const Call& call);
    http::Response list_conflicts(const Call& call);
    http::Response resolve_conflict(const Call& call);
    // admin_routes.cpp
    http::Response list_users(const Call& call);
    http::Response create_user(const Call& call);
    http::Response update_user(const Call& call);
    http::Response list_devices(const Call& call);
    http::Response revoke_device(const Call& call);
    http::Response audit_page(const Call& call);
    http::Response audit_head(const Call& call);

    ServerOptions m_options;
    ops::Metrics m_metrics;         // before everything that counts into it
    ops::ServerMetrics m_counters;
    std::shared_ptr<ops::AccessLog> m_access_log;
    std::int64_t m_started_ms;      // wall clock at construction: process start for the gauges
    ServerStore& m_store;
    ServerClock m_clock;
    AuthService m_auth;
    UserAdmin m_users;
    SyncService m_sync;
    RateLimiter m_address_limit;
    RateLimiter m_device_limit;
    std::vector<Route> m_routes;
    http::Router m_router;
};

/// `{"error":{...}}` with the status of the code and Content-Type application/json; 429 and
/// 503 carry Retry-After (`retry_after_s`, at least 1).
http::Response error_response(const Status& status, std::int64_t retry_after_s = 0);
/// A JSON body with the given status.
http::Response json_response(int status, std::string body);

}  // namespace ubuzima::server

/// In a handler: answers with the error of a failed Status-valued expression.
#define UBUZIMA_TRY_RESPONSE(expr) \
    UBUZIMA_TRY_RESPONSE_IMPL(expr, UBUZIMA_TRY_CAT(ubuzima_response_status_, __COUNTER__))
#define UBUZIMA_TRY_RESPONSE_IMPL(expr, name)                               \
    do {                                                                    \
        ::ubuzima::Status name = (expr);                                    \
        if (!name.ok()) return ::ubuzima::server::error_response(name);     \
    } while (0)
