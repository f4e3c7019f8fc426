// Ubuzima Sync — MIT licence.
// OpenSSL-backed random tokens and digests.
#include "auth/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <vector>

namespace ubuzima::server {

std::string to_hex(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(digits[u >> 4]);
        out.push_back(digits[u & 0xF]);
    }
    return out;
}

bool from_hex(std::string_view hex, std::string& out) {
    if (hex.size() % 2) return false;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    out.clear();
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = nibble(hex[i]);
        const int lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return true;
}

Result<std::string> random_hex(int bytes) {
    std::vector<unsigned char> buf(static_cast<std::size_t>(bytes));
    if (RAND_bytes(buf.data(), bytes) != 1) return Status(ErrorCode::Internal, "RAND_bytes failed");
    return to_hex(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
}

std::string sha256_raw(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string sha256_hex(std::string_view data) { return to_hex(sha256_raw(data)); }

}  // namespace ubuzima::server
