// Ubuzima Sync — MIT licence.
// Users, roles, login with rotating refresh tokens, and bearer-token authentication.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "config.hpp"
#include "storage/store.hpp"

namespace ubuzima::server {

/// The authenticated caller of a request.
struct AuthUser {
    std::string id;
    std::string username;
    std::string role;
    std::vector<std::string> facilities;

    /// admin and coordinator see every facility; the other roles only their own.
    bool sees_all() const { return role == "admin" || role == "coordinator"; }
    bool may_see(const std::string& facility) const;
    /// May review conflicts and validate sealed records.
    bool is_reviewer() const { return sees_all(); }
};

/// What login and refresh hand out.
struct TokenGrant {
    std::string access_token;
    std::string refresh_token;
    std::int64_t expires_in = 0;  ///< seconds
    AuthUser user;
};

/// Thread-safe (state lives in the store).
class AuthService {
public:
    AuthService(Store& store, const ServerOptions& options) : m_store(store), m_options(options) {}

    static bool valid_role(const std::string& role);

    /// Creates `admin` when the store has no users and a bootstrap password is configured.
    Status bootstrap_admin();
    /// InvalidCredentials for an unknown user or a wrong password (indistinguishable on purpose).
    Result<TokenGrant> login(const std::string& username, const std::string& password, const std::string& device_id);
    /// Exchanges a refresh token for a new grant. The old token keeps working until the new
    /// refresh token is used, so a lost answer does not log the device out; presenting it again
    /// revokes the grant whose answer was lost. Unauthorized when unknown, revoked, or presented
    /// by another device (which revokes it); TokenExpired when too old.
    Result<TokenGrant> refresh(const std::string& refresh_token, const std::string& device_id);
    /// Checks an `Authorization: Bearer <access token>` header value.
    Result<AuthUser> authenticate(const std::string& authorization) const;
    /// Creates a user (any role). Conflict on a taken username, InvalidValue on a bad role.
    Result<AuthUser> create_user(const std::string& username, const std::string& password, const std::string& role,
                                 const std::vector<std::string>& facilities);

private:
    Result<TokenGrant> issue(const UserRecord& user, const std::string& device_id, const std::string& parent);

    Store& m_store;
    const ServerOptions& m_options;
    /// One process serves a store; a multi-process backend needs this step in one transaction.
    std::mutex m_refresh_mutex;
};

}  // namespace ubuzima::server
