// Ubuzima Sync — MIT licence.
// PgStore: opening (DDL under an advisory lock, node registration, feed epoch), transactions.
#include "storage/pg_store.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include "storage/pg_txn.hpp"
#include "ubuzima/sync/hlc.hpp"
#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

namespace {

// Advisory lock keys (one number space per database). The writer lock serialises every write
// transaction of every process (docs/ARCHITECTURE.md): feed seqs are handed out under it, so a
// seq is visible before any later one is handed out. The DDL lock keeps two processes that start
// together from creating the same tables at once.
constexpr const char* kWriterLockSql = "SELECT pg_advisory_xact_lock(7306916375113216001)";
constexpr const char* kDdlLockSql = "SELECT pg_advisory_xact_lock(7306916375113216002)";

// The same tables as SQLite's kBookkeepingSql, in PostgreSQL terms. srv_feed.seq comes from its
// sequence, drawn only under the writer lock; a rolled-back write leaves a gap, never a seq that
// becomes visible after a later one. srv_tokens.ord stands for SQLite's rowid (insertion order).
constexpr const char* kBookkeepingSql = R"SQL(
CREATE TABLE IF NOT EXISTS srv_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS srv_nodes (node_id TEXT PRIMARY KEY NOT NULL, started_at BIGINT NOT NULL,
    host TEXT NOT NULL, pid BIGINT NOT NULL, clock BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS srv_feed (seq BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL,
    row_id TEXT NOT NULL, scope TEXT, gone SMALLINT NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS srv_feed_live ON srv_feed (tbl, row_id) WHERE gone = 0;
CREATE UNIQUE INDEX IF NOT EXISTS srv_feed_exit ON srv_feed (tbl, row_id, scope) WHERE gone = 1;
CREATE TABLE IF NOT EXISTS srv_users (id TEXT PRIMARY KEY NOT NULL, username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL, role TEXT NOT NULL, facilities TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL DEFAULT 0, disabled SMALLINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS srv_families (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,
    device_id TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT,
    revoke_reason TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS srv_families_user ON srv_families (user_id);
CREATE INDEX IF NOT EXISTS srv_families_device ON srv_families (device_id);
CREATE TABLE IF NOT EXISTS srv_tokens (hash TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, family TEXT NOT NULL,
    user_id TEXT NOT NULL, device_id TEXT NOT NULL, parent TEXT NOT NULL DEFAULT '', issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL, used_at BIGINT, regranted SMALLINT NOT NULL DEFAULT 0, revoked_at BIGINT,
    ord BIGSERIAL NOT NULL);
CREATE INDEX IF NOT EXISTS srv_tokens_family ON srv_tokens (family);
CREATE INDEX IF NOT EXISTS srv_tokens_parent ON srv_tokens (parent) WHERE parent != '';
CREATE TABLE IF NOT EXISTS srv_devices (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,
    first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL, last_sync BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT, revoked_by TEXT NOT NULL DEFAULT '', reported_pending BIGINT NOT NULL DEFAULT -1,
    reported_rejected BIGINT NOT NULL DEFAULT -1, rejected_total BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS srv_throttle (key TEXT PRIMARY KEY NOT NULL, failures BIGINT NOT NULL,
    last_failure BIGINT NOT NULL, blocked_until BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS srv_batches (user_id TEXT NOT NULL, batch_id TEXT NOT NULL,
    result_json TEXT NOT NULL, created_at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (user_id, batch_id));
CREATE INDEX IF NOT EXISTS srv_batches_created ON srv_batches (created_at);
CREATE TABLE IF NOT EXISTS srv_conflicts (id BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, row_id TEXT NOT NULL,
    field TEXT NOT NULL, kept_value TEXT, kept_version TEXT NOT NULL, lost_value TEXT,
    lost_version TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', created_at BIGINT NOT NULL,
    resolved_by TEXT, resolved_version TEXT, scope TEXT, resolved_at BIGINT);
CREATE INDEX IF NOT EXISTS srv_conflicts_status ON srv_conflicts (status, id);
-- Rate-limit buckets (pg_rate_buckets.cpp): UNLOGGED, as they are worth no WAL; a crash
-- empties the table, which gives every key a full bucket once.
CREATE UNLOGGED TABLE IF NOT EXISTS srv_rate (key TEXT PRIMARY KEY NOT NULL, tokens DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL, ok BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS srv_audit (seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL, actor_user TEXT NOT NULL,
    actor_device TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL, outcome TEXT NOT NULL,
    address TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
-- Append-only for the server's own code (its role owns the table, so a REVOKE would not bind
-- it); an insider with the database can drop these, which is what the hash chain and an
-- exported head are for (docs/SECURITY.md).
CREATE OR REPLACE FUNCTION srv_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN RAISE EXCEPTION 'the audit log is append-only'; END$$;
CREATE OR REPLACE TRIGGER srv_audit_no_update BEFORE UPDATE ON srv_audit
    FOR EACH ROW EXECUTE FUNCTION srv_audit_append_only();
CREATE OR REPLACE TRIGGER srv_audit_no_delete BEFORE DELETE ON srv_audit
    FOR EACH ROW EXECUTE FUNCTION srv_audit_append_only();
CREATE OR REPLACE TRIGGER srv_audit_no_truncate BEFORE TRUNCATE ON srv_audit
    FOR EACH STATEMENT EXECUTE FUNCTION srv_audit_append_only();
)SQL";

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Result<std::optional<std::string>> meta_get(pg::Connection& db, const std::string& key) {
    auto r = db.query("SELECT value FROM srv_meta WHERE key = $1", pg::Params().add(key));
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return std::optional<std::string>();
    return std::optional<std::string>(r->text(0, 0));
}

Status meta_put(pg::Connection& db, const std::string& key, const std::string& value) {
    auto r = db.query("INSERT INTO srv_meta (key, value) VALUES ($1, $2) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      pg::Params().add(key).add(value));
    return r.ok() ? Status() : r.status();
}

std::string host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return "";
    return buf;
}

}  // namespace

const char* pg_type(schema::FieldType type) {
    using schema::FieldType;
    switch (type) {
        case FieldType::Int:
        case FieldType::Timestamp:
            return "BIGINT";
        case FieldType::Real:
            return "DOUBLE PRECISION";
        case FieldType::Bool:
            return "BOOLEAN";
        // Json stays the text the server wrote (jsonb would reorder and respace it, and refuses
        // \u0000); Date and Enum are validated strings.
        default:
            return "TEXT";
    }
}

const std::vector<std::string>& pg_extra_columns() {
    static const std::vector<std::string> cols = {
        "_deleted SMALLINT NOT NULL DEFAULT 0", "_v TEXT NOT NULL DEFAULT '{}'", "_s TEXT NOT NULL DEFAULT '{}'",
        "_seq BIGINT NOT NULL DEFAULT 0",       "_scope TEXT",                 "_c TEXT NOT NULL DEFAULT '{}'",
        "_author TEXT NOT NULL DEFAULT ''",     "_moved BIGINT NOT NULL DEFAULT 0"};
    return cols;
}

const std::vector<std::string>& pg_extra_column_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        for (const std::string& ddl : pg_extra_columns()) out.push_back(ddl.substr(0, ddl.find(' ')));
        return out;
    }();
    return names;
}

Status pg_create_bookkeeping(pg::Connection& db) { return db.exec(kBookkeepingSql); }

Status pg_ensure_tables(pg::Connection& db, const schema::Schema& schema) {
    auto existing = db.query_once(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()");
    if (!existing.ok()) return existing.status();
    std::map<std::string, std::set<std::string>> cols;
    for (int i = 0; i < existing->rows(); ++i) cols[existing->text(i, 0)].insert(existing->text(i, 1));
    for (const schema::TableDef& t : schema.tables()) {
        const std::string name = pg::quote_ident(t.name);
        auto have = cols.find(t.name);
        if (have == cols.end()) {
            std::string ddl = "CREATE TABLE IF NOT EXISTS " + name + " (id TEXT PRIMARY KEY NOT NULL";
            for (const schema::FieldDef& f : t.fields) ddl += ", " + pg::quote_ident(f.name) + " " + pg_type(f.type);
            for (const std::string& c : pg_extra_columns()) ddl += ", " + c;
            UBUZIMA_TRY(db.exec(ddl + ")"));
            continue;
        }
        // A newer schema's fields (and hidden columns a later release adds) join in place.
        for (const schema::FieldDef& f : t.fields)
            if (!have->second.count(f.name))
                UBUZIMA_TRY(db.exec("ALTER TABLE " + name + " ADD COLUMN IF NOT EXISTS " + pg::quote_ident(f.name) + " " +
                                    pg_type(f.type)));
        for (const std::string& c : pg_extra_columns())
            if (!have->second.count(c.substr(0, c.find(' '))))
                UBUZIMA_TRY(db.exec("ALTER TABLE " + name + " ADD COLUMN IF NOT EXISTS " + c));
    }
    return {};
}

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& url, const PgStoreOptions& options,
                                               const schema::Schema* schema) {
    std::unique_ptr<PgStore> store(new PgStore());
    store->m_schema = schema ? schema : &schema::Schema::builtin();
    store->m_pool = std::make_unique<pg::Pool>(url, options.pool_size, options.connect,
                                               std::chrono::milliseconds(options.checkout_timeout_ms));
    UBUZIMA_TRY(store->init());
    store->m_buckets = make_pg_rate_buckets(*store->m_pool);
    return store;
}

Status PgStore::init() {
    auto lease = m_pool->acquire();
    if (!lease.ok()) return lease.status();
    pg::Connection& db = **lease;
    // The cluster's identity: a dump restored into another cluster starts a new feed epoch (the
    // devices' cursors may be past the restored feed). pg_control_system() is for superusers and
    // roles granted it; without the right the check is skipped (an operator then bumps the epoch
    // by hand after a restore).
    std::optional<std::string> system_id;
    if (auto r = db.query_once("SELECT system_identifier::text FROM pg_control_system()"); r.ok() && r->rows() == 1)
        system_id = r->text(0, 0);

    UBUZIMA_TRY(db.exec("BEGIN"));
    Status s = [&]() -> Status {
        UBUZIMA_TRY(db.exec(kDdlLockSql));
        // And the writer lock: no write of a running process is in flight while the DDL takes
        // its table locks (a writer holding one table and waiting for another could otherwise
        // deadlock with it), and the epoch and node bookkeeping below is one more serial write.
        UBUZIMA_TRY(db.exec(kWriterLockSql));
        UBUZIMA_TRY(pg_create_bookkeeping(db));
        UBUZIMA_TRY(pg_ensure_tables(db, *m_schema));
        auto epoch = meta_get(db, "feed_epoch");
        if (!epoch.ok()) return epoch.status();
        m_feed_epoch = epoch->value_or("");
        if (system_id) {
            auto recorded = meta_get(db, "system_identifier");
            if (!recorded.ok()) return recorded.status();
            if (*recorded && **recorded != *system_id) {
                m_feed_epoch = std::to_string(std::atoll(m_feed_epoch.c_str()) + 1);
                UBUZIMA_TRY(meta_put(db, "feed_epoch", m_feed_epoch));
            }
            if (!*recorded || **recorded != *system_id) UBUZIMA_TRY(meta_put(db, "system_identifier", *system_id));
        }
        // A new node for this open: no two processes (nor two opens) stamp with the same id.
        for (int attempt = 0; attempt < 8 && m_node == 0; ++attempt) {
            const sync::NodeId candidate = sync::new_node_id();
            auto r = db.query("INSERT INTO srv_nodes (node_id, started_at, host, pid) VALUES ($1, $2, $3, $4) "
                              "ON CONFLICT (node_id) DO NOTHING",
                              pg::Params()
                                  .add(sync::to_hex16(candidate))
                                  .add(wall_ms())
                                  .add(host_name())
                                  .add(static_cast<std::int64_t>(getpid())));
            if (!r.ok()) return r.status();
            if (r->affected() == 1) m_node = candidate;
        }
        if (m_node == 0) return Status(ErrorCode::Internal, "postgresql: no free node id");
        // The HLC never goes back: the newest clock any node saved.
        auto clock = db.query("SELECT COALESCE(max(clock), 0) FROM srv_nodes");
        if (!clock.ok()) return clock.status();
        m_saved_clock = static_cast<sync::Hlc>(clock->integer(0, 0));
        return db.commit();
    }();
    if (!s.ok()) (void)db.exec("ROLLBACK");
    return s;
}

StoreStats PgStore::stats() const {
    const pg::Pool::Stats p = m_pool->stats();
    StoreStats s;
    s.backend = "postgresql";
    s.pool_size = p.size;
    s.pool_open = p.open;
    s.pool_in_use = p.in_use;
    s.pool_timeouts = p.timeouts;
    s.writes = m_writes.load();
    s.writer_wait_seconds = static_cast<double>(m_writer_wait_ns.load()) / 1e9;
    return s;
}

Status PgStore::read(const std::function<Status(ReadTxn&)>& fn) {
    auto lease = m_pool->acquire();
    if (!lease.ok()) return lease.status();
    pg::Connection& db = **lease;
    // One snapshot for the whole callback: a pull's feed page and its rows agree.
    if (Status begun = db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !begun.ok()) {
        (void)db.exec("ROLLBACK");
        return begun;
    }
    PgTxn txn(db, *m_schema, m_node);
    Status s = fn(txn);
    const Status end = s.ok() ? db.commit() : db.exec("ROLLBACK");
    if (!s.ok()) return s;
    return end;
}

Status PgStore::write(const std::function<Status(WriteTxn&)>& fn) {
    auto lease = m_pool->acquire();
    if (!lease.ok()) return lease.status();
    pg::Connection& db = **lease;
    // READ COMMITTED under the writer lock: every statement after the lock sees every earlier
    // writer's commit, and the lock is released only after this commit is visible.
    // How long writers queue for the lock is the cost of serialising them (the metrics show it).
    const auto waited_from = std::chrono::steady_clock::now();
    const Status locked = db.exec(std::string("BEGIN; ") + kWriterLockSql);
    m_writer_wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - waited_from).count();
    ++m_writes;
    if (!locked.ok()) {
        (void)db.exec("ROLLBACK");  // e.g. lock_timeout: another writer held the lock too long
        return locked;
    }
    PgTxn txn(db, *m_schema, m_node);
    Status s = fn(txn);
    if (s.ok()) s = txn.flush();
    if (s.ok()) s = db.commit();
    else (void)db.exec("ROLLBACK");
    if (s.ok())
        if (auto clock = txn.saved_clock()) {
            sync::Hlc seen = m_saved_clock.load();
            while (seen < *clock && !m_saved_clock.compare_exchange_weak(seen, *clock)) {
            }
        }
    return s;
}

}  // namespace ubuzima::server
