// Ubuzima Sync — MIT licence.
#include "storage/pg_write_buffer.hpp"

#include <nlohmann/json.hpp>

#include "storage/pg_txn.hpp"
#include "ubuzima/sync/flat_json.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

const char* kNulError = "postgresql: a text value holds a NUL character";

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

// The JSON value json_to_recordset turns into the column's type: the same conversions as the
// SQLite store's binding (a value of the wrong JSON type is stored as NULL, a JSON field as its
// text). Strings are checked for NUL, which PostgreSQL text cannot hold.
Result<json> column_json(schema::FieldType type, const schema::Value& v) {
    using schema::FieldType;
    if (v.is_null()) return json(nullptr);
    switch (type) {
        case FieldType::Int:
        case FieldType::Timestamp:
            return v.is_number() ? json(v.get<std::int64_t>()) : json(nullptr);
        case FieldType::Bool:
            return v.is_boolean() ? json(v.get<bool>()) : json(nullptr);
        case FieldType::Real:
            return v.is_number() ? json(v.get<double>()) : json(nullptr);
        default: {
            std::string text = type != FieldType::Json && v.is_string() ? v.get<std::string>() : v.dump();
            if (has_nul(text)) return Status(ErrorCode::InvalidValue, kNulError);
            return json(std::move(text));
        }
    }
}

// "name TYPE" of each hidden column, from its DDL ("_seq BIGINT NOT NULL DEFAULT 0").
std::string hidden_column_definitions() {
    std::string out;
    for (const std::string& ddl : pg_extra_columns()) {
        const std::size_t name_end = ddl.find(' ');
        const std::size_t type_end = ddl.find(' ', name_end + 1);
        out += ", " + ddl.substr(0, type_end);
    }
    return out;
}

std::string upsert_rows_sql(const schema::TableDef& table) {
    static const std::string hidden = hidden_column_definitions();
    std::string cols = "id", defs = "id TEXT", updates;
    for (const schema::FieldDef& f : table.fields) {
        const std::string name = pg::quote_ident(f.name);
        cols += ", " + name;
        defs += ", " + name + " " + pg_type(f.type);
        updates += (updates.empty() ? "" : ", ") + name + " = excluded." + name;
    }
    for (const std::string& h : pg_extra_column_names()) {
        cols += ", " + h;
        updates += (updates.empty() ? "" : ", ") + h + " = excluded." + h;
    }
    return "INSERT INTO " + pg::quote_ident(table.name) + " (" + cols + ") SELECT " + cols +
           " FROM json_to_recordset($1::json) AS r(" + defs + hidden + ") ON CONFLICT (id) DO UPDATE SET " + updates;
}

Result<json> row_json(const schema::TableDef& table, const StoredRow& row) {
    json out = json::object();
    if (has_nul(row.id)) return Status(ErrorCode::InvalidValue, kNulError);
    out["id"] = row.id;
    for (const schema::FieldDef& f : table.fields) {
        auto v = row.values.find(f.name);
        if (v == row.values.end()) {
            out[f.name] = nullptr;
            continue;
        }
        auto value = column_json(f.type, v->second);
        if (!value.ok()) return value.status();
        out[f.name] = std::move(*value);
    }
    auto del = row.values.find(std::string(sync::kDeletedField));
    out["_deleted"] = del != row.values.end() && del->second == true ? 1 : 0;
    sync::FlatObjectWriter text;
    for (const auto& [field, version] : row.versions) text.add_string(field, version.to_string());
    out["_v"] = text.finish();
    for (const auto& [field, seq] : row.seqs) text.add_integer(field, seq);
    out["_s"] = text.finish();
    out["_seq"] = row.seq;
    out["_scope"] = row.scope ? json(*row.scope) : json(nullptr);
    for (const auto& [field, version] : row.overwrote) text.add_string(field, version.to_string());
    out["_c"] = text.finish();
    out["_author"] = row.author;
    out["_moved"] = row.moved_seq;
    if (row.scope && has_nul(*row.scope)) return Status(ErrorCode::InvalidValue, kNulError);
    return out;
}

}  // namespace

Result<std::int64_t> PgWriteBuffer::next_seq(pg::Connection& db) {
    if (m_drawn != 0) return ++m_high;
    auto r = db.query("SELECT nextval(pg_get_serial_sequence('srv_feed', 'seq'))");
    if (!r.ok()) return r.status();
    m_drawn = m_high = r->integer(0, 0);
    return m_high;
}

void PgWriteBuffer::put_feed(const std::string& table, const std::string& row_id, std::int64_t seq,
                             const std::optional<std::string>& scope) {
    m_feed[{table, row_id}] = PendingFeed{seq, scope};
}

void PgWriteBuffer::put_row(const schema::TableDef& table, const StoredRow& row) {
    m_rows[{table.name, row.id}] = PendingRow{&table, row};
}

const StoredRow* PgWriteBuffer::find_row(const std::string& table, const std::string& id) const {
    auto it = m_rows.find({table, id});
    return it == m_rows.end() ? nullptr : &it->second.row;
}

Status PgWriteBuffer::flush(pg::Connection& db) {
    UBUZIMA_TRY(flush_rows(db));
    UBUZIMA_TRY(flush_feed(db));
    if (m_high > m_drawn) {
        auto r = db.query("SELECT setval(pg_get_serial_sequence('srv_feed', 'seq'), $1)", pg::Params().add(m_high));
        if (!r.ok()) return r.status();
        m_drawn = m_high;
    }
    return {};
}

Status PgWriteBuffer::flush_rows(pg::Connection& db) {
    // One statement per table; the map holds each row once, as an upsert must see it.
    auto it = m_rows.begin();
    while (it != m_rows.end()) {
        const schema::TableDef& table = *it->second.table;
        json doc = json::array();
        for (; it != m_rows.end() && it->first.first == table.name; ++it) {
            auto row = row_json(table, it->second.row);
            if (!row.ok()) return row.status();
            doc.push_back(std::move(*row));
        }
        auto r = db.query(upsert_rows_sql(table), pg::Params().add(doc.dump()));
        if (!r.ok()) return r.status();
    }
    m_rows.clear();
    return {};
}

Status PgWriteBuffer::flush_feed(pg::Connection& db) {
    if (m_feed.empty()) return {};
    std::vector<std::int64_t> seqs;
    std::vector<std::string> tables, ids;
    std::vector<std::optional<std::string>> scopes;
    for (const auto& [key, entry] : m_feed) {
        if (has_nul(key.second) || (entry.scope && has_nul(*entry.scope)))
            return Status(ErrorCode::InvalidValue, kNulError);
        seqs.push_back(entry.seq);
        tables.push_back(key.first);
        ids.push_back(key.second);
        scopes.push_back(entry.scope);
    }
    // The live entry of a row moves to its new seq in place (the partial unique index on
    // (tbl, row_id) WHERE gone = 0 is the conflict target).
    auto r = db.query(
        "INSERT INTO srv_feed (seq, tbl, row_id, scope, gone) SELECT s, t, r, sc, 0 FROM "
        "unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(s, t, r, sc) "
        "ON CONFLICT (tbl, row_id) WHERE gone = 0 DO UPDATE SET seq = excluded.seq, scope = excluded.scope",
        pg::Params().add_int_array(seqs).add_text_array(tables).add_text_array(ids).add_text_array(scopes));
    if (!r.ok()) return r.status();
    m_feed.clear();
    return {};
}

}  // namespace ubuzima::server
