// Ubuzima Sync — MIT licence.
// Token buckets.
#include "api/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace ubuzima::server {

std::int64_t RateLimiter::take(const std::string& key, std::int64_t now_ms) {
    if (!enabled()) return 0;
    if (const std::int64_t wait = take_local(key, now_ms)) return wait;
    if (!m_shared) return 0;
    auto shared = m_shared->take(m_prefix + key, m_per_ms * 1000.0, m_burst, now_ms);
    if (!shared.ok()) {
        ++m_shared_failures;
        return 0;
    }
    return *shared;
}

std::int64_t RateLimiter::take_local(const std::string& key, std::int64_t now_ms) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto it = m_buckets.find(key);
    if (it == m_buckets.end()) {
        if (m_buckets.size() >= m_max_keys) evict(now_ms);
        it = m_buckets.emplace(key, Bucket{m_burst, now_ms}).first;
    }
    Bucket& b = it->second;
    // A clock that steps back (tests, NTP) refills nothing rather than a negative amount.
    const std::int64_t elapsed = std::max<std::int64_t>(0, now_ms - b.at_ms);
    b.tokens = std::min(m_burst, b.tokens + static_cast<double>(elapsed) * m_per_ms);
    b.at_ms = std::max(b.at_ms, now_ms);
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
    }
    return static_cast<std::int64_t>(std::ceil((1 - b.tokens) / m_per_ms));
}

void RateLimiter::evict(std::int64_t now_ms) {
    for (auto it = m_buckets.begin(); it != m_buckets.end();) {
        const double refilled = it->second.tokens + static_cast<double>(now_ms - it->second.at_ms) * m_per_ms;
        if (refilled >= m_burst) it = m_buckets.erase(it);
        else ++it;
    }
    if (m_buckets.size() >= m_max_keys) m_buckets.clear();
}

}  // namespace ubuzima::server
