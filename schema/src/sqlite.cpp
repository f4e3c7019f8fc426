// Ubuzima Sync — MIT licence.
// RAII SQLite wrapper.
#include "ubuzima/schema/sqlite.hpp"

#include <sqlite3.h>

#include <set>

namespace ubuzima::sql {

Status status_from_sqlite(int rc, sqlite3* db, std::string_view context) {
    const std::string msg = std::string(context) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    switch (rc & 0xFF) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
            return {};
        case SQLITE_FULL:
            return Status(ErrorCode::DiskFull, msg);
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return Status(ErrorCode::Busy, msg);
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            return Status(ErrorCode::Corrupt, msg);
        case SQLITE_IOERR:
            // SQLite reports some out-of-space conditions as I/O errors on write.
            return Status(ErrorCode::IoError, msg);
        default:
            return Status(ErrorCode::IoError, msg);
    }
}

std::string quote_ident(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

// ---- Statement ----

Statement::~Statement() { sqlite3_finalize(m_stmt); }

Statement::Statement(Statement&& other) noexcept : m_db(other.m_db), m_stmt(other.m_stmt) {
    other.m_db = nullptr;
    other.m_stmt = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(m_stmt);
        m_db = other.m_db;
        m_stmt = other.m_stmt;
        other.m_db = nullptr;
        other.m_stmt = nullptr;
    }
    return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
    sqlite3_bind_int64(m_stmt, index, value);
    return *this;
}

Statement& Statement::bind(int index, double value) {
    sqlite3_bind_double(m_stmt, index, value);
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    sqlite3_bind_text(m_stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bind_null(int index) {
    sqlite3_bind_null(m_stmt, index);
    return *this;
}

Statement& Statement::bind_value(int index, schema::FieldType type, const schema::Value& v) {
    using schema::FieldType;
    if (v.is_null()) return bind_null(index);
    switch (type) {
        case FieldType::Int:
        case FieldType::Timestamp:
            return v.is_number() ? bind(index, v.get<std::int64_t>()) : bind_null(index);
        case FieldType::Bool:
            return v.is_boolean() ? bind(index, std::int64_t{v.get<bool>() ? 1 : 0}) : bind_null(index);
        case FieldType::Real:
            return v.is_number() ? bind(index, v.get<double>()) : bind_null(index);
        case FieldType::Json:
            return bind(index, v.dump());
        default:
            return v.is_string() ? bind(index, v.get_ref<const std::string&>()) : bind(index, v.dump());
    }
}

Result<bool> Statement::step() {
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return status_from_sqlite(rc, m_db, "step");
}

Status Statement::run() {
    for (;;) {
        auto r = step();
        if (!r.ok()) {
            reset();
            return r.status();
        }
        if (!*r) break;
    }
    reset();
    return {};
}

void Statement::reset() {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
}

bool Statement::is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }
std::int64_t Statement::column_int(int col) const { return sqlite3_column_int64(m_stmt, col); }
double Statement::column_real(int col) const { return sqlite3_column_double(m_stmt, col); }

std::string Statement::column_text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, col));
    if (!p) return {};
    return std::string(p, static_cast<size_t>(sqlite3_column_bytes(m_stmt, col)));
}

schema::Value Statement::column_value(int col, schema::FieldType type) const {
    using schema::FieldType;
    if (is_null(col)) return nullptr;
    switch (type) {
        case FieldType::Int:
        case FieldType::Timestamp:
            return column_int(col);
        case FieldType::Bool:
            return column_int(col) != 0;
        case FieldType::Real:
            return column_real(col);
        case FieldType::Json: {
            schema::Value v = schema::Value::parse(column_text(col), nullptr, false);
            return v.is_discarded() ? schema::Value(column_text(col)) : v;
        }
        default:
            return column_text(col);
    }
}

// ---- Database ----

Database::~Database() { close(); }

Database::Database(Database&& other) noexcept : m_db(other.m_db), m_cache(std::move(other.m_cache)) {
    other.m_db = nullptr;
}

Database& Database::operator=(Database&& other) noexcept {
    if (this != &other) {
        close();
        m_db = other.m_db;
        m_cache = std::move(other.m_cache);
        other.m_db = nullptr;
    }
    return *this;
}

void Database::close() {
    m_cache.clear();  // statements must be finalized before the connection closes
    if (m_db) sqlite3_close_v2(m_db);
    m_db = nullptr;
}

Result<Database> Database::open(const std::string& path, const OpenOptions& options) {
    Database db;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
    const int rc = sqlite3_open_v2(path.c_str(), &db.m_db, flags, options.vfs.empty() ? nullptr : options.vfs.c_str());
    if (rc != SQLITE_OK) return status_from_sqlite(rc, db.m_db, "open " + path);
    sqlite3_extended_result_codes(db.m_db, 1);
    sqlite3_busy_timeout(db.m_db, options.busy_timeout_ms);
    UBUZIMA_TRY(db.exec("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=OFF; PRAGMA synchronous=" + options.synchronous +
                        ";"));
    return db;
}

Status Database::exec(std::string_view sql) {
    char* err = nullptr;
    const std::string text(sql);
    const int rc = sqlite3_exec(m_db, text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        Status s = status_from_sqlite(rc, m_db, "exec");
        sqlite3_free(err);
        return s;
    }
    return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(m_db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) return status_from_sqlite(rc, m_db, "prepare");
    return Statement(m_db, stmt);
}

Result<Statement*> Database::cached(const std::string& sql) {
    auto it = m_cache.find(sql);
    if (it != m_cache.end()) {
        it->second->reset();
        return it->second.get();
    }
    auto stmt = prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto owned = std::make_unique<Statement>(std::move(*stmt));
    Statement* raw = owned.get();
    m_cache.emplace(sql, std::move(owned));
    return raw;
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(m_db); }
int Database::changes() const { return sqlite3_changes(m_db); }

// ---- Transaction ----

Result<Transaction> Transaction::begin(Database& db) {
    UBUZIMA_TRY(db.exec("BEGIN IMMEDIATE"));
    return Transaction(&db);
}

Transaction::~Transaction() {
    if (m_db) (void)m_db->exec("ROLLBACK");
}

Status Transaction::commit() {
    if (!m_db) return Status(ErrorCode::Internal, "transaction already finished");
    Status s = m_db->exec("COMMIT");
    if (!s.ok()) return s;  // still open: the destructor rolls back
    m_db = nullptr;
    return {};
}

// ---- schema tables ----

Result<std::set<std::string>> existing_columns(Database& db, const std::string& table) {
    auto stmt = db.prepare("PRAGMA table_info(" + quote_ident(table) + ")");
    if (!stmt.ok()) return stmt.status();
    std::set<std::string> cols;
    UBUZIMA_TRY(stmt->each([&](const Statement& row) { cols.insert(row.column_text(1)); }));
    return cols;
}

Result<std::optional<std::string>> Database::query_text(const std::string& sql,
                                                       std::initializer_list<std::string_view> params) {
    auto stmt = cached(sql);
    if (!stmt.ok()) return stmt.status();
    int i = 1;
    for (std::string_view p : params) (*stmt)->bind(i++, p);
    auto row = (*stmt)->step();
    if (!row.ok()) {
        (*stmt)->reset();
        return row.status();
    }
    std::optional<std::string> out;
    if (*row && !(*stmt)->is_null(0)) out = (*stmt)->column_text(0);
    (*stmt)->reset();
    return out;
}

Status ensure_tables(Database& db, const schema::Schema& schema, const std::vector<std::string>& extra_columns,
                     std::set<std::string>* upgraded) {
    for (const schema::TableDef& t : schema.tables()) {
        UBUZIMA_TRY(db.exec(schema::create_table_sql(t, extra_columns)));
        auto cols = existing_columns(db, t.name);
        if (!cols.ok()) return cols.status();
        for (const schema::FieldDef& f : t.fields) {
            if (cols->count(f.name)) continue;
            UBUZIMA_TRY(db.exec("ALTER TABLE " + quote_ident(t.name) + " ADD COLUMN " + quote_ident(f.name) + " " +
                                std::string(schema::sql_type(f.type))));
        }
        if (upgraded)
            for (const std::string& column : extra_columns)
                if (const std::string name = column.substr(0, column.find(' ')); !cols->count(name)) upgraded->insert(name);
        UBUZIMA_TRY(add_missing_columns(db, t.name, extra_columns, *cols));
    }
    return {};
}

Status add_missing_columns(Database& db, const std::string& table, const std::vector<std::string>& columns) {
    auto cols = existing_columns(db, table);
    if (!cols.ok()) return cols.status();
    return add_missing_columns(db, table, columns, *cols);
}

Status add_missing_columns(Database& db, const std::string& table, const std::vector<std::string>& columns,
                           const std::set<std::string>& existing) {
    for (const std::string& column : columns) {
        const std::string name = column.substr(0, column.find(' '));
        if (existing.count(name)) continue;
        UBUZIMA_TRY(db.exec("ALTER TABLE " + quote_ident(table) + " ADD COLUMN " + column));
    }
    return {};
}

}  // namespace ubuzima::sql
