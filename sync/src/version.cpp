// Ubuzima Sync — MIT licence.
// Fixed-width hex encoding of versions, so that string order is version order.
#include "ubuzima/sync/version.hpp"

namespace ubuzima::sync {

namespace {

void write_hex16(char* out, std::uint64_t v) {
    static const char* digits = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        out[i] = digits[v & 0xF];
        v >>= 4;
    }
}

}  // namespace

std::string to_hex16(std::uint64_t v) {
    std::string out(16, '0');
    write_hex16(out.data(), v);
    return out;
}

std::optional<std::uint64_t> parse_hex16(std::string_view s) {
    if (s.size() != 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return std::nullopt;
        v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    return v;
}

// One allocation: versions are written for every field of every synced row.
std::string Version::to_string() const {
    std::string out(33, '@');
    write_hex16(out.data(), hlc);
    write_hex16(out.data() + 17, node);
    return out;
}

std::optional<Version> Version::parse(std::string_view s) {
    if (s.size() != 33 || s[16] != '@') return std::nullopt;
    auto h = parse_hex16(s.substr(0, 16));
    auto n = parse_hex16(s.substr(17));
    if (!h || !n) return std::nullopt;
    return Version{*h, *n};
}

}  // namespace ubuzima::sync
