// Ubuzima Sync — MIT licence.
// Login, refresh rotation with reuse detection, logout and bearer authentication.
#include "auth/auth_service.hpp"

#include <algorithm>
#include <chrono>

#include "audit/audit_log.hpp"
#include "auth/crypto.hpp"
#include "auth/passwords.hpp"
#include "http/listener.hpp"
#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

namespace {

constexpr int kTokenBytes = 32;
// A login waits this long for a password slot, then gets 503: waiting longer would hold a
// listener thread that syncs need.
constexpr int kSlotWaitMs = 250;

Status revoked(std::string why) { return Status(ErrorCode::Revoked, std::move(why)); }

std::string user_key(const std::string& username) { return "user:" + username; }
std::string address_key(const std::string& address) { return "addr:" + address; }

// Failures are counted per client address too, but not for this machine's own addresses: behind
// a front proxy every client is 127.0.0.1, and one guesser would lock out everyone.
bool counts_address(const std::string& address) { return !address.empty() && !is_loopback_host(address); }

std::int64_t ceil_seconds(std::int64_t ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

/// Holds a password slot for one scope.
class SlotGuard {
public:
    SlotGuard(HashSlots& slots, bool held) : m_slots(slots), m_held(held) {}
    ~SlotGuard() {
        if (m_held) m_slots.release();
    }
    SlotGuard(const SlotGuard&) = delete;
    SlotGuard& operator=(const SlotGuard&) = delete;
    bool held() const { return m_held; }

private:
    HashSlots& m_slots;
    bool m_held;
};

Status busy() { return Status(ErrorCode::Unavailable, "the server is busy checking passwords; retry in a second"); }

}  // namespace

bool HashSlots::acquire(int wait_ms) {
    std::unique_lock<std::mutex> lock(m_mutex);
    if (!m_cv.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return m_free > 0; })) return false;
    --m_free;
    return true;
}

void HashSlots::release() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        ++m_free;
    }
    m_cv.notify_one();
}

Result<AuthUser> to_auth_user(const UserRecord& user, const std::string& device_id, const std::string& family_id) {
    auto role = parse_role(user.role);
    if (!role) return Status(ErrorCode::Unauthorized, "the account has an unknown role");
    return AuthUser{user.id, user.username, *role, user.facilities, device_id, family_id};
}

Status AuthService::bootstrap_admin() {
    if (!m_options.bootstrap_admin_password || m_options.bootstrap_admin_password->empty()) return {};
    std::int64_t users = 0;
    UBUZIMA_TRY(m_store.read([&](ReadTxn& tx) -> Status {
        auto n = tx.count_users();
        if (!n.ok()) return n.status();
        users = *n;
        return {};
    }));
    if (users > 0) return {};
    auto hash = hash_new_password(*m_options.bootstrap_admin_password, "admin");
    if (!hash.ok()) return Status(hash.status().code(), "UBUZIMA_ADMIN_PASSWORD: " + hash.status().message());
    const std::int64_t now = m_options.wall();
    UserRecord admin{sync::new_uuid_v7(now), "admin", *hash, "admin", {}, now, now, false};
    return m_store.write([&](WriteTxn& tx) -> Status {
        auto n = tx.count_users();
        if (!n.ok()) return n.status();
        if (*n > 0) return {};  // another process bootstrapped meanwhile
        UBUZIMA_TRY(tx.insert_user(admin));
        AuditEvent e{"user_created", "", "", admin.id, {{"role", "admin"}, {"by", "bootstrap"}}, ""};
        return append_audit(tx, e, now);
    });
}

Result<std::string> AuthService::hash_new_password(const std::string& password, const std::string& username) {
    UBUZIMA_TRY(check_password_policy(password, username));
    SlotGuard slot(m_slots, m_slots.acquire(kSlotWaitMs));
    if (!slot.held()) return busy();
    return hash_password(password, m_options.pbkdf2_iterations);
}

Result<std::int64_t> AuthService::throttled_for_ms(const std::string& username, const std::string& address) {
    const std::int64_t now = m_options.wall();
    std::int64_t wait = 0;
    UBUZIMA_TRY(m_store.read([&](ReadTxn& tx) -> Status {
        for (const std::string& key : {user_key(username), counts_address(address) ? address_key(address) : std::string()}) {
            if (key.empty()) continue;
            auto rec = tx.find_throttle(key);
            if (!rec.ok()) return rec.status();
            if (*rec) wait = std::max(wait, (*rec)->blocked_until_ms - now);
        }
        return {};
    }));
    return wait;
}

Result<std::int64_t> AuthService::record_failure(WriteTxn& tx, const std::string& key, int free_failures,
                                                std::int64_t now) {
    auto rec = tx.find_throttle(key);
    if (!rec.ok()) return rec.status();
    ThrottleRecord r = rec->value_or(ThrottleRecord{key, 0, 0, 0});
    if (now - r.last_failure_ms > m_options.throttle.forget_after_ms) r.failures = 0;
    ++r.failures;
    r.last_failure_ms = now;
    if (r.failures > free_failures) {
        const std::int64_t doublings = std::min<std::int64_t>(r.failures - free_failures - 1, 40);
        std::int64_t delay = m_options.throttle.base_delay_ms;
        for (std::int64_t i = 0; i < doublings && delay < m_options.throttle.max_delay_ms; ++i) delay *= 2;
        r.blocked_until_ms = now + std::min(delay, m_options.throttle.max_delay_ms);
    }
    UBUZIMA_TRY(tx.put_throttle(r));
    return std::max<std::int64_t>(0, r.blocked_until_ms - now);
}

Result<TokenGrant> AuthService::issue(WriteTxn& tx, const UserRecord& user, const std::string& device_id,
                                      const std::string& family, const std::string& parent,
                                      std::int64_t family_expires_ms) {
    auto access = random_hex(kTokenBytes);
    auto refresh_tok = random_hex(kTokenBytes);
    if (!access.ok()) return access.status();
    if (!refresh_tok.ok()) return refresh_tok.status();
    const std::int64_t now = m_options.wall();
    TokenRecord a;
    a.hash = sha256_hex(*access);
    a.kind = TokenRecord::Kind::Access;
    a.family = family;
    a.user_id = user.id;
    a.device_id = device_id;
    a.parent = parent;
    a.issued_at_ms = now;
    a.expires_at_ms = std::min(now + m_options.access_ttl_s * 1000, family_expires_ms);
    TokenRecord r = a;
    r.hash = sha256_hex(*refresh_tok);
    r.kind = TokenRecord::Kind::Refresh;
    r.expires_at_ms = std::min(now + m_options.refresh_ttl_s * 1000, family_expires_ms);
    UBUZIMA_TRY(tx.insert_token(a));
    UBUZIMA_TRY(tx.insert_token(r));
    auto caller = to_auth_user(user, device_id, family);
    if (!caller.ok()) return caller.status();
    return TokenGrant{*access, *refresh_tok, (a.expires_at_ms - now) / 1000, std::move(*caller)};
}

Result<TokenGrant> AuthService::login(const std::string& raw_username, const std::string& password,
                                      const std::string& device_id, const std::string& address, RetryHint* hint) {
    const std::string username = normalize_username(raw_username);
    const std::int64_t now = m_options.wall();
    auto wait = throttled_for_ms(username, address);
    if (!wait.ok()) return wait.status();
    if (*wait > 0) {
        // Not audited one by one (an attacker would turn each into a write); the failure that
        // started the wait was, with its length.
        if (hint) hint->retry_after_s = ceil_seconds(*wait);
        return Status(ErrorCode::RateLimited, "too many failed logins; try again in " +
                                                  std::to_string(ceil_seconds(*wait)) + " s");
    }

    std::optional<UserRecord> user;
    UBUZIMA_TRY(m_store.read([&](ReadTxn& tx) -> Status {
        auto found = tx.find_user_by_name(username);
        if (!found.ok()) return found.status();
        user = std::move(*found);
        return {};
    }));
    bool good = false;
    int stored_iterations = 0;
    {
        SlotGuard slot(m_slots, m_slots.acquire(kSlotWaitMs));
        if (!slot.held()) return busy();
        // An unknown user costs exactly what a known one does: same PBKDF2 work, same store
        // round trips after it (the failure below), so timing does not reveal usernames.
        if (user) good = verify_password(password, user->password_hash, &stored_iterations);
        else burn_password_check(password, m_options.pbkdf2_iterations);
    }
    std::string rehashed;
    if (good && stored_iterations < m_options.pbkdf2_iterations) {
        // Raised cost since this hash was made: upgrade it now that the password is at hand.
        SlotGuard slot(m_slots, m_slots.acquire(kSlotWaitMs));
        if (slot.held()) {
            auto h = hash_password(password, m_options.pbkdf2_iterations);
            if (h.ok()) rehashed = std::move(*h);
        }
    }

    Result<TokenGrant> grant = Status(ErrorCode::InvalidCredentials, "unknown user or wrong password");
    UBUZIMA_TRY(m_store.write([&](WriteTxn& tx) -> Status {
        if (!good) {
            auto user_wait = record_failure(tx, user_key(username), m_options.throttle.free_failures_per_user, now);
            if (!user_wait.ok()) return user_wait.status();
            std::int64_t wait_ms = *user_wait;
            if (counts_address(address)) {
                auto address_wait =
                    record_failure(tx, address_key(address), m_options.throttle.free_failures_per_address, now);
                if (!address_wait.ok()) return address_wait.status();
                wait_ms = std::max(wait_ms, *address_wait);
            }
            AuditEvent e{"login_failed",
                         user ? user->id : "",
                         device_id,
                         "",
                         {{"reason", user ? "wrong_password" : "unknown_user"}, {"blocked_for_s", ceil_seconds(wait_ms)}},
                         address};
            return append_audit(tx, e, now);
        }
        auto device = tx.find_device(device_id);
        if (!device.ok()) return device.status();
        if (user->disabled || (*device && (*device)->revoked_at_ms)) {
            AuditEvent e{"login_refused", user->id, device_id, "",
                         {{"reason", user->disabled ? "user_disabled" : "device_revoked"}}, address};
            UBUZIMA_TRY(append_audit(tx, e, now));
            grant = revoked(user->disabled ? "this account is disabled" : "this device was revoked by an administrator");
            return {};
        }
        if (*device && !(*device)->user_id.empty() && (*device)->user_id != user->id) {
            // A device id is one replica's identity: its versions ("hlc@device") rank writes and
            // mark pushes already merged. Another account taking it over could shadow the first
            // one's writes, so an id stays with the account that first logged in with it (the app
            // starts a new replica, with a new id, when another user logs in on the tablet).
            AuditEvent e{"login_refused", user->id, device_id, "",
                         {{"reason", "device_of_another_user"}, {"device_user", (*device)->user_id}}, address};
            UBUZIMA_TRY(append_audit(tx, e, now));
            grant = Status(ErrorCode::WrongNode, "device id " + device_id +
                                                     " belongs to another account: reset the app's data on this "
                                                     "device (it then takes a new id) and log in again");
            return {};
        }
        UBUZIMA_TRY(tx.delete_throttle(user_key(username)));
        if (!rehashed.empty()) {
            UserRecord upgraded = *user;
            upgraded.password_hash = rehashed;
            UBUZIMA_TRY(tx.update_user(upgraded));
        }
        // Expired tokens are dead weight; logins are rare enough to carry the clean-up. Tokens
        // are kept a refresh lifetime past expiry, so a late request still hears "expired".
        UBUZIMA_TRY(tx.purge_expired_tokens(now - m_options.refresh_ttl_s * 1000));
        const std::string family = sync::new_uuid_v7(now);
        const std::int64_t family_expires = now + m_options.session_max_s * 1000;
        UBUZIMA_TRY(tx.insert_family(FamilyRecord{family, user->id, device_id, now, family_expires, std::nullopt, ""}));
        DeviceRecord d = device->value_or(DeviceRecord{});
        if (!*device) {
            d.id = device_id;
            d.first_seen_ms = now;
        }
        d.user_id = user->id;
        d.last_seen_ms = now;
        UBUZIMA_TRY(tx.put_device(d));
        grant = issue(tx, *user, device_id, family, "", family_expires);
        if (!grant.ok()) return grant.status();
        AuditEvent e{"login", user->id, device_id, family, {{"rehashed", !rehashed.empty()}}, address};
        return append_audit(tx, e, now);
    }));
    return grant;
}

Result<TokenGrant> AuthService::refresh(const std::string& refresh_token, const std::string& device_id,
                                        const std::string& address) {
    const std::string hash = sha256_hex(refresh_token);
    const std::int64_t now = m_options.wall();
    Result<TokenGrant> grant = Status(ErrorCode::Unauthorized, "unknown refresh token");
    UBUZIMA_TRY(m_store.write([&](WriteTxn& tx) -> Status {
        auto found = tx.find_token(hash);
        if (!found.ok()) return found.status();
        if (!*found || (*found)->kind != TokenRecord::Kind::Refresh) return {};
        const TokenRecord t = **found;
        auto family = tx.find_family(t.family);
        if (!family.ok()) return family.status();
        auto reuse = [&](const char* why) -> Status {
            UBUZIMA_TRY(tx.revoke_family(t.family, now, why));
            AuditEvent e{"token_reuse", t.user_id, device_id, t.family, {{"reason", why}, {"token_device", t.device_id}},
                         address};
            UBUZIMA_TRY(append_audit(tx, e, now));
            grant = revoked("this login was revoked: its refresh token was used twice (log in again)");
            return {};
        };
        if (!*family || (*family)->revoked_at_ms) {
            grant = revoked("this login was revoked (log in again)");
            return {};
        }
        // Bound to the device it was issued to: from anywhere else it is a stolen token.
        if (t.device_id != device_id) return reuse("presented_by_another_device");
        if (t.revoked_at_ms) return reuse("revoked_token_presented");
        if (t.expires_at_ms <= now || (*family)->expires_at_ms <= now) {
            grant = Status(ErrorCode::TokenExpired, "the session expired: log in again");
            return {};
        }
        auto user = tx.find_user_by_id(t.user_id);
        if (!user.ok()) return user.status();
        auto device = tx.find_device(device_id);
        if (!device.ok()) return device.status();
        if (!*user || (*user)->disabled || (*device && (*device)->revoked_at_ms)) {
            UBUZIMA_TRY(tx.revoke_family(t.family, now, !*user || (*user)->disabled ? "user_disabled" : "device_revoked"));
            grant = revoked(!*user || (*user)->disabled ? "this account is disabled"
                                                        : "this device was revoked by an administrator");
            return {};
        }
        auto claimed = tx.claim_refresh(hash, now);
        if (!claimed.ok()) return claimed.status();
        const char* action = "refresh";
        if (!*claimed) {
            // Exchanged before. Accepted once more only as the repeat of a lost answer: it is the
            // parent of the family's newest refresh token, which was never used, within the grace.
            auto newest = tx.newest_refresh(t.family);
            if (!newest.ok()) return newest.status();
            const bool lost_answer = *newest && (*newest)->parent == t.hash && !(*newest)->used_at_ms && !t.regranted &&
                                     t.used_at_ms && now - *t.used_at_ms <= m_options.refresh_grace_s * 1000;
            if (!lost_answer) return reuse("refresh_token_reused");
            UBUZIMA_TRY(tx.set_regranted(t.hash));
            UBUZIMA_TRY(tx.revoke_descendants(t.hash, now));
            action = "refresh_repeated";
        }
        grant = issue(tx, **user, device_id, t.family, t.hash, (*family)->expires_at_ms);
        if (!grant.ok()) return grant.status();
        DeviceRecord d = device->value_or(DeviceRecord{device_id, t.user_id, now, now, 0, std::nullopt, "", -1, -1, 0});
        d.last_seen_ms = now;
        UBUZIMA_TRY(tx.put_device(d));
        AuditEvent e{action, t.user_id, device_id, t.family, nlohmann::json::object(), address};
        return append_audit(tx, e, now);
    }));
    return grant;
}

Status AuthService::logout(const AuthUser& caller, const std::string& address) {
    const std::int64_t now = m_options.wall();
    return m_store.write([&](WriteTxn& tx) -> Status {
        auto n = tx.revoke_families(caller.id, caller.device_id, now, "logout");
        if (!n.ok()) return n.status();
        AuditEvent e{"logout", caller.id, caller.device_id, caller.family_id, {{"logins_ended", *n}}, address};
        return append_audit(tx, e, now);
    });
}

Result<AuthUser> AuthService::authenticate(const std::string& authorization) const {
    const std::string prefix = "Bearer ";
    if (authorization.size() <= prefix.size() || authorization.compare(0, prefix.size(), prefix) != 0)
        return Status(ErrorCode::Unauthorized, "missing bearer token");
    const std::string hash = sha256_hex(std::string_view(authorization).substr(prefix.size()));
    const std::int64_t now = m_options.wall();
    Result<AuthUser> caller = Status(ErrorCode::Unauthorized, "unknown access token");
    UBUZIMA_TRY(m_store.read([&](ReadTxn& tx) -> Status {
        auto token = tx.find_token(hash);
        if (!token.ok()) return token.status();
        if (!*token || (*token)->kind != TokenRecord::Kind::Access) return {};
        const TokenRecord& t = **token;
        // A revoked device or disabled user loses access at its next request, whatever its
        // tokens say; told first, as the reason the app shows.
        auto device = tx.find_device(t.device_id);
        if (!device.ok()) return device.status();
        if (*device && (*device)->revoked_at_ms) {
            caller = revoked("this device was revoked by an administrator");
            return {};
        }
        auto user = tx.find_user_by_id(t.user_id);
        if (!user.ok()) return user.status();
        if (!*user || (*user)->disabled) {
            caller = revoked("this account is disabled");
            return {};
        }
        auto family = tx.find_family(t.family);
        if (!family.ok()) return family.status();
        if (t.revoked_at_ms || !*family || (*family)->revoked_at_ms) {
            caller = revoked("this login was revoked (log in again)");
            return {};
        }
        if (t.expires_at_ms <= now) {
            caller = Status(ErrorCode::TokenExpired, "access token expired");
            return {};
        }
        caller = to_auth_user(**user, t.device_id, t.family);
        return {};
    }));
    return caller;
}

}  // namespace ubuzima::server
