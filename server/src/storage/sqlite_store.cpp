// Ubuzima Sync — MIT licence.
// SqliteStore: opening, the bookkeeping tables and their in-place upgrades, transactions.
#include "storage/sqlite_store.hpp"

#include <chrono>
#include <cstdlib>
#include <set>

#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

namespace {

// srv_feed uses AUTOINCREMENT on purpose: a row that changes again deletes its old entry, and a
// plain rowid would then hand the deleted maximum out again, behind cursors that already passed it.
constexpr const char* kBookkeepingSql = R"SQL(
CREATE TABLE IF NOT EXISTS srv_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS srv_feed (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL,
    row_id TEXT NOT NULL, scope TEXT, gone INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS srv_users (id TEXT PRIMARY KEY NOT NULL, username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL, role TEXT NOT NULL, facilities TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS srv_families (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,
    device_id TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER,
    revoke_reason TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS srv_families_user ON srv_families (user_id);
CREATE INDEX IF NOT EXISTS srv_families_device ON srv_families (device_id);
CREATE TABLE IF NOT EXISTS srv_tokens (hash TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, family TEXT NOT NULL,
    user_id TEXT NOT NULL, device_id TEXT NOT NULL, parent TEXT NOT NULL DEFAULT '', issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, used_at INTEGER, regranted INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER);
CREATE INDEX IF NOT EXISTS srv_tokens_family ON srv_tokens (family);
CREATE INDEX IF NOT EXISTS srv_tokens_parent ON srv_tokens (parent) WHERE parent != '';
CREATE TABLE IF NOT EXISTS srv_devices (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, last_sync INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER, revoked_by TEXT NOT NULL DEFAULT '', reported_pending INTEGER NOT NULL DEFAULT -1,
    reported_rejected INTEGER NOT NULL DEFAULT -1, rejected_total INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS srv_throttle (key TEXT PRIMARY KEY NOT NULL, failures INTEGER NOT NULL,
    last_failure INTEGER NOT NULL, blocked_until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS srv_batches (user_id TEXT NOT NULL, batch_id TEXT NOT NULL,
    result_json TEXT NOT NULL, created_at INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user_id, batch_id));
CREATE INDEX IF NOT EXISTS srv_batches_created ON srv_batches (created_at);
CREATE TABLE IF NOT EXISTS srv_conflicts (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id TEXT NOT NULL,
    field TEXT NOT NULL, kept_value TEXT, kept_version TEXT NOT NULL, lost_value TEXT,
    lost_version TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', created_at INTEGER NOT NULL,
    resolved_by TEXT, resolved_version TEXT, scope TEXT, resolved_at INTEGER);
CREATE INDEX IF NOT EXISTS srv_conflicts_status ON srv_conflicts (status, id);
CREATE TABLE IF NOT EXISTS srv_audit (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor_user TEXT NOT NULL,
    actor_device TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL, outcome TEXT NOT NULL,
    address TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
-- Append-only for the server's own code; an insider with the file can drop these, which is what
-- the hash chain and an exported head are for (docs/SECURITY.md).
CREATE TRIGGER IF NOT EXISTS srv_audit_no_update BEFORE UPDATE ON srv_audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS srv_audit_no_delete BEFORE DELETE ON srv_audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)SQL";

// Indexes of tables that earlier releases created without the columns they use.
constexpr const char* kUpgradedIndexesSql = R"SQL(
DROP INDEX IF EXISTS srv_feed_row;
CREATE UNIQUE INDEX IF NOT EXISTS srv_feed_live ON srv_feed (tbl, row_id) WHERE gone = 0;
CREATE UNIQUE INDEX IF NOT EXISTS srv_feed_exit ON srv_feed (tbl, row_id, scope) WHERE gone = 1;
)SQL";

Result<std::optional<std::string>> meta_get(sql::Database& db, const std::string& key) {
    return db.query_text("SELECT value FROM srv_meta WHERE key = ?", {key});
}

Status meta_put(sql::Database& db, const std::string& key, const std::string& value) {
    auto st = db.cached("INSERT INTO srv_meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, key).bind(2, value).run();
}

}  // namespace

Status create_bookkeeping(sql::Database& db) {
    // Tokens before this release had no family: they cannot take part in reuse detection, so
    // they go (every device logs in once more after the upgrade; nothing else is lost). What
    // they knew of which account uses which device id stays, in srv_devices (see below).
    auto token_cols = sql::existing_columns(db, "srv_tokens");
    if (!token_cols.ok()) return token_cols.status();
    const bool tokens_before_families = !token_cols->empty() && !token_cols->count("family");
    if (tokens_before_families) UBUZIMA_TRY(db.exec("ALTER TABLE srv_tokens RENAME TO srv_tokens_before_families"));
    // Columns added since the first release, before the statements that index them.
    for (const auto& [table, columns] : std::vector<std::pair<std::string, std::vector<std::string>>>{
             {"srv_feed", {"gone INTEGER NOT NULL DEFAULT 0"}},
             {"srv_users", {"updated_at INTEGER NOT NULL DEFAULT 0", "disabled INTEGER NOT NULL DEFAULT 0"}},
             {"srv_batches", {"created_at INTEGER NOT NULL DEFAULT 0"}},
             {"srv_conflicts", {"scope TEXT", "resolved_at INTEGER"}}}) {
        auto cols = sql::existing_columns(db, table);
        if (!cols.ok()) return cols.status();
        if (!cols->empty()) UBUZIMA_TRY(sql::add_missing_columns(db, table, columns, *cols));
    }
    UBUZIMA_TRY(db.exec(kBookkeepingSql));
    if (tokens_before_families) {
        // A device id stays with the account that used it (AuthService::login): claimed for the
        // user of its latest token, before anyone else can log in with it after the upgrade.
        UBUZIMA_TRY(db.exec(R"SQL(
            INSERT OR IGNORE INTO srv_devices (id, user_id, first_seen, last_seen)
                SELECT device_id, user_id, now, now FROM (
                    SELECT device_id, user_id, MAX(expires_at), CAST(strftime('%s', 'now') AS INTEGER) * 1000 AS now
                    FROM srv_tokens_before_families GROUP BY device_id);
            DROP TABLE srv_tokens_before_families;)SQL"));
    }
    UBUZIMA_TRY(db.exec(kUpgradedIndexesSql));
    // Batches and resolutions from releases that kept no time start their retention period now.
    return db.exec(R"SQL(
        UPDATE srv_batches SET created_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE created_at = 0;
        UPDATE srv_conflicts SET resolved_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
            WHERE status = 'resolved' AND resolved_at IS NULL;)SQL");
}

const std::vector<std::string>& server_extra_columns() {
    static const std::vector<std::string> cols = {
        "_deleted INTEGER NOT NULL DEFAULT 0", "_v TEXT NOT NULL DEFAULT '{}'", "_s TEXT NOT NULL DEFAULT '{}'",
        "_seq INTEGER NOT NULL DEFAULT 0",     "_scope TEXT",                 "_c TEXT NOT NULL DEFAULT '{}'",
        "_author TEXT NOT NULL DEFAULT ''",    "_moved INTEGER NOT NULL DEFAULT 0"};
    return cols;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path, sync::NodeId new_node,
                                                       const std::string& vfs, const schema::Schema* schema) {
    std::unique_ptr<SqliteStore> store(new SqliteStore());
    store->m_schema = schema ? schema : &schema::Schema::builtin();
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
    UBUZIMA_TRY(create_bookkeeping(m_db));
    // Before rows knew when they last moved, a row that left a device's facilities and came back
    // reached that device without the fields it had written itself. Such a store starts a new
    // feed epoch: every device pulls everything once more, and gets those fields back.
    std::set<std::string> upgraded;
    UBUZIMA_TRY(sql::ensure_tables(m_db, *m_schema, server_extra_columns(), &upgraded));
    auto epoch = meta_get(m_db, "feed_epoch");
    if (!epoch.ok()) return epoch.status();
    m_feed_epoch = epoch->value_or("");
    if (upgraded.count("_moved")) {
        m_feed_epoch = std::to_string(std::atoll(m_feed_epoch.c_str()) + 1);
        UBUZIMA_TRY(meta_put(m_db, "feed_epoch", m_feed_epoch));
    }
    for (const schema::TableDef& t : m_schema->tables()) m_tables.emplace(t.name, make_table_sql(t));

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

StoreStats SqliteStore::stats() const {
    StoreStats s;
    s.backend = "sqlite";
    s.pool_size = 1;
    s.pool_open = 1;
    s.pool_in_use = m_in_use.load();
    s.writes = m_writes.load();
    s.writer_wait_seconds = static_cast<double>(m_writer_wait_ns.load()) / 1e9;
    return s;
}

namespace {
// Counts the connection as in use while a callback holds it.
struct InUse {
    explicit InUse(std::atomic<int>& n) : m_n(n) { ++m_n; }
    ~InUse() { --m_n; }
    InUse(const InUse&) = delete;
    InUse& operator=(const InUse&) = delete;
    std::atomic<int>& m_n;
};
}  // namespace

Status SqliteStore::read(const std::function<Status(ReadTxn&)>& fn) {
    std::lock_guard<std::mutex> lock(m_mutex);
    InUse in_use(m_in_use);
    // A deferred transaction gives the callback one consistent snapshot of the WAL.
    UBUZIMA_TRY(m_db.exec("BEGIN"));
    SqliteTxn txn(m_db, *m_schema, m_tables, &m_saved_clock);
    Status s = fn(txn);
    const Status end = m_db.exec(s.ok() ? "COMMIT" : "ROLLBACK");
    if (!s.ok()) return s;
    return end;
}

Status SqliteStore::write(const std::function<Status(WriteTxn&)>& fn) {
    const auto waited_from = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(m_mutex);
    m_writer_wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - waited_from).count();
    ++m_writes;
    InUse in_use(m_in_use);
    auto tx = sql::Transaction::begin(m_db);
    if (!tx.ok()) return tx.status();
    const sync::Hlc clock_before = m_saved_clock;
    SqliteTxn txn(m_db, *m_schema, m_tables, &m_saved_clock);
    Status s = fn(txn);
    if (s.ok()) s = tx->commit();
    if (!s.ok()) m_saved_clock = clock_before;  // rolled back (by the Transaction destructor)
    return s;
}

}  // namespace ubuzima::server
