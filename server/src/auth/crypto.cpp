// Ubuzima Sync — MIT licence.
// OpenSSL-backed password hashing and token helpers.
#include "auth/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <vector>

namespace ubuzima::server {

namespace {

constexpr int kSaltBytes = 16;
constexpr int kHashBytes = 32;

std::string to_hex(const unsigned char* data, std::size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 0xF]);
    }
    return out;
}

bool from_hex(std::string_view hex, std::vector<unsigned char>& out) {
    if (hex.size() % 2) return false;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    out.clear();
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = nibble(hex[i]);
        const int lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<unsigned char>(hi * 16 + lo));
    }
    return true;
}

bool pbkdf2(std::string_view password, const std::vector<unsigned char>& salt, int iterations,
            unsigned char (&out)[kHashBytes]) {
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                             static_cast<int>(salt.size()), iterations, EVP_sha256(), kHashBytes, out) == 1;
}

}  // namespace

Result<std::string> hash_password(std::string_view password, int iterations) {
    if (iterations < 1) return Status(ErrorCode::InvalidArgument, "PBKDF2 iterations must be positive");
    std::vector<unsigned char> salt(kSaltBytes);
    if (RAND_bytes(salt.data(), kSaltBytes) != 1) return Status(ErrorCode::Internal, "RAND_bytes failed");
    unsigned char hash[kHashBytes];
    if (!pbkdf2(password, salt, iterations, hash)) return Status(ErrorCode::Internal, "PBKDF2 failed");
    return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + to_hex(salt.data(), salt.size()) + "$" +
           to_hex(hash, kHashBytes);
}

bool verify_password(std::string_view password, const std::string& encoded) {
    const std::string prefix = "pbkdf2-sha256$";
    if (encoded.compare(0, prefix.size(), prefix) != 0) return false;
    const std::size_t p1 = encoded.find('$', prefix.size());
    if (p1 == std::string::npos) return false;
    const std::size_t p2 = encoded.find('$', p1 + 1);
    if (p2 == std::string::npos) return false;
    int iterations = 0;
    try {
        iterations = std::stoi(encoded.substr(prefix.size(), p1 - prefix.size()));
    } catch (...) {
        return false;
    }
    std::vector<unsigned char> salt, expected;
    if (iterations < 1 || !from_hex(std::string_view(encoded).substr(p1 + 1, p2 - p1 - 1), salt) ||
        !from_hex(std::string_view(encoded).substr(p2 + 1), expected) || expected.size() != kHashBytes)
        return false;
    unsigned char hash[kHashBytes];
    if (!pbkdf2(password, salt, iterations, hash)) return false;
    return CRYPTO_memcmp(hash, expected.data(), kHashBytes) == 0;
}

Result<std::string> random_hex(int bytes) {
    std::vector<unsigned char> buf(static_cast<std::size_t>(bytes));
    if (RAND_bytes(buf.data(), bytes) != 1) return Status(ErrorCode::Internal, "RAND_bytes failed");
    return to_hex(buf.data(), buf.size());
}

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
    return to_hex(digest, len);
}

}  // namespace ubuzima::server
