// Ubuzima Sync — MIT licence.
// Random identifiers.
#include "ubuzima/sync/ids.hpp"

#include <mutex>
#include <random>

#include "ubuzima/sync/hlc.hpp"

namespace ubuzima::sync {

namespace {
std::uint64_t random64() {
    static std::mutex mutex;
    static std::mt19937_64 engine([] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    }());
    std::lock_guard<std::mutex> lock(mutex);
    return engine();
}
}  // namespace

std::string new_uuid_v7(std::int64_t unix_ms) {
    unsigned char b[16];
    const std::uint64_t ms = static_cast<std::uint64_t>(unix_ms < 0 ? 0 : unix_ms);
    for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
    const std::uint64_t r1 = random64();
    const std::uint64_t r2 = random64();
    for (int i = 0; i < 2; ++i) b[6 + i] = static_cast<unsigned char>(r1 >> (8 * i));
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<unsigned char>(r2 >> (8 * i));
    b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x70);  // version 7
    b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC variant
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(hex[b[i] >> 4]);
        out.push_back(hex[b[i] & 0xF]);
    }
    return out;
}

std::string new_uuid_v7() { return new_uuid_v7(system_wall_ms()); }

std::uint64_t new_node_id() {
    std::uint64_t id = 0;
    while (id == 0) id = random64();
    return id;
}

}  // namespace ubuzima::sync
