// Ubuzima Sync — MIT licence.
// Opening/upgrading the device file and the row-level primitives the writes and the sync share.
#include "storage/store.hpp"

#include <algorithm>

#include "ubuzima/sync/field_versions.hpp"
#include "ubuzima/sync/ids.hpp"
#include "ubuzima/sync/version.hpp"

namespace ubuzima::detail {

namespace {

// Internal tables. A new outbox seq is one more than the largest still present (rowid), so push
// order equals write order among the entries that exist; nothing refers to the seq of an entry
// after it is deleted. (AUTOINCREMENT, in files created before, also rewrote sqlite_sequence on
// every captured write: bench/performance_notes.md.)
constexpr const char* kInternalTables = R"sql(
CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY NOT NULL, value TEXT);
CREATE TABLE IF NOT EXISTS _outbox (
    seq INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL, row_id TEXT NOT NULL, version TEXT NOT NULL,
    fields TEXT NOT NULL, base TEXT NOT NULL DEFAULT '{}', batch_id TEXT);
CREATE INDEX IF NOT EXISTS _outbox_row ON _outbox (tbl, row_id);
-- Every sync round trip loads and deletes its batch by id: without this index each one scanned
-- the whole outbox, so a first push of N rows cost O(N^2 / batch_size) (bench: 100k rows).
-- Partial: a captured write has no batch yet, so it adds no entry here.
CREATE INDEX IF NOT EXISTS _outbox_batch ON _outbox (batch_id) WHERE batch_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS _journal (
    id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id TEXT NOT NULL, field TEXT NOT NULL,
    kept_value TEXT, kept_version TEXT, lost_value TEXT, lost_version TEXT,
    source TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _rejected (
    id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id TEXT NOT NULL, version TEXT NOT NULL,
    fields TEXT NOT NULL, code TEXT NOT NULL, message TEXT, created_at INTEGER NOT NULL);
)sql";

const std::vector<std::string>& extra_columns() {
    static const std::vector<std::string> cols = {"_deleted INTEGER NOT NULL DEFAULT 0",
                                                  "_v TEXT NOT NULL DEFAULT '{}'"};
    return cols;
}

// Files created before the batch index was partial: rebuilt once (it holds only in-flight rows).
Status upgrade_outbox_batch_index(sql::Database& db) {
    auto stmt = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '_outbox_batch'");
    if (!stmt.ok()) return stmt.status();
    auto has = stmt->step();
    if (!has.ok()) return has.status();
    const bool full = *has && stmt->column_text(0).find("WHERE") == std::string::npos;
    stmt->reset();  // a statement still reading sqlite_master would lock the DROP out
    return full ? db.exec("DROP INDEX _outbox_batch") : Status{};
}

Result<std::optional<std::string>> read_meta(sql::Database& db, std::string_view key) {
    return db.query_text("SELECT value FROM _meta WHERE key = ?", {key});
}

Status write_meta(sql::Database& db, std::string_view key, std::string_view value) {
    auto stmt = db.cached("INSERT INTO _meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!stmt.ok()) return stmt.status();
    return (*stmt)->bind(1, key).bind(2, value).run();
}

// The clock to resume from. A captured write does not rewrite _meta.hlc (that was two more
// upserts per commit): its version is in its outbox entry. Every sync saves _meta.hlc (a sync is
// what deletes entries, re-stamps them or resets a clock that ran ahead), and the versions issued
// since then grow with seq, so the newest entry holds the largest of them.
Result<sync::Hlc> last_issued_hlc(sql::Database& db) {
    auto hlc_text = read_meta(db, "hlc");
    if (!hlc_text.ok()) return hlc_text.status();
    sync::Hlc last = *hlc_text ? sync::parse_hex16(**hlc_text).value_or(0) : 0;
    auto stmt = db.prepare("SELECT version FROM _outbox ORDER BY seq DESC LIMIT 1");
    if (!stmt.ok()) return stmt.status();
    auto has = stmt->step();
    if (!has.ok()) return has.status();
    if (*has)
        if (auto newest = sync::Version::parse(stmt->column_text(0))) last = std::max(last, newest->hlc);
    return last;
}

}  // namespace

std::string field_list(const schema::TableDef& table) {
    std::string out;
    for (const schema::FieldDef& f : table.fields) {
        if (!out.empty()) out += ", ";
        out += sql::quote_ident(f.name);
    }
    return out;
}

Store::Store(sql::Database db, const schema::Schema* schema, sync::WallClock wall, sync::NodeId node, sync::Hlc last)
    : m_db(std::move(db)), m_schema(schema), m_wall(wall), m_clock(std::move(wall), last), m_node(node) {}

Result<std::unique_ptr<Store>> Store::open(const DatabaseOptions& options) {
    if (options.path.empty()) return Status(ErrorCode::InvalidArgument, "database path is empty");
    const schema::Schema* schema = options.schema ? options.schema : &schema::Schema::builtin();
    sql::OpenOptions open_options;
    open_options.synchronous = options.durability == Durability::Full ? "FULL" : "NORMAL";
    open_options.vfs = options.vfs;
    auto db = sql::Database::open(options.path, open_options);
    if (!db.ok()) return db.status();

    auto tx = sql::Transaction::begin(*db);
    if (!tx.ok()) return tx.status();
    // ensure_tables only adds tables and columns: a file written by an older schema is upgraded
    // in place and keeps every row.
    UBUZIMA_TRY(sql::ensure_tables(*db, *schema, extra_columns()));
    UBUZIMA_TRY(upgrade_outbox_batch_index(*db));
    UBUZIMA_TRY(db->exec(kInternalTables));

    auto node_text = read_meta(*db, "node_id");
    if (!node_text.ok()) return node_text.status();
    sync::NodeId node = 0;
    if (*node_text) {
        auto parsed = sync::parse_hex16(**node_text);
        if (!parsed) return Status(ErrorCode::Corrupt, "_meta.node_id is not 16 hex digits");
        node = *parsed;
    } else {
        node = options.node_id != 0 ? options.node_id : sync::new_node_id();
        UBUZIMA_TRY(write_meta(*db, "node_id", sync::to_hex16(node)));
    }
    auto last = last_issued_hlc(*db);
    if (!last.ok()) return last.status();
    auto offset_text = read_meta(*db, "clock_offset_ms");
    if (!offset_text.ok()) return offset_text.status();
    auto old_version = read_meta(*db, "schema_version");
    if (!old_version.ok()) return old_version.status();
    if (*old_version && **old_version != std::to_string(schema->version())) {
        // The pull cursor passed values of tables and fields this device did not know before the
        // upgrade; pulling again from the start fetches them (merging is idempotent).
        UBUZIMA_TRY(db->exec("DELETE FROM _meta WHERE key = 'cursor'"));
    }
    UBUZIMA_TRY(write_meta(*db, "schema_version", std::to_string(schema->version())));
    UBUZIMA_TRY(tx->commit());

    auto user_id = read_meta(*db, "user_id");
    if (!user_id.ok()) return user_id.status();
    sync::WallClock wall = options.wall_clock ? options.wall_clock : sync::WallClock(sync::system_wall_ms);
    std::unique_ptr<Store> store(new Store(std::move(*db), schema, std::move(wall), node, *last));
    store->m_user_id = user_id->value_or("");
    if (*offset_text) {
        try {
            store->m_clock.set_offset_ms(std::stoll(**offset_text));
        } catch (const std::exception&) {
            // A garbled offset only costs accuracy until the next sync measures it again.
        }
    }
    return store;
}

Result<std::optional<std::string>> Store::meta(std::string_view key) { return read_meta(m_db, key); }

Status Store::set_meta(std::string_view key, std::string_view value) { return write_meta(m_db, key, value); }

Status Store::save_clock() {
    UBUZIMA_TRY(write_meta(m_db, "hlc", sync::to_hex16(m_clock.last())));
    return write_meta(m_db, "clock_offset_ms", std::to_string(m_clock.offset_ms()));
}

Result<RowState> Store::load_row(const schema::TableDef& table, std::string_view id, bool with_versions) {
    sql::Statement*& cached = m_load_stmts[&table];
    if (!cached) {
        std::string sql = "SELECT _deleted, _v";
        for (const schema::FieldDef& f : table.fields) sql += ", " + sql::quote_ident(f.name);
        sql += " FROM " + sql::quote_ident(table.name) + " WHERE id = ?";
        auto stmt = m_db.cached(sql);
        if (!stmt.ok()) return stmt.status();
        cached = *stmt;
    }
    sql::Statement& s = *cached;
    s.reset();  // an earlier error path may have left it mid-step
    s.bind(1, id);
    auto has = s.step();
    if (!has.ok()) return has.status();
    RowState row;
    if (*has) {
        row.exists = true;
        row.deleted = s.column_int(0) != 0;
        if (with_versions) row.versions = sync::decode_field_versions(s.column_text(1));
        int col = 2;
        for (const schema::FieldDef& f : table.fields) row.values[f.name] = s.column_value(col++, f.type);
    }
    s.reset();
    return row;
}

Status Store::write_row(const schema::TableDef& table, std::string_view id, const FieldMap& columns,
                        const json& versions) {
    return write_row_text(table, id, columns, sync::encode_field_versions(versions));
}

Status Store::write_row_text(const schema::TableDef& table, std::string_view id,
                             const FieldMap& columns, const std::string& versions_text) {
    UBUZIMA_TRY(materialize_outbox(table, id));
    return store_row(table, id, columns, versions_text, /*upsert=*/true);
}

Status Store::insert_row_text(const schema::TableDef& table, std::string_view id,
                              const FieldMap& columns, const std::string& versions_text) {
    return store_row(table, id, columns, versions_text, /*upsert=*/false);
}

Status Store::store_row(const schema::TableDef& table, std::string_view id, const FieldMap& columns,
                        const std::string& versions_text, bool upsert) {
    // One statement per row; its text depends only on the set of columns, so one prepared
    // statement per write shape the app uses, found by the column names alone.
    m_key_buffer.assign(1, upsert ? 'u' : 'i');
    for (const auto& [name, value] : columns) {
        m_key_buffer += name;
        m_key_buffer += '\0';
    }
    auto found = m_row_write_stmts.find(std::make_pair(&table, m_key_buffer));
    if (found == m_row_write_stmts.end()) {
        std::string names = "id, _v";
        std::string params = "?, ?";
        std::string updates = "_v = excluded._v";
        for (const auto& [name, value] : columns) {
            const std::string q = sql::quote_ident(name);
            names += ", " + q;
            params += ", ?";
            updates += ", " + q + " = excluded." + q;
        }
        auto stmt = m_db.cached("INSERT INTO " + sql::quote_ident(table.name) + " (" + names + ") VALUES (" + params +
                                ")" + (upsert ? " ON CONFLICT(id) DO UPDATE SET " + updates : std::string()));
        if (!stmt.ok()) return stmt.status();
        found = m_row_write_stmts.emplace(std::make_pair(&table, m_key_buffer), *stmt).first;
    }
    sql::Statement& s = *found->second;
    s.reset();
    s.bind(1, id).bind(2, versions_text);
    int index = 3;
    for (const auto& [name, value] : columns) {
        if (name == kDeletedColumn) {
            s.bind(index++, std::int64_t{value.is_boolean() && value.get<bool>() ? 1 : 0});
        } else {
            const schema::FieldDef* f = table.field(name);
            s.bind_value(index++, f ? f->type : schema::FieldType::Text, value);
        }
    }
    return s.run();
}

Status Store::delete_row(const schema::TableDef& table, std::string_view id) {
    UBUZIMA_TRY(materialize_outbox(table, id));
    auto stmt = m_db.cached("DELETE FROM " + sql::quote_ident(table.name) + " WHERE id = ?");
    if (!stmt.ok()) return stmt.status();
    return (*stmt)->bind(1, id).run();
}

Result<json> Store::fields_at(const schema::TableDef& table, std::string_view id, std::string_view version) {
    auto row = load_row(table, id);
    if (!row.ok()) return row.status();
    if (!row->exists)
        return Status(ErrorCode::Corrupt, "an outbox entry of " + table.name + " " + std::string(id) +
                                              " refers to the row's fields, but the row is gone");
    json fields = json::object();
    for (const auto& [name, v] : row->versions.items()) {
        if (!v.is_string() || v.get_ref<const std::string&>() != version) continue;
        if (name == kDeletedColumn) fields[name] = row->deleted;
        else if (auto value = row->values.find(name); value != row->values.end()) fields[name] = std::move(*value);
        else fields[name] = nullptr;
    }
    return fields;
}

Result<json> Store::outbox_entry_fields(std::string_view table_name, std::string_view id, std::string_view version,
                                        const std::string& fields_text) {
    if (fields_text != kLazyFields) return json::parse(fields_text, nullptr, false);
    const schema::TableDef* table = m_schema->table(table_name);
    if (!table)
        return Status(ErrorCode::Corrupt, "an outbox entry refers to the fields of a row of unknown table '" +
                                              std::string(table_name) + "'");
    return fields_at(*table, id, version);
}

Status Store::materialize_outbox(const schema::TableDef& table, std::string_view id) {
    auto lazy = m_db.cached("SELECT seq, version FROM _outbox WHERE tbl = ? AND row_id = ? AND fields = ''");
    if (!lazy.ok()) return lazy.status();
    std::vector<std::pair<std::int64_t, std::string>> entries;
    UBUZIMA_TRY((*lazy)->bind(1, table.name).bind(2, id).each([&](const sql::Statement& q) {
        entries.emplace_back(q.column_int(0), q.column_text(1));
    }));
    for (const auto& [seq, version] : entries) {
        auto fields = fields_at(table, id, version);
        if (!fields.ok()) return fields.status();
        auto set = m_db.cached("UPDATE _outbox SET fields = ? WHERE seq = ?");
        if (!set.ok()) return set.status();
        UBUZIMA_TRY((*set)->bind(1, fields->dump()).bind(2, seq).run());
    }
    return {};
}

Result<bool> Store::in_outbox(std::string_view table, std::string_view id, std::string_view version) {
    auto stmt = m_db.cached("SELECT 1 FROM _outbox WHERE tbl = ? AND row_id = ? AND version = ? LIMIT 1");
    if (!stmt.ok()) return stmt.status();
    (*stmt)->bind(1, table).bind(2, id).bind(3, version);
    auto row = (*stmt)->step();
    (*stmt)->reset();
    return row;
}

Status Store::add_journal(const JournalEntry& e) {
    auto stmt = m_db.cached(
        "INSERT INTO _journal (tbl, row_id, field, kept_value, kept_version, lost_value, lost_version, source, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt.ok()) return stmt.status();
    return (*stmt)
        ->bind(1, e.table)
        .bind(2, e.row_id)
        .bind(3, e.field)
        .bind(4, e.kept_value.dump())
        .bind(5, e.kept_version)
        .bind(6, e.lost_value.dump())
        .bind(7, e.lost_version)
        .bind(8, e.source)
        .bind(9, m_clock.wall_ms())
        .run();
}

}  // namespace ubuzima::detail

namespace ubuzima::detail {

Status Store::set_user(std::string_view user_id, std::string_view username) {
    UBUZIMA_TRY(set_meta("user_id", user_id));
    UBUZIMA_TRY(set_meta("username", username));
    m_user_id = std::string(user_id);
    return {};
}

Status Store::reset_local_data(sync::NodeId new_node) {
    for (const schema::TableDef& t : m_schema->tables())
        if (t.cls != schema::TableClass::Reference) UBUZIMA_TRY(m_db.exec("DELETE FROM " + sql::quote_ident(t.name)));
    UBUZIMA_TRY(m_db.exec("DELETE FROM _outbox; DELETE FROM _journal; DELETE FROM _rejected; "
                          "DELETE FROM _meta WHERE key IN ('cursor', 'access_token', 'refresh_token', 'user_id', "
                          "'username')"));
    UBUZIMA_TRY(write_meta(m_db, "node_id", sync::to_hex16(new_node)));
    m_node = new_node;
    m_user_id.clear();
    return {};
}

Result<std::int64_t> Store::purge_outside(const std::vector<std::string>& facilities) {
    const std::string allowed = json(facilities).dump();
    std::int64_t dropped = 0;
    for (const schema::TableDef& t : m_schema->tables()) {
        if (!t.scope_field) continue;
        const std::string column = *t.scope_field == "id" ? "id" : sql::quote_ident(*t.scope_field);
        auto stmt = m_db.prepare("SELECT id FROM " + sql::quote_ident(t.name) + " WHERE " + column +
                                 " IS NULL OR " + column + " NOT IN (SELECT value FROM json_each(?))");
        if (!stmt.ok()) return stmt.status();
        stmt->bind(1, allowed);
        std::vector<std::string> ids;
        UBUZIMA_TRY(stmt->each([&](const sql::Statement& row) { ids.push_back(row.column_text(0)); }));
        // One by one: delete_row first copies a lazy outbox entry's fields out of the row.
        for (const std::string& id : ids) UBUZIMA_TRY(delete_row(t, id));
        dropped += static_cast<std::int64_t>(ids.size());
    }
    return dropped;
}

Status Store::unassign_batch(const std::string& id) {
    auto stmt = m_db.cached("UPDATE _outbox SET batch_id = NULL WHERE batch_id = ?");
    if (!stmt.ok()) return stmt.status();
    return (*stmt)->bind(1, id).run();
}

Result<std::int64_t> Store::rejected_count() {
    auto stmt = m_db.cached("SELECT count(*) FROM _rejected");
    if (!stmt.ok()) return stmt.status();
    auto row = (*stmt)->step();
    if (!row.ok()) return row.status();
    const std::int64_t n = *row ? (*stmt)->column_int(0) : 0;
    (*stmt)->reset();
    return n;
}

}  // namespace ubuzima::detail
