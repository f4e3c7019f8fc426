// Ubuzima Sync — MIT licence.
#include "ops/retention.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "audit/audit_log.hpp"

namespace ubuzima::server {

Result<PruneCounts> prune_history(ServerStore& store, const ServerOptions& options) {
    PruneCounts counts;
    const std::int64_t now = options.wall();
    const Status s = store.write([&](WriteTxn& tx) -> Status {
        auto batches = tx.prune_batches(now - options.batch_retention_s * 1000);
        if (!batches.ok()) return batches.status();
        auto conflicts = tx.prune_resolved_conflicts(now - options.conflict_retention_s * 1000);
        if (!conflicts.ok()) return conflicts.status();
        counts = PruneCounts{*batches, *conflicts};
        if (counts.batches == 0 && counts.conflicts == 0) return {};
        AuditEvent e{"retention_pruned", "", "server", "",
                     {{"batches", counts.batches}, {"conflicts", counts.conflicts}}, ""};
        return append_audit(tx, e, now);
    });
    if (!s.ok()) return s;
    return counts;
}

RetentionTask::RetentionTask(ServerStore& store, const ServerOptions& options, std::int64_t interval_ms)
    : m_store(store), m_options(options), m_interval_ms(interval_ms), m_thread([this] { run(); }) {}

RetentionTask::~RetentionTask() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_all();
    m_thread.join();
}

Result<std::int64_t> prune_rate_buckets(ServerStore& store, const ServerOptions& options) {
    SharedRateBuckets* buckets = store.shared_rate_buckets();
    if (!buckets) return std::int64_t{0};
    // A bucket idle for as long as it takes to fill is the same as no bucket (a new key starts full).
    double refill_s = 3600;
    const RateLimits& r = options.rate;
    if (r.per_device_per_s > 0) refill_s = std::max(refill_s, r.per_device_burst / r.per_device_per_s);
    if (r.per_address_per_s > 0) refill_s = std::max(refill_s, r.per_address_burst / r.per_address_per_s);
    return buckets->prune(options.wall() - static_cast<std::int64_t>(refill_s * 1000) - 1000);
}

void RetentionTask::run() {
    std::unique_lock<std::mutex> lock(m_mutex);
    while (!m_stop) {
        lock.unlock();
        auto pruned = prune_history(m_store, m_options);
        if (!pruned.ok())
            std::fprintf(stderr, "ubuzima-server: retention: %s (retried later)\n", pruned.status().to_string().c_str());
        if (auto buckets = prune_rate_buckets(m_store, m_options); !buckets.ok())
            std::fprintf(stderr, "ubuzima-server: retention: rate buckets: %s (retried later)\n",
                         buckets.status().to_string().c_str());
        lock.lock();
        m_wake.wait_for(lock, std::chrono::milliseconds(m_interval_ms), [this] { return m_stop; });
    }
}

}  // namespace ubuzima::server
