// Ubuzima Sync — MIT licence.
// Local reads: rows by id, equality queries, and the outbox/journal/rejection views.
#include "storage/store.hpp"

namespace ubuzima::detail {

namespace {

json row_to_json(const schema::TableDef& table, const sql::Statement& s) {
    json row = json::object();
    row["id"] = s.column_text(0);
    int col = 1;
    for (const schema::FieldDef& f : table.fields) row[f.name] = s.column_value(col++, f.type);
    return row;
}

// A filter value must have the column's representation, or `=` would silently match nothing.
bool bindable(schema::FieldType type, const json& v) {
    using schema::FieldType;
    switch (type) {
        case FieldType::Int:
        case FieldType::Timestamp:
            return v.is_number_integer() || v.is_number_unsigned();
        case FieldType::Real:
            return v.is_number();
        case FieldType::Bool:
            return v.is_boolean();
        case FieldType::Json:
            return true;
        default:
            return v.is_string();
    }
}

json parse_or_text(const std::string& text) {
    json v = json::parse(text, nullptr, false);
    return v.is_discarded() ? json(text) : v;
}

}  // namespace

Result<std::optional<json>> Store::get(std::string_view table_name, std::string_view id) {
    const schema::TableDef* table = m_schema->table(table_name);
    if (!table) return Status(ErrorCode::UnknownTable, "no table '" + std::string(table_name) + "'");
    auto stmt = m_db.cached("SELECT id" + std::string(table->fields.empty() ? "" : ", ") + field_list(*table) +
                            " FROM " + sql::quote_ident(table->name) + " WHERE id = ? AND _deleted = 0");
    if (!stmt.ok()) return stmt.status();
    sql::Statement& s = **stmt;
    s.bind(1, id);
    auto has = s.step();
    if (!has.ok()) return has.status();
    std::optional<json> out;
    if (*has) out = row_to_json(*table, s);
    s.reset();
    return out;
}

Result<std::vector<json>> Store::query(std::string_view table_name, const json& equals,
                                       std::optional<std::int64_t> limit, std::int64_t offset) {
    const schema::TableDef* table = m_schema->table(table_name);
    if (!table) return Status(ErrorCode::UnknownTable, "no table '" + std::string(table_name) + "'");
    if (!equals.is_null() && !equals.is_object())
        return Status(ErrorCode::InvalidArgument, "the query filter must be a JSON object or null");
    if ((limit && *limit < 0) || offset < 0) return Status(ErrorCode::InvalidArgument, "limit and offset must be >= 0");

    std::string sql = "SELECT id" + std::string(table->fields.empty() ? "" : ", ") + field_list(*table) + " FROM " +
                      sql::quote_ident(table->name) + " WHERE _deleted = 0";
    struct Param {
        schema::FieldType type;
        const json* value;
    };
    std::vector<Param> params;
    if (equals.is_object()) {
        for (const auto& [name, value] : equals.items()) {
            schema::FieldType type = schema::FieldType::Text;
            if (name != "id") {
                const schema::FieldDef* f = table->field(name);
                if (!f) return Status(ErrorCode::UnknownField, table->name + " has no field '" + name + "'");
                type = f->type;
            }
            if (value.is_null()) {
                sql += " AND " + sql::quote_ident(name) + " IS NULL";
                continue;
            }
            if (!bindable(type, value))
                return Status(ErrorCode::InvalidArgument, "filter value for '" + name + "' has the wrong type");
            sql += " AND " + sql::quote_ident(name) + " = ?";
            params.push_back({type, &value});
        }
    }
    sql += " ORDER BY id LIMIT ? OFFSET ?";
    auto stmt = m_db.cached(sql);
    if (!stmt.ok()) return stmt.status();
    sql::Statement& s = **stmt;
    int index = 1;
    for (const Param& p : params) s.bind_value(index++, p.type, *p.value);
    s.bind(index++, limit ? *limit : std::int64_t{-1});  // SQLite: a negative limit means none
    s.bind(index, offset);
    std::vector<json> rows;
    UBUZIMA_TRY(s.each([&](const sql::Statement& row) { rows.push_back(row_to_json(*table, row)); }));
    return rows;
}

Result<std::int64_t> Store::pending_count() {
    auto stmt = m_db.cached("SELECT COUNT(*) FROM _outbox");
    if (!stmt.ok()) return stmt.status();
    auto has = (*stmt)->step();
    if (!has.ok()) return has.status();
    const std::int64_t n = (*stmt)->column_int(0);
    (*stmt)->reset();
    return n;
}

Result<json> Store::journal() {
    auto stmt = m_db.cached(
        "SELECT id, tbl, row_id, field, kept_value, kept_version, lost_value, lost_version, source, created_at "
        "FROM _journal ORDER BY id");
    if (!stmt.ok()) return stmt.status();
    sql::Statement& s = **stmt;
    json out = json::array();
    UBUZIMA_TRY(s.each([&](const sql::Statement& row) {
        out.push_back(json{{"id", row.column_int(0)},
                           {"table", row.column_text(1)},
                           {"row_id", row.column_text(2)},
                           {"field", row.column_text(3)},
                           {"kept_value", parse_or_text(row.column_text(4))},
                           {"kept_version", row.column_text(5)},
                           {"lost_value", parse_or_text(row.column_text(6))},
                           {"lost_version", row.column_text(7)},
                           {"source", row.column_text(8)},
                           {"created_at", row.column_int(9)}});
    }));
    return out;
}

Result<json> Store::rejected() {
    auto stmt = m_db.cached(
        "SELECT id, tbl, row_id, version, fields, code, message, created_at FROM _rejected ORDER BY id");
    if (!stmt.ok()) return stmt.status();
    sql::Statement& s = **stmt;
    json out = json::array();
    UBUZIMA_TRY(s.each([&](const sql::Statement& row) {
        out.push_back(json{{"id", row.column_int(0)},
                           {"table", row.column_text(1)},
                           {"row_id", row.column_text(2)},
                           {"version", row.column_text(3)},
                           {"fields", parse_or_text(row.column_text(4))},
                           {"code", row.column_text(5)},
                           {"message", row.column_text(6)},
                           {"created_at", row.column_int(7)}});
    }));
    return out;
}

}  // namespace ubuzima::detail
