// Ubuzima Sync — MIT licence.
// In-process test harness for the server: a temp-dir SQLite store (or, with UBUZIMA_TEST_PG set,
// a fresh PostgreSQL database per fixture), the Api, a controllable clock.
#pragma once

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "api/api.hpp"
#include "http/compression.hpp"
#include "http/message.hpp"
#include "storage/sqlite_store.hpp"
#include "ubuzima/schema/sqlite.hpp"
#ifdef UBUZIMA_WITH_POSTGRESQL
#include "storage/pg_store.hpp"
#endif
#include "ubuzima/sync/hlc.hpp"
#include "ubuzima/sync/version.hpp"

namespace ubuzima::server::test {

using nlohmann::json;

struct Reply {
    int status = 0;
    json body;
    http::Response raw;
};

/// A pulled change with its shared-version fields ("v" + "d") folded into "f" as
/// [value, version], so tests read every field the same way.
inline json expand_row(json c) {
    if (!c.is_object() || !c.contains("d")) return c;
    if (!c.contains("f")) c["f"] = json::object();
    for (auto it = c["d"].begin(); it != c["d"].end(); ++it) c["f"][it.key()] = json::array({it.value(), c["v"]});
    c.erase("d");
    c.erase("v");
    return c;
}

/// UBUZIMA_TEST_PG set (to a libpq URI; "" or "postgresql://" = the PG* environment): every
/// fixture runs on PostgreSQL instead of SQLite.
inline bool on_postgres() { return std::getenv("UBUZIMA_TEST_PG") != nullptr; }
inline std::string pg_test_url() {
    const char* url = std::getenv("UBUZIMA_TEST_PG");
    return url ? url : "";
}

#ifdef UBUZIMA_WITH_POSTGRESQL
/// A throw-away database on the test cluster: created on a maintenance connection, dropped
/// (WITH (FORCE): any connection still open goes too) on destruction.
class PgTestDatabase {
public:
    PgTestDatabase() {
        std::random_device rd;
        name = "ubz_test_" + std::to_string(rd()) + "_" + std::to_string(rd());
        auto admin = maintenance();
        if (Status s = admin->exec("CREATE DATABASE " + name); !s.ok()) throw std::runtime_error(s.to_string());
    }
    ~PgTestDatabase() {
        try {
            (void)maintenance()->exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
        } catch (...) {
        }
    }
    PgTestDatabase(const PgTestDatabase&) = delete;
    PgTestDatabase& operator=(const PgTestDatabase&) = delete;

    PgStoreOptions options(int pool_size = 8) const {
        PgStoreOptions o;
        o.pool_size = pool_size;
        o.connect.database = name;
        return o;
    }
    /// A connection of its own to the test database (the insider's).
    std::unique_ptr<pg::Connection> connect() const {
        pg::ConnectOptions o;
        o.database = name;
        o.application_name = "ubuzima-test";
        auto c = pg::Connection::connect(pg_test_url(), o);
        if (!c.ok()) throw std::runtime_error(c.status().to_string());
        return std::move(*c);
    }

    std::string name;

private:
    static std::unique_ptr<pg::Connection> maintenance() {
        pg::ConnectOptions o;
        o.application_name = "ubuzima-test";
        auto c = pg::Connection::connect(pg_test_url(), o);
        if (!c.ok()) throw std::runtime_error(c.status().to_string());
        return std::move(*c);
    }
};
#endif

/// Skips the rest of a test that is about SQLite files (an upgrade of an older release's file):
/// PostgreSQL stores have no such past. The list is kept short (docs/ARCHITECTURE.md).
#define UBUZIMA_SQLITE_ONLY(why)                                                  \
    do {                                                                          \
        if (::ubuzima::server::test::on_postgres()) {                             \
            SUCCEED("skipped on PostgreSQL: " why);                               \
            return;                                                               \
        }                                                                         \
    } while (0)

class TestServer {
public:
    static constexpr const char* kAdminPassword = "admin-password";

    explicit TestServer(std::int64_t access_ttl_s = 900) {
        std::random_device rd;
        m_dir = std::filesystem::temp_directory_path() / ("ubuzima-server-test-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(m_dir);
        m_now = std::make_shared<std::atomic<std::int64_t>>(sync::system_wall_ms());
        options.data_dir = m_dir.string();
        options.pbkdf2_iterations = 1000;  // fast tests; production default is 600000
        options.rate = RateLimits{0, 0, 0, 0};  // tests that want limits set them
        options.access_ttl_s = access_ttl_s;
        options.bootstrap_admin_password = kAdminPassword;
        auto now = m_now;
        options.wall = [now] { return now->load(); };
#ifdef UBUZIMA_WITH_POSTGRESQL
        if (on_postgres()) m_pg = std::make_unique<PgTestDatabase>();
#else
        if (on_postgres()) throw std::runtime_error("UBUZIMA_TEST_PG is set but PostgreSQL support is not built in");
#endif
        open();
    }
    ~TestServer() {
        api.reset();
        store.reset();
#ifdef UBUZIMA_WITH_POSTGRESQL
        m_pg.reset();
#endif
        std::error_code ec;
        std::filesystem::remove_all(m_dir, ec);
    }
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    void open() {
        store = open_store();
        auto a = Api::create(*store, options);
        if (!a.ok()) throw std::runtime_error(a.status().to_string());
        api = std::move(*a);
    }
    /// Closes and reopens the store and the API on the same files (a server restart);
    /// `while_closed` may edit the database file in between (e.g. make it an older format).
    void reopen(const std::function<void(const std::string& db_path)>& while_closed = {}) {
        api.reset();
        store.reset();
        if (while_closed) while_closed((m_dir / "ubuzima.db").string());
        open();
    }

    std::int64_t now_ms() const { return m_now->load(); }
    /// The store's database file (SQLite only: tests of its file format open it directly).
    std::string db_path() const { return (m_dir / "ubuzima.db").string(); }
    /// Runs SQL on a second connection to the store's database, bypassing the store: what an
    /// insider with the database can do. The same text must work on both SQLite and PostgreSQL.
    Status exec_raw(const std::string& sql) {
#ifdef UBUZIMA_WITH_POSTGRESQL
        if (m_pg) return m_pg->connect()->exec(sql);
#endif
        auto db = sql::Database::open(db_path(), {});
        if (!db.ok()) return db.status();
        return db->exec(sql);
    }
    /// Drops the audit log's append-only triggers (on a second connection, as an insider).
    Status drop_audit_guards() {
        if (on_postgres())
            return exec_raw("DROP TRIGGER srv_audit_no_update ON srv_audit; DROP TRIGGER srv_audit_no_delete ON srv_audit");
        return exec_raw("DROP TRIGGER srv_audit_no_update; DROP TRIGGER srv_audit_no_delete");
    }
    void advance_ms(std::int64_t ms) { m_now->fetch_add(ms); }

    http::Response raw(const http::Request& request) { return api->handle(request); }

    Reply call(const std::string& method, const std::string& path, const std::string& body = "",
               const std::string& token = "", std::map<std::string, std::string> headers = {},
               const std::string& address = "") {
        http::Request r;
        r.method = method;
        const std::size_t q = path.find('?');
        r.raw_path = path.substr(0, q);
        if (q != std::string::npos) r.query = http::parse_query(path.substr(q + 1));
        r.headers = std::move(headers);
        if (!body.empty() && !r.headers.count("content-type")) r.headers["content-type"] = "application/json";
        if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
        r.body = body;
        r.remote_address = address;
        Reply out;
        out.raw = api->handle(r);
        out.status = out.raw.status;
        std::string text = out.raw.body;
        if (out.raw.headers.count("Content-Encoding")) text = gzip_decompress(text, 1u << 30).value();
        out.body = json::parse(text, nullptr, false);
        return out;
    }
    Reply post(const std::string& path, const json& body, const std::string& token = "") {
        return call("POST", path, body.dump(), token);
    }

    /// A device id stays with the account that first logs in with it, so by default each user
    /// gets their own ("dev-<user>").
    Reply login_reply(const std::string& user, const std::string& password, const std::string& device = "") {
        return post("/v1/auth/login",
                    {{"username", user}, {"password", password}, {"device_id", device.empty() ? "dev-" + user : device}});
    }
    std::string login(const std::string& user, const std::string& password, const std::string& device = "") {
        Reply r = login_reply(user, password, device);
        if (r.status != 200) throw std::runtime_error("login failed: " + r.raw.body);
        const std::string token = r.body["access_token"].get<std::string>();
        m_logins[token] = Login{user, password, device.empty() ? "dev-" + user : device};
        return token;
    }
    std::string admin_token() { return login("admin", kAdminPassword); }
    /// The password user_token() gives `name`.
    static std::string password_of(const std::string& name) { return "pw-" + name + "-secret"; }
    /// Creates a user (as admin) and returns an access token for them.
    std::string user_token(const std::string& name, const std::string& role, const std::vector<std::string>& facilities) {
        Reply r = post("/v1/admin/users",
                       {{"username", name}, {"password", password_of(name)}, {"role", role}, {"facilities", facilities}},
                       admin_token());
        if (r.status != 201) throw std::runtime_error("create user failed: " + r.raw.body);
        return login(name, password_of(name));
    }
    /// A token of the same user as `token`, issued to device `node` (a sync must come from the
    /// device its token belongs to): tests name nodes freely, and get one login per node.
    std::string token_for_node(const std::string& token, std::uint64_t node) {
        auto it = m_logins.find(token);
        const std::string device = sync::to_hex16(node);
        if (it == m_logins.end() || it->second.device == device) return token;
        const auto key = std::make_pair(it->second.user, device);
        auto cached = m_node_tokens.find(key);
        if (cached != m_node_tokens.end()) return cached->second;
        const Login who = it->second;
        const std::string fresh = login(who.user, who.password, device);
        m_node_tokens[key] = fresh;
        return fresh;
    }

    /// A version written "now" by `node` (counter makes successive versions distinct).
    std::string version(std::uint64_t node, std::int64_t offset_ms = 0) {
        return sync::Version{sync::make_hlc(now_ms() + offset_ms, m_counter++), node}.to_string();
    }

    /// POST /v1/sync. `changes` null = no batch.
    Reply sync(const std::string& token, std::uint64_t node, const json& changes = nullptr,
               const std::string& batch_id = "", const json& cursor = nullptr, int limit = 1000) {
        json req{{"protocol", 1}, {"schema_version", 1}, {"node", sync::to_hex16(node)},
                 {"clock", sync::to_hex16(sync::make_hlc(now_ms(), 0))}, {"cursor", cursor}, {"limit", limit}};
        if (!changes.is_null())
            req["batch"] = {{"id", batch_id.empty() ? "batch-" + std::to_string(m_counter++) : batch_id},
                            {"changes", changes}};
        return post("/v1/sync", req, token_for_node(token, node));
    }
    /// Pulls every page; returns all changes (expanded) and leaves the final cursor in `cursor`.
    json pull_all(const std::string& token, std::uint64_t node, json& cursor, int limit = 1000) {
        json all = json::array();
        for (int guard = 0; guard < 10000; ++guard) {
            Reply r = sync(token, node, nullptr, "", cursor, limit);
            if (r.status != 200) throw std::runtime_error("pull failed: " + r.raw.body);
            for (const json& c : r.body["changes"]) all.push_back(expand_row(c));
            cursor = r.body["cursor"];
            if (!r.body["more"].get<bool>()) break;
        }
        return all;
    }

    ServerOptions options;
    std::unique_ptr<ServerStore> store;
    std::unique_ptr<Api> api;

private:
    /// PostgreSQL on the fixture's database when on_postgres(), else SQLite in its folder.
    std::unique_ptr<ServerStore> open_store() {
#ifdef UBUZIMA_WITH_POSTGRESQL
        if (m_pg) {
            auto s = PgStore::open(pg_test_url(), m_pg->options());
            if (!s.ok()) throw std::runtime_error(s.status().to_string());
            return std::move(*s);
        }
#endif
        auto s = SqliteStore::open(db_path());
        if (!s.ok()) throw std::runtime_error(s.status().to_string());
        return std::move(*s);
    }

#ifdef UBUZIMA_WITH_POSTGRESQL
    std::unique_ptr<PgTestDatabase> m_pg;
#endif
    struct Login {
        std::string user;
        std::string password;
        std::string device;
    };
    std::map<std::string, Login> m_logins;  ///< token -> who got it
    std::map<std::pair<std::string, std::string>, std::string> m_node_tokens;
    std::filesystem::path m_dir;
    std::shared_ptr<std::atomic<std::int64_t>> m_now;
    std::uint32_t m_counter = 1;
};

inline json change(const std::string& table, const std::string& id, const std::string& version, const json& fields,
                   const json& base = json::object()) {
    json c{{"t", table}, {"id", id}, {"v", version}, {"f", fields}};
    if (!base.empty()) c["b"] = base;
    return c;
}

/// A valid new `need` row at `facility`.
inline json need_fields(const std::string& facility, const std::string& title = "Anaesthesia training") {
    return {{"facility_id", facility}, {"need_type", "skills_training"}, {"title", title},
            {"description", "Staff need training"}, {"priority", "high"}, {"status", "identified"}};
}

/// Finds the pulled change of one row (expanded), or null.
inline json find_row(const json& changes, const std::string& table, const std::string& id) {
    for (const json& c : changes)
        if (c["t"] == table && c["id"] == id) return expand_row(c);
    return nullptr;
}

}  // namespace ubuzima::server::test
