// Ubuzima Sync — MIT licence.
// A thin RAII layer over libpq for the PostgreSQL store: owned connections and results,
// parameterised statements prepared once per connection, errors as Status values carrying the
// SQLSTATE (no exception crosses out), and a fixed-size connection pool.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ubuzima/sync/status.hpp"

struct pg_conn;
struct pg_result;

namespace ubuzima::server::pg {

/// Maps a SQLSTATE to an ErrorCode: lock/serialisation/statement timeouts → Busy, lost or
/// refused connections → Unavailable, disk full → DiskFull, data corruption → Corrupt, anything
/// else → IoError (as the SQLite store reports a failed statement).
ErrorCode code_from_sqlstate(std::string_view sqlstate);

/// One result, owned (PQclear on destruction). Columns and rows are 0-based; values are the
/// text format.
class PgResult {
public:
    PgResult() = default;
    explicit PgResult(pg_result* r);
    ~PgResult();
    PgResult(PgResult&& other) noexcept : m_res(other.m_res) { other.m_res = nullptr; }
    PgResult& operator=(PgResult&& other) noexcept;
    PgResult(const PgResult&) = delete;
    PgResult& operator=(const PgResult&) = delete;

    int rows() const;
    bool is_null(int row, int col) const;
    std::string text(int row, int col) const;
    std::int64_t integer(int row, int col) const;
    double real(int row, int col) const;
    bool boolean(int row, int col) const;
    std::optional<std::int64_t> optional_integer(int row, int col) const {
        if (is_null(row, col)) return std::nullopt;
        return integer(row, col);
    }
    std::optional<std::string> optional_text(int row, int col) const {
        if (is_null(row, col)) return std::nullopt;
        return text(row, col);
    }
    /// Rows an INSERT/UPDATE/DELETE touched.
    std::int64_t affected() const;

private:
    pg_result* m_res = nullptr;
};

/// Statement parameters in the text format (the server infers their types from the statement).
class Params {
public:
    Params& add(std::string_view text) {
        m_values.emplace_back(std::string(text));
        return *this;
    }
    Params& add(const char* text) { return add(std::string_view(text)); }
    Params& add(const std::string& text) { return add(std::string_view(text)); }
    Params& add(std::int64_t v) { return add(std::to_string(v)); }
    Params& add(int v) { return add(std::to_string(v)); }
    Params& add(double v);
    Params& add_bool(bool v) { return add(v ? "true" : "false"); }
    Params& add_null() {
        m_values.emplace_back(std::nullopt);
        return *this;
    }
    Params& add_optional(const std::optional<std::string>& v) { return v ? add(*v) : add_null(); }
    Params& add_optional(const std::optional<std::int64_t>& v) { return v ? add(*v) : add_null(); }
    /// A one-dimensional array literal for a `$n::text[]` parameter (nullopt elements are NULL).
    Params& add_text_array(const std::vector<std::optional<std::string>>& items);
    Params& add_text_array(const std::vector<std::string>& items);
    /// For a `$n::bigint[]` parameter.
    Params& add_int_array(const std::vector<std::int64_t>& items);

    int size() const { return static_cast<int>(m_values.size()); }
    /// Pointers for PQexecPrepared (valid while this object lives and is not changed).
    std::vector<const char*> pointers() const;
    /// The first parameter holding a NUL byte, which the text protocol cannot carry, or -1.
    int first_with_nul() const;

private:
    std::vector<std::optional<std::string>> m_values;
};

struct ConnectOptions {
    std::string application_name = "ubuzima-server";
    int statement_timeout_ms = 30000;
    int lock_timeout_ms = 10000;
    int idle_in_transaction_timeout_ms = 60000;
    int connect_timeout_s = 10;
    /// Overrides the database the URL names ("" = as the URL or PGDATABASE says).
    std::string database;
};

/// One libpq connection (PQfinish on destruction). Not thread-safe: one request at a time,
/// which the pool guarantees.
class Connection {
public:
    static Result<std::unique_ptr<Connection>> connect(const std::string& url, const ConnectOptions& options = {});
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Runs one or more statements without parameters (simple query protocol).
    Status exec(const std::string& sql);
    /// COMMIT, and an error when the server rolled back instead (a COMMIT of a failed
    /// transaction answers ROLLBACK, not an error).
    Status commit();
    /// Runs a parameterised statement, prepared on this connection the first time its text is
    /// seen and reused after (the cache maps SQL text to a statement name).
    Result<PgResult> query(const std::string& sql, const Params& params = {});
    /// A one-off parameterised statement (not prepared): DDL-time and maintenance queries.
    Result<PgResult> query_once(const std::string& sql, const Params& params = {});

    /// False once the server side is gone (PQstatus is not CONNECTION_OK).
    bool healthy() const;
    /// True when the session is idle outside any transaction (what the pool wants back).
    bool idle() const;
    pg_conn* handle() const { return m_conn; }

private:
    explicit Connection(pg_conn* c) : m_conn(c) {}
    Status error_of(pg_result* r, std::string_view context) const;
    Result<PgResult> check(pg_result* r, std::string_view context);

    pg_conn* m_conn = nullptr;
    std::unordered_map<std::string, std::string> m_prepared;  ///< SQL text → statement name
};

class Pool;

/// A connection checked out of the pool; returns it on destruction (or drops it when broken or
/// left inside a transaction, and the pool opens a fresh one on demand).
class Lease {
public:
    Lease(Pool* pool, std::unique_ptr<Connection> c) : m_pool(pool), m_conn(std::move(c)) {}
    ~Lease();
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() { return *m_conn; }
    Connection* operator->() { return m_conn.get(); }

private:
    Pool* m_pool;
    std::unique_ptr<Connection> m_conn;
};

/// A fixed number of connections for one process. Connections open lazily (up to `size`) and
/// are never shared between threads. A checkout that waits longer than the timeout fails with
/// ErrorCode::Busy (HTTP 503: the client retries later).
class Pool {
public:
    Pool(std::string url, int size, ConnectOptions options, std::chrono::milliseconds checkout_timeout);
    ~Pool() = default;
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    Result<Lease> acquire();
    int size() const { return m_size; }
    /// Connections leased to requests now, and checkouts that timed out (503) since the start.
    struct Stats {
        int size = 0;
        int open = 0;
        int in_use = 0;
        std::int64_t timeouts = 0;
    };
    Stats stats();
    const std::string& url() const { return m_url; }

private:
    friend class Lease;
    void release(std::unique_ptr<Connection> c);

    const std::string m_url;
    const int m_size;
    const ConnectOptions m_options;
    const std::chrono::milliseconds m_timeout;
    std::mutex m_mutex;
    std::condition_variable m_available;
    std::vector<std::unique_ptr<Connection>> m_idle;
    int m_open = 0;  ///< connections that exist (idle or leased)
    std::int64_t m_timeouts = 0;
};

/// A libpq string literal ('...' with quotes doubled) for the rare statement that cannot take a
/// parameter (CREATE DATABASE, SET).
std::string quote_literal(std::string_view text);
/// A quoted identifier ("..." with quotes doubled).
std::string quote_ident(std::string_view name);

}  // namespace ubuzima::server::pg
