// Ubuzima Sync — MIT licence.
// Password hashing (PBKDF2-HMAC-SHA256, OWASP's FIPS-compatible choice) and the password policy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// OWASP Password Storage Cheat Sheet (2023): PBKDF2-HMAC-SHA256 with at least 600,000
/// iterations. ~0.1 s of one core here (bench/): logins are rare, guesses are costly.
inline constexpr int kDefaultPbkdf2Iterations = 600'000;

/// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>" with a fresh 16-byte salt. The iteration
/// count travels with the hash, so it can be raised later without invalidating old passwords.
Result<std::string> hash_password(std::string_view password, int iterations);

/// Constant-time check of a password against hash_password() output. `iterations_out` receives
/// the stored count (so a login can rehash an older one). False on a malformed hash.
bool verify_password(std::string_view password, const std::string& encoded, int* iterations_out = nullptr);

/// Burns the same PBKDF2 work as verifying a real user's password, for a login naming no user
/// (so the answer's timing does not tell which usernames exist).
void burn_password_check(std::string_view password, int iterations);

/// The rules a new password must meet: at least 10 characters (code points), at most 1024 bytes,
/// not the username (ignoring case), not one of the most common passwords. InvalidValue naming
/// the rule it breaks.
Status check_password_policy(std::string_view password, std::string_view username);

/// Usernames: 1-64 characters of a-z, 0-9, '.', '_', '-', '@' (lower case, so "Alice" and
/// "alice" cannot be two accounts and log lines cannot carry control characters).
Status check_username(std::string_view username);
/// The form a username is looked up in (lower case ASCII).
std::string normalize_username(std::string_view username);

/// PBKDF2 iterations computed by this process so far (tests check that a login of an unknown
/// user costs exactly what a known one does; a metric otherwise).
std::int64_t pbkdf2_iterations_run();

}  // namespace ubuzima::server
