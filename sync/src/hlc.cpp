// Ubuzima Sync — MIT licence.
// Hybrid logical clock.
#include "ubuzima/sync/hlc.hpp"

#include <algorithm>
#include <chrono>

namespace ubuzima::sync {

std::int64_t system_wall_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {
// 48 bits of milliseconds reach the year 10889; negative wall times (clock before 1970) clamp to 0.
std::int64_t clamp_ms(std::int64_t ms) {
    constexpr std::int64_t kMax = (std::int64_t{1} << 48) - 1;
    return std::clamp<std::int64_t>(ms, 0, kMax);
}
}  // namespace

Hlc HybridClock::now() {
    const std::int64_t wall = clamp_ms(wall_ms());
    const std::int64_t last_ms = hlc_millis(m_last);
    if (wall > last_ms) {
        m_last = make_hlc(wall, 0);
    } else {
        // Counter overflow borrows the next millisecond; the clock stays strictly monotonic.
        m_last = m_last + 1;
    }
    return m_last;
}

bool HybridClock::observe(Hlc remote, std::int64_t max_ahead_ms) {
    const std::int64_t wall = clamp_ms(wall_ms());
    if (hlc_millis(remote) > wall && hlc_millis(remote) - wall > max_ahead_ms) return false;
    m_last = std::max(m_last, remote);
    return true;
}

}  // namespace ubuzima::sync
