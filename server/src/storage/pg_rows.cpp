// Ubuzima Sync — MIT licence.
// The PostgreSQL transaction object: domain rows with per-field versions, the change feed,
// batches and the conflict journal (the same semantics as sqlite_rows.cpp).
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "storage/pg_txn.hpp"
#include "storage/row_codec.hpp"
#include "ubuzima/sync/flat_json.hpp"
#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

std::string deleted_key() { return std::string(sync::kDeletedField); }

std::string column_list(const schema::TableDef& table) {
    std::string list = "id";
    for (const schema::FieldDef& f : table.fields) list += ", " + pg::quote_ident(f.name);
    for (const std::string& h : pg_extra_column_names()) list += ", " + h;
    return list;
}

std::string select_row_sql(const schema::TableDef& table) {
    return "SELECT " + column_list(table) + " FROM " + pg::quote_ident(table.name) + " WHERE id = $1";
}

std::string select_rows_sql(const schema::TableDef& table) {
    return "SELECT " + column_list(table) + " FROM " + pg::quote_ident(table.name) + " WHERE id = ANY($1::text[])";
}

schema::Value column_value(const pg::PgResult& r, int row, int col, schema::FieldType type) {
    using schema::FieldType;
    if (r.is_null(row, col)) return nullptr;
    switch (type) {
        case FieldType::Int:
        case FieldType::Timestamp:
            return r.integer(row, col);
        case FieldType::Bool:
            return r.boolean(row, col);
        case FieldType::Real:
            return r.real(row, col);
        case FieldType::Json: {
            schema::Value v = schema::Value::parse(r.text(row, col), nullptr, false);
            return v.is_discarded() ? schema::Value(r.text(row, col)) : v;
        }
        default:
            return r.text(row, col);
    }
}

// One row of select_row_sql/select_rows_sql.
StoredRow decode_row(const schema::TableDef& table, const pg::PgResult& r, int i) {
    StoredRow out;
    out.id = r.text(i, 0);
    const int base = 1 + static_cast<int>(table.fields.size());
    read_versions(r.text(i, base + 1), out.versions);
    read_seqs(r.text(i, base + 2), out.seqs);
    for (std::size_t f = 0; f < table.fields.size(); ++f) {
        const schema::FieldDef& field = table.fields[f];
        if (out.versions.count(field.name))
            out.values[field.name] = column_value(r, i, 1 + static_cast<int>(f), field.type);
    }
    if (out.versions.count(deleted_key())) out.values[deleted_key()] = r.integer(i, base) != 0;
    out.seq = r.integer(i, base + 3);
    if (!r.is_null(i, base + 4)) out.scope = r.text(i, base + 4);
    read_versions(r.text(i, base + 5), out.overwrote);
    out.author = r.text(i, base + 6);
    out.moved_seq = r.integer(i, base + 7);
    return out;
}

constexpr const char* kConflictSelect =
    "SELECT id, tbl, row_id, field, kept_value, kept_version, lost_value, lost_version, status, created_at, "
    "resolved_by, resolved_version, scope FROM srv_conflicts";

ConflictRecord conflict_from_row(const pg::PgResult& r, int i) {
    auto parse_value = [](const std::string& text) {
        json j = json::parse(text, nullptr, false);
        return j.is_discarded() ? json(text) : j;
    };
    ConflictRecord c;
    c.id = r.integer(i, 0);
    c.table = r.text(i, 1);
    c.row_id = r.text(i, 2);
    c.field = r.text(i, 3);
    c.kept = {parse_value(r.text(i, 4)), sync::Version::parse(r.text(i, 5)).value_or(sync::Version{})};
    c.lost = {parse_value(r.text(i, 6)), sync::Version::parse(r.text(i, 7)).value_or(sync::Version{})};
    c.status = r.text(i, 8);
    c.created_at_ms = r.integer(i, 9);
    c.resolved_by = r.text(i, 10);
    c.resolved_version = r.text(i, 11);
    if (!r.is_null(i, 12)) c.scope = r.text(i, 12);
    return c;
}

}  // namespace

Status PgTxn::run(const std::string& sql, const pg::Params& params) {
    auto r = m_db.query(sql, params);
    return r.ok() ? Status() : r.status();
}

Result<std::optional<StoredRow>> PgTxn::read_row(const schema::TableDef& table, const std::string& id) {
    if (const StoredRow* pending = m_buffer.find_row(table.name, id)) return std::optional<StoredRow>(*pending);
    auto r = m_db.query(select_row_sql(table), pg::Params().add(id));
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return std::optional<StoredRow>();
    return std::optional<StoredRow>(decode_row(table, *r, 0));
}

Result<std::map<std::string, StoredRow>> PgTxn::read_rows(const schema::TableDef& table,
                                                          const std::vector<std::string>& ids) {
    std::map<std::string, StoredRow> out;
    std::vector<std::string> unwritten;
    for (const std::string& id : ids) {
        if (const StoredRow* pending = m_buffer.find_row(table.name, id)) out.emplace(id, *pending);
        else unwritten.push_back(id);
    }
    if (unwritten.empty()) return out;
    auto r = m_db.query(select_rows_sql(table), pg::Params().add_text_array(unwritten));
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
        StoredRow row = decode_row(table, *r, i);
        std::string id = row.id;
        out.emplace(std::move(id), std::move(row));
    }
    return out;
}

Result<std::int64_t> PgTxn::feed_head() {
    UBUZIMA_TRY(m_buffer.flush(m_db));
    auto r = m_db.query("SELECT COALESCE(MAX(seq), 0) FROM srv_feed");
    if (!r.ok()) return r.status();
    return r->integer(0, 0);
}

Result<std::vector<FeedEntry>> PgTxn::feed_after(std::int64_t after, const std::vector<std::string>* facilities,
                                                 int limit) {
    UBUZIMA_TRY(m_buffer.flush(m_db));
    auto r = facilities
                 ? m_db.query("SELECT seq, tbl, row_id, gone FROM srv_feed WHERE seq > $1 AND (scope IS NULL OR "
                              "scope IN (SELECT jsonb_array_elements_text($3::jsonb))) ORDER BY seq LIMIT $2",
                              pg::Params().add(after).add(limit).add(json(*facilities).dump()))
                 : m_db.query("SELECT seq, tbl, row_id, gone FROM srv_feed WHERE seq > $1 ORDER BY seq LIMIT $2",
                              pg::Params().add(after).add(limit));
    if (!r.ok()) return r.status();
    std::vector<FeedEntry> out;
    out.reserve(static_cast<std::size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i)
        out.push_back(FeedEntry{r->integer(i, 0), r->text(i, 1), r->text(i, 2), r->integer(i, 3) != 0});
    return out;
}

Result<std::int64_t> PgTxn::append_feed(const std::string& table, const std::string& row_id,
                                        const std::optional<std::string>& scope) {
    // Handed out while this transaction holds the writer lock (PgStore::write), so no later seq
    // can commit before this one; the entry itself goes with the buffer's flush.
    auto seq = m_buffer.next_seq(m_db);
    if (!seq.ok()) return seq.status();
    m_buffer.put_feed(table, row_id, *seq, scope);
    return *seq;
}

Status PgTxn::record_move(const std::string& table, const std::string& row_id, const std::optional<std::string>& from,
                          const std::optional<std::string>& to) {
    // Exit entries (gone = 1) are written at once: moves are rare, and the buffer holds only
    // live entries.
    const char* drop = "DELETE FROM srv_feed WHERE tbl = $1 AND row_id = $2 AND scope = $3 AND gone = 1";
    if (to) UBUZIMA_TRY(run(drop, pg::Params().add(table).add(row_id).add(*to)));
    if (!from) return {};
    UBUZIMA_TRY(run(drop, pg::Params().add(table).add(row_id).add(*from)));
    auto seq = m_buffer.next_seq(m_db);
    if (!seq.ok()) return seq.status();
    return run("INSERT INTO srv_feed (seq, tbl, row_id, scope, gone) VALUES ($1, $2, $3, $4, 1)",
               pg::Params().add(*seq).add(table).add(row_id).add(*from));
}

Status PgTxn::write_row(const schema::TableDef& table, const StoredRow& row) {
    m_buffer.put_row(table, row);
    return {};
}

Result<std::optional<std::string>> PgTxn::find_batch(const std::string& user_id, const std::string& batch_id) {
    auto r = m_db.query("SELECT result_json FROM srv_batches WHERE user_id = $1 AND batch_id = $2",
                        pg::Params().add(user_id).add(batch_id));
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return std::optional<std::string>();
    return r->optional_text(0, 0);
}

Status PgTxn::save_batch(const std::string& user_id, const std::string& batch_id, const std::string& result_json,
                         std::int64_t now_ms) {
    return run("INSERT INTO srv_batches (user_id, batch_id, result_json, created_at) VALUES ($1, $2, $3, $4)",
               pg::Params().add(user_id).add(batch_id).add(result_json).add(now_ms));
}

Result<std::int64_t> PgTxn::prune_batches(std::int64_t before_ms) {
    auto r = m_db.query("DELETE FROM srv_batches WHERE created_at < $1", pg::Params().add(before_ms));
    if (!r.ok()) return r.status();
    return r->affected();
}

Result<std::int64_t> PgTxn::prune_resolved_conflicts(std::int64_t before_ms) {
    auto r = m_db.query("DELETE FROM srv_conflicts WHERE status = 'resolved' AND resolved_at < $1",
                        pg::Params().add(before_ms));
    if (!r.ok()) return r.status();
    return r->affected();
}

Result<std::string> PgTxn::bump_feed_epoch() {
    auto current = m_db.query("SELECT value FROM srv_meta WHERE key = 'feed_epoch'");
    if (!current.ok()) return current.status();
    const std::string now = current->rows() ? current->text(0, 0) : "0";
    const std::string next = std::to_string(std::atoll(now.c_str()) + 1);
    UBUZIMA_TRY(run("INSERT INTO srv_meta (key, value) VALUES ('feed_epoch', $1) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    pg::Params().add(next)));
    return next;
}

Result<std::int64_t> PgTxn::insert_conflict(const ConflictRecord& c) {
    auto r = m_db.query(
        "INSERT INTO srv_conflicts (tbl, row_id, field, kept_value, kept_version, lost_value, lost_version, "
        "status, created_at, scope) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9) RETURNING id",
        pg::Params()
            .add(c.table)
            .add(c.row_id)
            .add(c.field)
            .add(c.kept.value.dump())
            .add(c.kept.version.to_string())
            .add(c.lost.value.dump())
            .add(c.lost.version.to_string())
            .add(c.created_at_ms)
            .add_optional(c.scope));
    if (!r.ok()) return r.status();
    return r->integer(0, 0);
}

Result<std::optional<ConflictRecord>> PgTxn::find_conflict(std::int64_t id) {
    auto r = m_db.query(std::string(kConflictSelect) + " WHERE id = $1", pg::Params().add(id));
    if (!r.ok()) return r.status();
    std::optional<ConflictRecord> out;
    if (r->rows()) out = conflict_from_row(*r, 0);
    return out;
}

Status PgTxn::mark_conflict_resolved(std::int64_t id, const std::string& by, const std::string& version,
                                     std::int64_t now_ms) {
    return run("UPDATE srv_conflicts SET status = 'resolved', resolved_by = $1, resolved_version = $2, "
               "resolved_at = $3 WHERE id = $4",
               pg::Params().add(by).add(version).add(now_ms).add(id));
}

Status PgTxn::save_clock(sync::Hlc last) {
    // Per node: each process keeps its own row; opening takes the maximum over all of them.
    UBUZIMA_TRY(run("UPDATE srv_nodes SET clock = GREATEST(clock, $2) WHERE node_id = $1",
                    pg::Params().add(sync::to_hex16(m_node)).add(static_cast<std::int64_t>(last))));
    m_clock = last;
    return {};
}

Result<std::vector<ConflictRecord>> PgTxn::list_conflicts(const std::string& status, std::int64_t after_id, int limit) {
    auto r = m_db.query(std::string(kConflictSelect) +
                            " WHERE ($1::text = '' OR status = $1::text) AND id > $2 ORDER BY id LIMIT $3",
                        pg::Params().add(status).add(after_id).add(limit));
    if (!r.ok()) return r.status();
    std::vector<ConflictRecord> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(conflict_from_row(*r, i));
    return out;
}

}  // namespace ubuzima::server
