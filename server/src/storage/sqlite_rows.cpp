// Ubuzima Sync — MIT licence.
// The SQLite transaction object: domain rows with per-field versions, the change feed, batches
// and the conflict journal.
#include "storage/sqlite_txn.hpp"

#include <charconv>
#include <cstdlib>

#include "storage/row_codec.hpp"
#include "ubuzima/sync/flat_json.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

constexpr int kHiddenColumns = 8;  // _deleted, _v, _s, _seq, _scope, _c, _author, _moved (after id and the fields)

std::string deleted_key() { return std::string(sync::kDeletedField); }

}  // namespace

// `_v` / `_c`: field -> version. The compact text the store writes is read without building a
// JSON tree (sync/flat_json.hpp: that tree was ~half of a pushed or pulled row's server cost);
// anything else through the parser, with the same result.
void read_versions(const std::string& text, std::map<std::string, sync::Version>& out) {
    if (auto members = sync::read_flat_object(text)) {
        for (const sync::FlatMember& m : *members)
            if (m.is_string)
                if (auto v = sync::Version::parse(m.value)) out.insert_or_assign(out.end(), std::string(m.key), *v);
        return;
    }
    const json parsed = json::parse(text, nullptr, false);
    if (!parsed.is_object()) return;
    for (auto it = parsed.begin(); it != parsed.end(); ++it) {
        if (!it.value().is_string()) continue;
        if (auto v = sync::Version::parse(it.value().get<std::string>())) out[it.key()] = *v;
    }
}

// `_s`: field -> server seq of its last change.
void read_seqs(const std::string& text, std::map<std::string, std::int64_t>& out) {
    if (auto members = sync::read_flat_object(text)) {
        std::map<std::string, std::int64_t> fast;
        bool ok = true;
        for (const sync::FlatMember& m : *members) {
            if (m.is_string) continue;
            std::int64_t n = 0;
            const char* last = m.value.data() + m.value.size();
            const auto [end, ec] = std::from_chars(m.value.data(), last, n);
            if (ec != std::errc() || end != last) {
                ok = false;  // out of range: the parser's reading decides
                break;
            }
            fast.insert_or_assign(fast.end(), std::string(m.key), n);
        }
        if (ok) {
            out = std::move(fast);
            return;
        }
    }
    const json parsed = json::parse(text, nullptr, false);
    if (!parsed.is_object()) return;
    for (auto it = parsed.begin(); it != parsed.end(); ++it)
        if (it.value().is_number_integer()) out[it.key()] = it.value().get<std::int64_t>();
}

namespace {

// SELECT list read by conflict_from_row().
constexpr const char* kConflictSelect =
    "SELECT id, tbl, row_id, field, kept_value, kept_version, lost_value, lost_version, status, created_at, "
    "resolved_by, resolved_version, scope FROM srv_conflicts";

ConflictRecord conflict_from_row(const sql::Statement& s) {
    // Values were written by dump() of parsed, depth-bounded input; a damaged one reads as text.
    auto parse_value = [](const std::string& text) {
        json j = json::parse(text, nullptr, false);
        return j.is_discarded() ? json(text) : j;
    };
    ConflictRecord c;
    c.id = s.column_int(0);
    c.table = s.column_text(1);
    c.row_id = s.column_text(2);
    c.field = s.column_text(3);
    c.kept = {parse_value(s.column_text(4)), sync::Version::parse(s.column_text(5)).value_or(sync::Version{})};
    c.lost = {parse_value(s.column_text(6)), sync::Version::parse(s.column_text(7)).value_or(sync::Version{})};
    c.status = s.column_text(8);
    c.created_at_ms = s.column_int(9);
    c.resolved_by = s.column_text(10);
    c.resolved_version = s.column_text(11);
    if (!s.is_null(12)) c.scope = s.column_text(12);
    return c;
}

}  // namespace

Result<std::optional<StoredRow>> SqliteTxn::read_row(const schema::TableDef& table, const std::string& id) {
    auto sqls = m_tables.find(table.name);
    if (sqls == m_tables.end()) return Status(ErrorCode::Internal, "no SQL for table " + table.name);
    auto st = m_db.cached(sqls->second.select_row);
    if (!st.ok()) return st.status();
    sql::Statement& s = **st;
    s.bind(1, id);
    auto row = s.step();
    if (!row.ok()) {
        s.reset();
        return row.status();
    }
    if (!*row) {
        s.reset();
        return std::optional<StoredRow>();
    }
    StoredRow out;
    out.id = id;
    const int base = 1 + static_cast<int>(table.fields.size());
    read_versions(s.column_text(base + 1), out.versions);
    read_seqs(s.column_text(base + 2), out.seqs);
    // Only fields that were ever written carry a value: a NULL column of a never-written field
    // is not the same as a field explicitly cleared to null.
    for (std::size_t i = 0; i < table.fields.size(); ++i) {
        const schema::FieldDef& f = table.fields[i];
        if (out.versions.count(f.name)) out.values[f.name] = s.column_value(1 + static_cast<int>(i), f.type);
    }
    if (out.versions.count(deleted_key())) out.values[deleted_key()] = s.column_int(base) != 0;
    out.seq = s.column_int(base + 3);
    if (!s.is_null(base + 4)) out.scope = s.column_text(base + 4);
    read_versions(s.column_text(base + 5), out.overwrote);
    out.author = s.column_text(base + 6);
    out.moved_seq = s.column_int(base + 7);
    s.reset();
    return std::optional<StoredRow>(std::move(out));
}

Result<std::int64_t> SqliteTxn::feed_head() {
    auto st = m_db.cached("SELECT COALESCE(MAX(seq), 0) FROM srv_feed");
    if (!st.ok()) return st.status();
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    const std::int64_t head = *row ? (*st)->column_int(0) : 0;
    (*st)->reset();
    return head;
}

Result<std::vector<FeedEntry>> SqliteTxn::feed_after(std::int64_t after, const std::vector<std::string>* facilities,
                                          int limit) {
    auto st = facilities
                  ? m_db.cached("SELECT seq, tbl, row_id, gone FROM srv_feed WHERE seq > ?1 AND (scope IS NULL OR "
                                "scope IN (SELECT value FROM json_each(?3))) ORDER BY seq LIMIT ?2")
                  : m_db.cached("SELECT seq, tbl, row_id, gone FROM srv_feed WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    if (!st.ok()) return st.status();
    sql::Statement& s = **st;
    s.bind(1, after).bind(2, limit);
    if (facilities) s.bind(3, json(*facilities).dump());
    std::vector<FeedEntry> out;
    UBUZIMA_TRY(s.each([&](const sql::Statement& row) {
        out.push_back(FeedEntry{row.column_int(0), row.column_text(1), row.column_text(2), row.column_int(3) != 0});
    }));
    return out;
}

Result<std::int64_t> SqliteTxn::append_feed(const std::string& table, const std::string& row_id,
                                 const std::optional<std::string>& scope) {
    auto del = m_db.cached("DELETE FROM srv_feed WHERE tbl = ? AND row_id = ? AND gone = 0");
    if (!del.ok()) return del.status();
    UBUZIMA_TRY((*del)->bind(1, table).bind(2, row_id).run());
    auto ins = m_db.cached("INSERT INTO srv_feed (tbl, row_id, scope) VALUES (?, ?, ?)");
    if (!ins.ok()) return ins.status();
    (*ins)->bind(1, table).bind(2, row_id);
    if (scope) (*ins)->bind(3, *scope);
    else (*ins)->bind_null(3);
    UBUZIMA_TRY((*ins)->run());
    return m_db.last_insert_rowid();
}

Status SqliteTxn::record_move(const std::string& table, const std::string& row_id, const std::optional<std::string>& from,
                   const std::optional<std::string>& to) {
    if (to) UBUZIMA_TRY(drop_exit(table, row_id, *to));
    if (!from) return {};
    UBUZIMA_TRY(drop_exit(table, row_id, *from));
    auto ins = m_db.cached("INSERT INTO srv_feed (tbl, row_id, scope, gone) VALUES (?, ?, ?, 1)");
    if (!ins.ok()) return ins.status();
    return (*ins)->bind(1, table).bind(2, row_id).bind(3, *from).run();
}

Status SqliteTxn::write_row(const schema::TableDef& table, const StoredRow& row) {
    auto sqls = m_tables.find(table.name);
    if (sqls == m_tables.end()) return Status(ErrorCode::Internal, "no SQL for table " + table.name);
    auto st = m_db.cached(sqls->second.upsert_row);
    if (!st.ok()) return st.status();
    sql::Statement& s = **st;
    s.bind(1, row.id);
    int i = 2;
    for (const schema::FieldDef& f : table.fields) {
        auto v = row.values.find(f.name);
        if (v == row.values.end()) s.bind_null(i);
        else s.bind_value(i, f.type, v->second);
        ++i;
    }
    auto del = row.values.find(deleted_key());
    s.bind(i++, std::int64_t{del != row.values.end() && del->second == true ? 1 : 0});
    // The same texts json::dump() wrote for these maps, without building JSON trees.
    sync::FlatObjectWriter text;
    for (const auto& [field, version] : row.versions) text.add_string(field, version.to_string());
    s.bind(i++, text.finish());
    for (const auto& [field, seq] : row.seqs) text.add_integer(field, seq);
    s.bind(i++, text.finish());
    s.bind(i++, row.seq);
    if (row.scope) s.bind(i++, *row.scope);
    else s.bind_null(i++);
    for (const auto& [field, version] : row.overwrote) text.add_string(field, version.to_string());
    s.bind(i++, text.finish());
    s.bind(i++, row.author);
    s.bind(i, row.moved_seq);
    return s.run();
}

Result<std::optional<std::string>> SqliteTxn::find_batch(const std::string& user_id, const std::string& batch_id) {
    return m_db.query_text("SELECT result_json FROM srv_batches WHERE user_id = ? AND batch_id = ?", {user_id, batch_id});
}

Status SqliteTxn::save_batch(const std::string& user_id, const std::string& batch_id, const std::string& result_json,
                             std::int64_t now_ms) {
    auto st = m_db.cached("INSERT INTO srv_batches (user_id, batch_id, result_json, created_at) VALUES (?, ?, ?, ?)");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, user_id).bind(2, batch_id).bind(3, result_json).bind(4, now_ms).run();
}

Result<std::int64_t> SqliteTxn::prune_batches(std::int64_t before_ms) {
    auto st = m_db.cached("DELETE FROM srv_batches WHERE created_at < ?");
    if (!st.ok()) return st.status();
    UBUZIMA_TRY((*st)->bind(1, before_ms).run());
    return static_cast<std::int64_t>(m_db.changes());
}

Result<std::int64_t> SqliteTxn::prune_resolved_conflicts(std::int64_t before_ms) {
    auto st = m_db.cached("DELETE FROM srv_conflicts WHERE status = 'resolved' AND resolved_at < ?");
    if (!st.ok()) return st.status();
    UBUZIMA_TRY((*st)->bind(1, before_ms).run());
    return static_cast<std::int64_t>(m_db.changes());
}

Result<std::string> SqliteTxn::bump_feed_epoch() {
    auto current = m_db.query_text("SELECT value FROM srv_meta WHERE key = 'feed_epoch'", {});
    if (!current.ok()) return current.status();
    const std::string next = std::to_string(std::atoll(current->value_or("0").c_str()) + 1);
    auto st = m_db.cached("INSERT INTO srv_meta (key, value) VALUES ('feed_epoch', ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!st.ok()) return st.status();
    UBUZIMA_TRY((*st)->bind(1, next).run());
    return next;
}

Result<std::int64_t> SqliteTxn::insert_conflict(const ConflictRecord& c) {
    auto st = m_db.cached(
        "INSERT INTO srv_conflicts (tbl, row_id, field, kept_value, kept_version, lost_value, lost_version, "
        "status, created_at, scope) VALUES (?,?,?,?,?,?,?,'open',?,?)");
    if (!st.ok()) return st.status();
    UBUZIMA_TRY((*st)
                    ->bind(1, c.table)
                    .bind(2, c.row_id)
                    .bind(3, c.field)
                    .bind(4, c.kept.value.dump())
                    .bind(5, c.kept.version.to_string())
                    .bind(6, c.lost.value.dump())
                    .bind(7, c.lost.version.to_string())
                    .bind(8, c.created_at_ms)
                    .bind_optional(9, c.scope)
                    .run());
    return m_db.last_insert_rowid();
}

Result<std::optional<ConflictRecord>> SqliteTxn::find_conflict(std::int64_t id) {
    auto st = m_db.cached(std::string(kConflictSelect) + " WHERE id = ?");
    if (!st.ok()) return st.status();
    (*st)->bind(1, id);
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    std::optional<ConflictRecord> out;
    if (*row) out = conflict_from_row(**st);
    (*st)->reset();
    return out;
}

Status SqliteTxn::mark_conflict_resolved(std::int64_t id, const std::string& by, const std::string& version,
                                         std::int64_t now_ms) {
    auto st = m_db.cached(
        "UPDATE srv_conflicts SET status = 'resolved', resolved_by = ?, resolved_version = ?, resolved_at = ? "
        "WHERE id = ?");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, by).bind(2, version).bind(3, now_ms).bind(4, id).run();
}

Status SqliteTxn::save_clock(sync::Hlc last) {
    auto st = m_db.cached("INSERT INTO srv_meta (key, value) VALUES ('clock', ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!st.ok()) return st.status();
    UBUZIMA_TRY((*st)->bind(1, sync::to_hex16(last)).run());
    *m_saved_clock = last;
    return {};
}

Result<std::vector<ConflictRecord>> SqliteTxn::list_conflicts(const std::string& status, std::int64_t after_id,
                                                              int limit) {
    auto st = m_db.cached(std::string(kConflictSelect) + " WHERE (?1 = '' OR status = ?1) AND id > ?2 ORDER BY id LIMIT ?3");
    if (!st.ok()) return st.status();
    (*st)->bind(1, status).bind(2, after_id).bind(3, limit);
    std::vector<ConflictRecord> out;
    UBUZIMA_TRY((*st)->each([&](const sql::Statement& row) { out.push_back(conflict_from_row(row)); }));
    return out;
}

Status SqliteTxn::drop_exit(const std::string& table, const std::string& row_id, const std::string& scope) {
    auto del = m_db.cached("DELETE FROM srv_feed WHERE tbl = ? AND row_id = ? AND scope = ? AND gone = 1");
    if (!del.ok()) return del.status();
    return (*del)->bind(1, table).bind(2, row_id).bind(3, scope).run();
}

TableSql make_table_sql(const schema::TableDef& table) {
    std::vector<std::string> cols{"id"};
    for (const schema::FieldDef& f : table.fields) cols.push_back(sql::quote_ident(f.name));
    for (const char* hidden : {"_deleted", "_v", "_s", "_seq", "_scope", "_c", "_author", "_moved"}) cols.emplace_back(hidden);
    static_assert(kHiddenColumns == 8, "hidden column list and count agree");
    std::string list, params, updates;
    for (std::size_t i = 0; i < cols.size(); ++i) {
        list += (i ? ", " : "") + cols[i];
        params += i ? ", ?" : "?";
        if (i) updates += (i > 1 ? ", " : "") + cols[i] + " = excluded." + cols[i];
    }
    const std::string name = sql::quote_ident(table.name);
    return TableSql{"SELECT " + list + " FROM " + name + " WHERE id = ?",
                    "INSERT INTO " + name + " (" + list + ") VALUES (" + params + ") ON CONFLICT(id) DO UPDATE SET " +
                        updates};
}



}  // namespace ubuzima::server
