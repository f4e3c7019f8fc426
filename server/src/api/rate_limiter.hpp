// Ubuzima Sync — MIT licence.
// Token-bucket request limits per key (a device id, a client address): in this process's
// memory, and, when several processes share the store, in the store as well.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "storage/server_store.hpp"

namespace ubuzima::server {

/// Thread-safe. Memory is bounded: past `max_keys` keys, full (idle) buckets are dropped first,
/// then the map is cleared (a flood of fresh keys then gets fresh buckets, which is the same as
/// what a new key gets anyway).
class RateLimiter {
public:
    /// `per_s` tokens refill per second up to `burst`; per_s <= 0 disables the limiter.
    RateLimiter(double per_s, double burst, std::size_t max_keys = 100'000)
        : m_per_ms(per_s / 1000.0), m_burst(burst < 1 ? 1 : burst), m_max_keys(max_keys) {}

    /// Also asks `shared` (owned by the store, which outlives this), under keys that start with
    /// `prefix`, after the in-memory bucket agreed. The in-memory bucket is the cheap first
    /// filter: a flood beyond the limit is refused without a database round trip, and each
    /// process sends the store at most the limit. The shared bucket makes the limit hold across
    /// every process (behind a load balancer a device's requests go to any of them). When the
    /// store cannot answer, the request is let through (it needs the store next anyway) and
    /// counted in shared_failures().
    void share(SharedRateBuckets* shared, std::string prefix) {
        m_shared = shared;
        m_prefix = std::move(prefix);
    }
    /// Takes one token for `key` at `now_ms`. 0 when allowed, else the ms until one is available.
    std::int64_t take(const std::string& key, std::int64_t now_ms);
    bool enabled() const { return m_per_ms > 0; }
    std::int64_t shared_failures() const { return m_shared_failures.load(); }

private:
    struct Bucket {
        double tokens = 0;
        std::int64_t at_ms = 0;
    };
    void evict(std::int64_t now_ms);
    std::int64_t take_local(const std::string& key, std::int64_t now_ms);

    const double m_per_ms;
    const double m_burst;
    const std::size_t m_max_keys;
    std::mutex m_mutex;
    std::unordered_map<std::string, Bucket> m_buckets;
    SharedRateBuckets* m_shared = nullptr;
    std::string m_prefix;
    std::atomic<std::int64_t> m_shared_failures{0};
};

}  // namespace ubuzima::server
