// Ubuzima Sync — MIT licence.
// Run-time options of the server, filled from the command line (config.cpp) or by tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "auth/passwords.hpp"
#include "http/listener.hpp"
#include "ubuzima/sync/hlc.hpp"

namespace ubuzima::schema {
class Schema;
}

namespace ubuzima::server {

inline constexpr const char* kServerVersion = "0.2.0";

/// Failed-login throttling (docs/SECURITY.md): after `free_failures` failures in a row, each
/// further attempt for that key must wait base * 2^(n - free) s, capped, answered 429 with
/// Retry-After and no password check. Never a permanent lockout (that would let anyone lock out
/// anyone); a success resets the username's count.
struct LoginThrottle {
    int free_failures_per_user = 5;
    int free_failures_per_address = 20;  ///< a hospital's devices share one NAT address
    std::int64_t base_delay_ms = 1000;
    std::int64_t max_delay_ms = 15 * 60 * 1000;
    /// A key whose last failure is older than this starts again from zero.
    std::int64_t forget_after_ms = 24LL * 3600 * 1000;
};

/// Request rate limits (token buckets, per process). 0 = no limit.
struct RateLimits {
    double per_device_per_s = 10;
    double per_device_burst = 60;
    double per_address_per_s = 100;   ///< many devices behind one hospital NAT
    double per_address_burst = 600;
};

struct ServerOptions {
    std::string data_dir;                             ///< holds ubuzima.db (SQLite store)
    /// PostgreSQL store instead (--db): a libpq connection URI; "postgresql://" = the PG* environment.
    std::optional<std::string> db_url;
    int pool_size = 8;                                ///< PostgreSQL connections of this process
    std::string host = "127.0.0.1";
    int port = 8080;                                  ///< 0 = pick a free port
    std::size_t max_body_bytes = 32u * 1024 * 1024;   ///< sync bodies, before and after gunzip
    std::int64_t access_ttl_s = 15 * 60;
    std::int64_t refresh_ttl_s = 90 * 24 * 3600;      ///< idle limit: devices stay offline for weeks
    std::int64_t session_max_s = 180 * 24 * 3600;     ///< a login's absolute end: then a password again
    /// How long after an exchange the previous refresh token is accepted once more (its answer
    /// was lost). Anything else presented twice revokes the whole login.
    std::int64_t refresh_grace_s = 60;
    std::int64_t clock_skew_ms = 300000;
    int pbkdf2_iterations = kDefaultPbkdf2Iterations;
    /// Password checks running at once; more wait (then get 503): PBKDF2 must not starve syncs.
    int hash_concurrency = 2;
    int max_page = 1000;                              ///< rows per pull page, whatever a device asks
    /// How long a batch's push result is kept to answer a replay without applying it again (after
    /// that a replay merges once more, a no-op by version). Beyond the refresh lifetime a device
    /// must log in again anyway.
    std::int64_t batch_retention_s = 90 * 24 * 3600;
    /// How long a resolved conflict stays in the journal (open ones always stay).
    std::int64_t conflict_retention_s = 365 * 24 * 3600;
    LoginThrottle throttle;
    RateLimits rate;
    /// When set and the store has no users, user `admin` is created with this password.
    std::optional<std::string> bootstrap_admin_password;
    /// Wall clock; tests inject one to simulate time passing or skewed devices.
    sync::WallClock wall = sync::system_wall_ms;
    /// The domain schema; null = the built-in one. Must outlive the server.
    const schema::Schema* schema = nullptr;

    // ---- the listener (main.cpp) ----
    ListenerKind listener = ListenerKind::Cpprest;
    ListenerLimits limits;
    std::string tls_cert;
    std::string tls_key;
    bool insecure_http = false;  ///< allow plain HTTP on an address other than loopback
    /// --metrics-listen: the internal plain-HTTP listener for /metrics and health; empty = none.
    std::string metrics_host;
    int metrics_port = 0;
    /// --access-log: "-" = standard error, "off", or a file appended to (ops/access_log.hpp).
    std::string access_log = "-";
};

}  // namespace ubuzima::server
