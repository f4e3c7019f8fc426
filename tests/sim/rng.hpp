// Ubuzima Sync — MIT licence.
// The simulator's seeded random source: SplitMix64, identical on every compiler and platform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ubuzima::sim {

/// Why not std::uniform_int_distribution: its output differs between standard libraries, and a
/// seed must replay the same run on every machine.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : m_state(seed) {}

    std::uint64_t next() {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, n); 0 when n is 0.
    std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
    /// Uniform in [lo, hi].
    std::int64_t between(std::int64_t lo, std::int64_t hi) {
        return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
    }
    /// True with probability per_mille / 1000.
    bool chance(int per_mille) { return static_cast<int>(below(1000)) < per_mille; }
    template <typename T>
    const T& pick(const std::vector<T>& items) { return items[below(items.size())]; }

private:
    std::uint64_t m_state;
};

}  // namespace ubuzima::sim
