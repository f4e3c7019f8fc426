// Ubuzima Sync — MIT licence.
// The PostgreSQL transaction object, continued: users, token families and tokens, devices, and
// the failed-login counters (the same semantics as sqlite_auth.cpp).
#include <nlohmann/json.hpp>

#include "storage/auth_columns.hpp"
#include "storage/pg_txn.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

using columns::parse_facilities;
constexpr const char* kUserColumns = columns::kUser;
constexpr const char* kTokenColumns = columns::kToken;
constexpr const char* kDeviceColumns = columns::kDevice;

UserRecord user_from_row(const pg::PgResult& r, int i) {
    return UserRecord{r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), parse_facilities(r.text(i, 4)),
                      r.integer(i, 5), r.integer(i, 6), r.integer(i, 7) != 0};
}

TokenRecord token_from_row(const pg::PgResult& r, int i) {
    TokenRecord t;
    t.hash = r.text(i, 0);
    t.kind = r.text(i, 1) == "refresh" ? TokenRecord::Kind::Refresh : TokenRecord::Kind::Access;
    t.family = r.text(i, 2);
    t.user_id = r.text(i, 3);
    t.device_id = r.text(i, 4);
    t.parent = r.text(i, 5);
    t.issued_at_ms = r.integer(i, 6);
    t.expires_at_ms = r.integer(i, 7);
    t.used_at_ms = r.optional_integer(i, 8);
    t.regranted = r.integer(i, 9) != 0;
    t.revoked_at_ms = r.optional_integer(i, 10);
    return t;
}

DeviceRecord device_from_row(const pg::PgResult& r, int i) {
    DeviceRecord d;
    d.id = r.text(i, 0);
    d.user_id = r.text(i, 1);
    d.first_seen_ms = r.integer(i, 2);
    d.last_seen_ms = r.integer(i, 3);
    d.last_sync_ms = r.integer(i, 4);
    d.revoked_at_ms = r.optional_integer(i, 5);
    d.revoked_by = r.text(i, 6);
    d.reported_pending = r.integer(i, 7);
    d.reported_rejected = r.integer(i, 8);
    d.rejected_total = r.integer(i, 9);
    return d;
}

/// Runs a query expected to return at most one row through `convert`.
template <typename T, typename Convert>
Result<std::optional<T>> one(pg::Connection& db, const std::string& sql, const std::string& key, Convert convert) {
    auto r = db.query(sql, pg::Params().add(key));
    if (!r.ok()) return r.status();
    std::optional<T> out;
    if (r->rows()) out = convert(*r, 0);
    return out;
}

}  // namespace

Result<std::int64_t> PgTxn::count_users() {
    auto r = m_db.query("SELECT count(*) FROM srv_users");
    if (!r.ok()) return r.status();
    return r->integer(0, 0);
}

Result<std::optional<UserRecord>> PgTxn::find_user(const char* where, const std::string& key) {
    return one<UserRecord>(m_db, std::string("SELECT ") + kUserColumns + " FROM srv_users WHERE " + where + " = $1", key,
                           user_from_row);
}

Result<std::optional<UserRecord>> PgTxn::find_user_by_name(const std::string& username) {
    return find_user("username", username);
}

Result<std::optional<UserRecord>> PgTxn::find_user_by_id(const std::string& id) { return find_user("id", id); }

Result<std::vector<UserRecord>> PgTxn::list_users() {
    // COLLATE "C": byte order, as SQLite's BINARY collation sorts.
    auto r = m_db.query(std::string("SELECT ") + kUserColumns + " FROM srv_users ORDER BY username COLLATE \"C\"");
    if (!r.ok()) return r.status();
    std::vector<UserRecord> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(user_from_row(*r, i));
    return out;
}

Status PgTxn::insert_user(const UserRecord& user) {
    auto taken = find_user_by_name(user.username);
    if (!taken.ok()) return taken.status();
    if (*taken) return Status(ErrorCode::Conflict, "username '" + user.username + "' is taken");
    return run(std::string("INSERT INTO srv_users (") + kUserColumns + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
               pg::Params()
                   .add(user.id)
                   .add(user.username)
                   .add(user.password_hash)
                   .add(user.role)
                   .add(json(user.facilities).dump())
                   .add(user.created_at_ms)
                   .add(user.updated_at_ms)
                   .add(std::int64_t{user.disabled ? 1 : 0}));
}

Status PgTxn::update_user(const UserRecord& user) {
    auto r = m_db.query(
        "UPDATE srv_users SET username = $1, password_hash = $2, role = $3, facilities = $4, updated_at = $5, "
        "disabled = $6 WHERE id = $7",
        pg::Params()
            .add(user.username)
            .add(user.password_hash)
            .add(user.role)
            .add(json(user.facilities).dump())
            .add(user.updated_at_ms)
            .add(std::int64_t{user.disabled ? 1 : 0})
            .add(user.id));
    if (!r.ok()) return r.status();
    if (r->affected() != 1) return Status(ErrorCode::NotFound, "no user " + user.id);
    return {};
}

Status PgTxn::insert_family(const FamilyRecord& f) {
    return run("INSERT INTO srv_families (id, user_id, device_id, created_at, expires_at, revoked_at, revoke_reason) "
               "VALUES ($1, $2, $3, $4, $5, $6, $7)",
               pg::Params()
                   .add(f.id)
                   .add(f.user_id)
                   .add(f.device_id)
                   .add(f.created_at_ms)
                   .add(f.expires_at_ms)
                   .add_optional(f.revoked_at_ms)
                   .add(f.revoke_reason));
}

Result<std::optional<FamilyRecord>> PgTxn::find_family(const std::string& id) {
    return one<FamilyRecord>(
        m_db,
        "SELECT id, user_id, device_id, created_at, expires_at, revoked_at, revoke_reason FROM srv_families WHERE id = $1",
        id, [](const pg::PgResult& r, int i) {
            return FamilyRecord{r.text(i, 0),    r.text(i, 1), r.text(i, 2), r.integer(i, 3), r.integer(i, 4),
                                r.optional_integer(i, 5), r.text(i, 6)};
        });
}

Status PgTxn::insert_token(const TokenRecord& t) {
    return run(std::string("INSERT INTO srv_tokens (") + kTokenColumns +
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
               pg::Params()
                   .add(t.hash)
                   .add(t.kind == TokenRecord::Kind::Refresh ? "refresh" : "access")
                   .add(t.family)
                   .add(t.user_id)
                   .add(t.device_id)
                   .add(t.parent)
                   .add(t.issued_at_ms)
                   .add(t.expires_at_ms)
                   .add_optional(t.used_at_ms)
                   .add(std::int64_t{t.regranted ? 1 : 0})
                   .add_optional(t.revoked_at_ms));
}

Result<std::optional<TokenRecord>> PgTxn::token_where(const char* where, const std::string& key) {
    return one<TokenRecord>(m_db, std::string("SELECT ") + kTokenColumns + " FROM srv_tokens WHERE " + where, key,
                            token_from_row);
}

Result<std::optional<TokenRecord>> PgTxn::find_token(const std::string& hash) { return token_where("hash = $1", hash); }

Result<std::optional<TokenRecord>> PgTxn::newest_refresh(const std::string& family) {
    return token_where(
        "family = $1 AND kind = 'refresh' AND revoked_at IS NULL ORDER BY issued_at DESC, ord DESC LIMIT 1", family);
}

Result<bool> PgTxn::claim_refresh(const std::string& hash, std::int64_t now_ms) {
    auto r = m_db.query(
        "UPDATE srv_tokens SET used_at = $1 WHERE hash = $2 AND kind = 'refresh' AND used_at IS NULL AND "
        "revoked_at IS NULL",
        pg::Params().add(now_ms).add(hash));
    if (!r.ok()) return r.status();
    return r->affected() == 1;
}

Status PgTxn::set_regranted(const std::string& hash) {
    return run("UPDATE srv_tokens SET regranted = 1 WHERE hash = $1", pg::Params().add(hash));
}

Status PgTxn::revoke_descendants(const std::string& hash, std::int64_t now_ms) {
    return run("WITH RECURSIVE d(h, kind) AS (SELECT hash, kind FROM srv_tokens WHERE parent = $1 "
               "UNION SELECT t.hash, t.kind FROM srv_tokens t JOIN d ON d.kind = 'refresh' AND t.parent = d.h) "
               "UPDATE srv_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND hash IN (SELECT h FROM d)",
               pg::Params().add(hash).add(now_ms));
}

Status PgTxn::revoke_family(const std::string& family, std::int64_t now_ms, const std::string& reason) {
    UBUZIMA_TRY(run("UPDATE srv_families SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
                    pg::Params().add(family).add(now_ms).add(reason)));
    return run("UPDATE srv_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
               pg::Params().add(family).add(now_ms));
}

Result<std::int64_t> PgTxn::revoke_families(const std::string& user_id, const std::string& device_id,
                                            std::int64_t now_ms, const std::string& reason) {
    auto r = m_db.query("SELECT id FROM srv_families WHERE revoked_at IS NULL AND ($1::text = '' OR user_id = $1::text) "
                        "AND ($2::text = '' OR device_id = $2::text)",
                        pg::Params().add(user_id).add(device_id));
    if (!r.ok()) return r.status();
    std::vector<std::string> families;
    for (int i = 0; i < r->rows(); ++i) families.push_back(r->text(i, 0));
    for (const std::string& f : families) UBUZIMA_TRY(revoke_family(f, now_ms, reason));
    return static_cast<std::int64_t>(families.size());
}

Status PgTxn::purge_expired_tokens(std::int64_t before_ms) {
    UBUZIMA_TRY(run("DELETE FROM srv_tokens WHERE expires_at < $1", pg::Params().add(before_ms)));
    return run("DELETE FROM srv_families f WHERE f.expires_at < $1 AND "
               "NOT EXISTS (SELECT 1 FROM srv_tokens t WHERE t.family = f.id)",
               pg::Params().add(before_ms));
}

Result<std::optional<DeviceRecord>> PgTxn::find_device(const std::string& id) {
    return one<DeviceRecord>(m_db, std::string("SELECT ") + kDeviceColumns + " FROM srv_devices WHERE id = $1", id,
                             device_from_row);
}

Result<std::vector<DeviceRecord>> PgTxn::list_devices() {
    auto r = m_db.query(std::string("SELECT ") + kDeviceColumns +
                        " FROM srv_devices ORDER BY last_seen DESC, id COLLATE \"C\"");
    if (!r.ok()) return r.status();
    std::vector<DeviceRecord> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(device_from_row(*r, i));
    return out;
}

Status PgTxn::put_device(const DeviceRecord& d) {
    return run(std::string("INSERT INTO srv_devices (") + kDeviceColumns +
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET "
                   "user_id = excluded.user_id, first_seen = excluded.first_seen, last_seen = excluded.last_seen, "
                   "last_sync = excluded.last_sync, revoked_at = excluded.revoked_at, "
                   "revoked_by = excluded.revoked_by, reported_pending = excluded.reported_pending, "
                   "reported_rejected = excluded.reported_rejected, rejected_total = excluded.rejected_total",
               pg::Params()
                   .add(d.id)
                   .add(d.user_id)
                   .add(d.first_seen_ms)
                   .add(d.last_seen_ms)
                   .add(d.last_sync_ms)
                   .add_optional(d.revoked_at_ms)
                   .add(d.revoked_by)
                   .add(d.reported_pending)
                   .add(d.reported_rejected)
                   .add(d.rejected_total));
}

Result<std::optional<ThrottleRecord>> PgTxn::find_throttle(const std::string& key) {
    return one<ThrottleRecord>(m_db,
                               "SELECT key, failures, last_failure, blocked_until FROM srv_throttle WHERE key = $1", key,
                               [](const pg::PgResult& r, int i) {
                                   return ThrottleRecord{r.text(i, 0), r.integer(i, 1), r.integer(i, 2),
                                                         r.integer(i, 3)};
                               });
}

Status PgTxn::put_throttle(const ThrottleRecord& t) {
    return run("INSERT INTO srv_throttle (key, failures, last_failure, blocked_until) VALUES ($1, $2, $3, $4) "
               "ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure, "
               "blocked_until = excluded.blocked_until",
               pg::Params().add(t.key).add(t.failures).add(t.last_failure_ms).add(t.blocked_until_ms));
}

Status PgTxn::delete_throttle(const std::string& key) {
    return run("DELETE FROM srv_throttle WHERE key = $1", pg::Params().add(key));
}

}  // namespace ubuzima::server
