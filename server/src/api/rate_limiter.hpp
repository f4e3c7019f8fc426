// Ubuzima Sync — MIT licence.
// Token-bucket request limits per key (a device id, a client address), in this process's memory.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ubuzima::server {

/// Thread-safe. Memory is bounded: past `max_keys` keys, full (idle) buckets are dropped first,
/// then the map is cleared (a flood of fresh keys then gets fresh buckets, which is the same as
/// what a new key gets anyway).
class RateLimiter {
public:
    /// `per_s` tokens refill per second up to `burst`; per_s <= 0 disables the limiter.
    RateLimiter(double per_s, double burst, std::size_t max_keys = 100'000)
        : m_per_ms(per_s / 1000.0), m_burst(burst < 1 ? 1 : burst), m_max_keys(max_keys) {}

    /// Takes one token for `key` at `now_ms`. 0 when allowed, else the ms until one is available.
    std::int64_t take(const std::string& key, std::int64_t now_ms);
    bool enabled() const { return m_per_ms > 0; }

private:
    struct Bucket {
        double tokens = 0;
        std::int64_t at_ms = 0;
    };
    void evict(std::int64_t now_ms);

    const double m_per_ms;
    const double m_burst;
    const std::size_t m_max_keys;
    std::mutex m_mutex;
    std::unordered_map<std::string, Bucket> m_buckets;
};

}  // namespace ubuzima::server
