// Ubuzima Sync — MIT licence.
// Versions: a hybrid-logical-clock value plus the writing node; ordered by (hlc, node).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ubuzima::sync {

/// 64-bit node id (device installation or server), random per installation.
using NodeId = std::uint64_t;
/// Hybrid logical clock value: (milliseconds since epoch << 16) | counter.
using Hlc = std::uint64_t;

constexpr int kHlcCounterBits = 16;
constexpr std::uint64_t kHlcCounterMask = (1u << kHlcCounterBits) - 1;

inline constexpr std::int64_t hlc_millis(Hlc h) { return static_cast<std::int64_t>(h >> kHlcCounterBits); }
inline constexpr Hlc make_hlc(std::int64_t millis, std::uint32_t counter) {
    return (static_cast<std::uint64_t>(millis) << kHlcCounterBits) | (counter & kHlcCounterMask);
}

/// 16 lowercase hex digits.
std::string to_hex16(std::uint64_t v);
/// Parses exactly 16 lowercase hex digits.
std::optional<std::uint64_t> parse_hex16(std::string_view s);

/// The version of one field write. The null version (0@0) stands for "never written".
struct Version {
    Hlc hlc = 0;
    NodeId node = 0;

    bool is_null() const { return hlc == 0 && node == 0; }
    /// "<hlc hex16>@<node hex16>" (33 chars); string order equals (hlc, node) order.
    std::string to_string() const;
    /// Parses the 33-char form; nullopt on any deviation.
    static std::optional<Version> parse(std::string_view s);

    friend bool operator==(const Version& a, const Version& b) { return a.hlc == b.hlc && a.node == b.node; }
    friend bool operator!=(const Version& a, const Version& b) { return !(a == b); }
    friend bool operator<(const Version& a, const Version& b) {
        return a.hlc != b.hlc ? a.hlc < b.hlc : a.node < b.node;
    }
    friend bool operator>(const Version& a, const Version& b) { return b < a; }
};

}  // namespace ubuzima::sync
