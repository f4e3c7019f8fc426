// Ubuzima Sync — MIT licence.
// Password hashing (PBKDF2-HMAC-SHA256), random tokens and SHA-256, all from OpenSSL.
#pragma once

#include <string>
#include <string_view>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>" with a fresh 16-byte salt. The iteration
/// count travels with the hash so it can be raised later without invalidating old passwords.
Result<std::string> hash_password(std::string_view password, int iterations);
/// Constant-time check of a password against hash_password() output; false on a malformed hash.
bool verify_password(std::string_view password, const std::string& encoded);
/// `bytes` random bytes from the OpenSSL CSPRNG, hex-encoded.
Result<std::string> random_hex(int bytes);
/// Lower-case hex SHA-256 of `data` (how tokens are stored).
std::string sha256_hex(std::string_view data);

}  // namespace ubuzima::server
