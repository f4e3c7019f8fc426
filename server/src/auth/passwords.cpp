// Ubuzima Sync — MIT licence.
// PBKDF2 password hashes and the password policy.
#include "auth/passwords.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>

#include "auth/crypto.hpp"

namespace ubuzima::server {

namespace {

constexpr int kSaltBytes = 16;
constexpr int kHashBytes = 32;
constexpr std::string_view kPrefix = "pbkdf2-sha256$";

std::atomic<std::int64_t> g_iterations_run{0};

bool pbkdf2(std::string_view password, const std::string& salt, int iterations, unsigned char (&out)[kHashBytes]) {
    g_iterations_run += iterations;
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                             reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                             iterations, EVP_sha256(), kHashBytes, out) == 1;
}

// The most common passwords of breach corpora that are 10 characters or longer (shorter ones
// are refused by length already), plus the obvious local ones.
constexpr std::string_view kCommon[] = {
    "1234567890", "12345678910", "123456789012", "0123456789", "0987654321", "1111111111", "0000000000",
    "1q2w3e4r5t", "1qaz2wsx3edc", "qwertyuiop", "qwerty12345", "qwerty123456", "asdfghjkl1", "zxcvbnm123",
    "password12", "password123", "password1234", "passw0rd123", "iloveyou12", "abcdefghij", "abc1234567",
    "aaaaaaaaaa", "letmein123", "welcome123", "administrator", "changeme123", "p@ssw0rd123", "football12",
    "baseball12", "princess12", "sunshine12", "superman12", "monkey1234", "dragon1234", "michael123",
    "ubuzima123", "ubuzima2026", "rwanda1234", "rwanda2026", "kigali1234", "kigali2026", "muraho1234",
    "ministry123", "hospital123", "password2026", "password2025", "admin12345", "admin123456"};

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::size_t code_points(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

}  // namespace

Result<std::string> hash_password(std::string_view password, int iterations) {
    if (iterations < 1) return Status(ErrorCode::InvalidArgument, "PBKDF2 iterations must be positive");
    std::string salt(kSaltBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), kSaltBytes) != 1)
        return Status(ErrorCode::Internal, "RAND_bytes failed");
    unsigned char hash[kHashBytes];
    if (!pbkdf2(password, salt, iterations, hash)) return Status(ErrorCode::Internal, "PBKDF2 failed");
    return std::string(kPrefix) + std::to_string(iterations) + "$" + to_hex(salt) + "$" +
           to_hex(std::string_view(reinterpret_cast<const char*>(hash), kHashBytes));
}

bool verify_password(std::string_view password, const std::string& encoded, int* iterations_out) {
    if (encoded.compare(0, kPrefix.size(), kPrefix) != 0) return false;
    const std::size_t p1 = encoded.find('$', kPrefix.size());
    if (p1 == std::string::npos) return false;
    const std::size_t p2 = encoded.find('$', p1 + 1);
    if (p2 == std::string::npos) return false;
    int iterations = 0;
    const char* first = encoded.data() + kPrefix.size();
    const char* last = encoded.data() + p1;
    const auto [end, ec] = std::from_chars(first, last, iterations);
    if (ec != std::errc() || end != last || iterations < 1) return false;
    std::string salt, expected;
    if (!from_hex(std::string_view(encoded).substr(p1 + 1, p2 - p1 - 1), salt) ||
        !from_hex(std::string_view(encoded).substr(p2 + 1), expected) || expected.size() != kHashBytes)
        return false;
    if (iterations_out) *iterations_out = iterations;
    unsigned char hash[kHashBytes];
    if (!pbkdf2(password, salt, iterations, hash)) return false;
    return CRYPTO_memcmp(hash, expected.data(), kHashBytes) == 0;
}

void burn_password_check(std::string_view password, int iterations) {
    const std::string salt(kSaltBytes, '\x5a');
    unsigned char hash[kHashBytes];
    (void)pbkdf2(password, salt, iterations, hash);
    // The comparison a real check ends with, so that no branch is skipped either.
    static const unsigned char zeros[kHashBytes] = {};
    (void)CRYPTO_memcmp(hash, zeros, kHashBytes);
}

Status check_password_policy(std::string_view password, std::string_view username) {
    if (code_points(password) < 10) return Status(ErrorCode::InvalidValue, "password must have at least 10 characters");
    if (password.size() > 1024) return Status(ErrorCode::InvalidValue, "password must have at most 1024 bytes");
    const std::string folded = lower_ascii(password);
    if (!username.empty() && folded.find(lower_ascii(username)) != std::string::npos &&
        code_points(password) - code_points(username) < 6)
        return Status(ErrorCode::InvalidValue, "password must not be (a variant of) the username");
    for (std::string_view common : kCommon)
        if (folded == common) return Status(ErrorCode::InvalidValue, "password is one of the most common passwords");
    return {};
}

Status check_username(std::string_view username) {
    const bool ok = !username.empty() && username.size() <= 64 && std::all_of(username.begin(), username.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '@';
    });
    if (!ok)
        return Status(ErrorCode::InvalidValue,
                      "username must be 1-64 characters of lower-case letters, digits, '.', '_', '-' or '@'");
    return {};
}

std::string normalize_username(std::string_view username) { return lower_ascii(username); }

std::int64_t pbkdf2_iterations_run() { return g_iterations_run.load(); }

}  // namespace ubuzima::server
