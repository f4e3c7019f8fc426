// Ubuzima Sync — MIT licence.
// Hybrid logical clock: monotonic, close to wall time, absorbs the clocks it hears from.
#pragma once

#include <cstdint>
#include <functional>

#include "ubuzima/sync/version.hpp"

namespace ubuzima::sync {

/// Milliseconds since the Unix epoch, as the local wall clock says (may be wildly wrong).
using WallClock = std::function<std::int64_t()>;
/// The system clock.
std::int64_t system_wall_ms();

/// A hybrid logical clock (Kulkarni et al.). Not thread-safe: the owner serialises access.
///
/// `now()` never returns the same or a smaller value twice. `observe()` moves the clock past a
/// remote value so that causally later writes get larger versions. The wall clock can be shifted
/// by an offset learned from the server, so a device whose clock says 1970 or 2040 still writes
/// versions close to real time once it has synced once.
class HybridClock {
public:
    explicit HybridClock(WallClock wall = system_wall_ms, Hlc last = 0) : m_wall(std::move(wall)), m_last(last) {}

    /// A fresh timestamp, larger than every value returned or observed before.
    Hlc now();
    /// Absorbs a remote clock value. A remote more than `max_ahead_ms` ahead of our wall time is
    /// ignored (returns false) so that one bad clock cannot drag every node into the future.
    bool observe(Hlc remote, std::int64_t max_ahead_ms = INT64_MAX / 2);
    /// The last value handed out or observed (persist it to keep monotonicity across restarts).
    Hlc last() const { return m_last; }
    /// Wall time in ms, corrected by the offset.
    std::int64_t wall_ms() const { return m_wall() + m_offset_ms; }
    /// Offset added to the wall clock (server time minus local time).
    void set_offset_ms(std::int64_t offset) { m_offset_ms = offset; }
    std::int64_t offset_ms() const { return m_offset_ms; }
    /// Forgets the past: the next now() starts from the corrected wall time. Only safe when no
    /// version issued above that time has been accepted by anyone (see client clock-skew repair).
    void reset_to_wall() { m_last = make_hlc(wall_ms(), 0); }

private:
    WallClock m_wall;
    Hlc m_last;
    std::int64_t m_offset_ms = 0;
};

}  // namespace ubuzima::sync
