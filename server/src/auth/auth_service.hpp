// Ubuzima Sync — MIT licence.
// Login with throttling, refresh-token rotation with reuse detection, logout, and bearer-token
// authentication. Every step that reads and then changes tokens runs in one store transaction,
// so the rules hold across server processes too (no process-local state decides anything).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "auth/roles.hpp"
#include "config.hpp"
#include "storage/server_store.hpp"

namespace ubuzima::server {

/// What login and refresh hand out.
struct TokenGrant {
    std::string access_token;
    std::string refresh_token;
    std::int64_t expires_in = 0;  ///< seconds
    AuthUser user;
};

/// A failure that tells the client when to come back (429/503 + Retry-After).
struct RetryHint {
    std::int64_t retry_after_s = 0;  ///< 0 = no hint
};

/// Bounds the password hashes computed at once (see ServerOptions::hash_concurrency).
class HashSlots {
public:
    explicit HashSlots(int slots) : m_free(slots < 1 ? 1 : slots) {}
    /// Waits up to `wait_ms` for a slot; false when none freed up.
    bool acquire(int wait_ms);
    void release();

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    int m_free;
};

/// Thread-safe (state lives in the store).
class AuthService {
public:
    AuthService(ServerStore& store, const ServerOptions& options)
        : m_store(store), m_options(options), m_slots(options.hash_concurrency) {}

    /// Creates `admin` when the store has no users and a bootstrap password is configured.
    Status bootstrap_admin();

    /// Password login from device `device_id` at client address `address`.
    /// Errors: InvalidCredentials (unknown user or wrong password: indistinguishable, also in
    /// time), RateLimited (too many failures for this username or address; `hint` says when to
    /// retry, no password was checked), Revoked (the device was revoked or the user disabled),
    /// Unavailable (every password slot busy; retry).
    Result<TokenGrant> login(const std::string& username, const std::string& password, const std::string& device_id,
                             const std::string& address, RetryHint* hint = nullptr);
    /// Exchanges a refresh token for a new grant (rotation). The token just exchanged may be
    /// presented once more within refresh_grace_s, by the same device, while its successor is
    /// still unused (the answer was lost): that grant is revoked and a new one issued. Any other
    /// second use, or a use from another device, revokes the whole login and is audited.
    /// Errors: Unauthorized (unknown token), Revoked, TokenExpired.
    Result<TokenGrant> refresh(const std::string& refresh_token, const std::string& device_id,
                               const std::string& address);
    /// Ends every token of the caller's device (its logins as this user).
    Status logout(const AuthUser& caller, const std::string& address);
    /// Checks an `Authorization: Bearer <access token>` header value against the token, its
    /// login, its device and its user. Errors: Unauthorized, TokenExpired, Revoked.
    Result<AuthUser> authenticate(const std::string& authorization) const;

    /// Hashes a new password with the configured cost, in a password slot. Errors: InvalidValue
    /// (policy), Unavailable.
    Result<std::string> hash_new_password(const std::string& password, const std::string& username);

    const ServerOptions& options() const { return m_options; }

private:
    Result<TokenGrant> issue(WriteTxn& tx, const UserRecord& user, const std::string& device_id,
                             const std::string& family, const std::string& parent, std::int64_t family_expires_ms);
    Result<std::int64_t> throttled_for_ms(const std::string& username, const std::string& address);
    /// Counts a failed login for `key`; returns how long the key is now blocked (ms, 0 = not).
    Result<std::int64_t> record_failure(WriteTxn& tx, const std::string& key, int free_failures, std::int64_t now);

    ServerStore& m_store;
    const ServerOptions& m_options;
    HashSlots m_slots;
};

/// The caller as the API knows it, from a stored user and a token's device and family.
Result<AuthUser> to_auth_user(const UserRecord& user, const std::string& device_id, const std::string& family_id);

}  // namespace ubuzima::server
