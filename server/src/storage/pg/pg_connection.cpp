// Ubuzima Sync — MIT licence.
#include "storage/pg/pg_connection.hpp"

#include <libpq-fe.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace ubuzima::server::pg {

ErrorCode code_from_sqlstate(std::string_view s) {
    if (s.size() != 5) return ErrorCode::Unavailable;  // no SQLSTATE: the connection failed
    const std::string_view cls = s.substr(0, 2);
    if (s == "40001" || s == "40P01" || s == "55P03" || s == "57014") return ErrorCode::Busy;
    if (cls == "08" || s == "57P01" || s == "57P02" || s == "57P03" || cls == "53") {
        if (s == "53100") return ErrorCode::DiskFull;
        return ErrorCode::Unavailable;
    }
    if (s == "XX001" || s == "XX002") return ErrorCode::Corrupt;
    return ErrorCode::IoError;
}

// ---- PgResult ----

PgResult::PgResult(pg_result* r) : m_res(r) {}
PgResult::~PgResult() {
    if (m_res) PQclear(m_res);
}
PgResult& PgResult::operator=(PgResult&& other) noexcept {
    if (this != &other) {
        if (m_res) PQclear(m_res);
        m_res = other.m_res;
        other.m_res = nullptr;
    }
    return *this;
}
int PgResult::rows() const { return m_res ? PQntuples(m_res) : 0; }
bool PgResult::is_null(int row, int col) const { return PQgetisnull(m_res, row, col) != 0; }
std::string PgResult::text(int row, int col) const {
    return std::string(PQgetvalue(m_res, row, col), static_cast<std::size_t>(PQgetlength(m_res, row, col)));
}
std::int64_t PgResult::integer(int row, int col) const {
    if (is_null(row, col)) return 0;
    return std::strtoll(PQgetvalue(m_res, row, col), nullptr, 10);
}
double PgResult::real(int row, int col) const {
    if (is_null(row, col)) return 0;
    return std::strtod(PQgetvalue(m_res, row, col), nullptr);
}
bool PgResult::boolean(int row, int col) const {
    const char* v = PQgetvalue(m_res, row, col);
    return v[0] == 't' || v[0] == '1';
}
std::int64_t PgResult::affected() const {
    const char* n = m_res ? PQcmdTuples(m_res) : "";
    return *n ? std::strtoll(n, nullptr, 10) : 0;
}

// ---- Params ----

Params& Params::add(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return add(std::string_view(buf));
}

namespace {

// Every element quoted, with " and \ escaped: the array input syntax then takes any text as is
// (an unquoted element would be trimmed, and NULL or a comma would change its meaning).
void append_array_element(std::string& out, const std::string& item) {
    out += '"';
    for (char c : item) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

}  // namespace

Params& Params::add_text_array(const std::vector<std::optional<std::string>>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        if (items[i]) append_array_element(out, *items[i]);
        else out += "NULL";
    }
    return add(out + "}");
}

Params& Params::add_text_array(const std::vector<std::string>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        append_array_element(out, items[i]);
    }
    return add(out + "}");
}

Params& Params::add_int_array(const std::vector<std::int64_t>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + std::to_string(items[i]);
    return add(out + "}");
}

std::vector<const char*> Params::pointers() const {
    std::vector<const char*> out;
    out.reserve(m_values.size());
    for (const auto& v : m_values) out.push_back(v ? v->c_str() : nullptr);
    return out;
}

int Params::first_with_nul() const {
    for (std::size_t i = 0; i < m_values.size(); ++i)
        if (m_values[i] && m_values[i]->find('\0') != std::string::npos) return static_cast<int>(i);
    return -1;
}

// ---- Connection ----

Result<std::unique_ptr<Connection>> Connection::connect(const std::string& url, const ConnectOptions& o) {
    const std::string options = "-c statement_timeout=" + std::to_string(o.statement_timeout_ms) +
                                " -c lock_timeout=" + std::to_string(o.lock_timeout_ms) +
                                " -c idle_in_transaction_session_timeout=" +
                                std::to_string(o.idle_in_transaction_timeout_ms) + " -c client_min_messages=warning";
    const std::string timeout = std::to_string(o.connect_timeout_s);
    // expand_dbname: the first "dbname" is the URI (or "", the PG* environment); the keywords
    // after it override what it says of them.
    const char* keys[] = {"dbname", "application_name", "options", "connect_timeout",
                          o.database.empty() ? nullptr : "dbname", nullptr};
    const char* values[] = {url.c_str(), o.application_name.c_str(), options.c_str(), timeout.c_str(),
                            o.database.empty() ? nullptr : o.database.c_str(), nullptr};
    pg_conn* c = PQconnectdbParams(keys, values, 1);
    if (!c) return Status(ErrorCode::Unavailable, "postgresql: out of memory connecting");
    if (PQstatus(c) != CONNECTION_OK) {
        std::string msg = PQerrorMessage(c);
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        PQfinish(c);
        return Status(ErrorCode::Unavailable, "postgresql: cannot connect: " + msg);
    }
    return std::unique_ptr<Connection>(new Connection(c));
}

Connection::~Connection() {
    if (m_conn) PQfinish(m_conn);
}

bool Connection::healthy() const { return m_conn && PQstatus(m_conn) == CONNECTION_OK; }
bool Connection::idle() const { return healthy() && PQtransactionStatus(m_conn) == PQTRANS_IDLE; }

Status Connection::error_of(pg_result* r, std::string_view context) const {
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(m_conn);
    if (msg.empty()) msg = PQerrorMessage(m_conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    const std::string sqlstate = state ? state : "";
    ErrorCode code = code_from_sqlstate(sqlstate);
    if (!healthy()) code = ErrorCode::Unavailable;
    return Status(code, std::string("postgresql ") + (sqlstate.empty() ? "" : "[" + sqlstate + "] ") +
                            std::string(context) + ": " + msg);
}

Result<PgResult> Connection::check(pg_result* r, std::string_view context) {
    const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return PgResult(r);
    Status s = error_of(r, context);
    if (r) PQclear(r);
    return s;
}

Status Connection::exec(const std::string& sql) {
    pg_result* r = PQexec(m_conn, sql.c_str());
    auto res = check(r, "exec");
    return res.ok() ? Status() : res.status();
}

Status Connection::commit() {
    pg_result* r = PQexec(m_conn, "COMMIT");
    const bool committed = r && PQresultStatus(r) == PGRES_COMMAND_OK && std::string_view(PQcmdStatus(r)) == "COMMIT";
    if (committed) {
        PQclear(r);
        return {};
    }
    auto res = check(r, "commit");
    if (!res.ok()) return res.status();
    return Status(ErrorCode::IoError, "postgresql: the transaction was rolled back at commit");
}

Result<PgResult> Connection::query(const std::string& sql, const Params& params) {
    if (params.first_with_nul() >= 0)
        return Status(ErrorCode::InvalidValue, "postgresql: a text value holds a NUL character");
    auto it = m_prepared.find(sql);
    if (it == m_prepared.end()) {
        const std::string name = "ubz" + std::to_string(m_prepared.size() + 1);
        auto prepared = check(PQprepare(m_conn, name.c_str(), sql.c_str(), 0, nullptr), "prepare");
        if (!prepared.ok()) return prepared.status();
        it = m_prepared.emplace(sql, name).first;
    }
    const auto values = params.pointers();
    return check(PQexecPrepared(m_conn, it->second.c_str(), params.size(), values.empty() ? nullptr : values.data(),
                                nullptr, nullptr, 0),
                 "query");
}

Result<PgResult> Connection::query_once(const std::string& sql, const Params& params) {
    if (params.first_with_nul() >= 0)
        return Status(ErrorCode::InvalidValue, "postgresql: a text value holds a NUL character");
    const auto values = params.pointers();
    return check(PQexecParams(m_conn, sql.c_str(), params.size(), nullptr, values.empty() ? nullptr : values.data(),
                              nullptr, nullptr, 0),
                 "query");
}

// ---- Pool ----

Lease::~Lease() {
    if (m_conn && m_pool) m_pool->release(std::move(m_conn));
}

Pool::Pool(std::string url, int size, ConnectOptions options, std::chrono::milliseconds checkout_timeout)
    : m_url(std::move(url)), m_size(size < 1 ? 1 : size), m_options(std::move(options)), m_timeout(checkout_timeout) {}

Result<Lease> Pool::acquire() {
    std::unique_lock<std::mutex> lock(m_mutex);
    const auto deadline = std::chrono::steady_clock::now() + m_timeout;
    for (;;) {
        if (!m_idle.empty()) {
            std::unique_ptr<Connection> c = std::move(m_idle.back());
            m_idle.pop_back();
            if (c->healthy()) return Lease(this, std::move(c));
            --m_open;  // broken while idle (server restart): replaced below
            continue;
        }
        if (m_open < m_size) {
            ++m_open;
            lock.unlock();
            auto c = Connection::connect(m_url, m_options);
            if (!c.ok()) {
                lock.lock();
                --m_open;
                m_available.notify_one();
                return c.status();
            }
            return Lease(this, std::move(*c));
        }
        if (m_available.wait_until(lock, deadline) == std::cv_status::timeout && m_idle.empty() && m_open >= m_size) {
            ++m_timeouts;
            return Status(ErrorCode::Busy, "postgresql: all " + std::to_string(m_size) +
                                               " connections of the pool are busy; try again later");
        }
    }
}

Pool::Stats Pool::stats() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return Stats{m_size, m_open, m_open - static_cast<int>(m_idle.size()), m_timeouts};
}

void Pool::release(std::unique_ptr<Connection> c) {
    // A connection left inside a transaction (an error path that could not roll back) or whose
    // server side is gone is dropped; the next checkout opens a fresh one.
    const bool keep = c->idle();
    if (!keep) c.reset();
    std::lock_guard<std::mutex> lock(m_mutex);
    if (keep) m_idle.push_back(std::move(c));
    else --m_open;
    m_available.notify_one();
}

std::string quote_literal(std::string_view text) {
    std::string out = "'";
    for (char ch : text) {
        if (ch == '\'') out += '\'';
        out += ch;
    }
    return out + "'";
}

std::string quote_ident(std::string_view name) {
    std::string out = "\"";
    for (char ch : name) {
        if (ch == '"') out += '"';
        out += ch;
    }
    return out + "\"";
}

}  // namespace ubuzima::server::pg
