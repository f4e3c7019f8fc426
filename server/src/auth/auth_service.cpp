// Ubuzima Sync — MIT licence.
// Users, login, token rotation and bearer authentication.
#include "auth/auth_service.hpp"

#include <algorithm>

#include "auth/crypto.hpp"
#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

namespace {

constexpr int kTokenBytes = 32;

AuthUser to_auth_user(const UserRecord& u) { return AuthUser{u.id, u.username, u.role, u.facilities}; }

}  // namespace

bool AuthUser::may_see(const std::string& facility) const {
    return sees_all() || std::find(facilities.begin(), facilities.end(), facility) != facilities.end();
}

bool AuthService::valid_role(const std::string& role) {
    return role == "admin" || role == "coordinator" || role == "assessor" || role == "focal_point" ||
           role == "practitioner";
}

Status AuthService::bootstrap_admin() {
    if (!m_options.bootstrap_admin_password || m_options.bootstrap_admin_password->empty()) return {};
    auto n = m_store.count_users();
    if (!n.ok()) return n.status();
    if (*n > 0) return {};
    auto created = create_user("admin", *m_options.bootstrap_admin_password, "admin", {});
    return created.ok() ? Status() : created.status();
}

Result<AuthUser> AuthService::create_user(const std::string& username, const std::string& password,
                                          const std::string& role, const std::vector<std::string>& facilities) {
    if (username.empty() || username.size() > 64) return Status(ErrorCode::InvalidValue, "username must be 1-64 characters");
    if (password.empty()) return Status(ErrorCode::InvalidValue, "password must not be empty");
    if (!valid_role(role))
        return Status(ErrorCode::InvalidValue,
                      "role must be admin, coordinator, assessor, focal_point or practitioner");
    for (const std::string& f : facilities)
        if (f.empty()) return Status(ErrorCode::InvalidValue, "facility ids must be non-empty");
    auto hash = hash_password(password, m_options.pbkdf2_iterations);
    if (!hash.ok()) return hash.status();
    UserRecord user{sync::new_uuid_v7(m_options.wall()), username, *hash, role, facilities, m_options.wall()};
    UBUZIMA_TRY(m_store.create_user(user));
    return to_auth_user(user);
}

Result<TokenGrant> AuthService::issue(const UserRecord& user, const std::string& device_id, const std::string& parent) {
    auto access = random_hex(kTokenBytes);
    auto refresh_tok = random_hex(kTokenBytes);
    if (!access.ok()) return access.status();
    if (!refresh_tok.ok()) return refresh_tok.status();
    const std::int64_t now = m_options.wall();
    UBUZIMA_TRY(m_store.put_token(sha256_hex(*access),
                                  TokenRecord{"access", user.id, device_id, now + m_options.access_ttl_s * 1000, parent}));
    UBUZIMA_TRY(m_store.put_token(sha256_hex(*refresh_tok),
                                  TokenRecord{"refresh", user.id, device_id, now + m_options.refresh_ttl_s * 1000, parent}));
    return TokenGrant{*access, *refresh_tok, m_options.access_ttl_s, to_auth_user(user)};
}

Result<TokenGrant> AuthService::login(const std::string& username, const std::string& password,
                                      const std::string& device_id) {
    auto user = m_store.find_user_by_name(username);
    if (!user.ok()) return user.status();
    if (!*user) {
        // Spend the same PBKDF2 time as for a real user, so timing does not reveal usernames.
        static const std::string dummy = hash_password("dummy-password", 1).value();
        (void)verify_password(password, dummy);
        return Status(ErrorCode::InvalidCredentials, "unknown user or wrong password");
    }
    if (!verify_password(password, (*user)->password_hash))
        return Status(ErrorCode::InvalidCredentials, "unknown user or wrong password");
    // Expired tokens are dead weight; logins are rare enough to carry the clean-up. An expired
    // access token is kept while its refresh token may still live: deleted at once, it would be
    // answered "unknown" (401 unauthorized) instead of token_expired, and a device offline past
    // the access TTL would never refresh and stay locked out of sync (found by tests/sim).
    UBUZIMA_TRY(m_store.purge_expired_tokens(m_options.wall() - m_options.refresh_ttl_s * 1000));
    return issue(**user, device_id, "");
}

Result<TokenGrant> AuthService::refresh(const std::string& refresh_token, const std::string& device_id) {
    // Serialised: two racing exchanges of one token must not both win.
    std::lock_guard<std::mutex> lock(m_refresh_mutex);
    const std::string hash = sha256_hex(refresh_token);
    auto token = m_store.find_token(hash);
    if (!token.ok()) return token.status();
    if (!*token || ((*token)->kind != "refresh" && (*token)->kind != "rotated"))
        return Status(ErrorCode::Unauthorized, "unknown or revoked refresh token");
    const TokenRecord& t = **token;
    // A refresh token presented by another device is treated as stolen: it and its grant go.
    if (t.device_id != device_id) {
        UBUZIMA_TRY(m_store.delete_token_children(hash));
        UBUZIMA_TRY(m_store.delete_token(hash));
        return Status(ErrorCode::Unauthorized, "refresh token belongs to another device");
    }
    if (t.expires_at_ms <= m_options.wall()) return Status(ErrorCode::TokenExpired, "refresh token expired");
    auto user = m_store.find_user_by_id(t.user_id);
    if (!user.ok()) return user.status();
    if (!*user) return Status(ErrorCode::Unauthorized, "user no longer exists");
    // Rotation that survives a lost answer: an exchanged token stays usable ("rotated") until the
    // device uses what it got for it. Presented again, it means the answer never arrived: that
    // grant is revoked and a new one issued. Using the new refresh token retires the old one.
    if (t.kind == "rotated") {
        UBUZIMA_TRY(m_store.delete_token_children(hash));
    } else {
        if (!t.parent.empty()) UBUZIMA_TRY(m_store.delete_token(t.parent));
        UBUZIMA_TRY(m_store.set_token_kind(hash, "rotated"));
    }
    return issue(**user, device_id, hash);
}

Result<AuthUser> AuthService::authenticate(const std::string& authorization) const {
    const std::string prefix = "Bearer ";
    if (authorization.size() <= prefix.size() || authorization.compare(0, prefix.size(), prefix) != 0)
        return Status(ErrorCode::Unauthorized, "missing bearer token");
    auto token = m_store.find_token(sha256_hex(authorization.substr(prefix.size())));
    if (!token.ok()) return token.status();
    if (!*token || (*token)->kind != "access") return Status(ErrorCode::Unauthorized, "unknown access token");
    if ((*token)->expires_at_ms <= m_options.wall()) return Status(ErrorCode::TokenExpired, "access token expired");
    auto user = m_store.find_user_by_id((*token)->user_id);
    if (!user.ok()) return user.status();
    if (!*user) return Status(ErrorCode::Unauthorized, "user no longer exists");
    return to_auth_user(**user);
}

}  // namespace ubuzima::server
