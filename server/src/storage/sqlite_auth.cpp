// Ubuzima Sync — MIT licence.
// The SQLite transaction object, continued: users, token families and tokens, devices, and the
// failed-login counters.
#include <nlohmann/json.hpp>

#include "storage/auth_columns.hpp"
#include "storage/sqlite_txn.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

using columns::parse_facilities;
constexpr const char* kUserColumns = columns::kUser;
constexpr const char* kTokenColumns = columns::kToken;
constexpr const char* kDeviceColumns = columns::kDevice;

UserRecord user_from_row(const sql::Statement& s) {
    return UserRecord{s.column_text(0), s.column_text(1), s.column_text(2), s.column_text(3),
                      parse_facilities(s.column_text(4)), s.column_int(5), s.column_int(6), s.column_int(7) != 0};
}

TokenRecord token_from_row(const sql::Statement& s) {
    TokenRecord t;
    t.hash = s.column_text(0);
    t.kind = s.column_text(1) == "refresh" ? TokenRecord::Kind::Refresh : TokenRecord::Kind::Access;
    t.family = s.column_text(2);
    t.user_id = s.column_text(3);
    t.device_id = s.column_text(4);
    t.parent = s.column_text(5);
    t.issued_at_ms = s.column_int(6);
    t.expires_at_ms = s.column_int(7);
    t.used_at_ms = s.column_optional_int(8);
    t.regranted = s.column_int(9) != 0;
    t.revoked_at_ms = s.column_optional_int(10);
    return t;
}

DeviceRecord device_from_row(const sql::Statement& s) {
    DeviceRecord d;
    d.id = s.column_text(0);
    d.user_id = s.column_text(1);
    d.first_seen_ms = s.column_int(2);
    d.last_seen_ms = s.column_int(3);
    d.last_sync_ms = s.column_int(4);
    d.revoked_at_ms = s.column_optional_int(5);
    d.revoked_by = s.column_text(6);
    d.reported_pending = s.column_int(7);
    d.reported_rejected = s.column_int(8);
    d.rejected_total = s.column_int(9);
    return d;
}

/// Runs a query expected to return at most one row through `convert`.
template <typename T, typename Convert>
Result<std::optional<T>> one(sql::Database& db, const std::string& sql, const std::string& key, Convert convert) {
    auto st = db.cached(sql);
    if (!st.ok()) return st.status();
    (*st)->bind(1, key);
    auto row = (*st)->step();
    if (!row.ok()) {
        (*st)->reset();
        return row.status();
    }
    std::optional<T> out;
    if (*row) out = convert(**st);
    (*st)->reset();
    return out;
}

}  // namespace

Result<std::int64_t> SqliteTxn::count_users() {
    auto st = m_db.cached("SELECT count(*) FROM srv_users");
    if (!st.ok()) return st.status();
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    const std::int64_t n = *row ? (*st)->column_int(0) : 0;
    (*st)->reset();
    return n;
}

Result<std::optional<UserRecord>> SqliteTxn::find_user(const char* where, const std::string& key) {
    return one<UserRecord>(m_db, std::string("SELECT ") + kUserColumns + " FROM srv_users WHERE " + where + " = ?", key,
                           user_from_row);
}

Result<std::optional<UserRecord>> SqliteTxn::find_user_by_name(const std::string& username) {
    return find_user("username", username);
}

Result<std::optional<UserRecord>> SqliteTxn::find_user_by_id(const std::string& id) { return find_user("id", id); }

Result<std::vector<UserRecord>> SqliteTxn::list_users() {
    auto st = m_db.cached(std::string("SELECT ") + kUserColumns + " FROM srv_users ORDER BY username");
    if (!st.ok()) return st.status();
    std::vector<UserRecord> out;
    UBUZIMA_TRY((*st)->each([&](const sql::Statement& row) { out.push_back(user_from_row(row)); }));
    return out;
}

Status SqliteTxn::insert_user(const UserRecord& user) {
    auto taken = find_user_by_name(user.username);
    if (!taken.ok()) return taken.status();
    if (*taken) return Status(ErrorCode::Conflict, "username '" + user.username + "' is taken");
    auto st = m_db.cached(std::string("INSERT INTO srv_users (") + kUserColumns + ") VALUES (?,?,?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    return (*st)
        ->bind(1, user.id)
        .bind(2, user.username)
        .bind(3, user.password_hash)
        .bind(4, user.role)
        .bind(5, json(user.facilities).dump())
        .bind(6, user.created_at_ms)
        .bind(7, user.updated_at_ms)
        .bind(8, std::int64_t{user.disabled ? 1 : 0})
        .run();
}

Status SqliteTxn::update_user(const UserRecord& user) {
    auto st = m_db.cached(
        "UPDATE srv_users SET username = ?, password_hash = ?, role = ?, facilities = ?, updated_at = ?, disabled = ? "
        "WHERE id = ?");
    if (!st.ok()) return st.status();
    UBUZIMA_TRY((*st)
                    ->bind(1, user.username)
                    .bind(2, user.password_hash)
                    .bind(3, user.role)
                    .bind(4, json(user.facilities).dump())
                    .bind(5, user.updated_at_ms)
                    .bind(6, std::int64_t{user.disabled ? 1 : 0})
                    .bind(7, user.id)
                    .run());
    if (m_db.changes() != 1) return Status(ErrorCode::NotFound, "no user " + user.id);
    return {};
}

Status SqliteTxn::insert_family(const FamilyRecord& f) {
    auto st = m_db.cached(
        "INSERT INTO srv_families (id, user_id, device_id, created_at, expires_at, revoked_at, revoke_reason) "
        "VALUES (?,?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    return (*st)
        ->bind(1, f.id)
        .bind(2, f.user_id)
        .bind(3, f.device_id)
        .bind(4, f.created_at_ms)
        .bind(5, f.expires_at_ms)
        .bind_optional(6, f.revoked_at_ms)
        .bind(7, f.revoke_reason)
        .run();
}

Result<std::optional<FamilyRecord>> SqliteTxn::find_family(const std::string& id) {
    return one<FamilyRecord>(
        m_db,
        "SELECT id, user_id, device_id, created_at, expires_at, revoked_at, revoke_reason FROM srv_families WHERE id = ?",
        id, [](const sql::Statement& s) {
            return FamilyRecord{s.column_text(0), s.column_text(1), s.column_text(2), s.column_int(3),
                                s.column_int(4), s.column_optional_int(5), s.column_text(6)};
        });
}

Status SqliteTxn::insert_token(const TokenRecord& t) {
    auto st = m_db.cached(std::string("INSERT INTO srv_tokens (") + kTokenColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    return (*st)
        ->bind(1, t.hash)
        .bind(2, t.kind == TokenRecord::Kind::Refresh ? "refresh" : "access")
        .bind(3, t.family)
        .bind(4, t.user_id)
        .bind(5, t.device_id)
        .bind(6, t.parent)
        .bind(7, t.issued_at_ms)
        .bind(8, t.expires_at_ms)
        .bind_optional(9, t.used_at_ms)
        .bind(10, std::int64_t{t.regranted ? 1 : 0})
        .bind_optional(11, t.revoked_at_ms)
        .run();
}

Result<std::optional<TokenRecord>> SqliteTxn::token_where(const char* where, const std::string& key) {
    return one<TokenRecord>(m_db, std::string("SELECT ") + kTokenColumns + " FROM srv_tokens WHERE " + where, key,
                            token_from_row);
}

Result<std::optional<TokenRecord>> SqliteTxn::find_token(const std::string& hash) { return token_where("hash = ?", hash); }

Result<std::optional<TokenRecord>> SqliteTxn::newest_refresh(const std::string& family) {
    return token_where("family = ? AND kind = 'refresh' AND revoked_at IS NULL ORDER BY issued_at DESC, rowid DESC LIMIT 1",
                       family);
}

Result<bool> SqliteTxn::claim_refresh(const std::string& hash, std::int64_t now_ms) {
    auto st = m_db.cached(
        "UPDATE srv_tokens SET used_at = ? WHERE hash = ? AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL");
    if (!st.ok()) return st.status();
    UBUZIMA_TRY((*st)->bind(1, now_ms).bind(2, hash).run());
    return m_db.changes() == 1;
}

Status SqliteTxn::set_regranted(const std::string& hash) {
    auto st = m_db.cached("UPDATE srv_tokens SET regranted = 1 WHERE hash = ?");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, hash).run();
}

Status SqliteTxn::revoke_descendants(const std::string& hash, std::int64_t now_ms) {
    // A grant's two tokens name the refresh token exchanged for it as their parent; the tree is
    // followed through refresh tokens only.
    auto st = m_db.cached(
        "WITH RECURSIVE d(h, kind) AS (SELECT hash, kind FROM srv_tokens WHERE parent = ?1 "
        "UNION SELECT t.hash, t.kind FROM srv_tokens t JOIN d ON d.kind = 'refresh' AND t.parent = d.h) "
        "UPDATE srv_tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND hash IN (SELECT h FROM d)");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, hash).bind(2, now_ms).run();
}

Status SqliteTxn::revoke_family(const std::string& family, std::int64_t now_ms, const std::string& reason) {
    auto fam = m_db.cached(
        "UPDATE srv_families SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL");
    if (!fam.ok()) return fam.status();
    UBUZIMA_TRY((*fam)->bind(1, family).bind(2, now_ms).bind(3, reason).run());
    auto tok = m_db.cached("UPDATE srv_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL");
    if (!tok.ok()) return tok.status();
    return (*tok)->bind(1, family).bind(2, now_ms).run();
}

Result<std::int64_t> SqliteTxn::revoke_families(const std::string& user_id, const std::string& device_id,
                                                std::int64_t now_ms, const std::string& reason) {
    auto st = m_db.cached(
        "SELECT id FROM srv_families WHERE revoked_at IS NULL AND (?1 = '' OR user_id = ?1) AND (?2 = '' OR device_id = ?2)");
    if (!st.ok()) return st.status();
    (*st)->bind(1, user_id).bind(2, device_id);
    std::vector<std::string> families;
    UBUZIMA_TRY((*st)->each([&](const sql::Statement& row) { families.push_back(row.column_text(0)); }));
    for (const std::string& f : families) UBUZIMA_TRY(revoke_family(f, now_ms, reason));
    return static_cast<std::int64_t>(families.size());
}

Status SqliteTxn::purge_expired_tokens(std::int64_t before_ms) {
    auto tokens = m_db.cached("DELETE FROM srv_tokens WHERE expires_at < ?");
    if (!tokens.ok()) return tokens.status();
    UBUZIMA_TRY((*tokens)->bind(1, before_ms).run());
    auto families = m_db.cached(
        "DELETE FROM srv_families WHERE expires_at < ?1 AND NOT EXISTS (SELECT 1 FROM srv_tokens WHERE family = id)");
    if (!families.ok()) return families.status();
    return (*families)->bind(1, before_ms).run();
}

Result<std::optional<DeviceRecord>> SqliteTxn::find_device(const std::string& id) {
    return one<DeviceRecord>(m_db, std::string("SELECT ") + kDeviceColumns + " FROM srv_devices WHERE id = ?", id,
                             device_from_row);
}

Result<std::vector<DeviceRecord>> SqliteTxn::list_devices() {
    auto st = m_db.cached(std::string("SELECT ") + kDeviceColumns + " FROM srv_devices ORDER BY last_seen DESC, id");
    if (!st.ok()) return st.status();
    std::vector<DeviceRecord> out;
    UBUZIMA_TRY((*st)->each([&](const sql::Statement& row) { out.push_back(device_from_row(row)); }));
    return out;
}

Status SqliteTxn::put_device(const DeviceRecord& d) {
    auto st = m_db.cached(std::string("INSERT INTO srv_devices (") + kDeviceColumns +
                          ") VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, "
                          "first_seen = excluded.first_seen, last_seen = excluded.last_seen, "
                          "last_sync = excluded.last_sync, revoked_at = excluded.revoked_at, "
                          "revoked_by = excluded.revoked_by, reported_pending = excluded.reported_pending, "
                          "reported_rejected = excluded.reported_rejected, rejected_total = excluded.rejected_total");
    if (!st.ok()) return st.status();
    return (*st)
        ->bind(1, d.id)
        .bind(2, d.user_id)
        .bind(3, d.first_seen_ms)
        .bind(4, d.last_seen_ms)
        .bind(5, d.last_sync_ms)
        .bind_optional(6, d.revoked_at_ms)
        .bind(7, d.revoked_by)
        .bind(8, d.reported_pending)
        .bind(9, d.reported_rejected)
        .bind(10, d.rejected_total)
        .run();
}

Result<std::optional<ThrottleRecord>> SqliteTxn::find_throttle(const std::string& key) {
    return one<ThrottleRecord>(m_db, "SELECT key, failures, last_failure, blocked_until FROM srv_throttle WHERE key = ?",
                               key, [](const sql::Statement& s) {
                                   return ThrottleRecord{s.column_text(0), s.column_int(1), s.column_int(2),
                                                         s.column_int(3)};
                               });
}

Status SqliteTxn::put_throttle(const ThrottleRecord& r) {
    auto st = m_db.cached(
        "INSERT INTO srv_throttle (key, failures, last_failure, blocked_until) VALUES (?,?,?,?) ON CONFLICT(key) DO "
        "UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure, "
        "blocked_until = excluded.blocked_until");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, r.key).bind(2, r.failures).bind(3, r.last_failure_ms).bind(4, r.blocked_until_ms).run();
}

Status SqliteTxn::delete_throttle(const std::string& key) {
    auto st = m_db.cached("DELETE FROM srv_throttle WHERE key = ?");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, key).run();
}

}  // namespace ubuzima::server
