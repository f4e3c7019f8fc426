// Ubuzima Sync — MIT licence.
// Small RAII layer over SQLite shared by the device store and the server's embedded store:
// connection, prepared statements with a per-connection cache, transactions, typed binding of
// schema values, and in-place table creation/upgrade from the schema.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ubuzima/schema/schema.hpp"
#include "ubuzima/sync/status.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ubuzima::sql {

/// Maps an SQLite result code to a Status (SQLITE_FULL → DiskFull, BUSY/LOCKED → Busy,
/// CORRUPT/NOTADB → Corrupt, anything else → IoError).
Status status_from_sqlite(int rc, sqlite3* db, std::string_view context);

/// A prepared statement. Owns its sqlite3_stmt. Movable, not copyable; use from one thread.
class Statement {
public:
    Statement() = default;
    Statement(sqlite3* db, sqlite3_stmt* stmt) : m_db(db), m_stmt(stmt) {}
    ~Statement();
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Parameters are 1-based, as in SQLite.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
    Statement& bind_null(int index);
    /// Binds the value, or NULL when there is none.
    Statement& bind_optional(int index, const std::optional<std::string>& text) {
        return text ? bind(index, *text) : bind_null(index);
    }
    Statement& bind_optional(int index, const std::optional<std::int64_t>& value) {
        return value ? bind(index, *value) : bind_null(index);
    }
    /// Binds a schema value with the column representation of its field type.
    Statement& bind_value(int index, schema::FieldType type, const schema::Value& value);

    /// Advances: true when a row is ready, false when done.
    Result<bool> step();
    /// Steps to completion (for statements returning no rows), then resets.
    Status run();
    /// Resets and clears bindings, ready for reuse.
    void reset();
    /// Steps through every result row, calling `on_row(*this)` for each, then resets.
    /// Returns the first SQLite error (the statement is reset then too).
    template <typename OnRow>
    Status each(OnRow&& on_row) {
        for (;;) {
            auto has = step();
            if (!has.ok()) {
                reset();
                return has.status();
            }
            if (!*has) break;
            on_row(static_cast<const Statement&>(*this));
        }
        reset();
        return {};
    }

    // Columns are 0-based, as in SQLite.
    bool is_null(int col) const;
    std::int64_t column_int(int col) const;
    double column_real(int col) const;
    std::string column_text(int col) const;
    /// The integer, or nullopt when the column is NULL.
    std::optional<std::int64_t> column_optional_int(int col) const {
        if (is_null(col)) return std::nullopt;
        return column_int(col);
    }
    /// Reads a column back into a schema value of the given field type.
    schema::Value column_value(int col, schema::FieldType type) const;

    sqlite3_stmt* handle() const { return m_stmt; }

private:
    sqlite3* m_db = nullptr;
    sqlite3_stmt* m_stmt = nullptr;
};

struct OpenOptions {
    bool create = true;
    int busy_timeout_ms = 5000;
    /// "FULL" makes every committed transaction survive power loss (see docs/ARCHITECTURE.md).
    std::string synchronous = "FULL";
    /// Name of a registered SQLite VFS; empty = the default one.
    std::string vfs;
};

/// One SQLite connection in WAL mode. Not thread-safe: the owner serialises access.
class Database {
public:
    Database() = default;
    ~Database();
    Database(Database&& other) noexcept;
    Database& operator=(Database&& other) noexcept;
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    static Result<Database> open(const std::string& path, const OpenOptions& options = {});

    /// Runs one or more statements without results.
    Status exec(std::string_view sql);
    Result<Statement> prepare(std::string_view sql);
    /// A statement prepared once per connection and reused (reset before it is returned).
    Result<Statement*> cached(const std::string& sql);

    /// The first column of the first row of a (cached) query with text parameters, or nullopt
    /// when it returns no row or NULL: the "read one optional value" both stores need often.
    Result<std::optional<std::string>> query_text(const std::string& sql, std::initializer_list<std::string_view> params = {});

    std::int64_t last_insert_rowid() const;
    int changes() const;
    sqlite3* handle() const { return m_db; }
    bool is_open() const { return m_db != nullptr; }

private:
    void close();
    sqlite3* m_db = nullptr;
    std::unordered_map<std::string, std::unique_ptr<Statement>> m_cache;
};

/// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed.
class Transaction {
public:
    static Result<Transaction> begin(Database& db);
    Transaction(Transaction&& other) noexcept : m_db(other.m_db) { other.m_db = nullptr; }
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    Status commit();

private:
    explicit Transaction(Database* db) : m_db(db) {}
    Database* m_db = nullptr;
};

/// Creates every table of the schema that is missing and adds missing columns to existing ones
/// (fields added by a newer schema version, and the hidden `extra_columns`, each given as
/// "<name> <definition>"). Existing rows are kept. Run inside a transaction. `upgraded`, when
/// given, receives the names of the extra columns some existing table lacked (what an upgrade
/// may need to make up for).
Status ensure_tables(Database& db, const schema::Schema& schema, const std::vector<std::string>& extra_columns,
                     std::set<std::string>* upgraded = nullptr);
/// Adds each column ("name TYPE ...") that `table` lacks: an in-place upgrade of files written
/// by an earlier release. The second form takes the column names already known.
Status add_missing_columns(Database& db, const std::string& table, const std::vector<std::string>& columns);
Status add_missing_columns(Database& db, const std::string& table, const std::vector<std::string>& columns,
                           const std::set<std::string>& existing);

/// The column names of `table` (empty when it does not exist).
Result<std::set<std::string>> existing_columns(Database& db, const std::string& table);

/// Quotes an identifier for SQL ("name" with embedded quotes doubled).
std::string quote_ident(std::string_view name);

}  // namespace ubuzima::sql
