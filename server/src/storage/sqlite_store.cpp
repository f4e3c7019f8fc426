// Ubuzima Sync — MIT licence.
// SqliteStore: opening, bookkeeping tables, users, tokens and the conflict list.
#include "storage/sqlite_store.hpp"

#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

// srv_feed uses AUTOINCREMENT on purpose: a row that changes again deletes its old entry, and a
// plain rowid would then hand the deleted maximum out again, behind cursors that already passed it.
constexpr const char* kBookkeepingSql = R"SQL(
CREATE TABLE IF NOT EXISTS srv_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS srv_feed (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL,
    row_id TEXT NOT NULL, scope TEXT, gone INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS srv_users (id TEXT PRIMARY KEY NOT NULL, username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL, role TEXT NOT NULL, facilities TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS srv_tokens (hash TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL,
    user_id TEXT NOT NULL, device_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
    parent TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS srv_batches (user_id TEXT NOT NULL, batch_id TEXT NOT NULL,
    result_json TEXT NOT NULL, PRIMARY KEY (user_id, batch_id));
CREATE TABLE IF NOT EXISTS srv_conflicts (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id TEXT NOT NULL,
    field TEXT NOT NULL, kept_value TEXT, kept_version TEXT NOT NULL, lost_value TEXT,
    lost_version TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', created_at INTEGER NOT NULL,
    resolved_by TEXT, resolved_version TEXT);
CREATE INDEX IF NOT EXISTS srv_conflicts_status ON srv_conflicts (status, id);
)SQL";

// Upgrades a store made by an earlier release in place. One live feed entry per row, one exit
// entry per row and facility it left (see FeedEntry): the old whole-row unique index goes.
// Tokens remember the refresh token they were exchanged for (see AuthService::refresh).
constexpr const char* kUpgradedIndexesSql = R"SQL(
DROP INDEX IF EXISTS srv_feed_row;
CREATE UNIQUE INDEX IF NOT EXISTS srv_feed_live ON srv_feed (tbl, row_id) WHERE gone = 0;
CREATE UNIQUE INDEX IF NOT EXISTS srv_feed_exit ON srv_feed (tbl, row_id, scope) WHERE gone = 1;
CREATE INDEX IF NOT EXISTS srv_tokens_parent ON srv_tokens (parent) WHERE parent != '';
)SQL";

Status upgrade_bookkeeping(sql::Database& db) {
    UBUZIMA_TRY(sql::add_missing_columns(db, "srv_feed", {"gone INTEGER NOT NULL DEFAULT 0"}));
    UBUZIMA_TRY(sql::add_missing_columns(db, "srv_tokens", {"parent TEXT NOT NULL DEFAULT ''"}));
    return db.exec(kUpgradedIndexesSql);
}

Result<std::optional<std::string>> meta_get(sql::Database& db, const std::string& key) {
    auto st = db.cached("SELECT value FROM srv_meta WHERE key = ?");
    if (!st.ok()) return st.status();
    (*st)->bind(1, key);
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    std::optional<std::string> out;
    if (*row) out = (*st)->column_text(0);
    (*st)->reset();
    return out;
}

Status meta_put(sql::Database& db, const std::string& key, const std::string& value) {
    auto st = db.cached("INSERT INTO srv_meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, key).bind(2, value).run();
}

std::vector<std::string> parse_string_array(const std::string& text) {
    std::vector<std::string> out;
    json j = json::parse(text, nullptr, false);
    if (!j.is_array()) return out;
    for (const json& v : j)
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

}  // namespace

const std::vector<std::string>& server_extra_columns() {
    static const std::vector<std::string> cols = {
        "_deleted INTEGER NOT NULL DEFAULT 0", "_v TEXT NOT NULL DEFAULT '{}'", "_s TEXT NOT NULL DEFAULT '{}'",
        "_seq INTEGER NOT NULL DEFAULT 0", "_scope TEXT", "_c TEXT NOT NULL DEFAULT '{}'"};
    return cols;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path, sync::NodeId new_node,
                                                       const std::string& vfs) {
    std::unique_ptr<SqliteStore> store(new SqliteStore());
    sql::OpenOptions options;
    options.synchronous = "FULL";  // a push we acknowledged must survive power loss
    options.vfs = vfs;
    auto db = sql::Database::open(path, options);
    if (!db.ok()) return db.status();
    store->m_db = std::move(*db);
    UBUZIMA_TRY(store->init(new_node));
    return store;
}

Status SqliteStore::init(sync::NodeId new_node) {
    auto tx = sql::Transaction::begin(m_db);
    if (!tx.ok()) return tx.status();
    UBUZIMA_TRY(m_db.exec(kBookkeepingSql));
    UBUZIMA_TRY(upgrade_bookkeeping(m_db));
    UBUZIMA_TRY(sql::ensure_tables(m_db, schema::Schema::builtin(), server_extra_columns()));
    for (const schema::TableDef& t : schema::Schema::builtin().tables()) m_tables.emplace(t.name, make_table_sql(t));

    auto node = meta_get(m_db, "node_id");
    if (!node.ok()) return node.status();
    if (*node && sync::parse_hex16(**node)) {
        m_node = *sync::parse_hex16(**node);
    } else {
        m_node = new_node != 0 ? new_node : sync::new_node_id();
        UBUZIMA_TRY(meta_put(m_db, "node_id", sync::to_hex16(m_node)));
    }
    auto clock = meta_get(m_db, "clock");
    if (!clock.ok()) return clock.status();
    if (*clock && sync::parse_hex16(**clock)) m_saved_clock = *sync::parse_hex16(**clock);
    return tx->commit();
}

sync::Hlc SqliteStore::saved_clock() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_saved_clock;
}

Status SqliteStore::read(const std::function<Status(ReadTxn&)>& fn) {
    std::lock_guard<std::mutex> lock(m_mutex);
    // A deferred transaction gives the callback one consistent snapshot of the WAL.
    UBUZIMA_TRY(m_db.exec("BEGIN"));
    auto txn = make_sqlite_txn(m_db, m_tables, &m_saved_clock);
    Status s = fn(*txn);
    const Status end = m_db.exec(s.ok() ? "COMMIT" : "ROLLBACK");
    if (!s.ok()) return s;
    return end;
}

Status SqliteStore::write(const std::function<Status(WriteTxn&)>& fn) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto tx = sql::Transaction::begin(m_db);
    if (!tx.ok()) return tx.status();
    const sync::Hlc clock_before = m_saved_clock;
    auto txn = make_sqlite_txn(m_db, m_tables, &m_saved_clock);
    Status s = fn(*txn);
    if (s.ok()) s = tx->commit();
    if (!s.ok()) m_saved_clock = clock_before;  // rolled back (by the Transaction destructor)
    return s;
}

Result<std::int64_t> SqliteStore::count_users() {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached("SELECT count(*) FROM srv_users");
    if (!st.ok()) return st.status();
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    const std::int64_t n = *row ? (*st)->column_int(0) : 0;
    (*st)->reset();
    return n;
}

Status SqliteStore::create_user(const UserRecord& user) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto exists = m_db.cached("SELECT 1 FROM srv_users WHERE username = ?");
    if (!exists.ok()) return exists.status();
    (*exists)->bind(1, user.username);
    auto row = (*exists)->step();
    (*exists)->reset();
    if (!row.ok()) return row.status();
    if (*row) return Status(ErrorCode::Conflict, "username '" + user.username + "' is taken");
    auto st = m_db.cached(
        "INSERT INTO srv_users (id, username, password_hash, role, facilities, created_at) VALUES (?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    return (*st)
        ->bind(1, user.id)
        .bind(2, user.username)
        .bind(3, user.password_hash)
        .bind(4, user.role)
        .bind(5, json(user.facilities).dump())
        .bind(6, user.created_at_ms)
        .run();
}

Result<std::optional<UserRecord>> SqliteStore::find_user(const char* where, const std::string& key) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached(std::string("SELECT id, username, password_hash, role, facilities, created_at "
                                      "FROM srv_users WHERE ") + where + " = ?");
    if (!st.ok()) return st.status();
    (*st)->bind(1, key);
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    std::optional<UserRecord> out;
    if (*row) {
        sql::Statement& s = **st;
        out = UserRecord{s.column_text(0), s.column_text(1), s.column_text(2), s.column_text(3),
                         parse_string_array(s.column_text(4)), s.column_int(5)};
    }
    (*st)->reset();
    return out;
}

Result<std::optional<UserRecord>> SqliteStore::find_user_by_name(const std::string& username) {
    return find_user("username", username);
}

Result<std::optional<UserRecord>> SqliteStore::find_user_by_id(const std::string& id) { return find_user("id", id); }

Status SqliteStore::put_token(const std::string& token_hash, const TokenRecord& token) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached("INSERT OR REPLACE INTO srv_tokens (hash, kind, user_id, device_id, expires_at, parent) "
                          "VALUES (?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    return (*st)
        ->bind(1, token_hash)
        .bind(2, token.kind)
        .bind(3, token.user_id)
        .bind(4, token.device_id)
        .bind(5, token.expires_at_ms)
        .bind(6, token.parent)
        .run();
}

Result<std::optional<TokenRecord>> SqliteStore::find_token(const std::string& token_hash) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached("SELECT kind, user_id, device_id, expires_at, parent FROM srv_tokens WHERE hash = ?");
    if (!st.ok()) return st.status();
    (*st)->bind(1, token_hash);
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    std::optional<TokenRecord> out;
    if (*row) {
        sql::Statement& s = **st;
        out = TokenRecord{s.column_text(0), s.column_text(1), s.column_text(2), s.column_int(3), s.column_text(4)};
    }
    (*st)->reset();
    return out;
}

Status SqliteStore::set_token_kind(const std::string& token_hash, const std::string& kind) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached("UPDATE srv_tokens SET kind = ? WHERE hash = ?");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, kind).bind(2, token_hash).run();
}

Status SqliteStore::delete_token(const std::string& token_hash) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached("DELETE FROM srv_tokens WHERE hash = ?");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, token_hash).run();
}

Status SqliteStore::delete_token_children(const std::string& parent_hash) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached("DELETE FROM srv_tokens WHERE parent = ? AND parent != ''");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, parent_hash).run();
}

Status SqliteStore::purge_expired_tokens(std::int64_t now_ms) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached("DELETE FROM srv_tokens WHERE expires_at < ?");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, now_ms).run();
}

Result<std::vector<ConflictRecord>> SqliteStore::list_conflicts(const std::string& status) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto st = m_db.cached(std::string(kConflictSelect) + " WHERE (?1 = '' OR status = ?1) ORDER BY id");
    if (!st.ok()) return st.status();
    (*st)->bind(1, status);
    std::vector<ConflictRecord> out;
    UBUZIMA_TRY((*st)->each([&](const sql::Statement& row) { out.push_back(conflict_from_row(row)); }));
    return out;
}

}  // namespace ubuzima::server
