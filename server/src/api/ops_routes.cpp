// Ubuzima Sync — MIT licence.
// Operations: liveness and readiness for load balancers, /metrics for Prometheus, and the
// gauges computed at scrape time (docs/OPERATIONS.md).
#include <chrono>
#include <map>
#include <stdexcept>

#include "api/api.hpp"

namespace ubuzima::server {

namespace {

constexpr std::int64_t kActiveWindowMs = 24LL * 3600 * 1000;

}  // namespace

void Api::add_ops_routes() {
    add({"GET", "/v1/health/live", {}, 0, false, &Api::health_live, "200 while the process runs (no database)"});
    add({"GET", "/v1/health/ready", {}, 0, false, &Api::health_ready,
         "200 when the store answers a read, else 503 with Retry-After"});
    add({"GET", "/metrics", RoleSet{Role::Admin}, 0, false, &Api::metrics_page,
         "Prometheus text format (unauthenticated on --metrics-listen)"});
}

http::Response Api::health_live(const Call&) {
    http::Response r;
    r.status = 200;
    return r;
}

http::Response Api::health_ready(const Call&) {
    // The cheapest real read: it needs the database file, its schema and a read snapshot.
    const Status s = m_store.read([](ReadTxn& tx) { return tx.count_users().status(); });
    if (!s.ok()) return error_response(Status(ErrorCode::Unavailable, "the store cannot be read: " + s.message()), 5);
    http::Response r;
    r.status = 200;
    return r;
}

http::Response Api::metrics_page(const Call&) {
    http::Response r;
    r.status = 200;
    r.headers["Content-Type"] = ops::Metrics::kContentType;
    r.body = m_metrics.serialize();
    return r;
}

void Api::count_auth_failure(const char* step, const Status& status) {
    m_counters.auth_failures.with({step, std::string(wire_code(status.code()))}).inc();
}

void Api::add_ops_gauges() {
    const std::int64_t started_ms = m_started_ms;
    m_metrics.add_gauge_callback("ubuzima_process_start_time_seconds", "When the server started, Unix time in seconds.",
                                 [started_ms] { return static_cast<double>(started_ms) / 1000.0; });
    m_metrics.add_gauge_callback("ubuzima_uptime_seconds", "Seconds since the server started.", [started_ms] {
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
        return static_cast<double>(now - started_ms) / 1000.0;
    });
    m_metrics.add_gauge_callback(
        "ubuzima_build_info", "Always 1; the labels say which server, protocol and schema run.", [] { return 1.0; },
        {{"version", kServerVersion},
         {"protocol", std::to_string(sync::kProtocolVersion)},
         {"schema_version", std::to_string(m_sync.schema().version())}});
    // Reads the device list at each scrape: fine for the hundreds of devices of one deployment.
    // A store error leaves the sample out rather than reporting a false 0.
    m_metrics.add_gauge_callback(
        "ubuzima_devices_active", "Devices not revoked that were seen in the last 24 hours.", [this] {
            const std::int64_t since = m_options.wall() - kActiveWindowMs;
            std::int64_t n = 0;
            const Status s = m_store.read([&](ReadTxn& tx) -> Status {
                auto devices = tx.list_devices();
                if (!devices.ok()) return devices.status();
                for (const DeviceRecord& d : *devices)
                    if (!d.revoked_at_ms && d.last_seen_ms >= since) ++n;
                return {};
            });
            if (!s.ok()) throw std::runtime_error(s.to_string());
            return static_cast<double>(n);
        });
    m_metrics.add_gauge_callback("ubuzima_feed_head_seq",
                                 "The highest seq of the change feed (a device whose cursor is at it is caught up).", [this] {
                                     std::int64_t head = 0;
                                     const Status s = m_store.read([&](ReadTxn& tx) -> Status {
                                         auto h = tx.feed_head();
                                         if (!h.ok()) return h.status();
                                         head = *h;
                                         return {};
                                     });
                                     if (!s.ok()) throw std::runtime_error(s.to_string());
                                     return static_cast<double>(head);
                                 });
    // The store's own counters, labelled with its backend.
    const std::map<std::string, std::string> backend{{"backend", m_store.stats().backend}};
    m_metrics.add_gauge_callback("ubuzima_db_pool_size", "Database connections this process may open.",
                                 [this] { return static_cast<double>(m_store.stats().pool_size); }, backend);
    m_metrics.add_gauge_callback("ubuzima_db_pool_in_use", "Database connections leased to requests now.",
                                 [this] { return static_cast<double>(m_store.stats().pool_in_use); }, backend);
    m_metrics.add_gauge_callback("ubuzima_db_pool_checkout_timeouts",
                                 "Requests answered 503 busy since the start for want of a free connection (a count).",
                                 [this] { return static_cast<double>(m_store.stats().pool_timeouts); }, backend);
    m_metrics.add_gauge_callback("ubuzima_db_write_transactions", "Write transactions begun since the start (a count).",
                                 [this] { return static_cast<double>(m_store.stats().writes); }, backend);
    m_metrics.add_gauge_callback(
        "ubuzima_db_writer_wait_seconds",
        "Total seconds write transactions waited for the writer lock since the start (writes are serialised).",
        [this] { return m_store.stats().writer_wait_seconds; }, backend);
    if (m_store.shared_rate_buckets())
        m_metrics.add_gauge_callback(
            "ubuzima_rate_limit_shared_failures",
            "Requests let through since the start because the shared rate-limit buckets did not answer (a count).",
            [this] { return static_cast<double>(m_address_limit.shared_failures() + m_device_limit.shared_failures()); },
            backend);
}

}  // namespace ubuzima::server
