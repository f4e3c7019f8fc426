// Ubuzima Sync — MIT licence.
// Bounded growth: what the store keeps only for a while (stored batch results, resolved
// conflicts) is deleted after its retention period. Rows, the feed and the audit log are never
// pruned here: they are the data, not its by-products.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "config.hpp"
#include "storage/server_store.hpp"

namespace ubuzima::server {

struct PruneCounts {
    std::int64_t batches = 0;
    std::int64_t conflicts = 0;
};

/// One pass, in one write transaction (audited as "retention_pruned" when anything went). Safe
/// to run from several server processes at once: each deletes what is due, the others find less.
Result<PruneCounts> prune_history(ServerStore& store, const ServerOptions& options);

/// Forgets the shared rate-limit buckets (PostgreSQL) that have been idle long enough to be full
/// again; returns how many (0 without shared buckets).
Result<std::int64_t> prune_rate_buckets(ServerStore& store, const ServerOptions& options);

/// Runs prune_history and prune_rate_buckets every `interval_ms` on a thread of its own until destroyed (the
/// destructor wakes and joins it). Failures are reported on stderr and retried next time.
class RetentionTask {
public:
    RetentionTask(ServerStore& store, const ServerOptions& options, std::int64_t interval_ms);
    ~RetentionTask();
    RetentionTask(const RetentionTask&) = delete;
    RetentionTask& operator=(const RetentionTask&) = delete;

private:
    void run();

    ServerStore& m_store;
    const ServerOptions& m_options;
    const std::int64_t m_interval_ms;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stop = false;
    std::thread m_thread;
};

}  // namespace ubuzima::server
