// Ubuzima Sync — MIT licence.
// Integration fixture: a real server process on 127.0.0.1, users, and real device databases.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#ifdef UBUZIMA_WITH_POSTGRESQL
#include <libpq-fe.h>
#endif

#include "support/server_process.hpp"
#include "ubuzima/client.hpp"
#include "ubuzima/schema/schema.hpp"

namespace ubuzima::test {

constexpr const char* kPassword = "field-work-2026";

/// UBUZIMA_TEST_PG and a cluster in the PG* environment (scripts/test-postgres.sh): the fixture's
/// server runs on PostgreSQL, on a database of its own.
inline bool integration_on_postgres() { return std::getenv("UBUZIMA_TEST_PG") && std::getenv("PGHOST"); }

/// Skips the rest of a test that is about the SQLite data directory (its file, the console
/// commands on --data, backup and restore of the file).
#define UBUZIMA_SQLITE_ONLY(why)                                   \
    do {                                                           \
        if (::ubuzima::test::integration_on_postgres()) {          \
            SUCCEED("skipped on PostgreSQL: " why);                \
            return;                                                \
        }                                                          \
    } while (0)

#ifdef UBUZIMA_WITH_POSTGRESQL
/// Runs one statement on the cluster's maintenance database (the PG* environment).
inline void maintenance(const std::string& sql) {
    PGconn* c = PQconnectdb("");
    REQUIRE(c);
    INFO(PQerrorMessage(c));
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    INFO(PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    REQUIRE(ok);
}

/// A database of its own for one test, dropped after (with any connection still open).
struct FreshDatabase {
    FreshDatabase() {
        std::random_device rd;
        name = "ubz_it_" + std::to_string(rd()) + "_" + std::to_string(rd());
        maintenance("CREATE DATABASE " + name);
    }
    ~FreshDatabase() {
        try {
            maintenance("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
        } catch (...) {
        }
    }
    FreshDatabase(const FreshDatabase&) = delete;
    FreshDatabase& operator=(const FreshDatabase&) = delete;
    /// A libpq URI naming the database; host, port, user and password come from PG*.
    std::string url() const { return "postgresql:///" + name; }
    std::string name;
};
#endif

/// Where the fixture's server keeps its store: a data directory, or a fresh PostgreSQL database.
class FixtureStore {
public:
    explicit FixtureStore(const std::string& data_dir) : m_where(data_dir) {
#ifdef UBUZIMA_WITH_POSTGRESQL
        if (integration_on_postgres()) {
            m_pg.emplace();
            m_where = m_pg->url();
        }
#endif
    }
    /// What ServerProcess takes: the directory or the postgresql:// URI.
    const std::string& where() const { return m_where; }

private:
    std::string m_where;
#ifdef UBUZIMA_WITH_POSTGRESQL
    std::optional<FreshDatabase> m_pg;
#endif
};

/// Starts a server with six users: alice and bob (assessors at Gisenyi), fiona and felix (focal
/// points at Gisenyi: sessions, trainees, tallies), carol (assessor at Butaro) and coord
/// (coordinator, all facilities).
class ServerFixture {
public:
    ServerFixture() : store(dir.file("server")), server(store.where()) { server.start(); create_users(); }

    void create_users() {
        const std::string admin = login_token(server.url(), "admin", server.admin_password());
        create_user(server.url(), admin, "alice", kPassword, "assessor", {"fac-gisenyi"});
        create_user(server.url(), admin, "bob", kPassword, "assessor", {"fac-gisenyi"});
        create_user(server.url(), admin, "fiona", kPassword, "focal_point", {"fac-gisenyi"});
        create_user(server.url(), admin, "felix", kPassword, "focal_point", {"fac-gisenyi"});
        create_user(server.url(), admin, "carol", kPassword, "assessor", {"fac-butaro"});
        create_user(server.url(), admin, "coord", kPassword, "coordinator", {});
    }

    /// A device database logged in as `user` (login needs the server once; capture may follow offline).
    Database device(const std::string& name, const std::string& user, DatabaseOptions options = {}) {
        options.path = dir.file(name + ".db");
        if (options.durability == Durability::Full) options.durability = Durability::Normal;  // test speed
        auto db = Database::open(options);
        REQUIRE(db.ok());
        Status s = db->login(server.url(), user, kPassword);
        INFO(s.to_string());
        REQUIRE(s.ok());
        return std::move(*db);
    }

    std::string token(const std::string& user) { return login_token(server.url(), user, kPassword); }

    TempDir dir;
    FixtureStore store;
    ServerProcess server;
};

/// Syncs and REQUIREs success.
inline SyncReport must_sync(Database& db) {
    auto r = db.sync();
    INFO((r.ok() ? std::string("ok") : r.status().to_string()));
    REQUIRE(r.ok());
    return *r;
}

/// Every visible row of every synced table of one facility (plus the reference tables), as one
/// JSON document: two replicas have converged when their documents are equal.
inline nlohmann::json facility_state(const Database& db, const std::string& facility) {
    nlohmann::json state = nlohmann::json::object();
    for (const schema::TableDef& t : schema::Schema::builtin().tables()) {
        nlohmann::json filter = nullptr;
        if (t.scope_field && *t.scope_field != "id") filter = nlohmann::json{{*t.scope_field, facility}};
        auto rows = db.query(t.name, filter);
        REQUIRE(rows.ok());
        state[t.name] = *rows;
    }
    return state;
}

inline nlohmann::json need_fields(const std::string& facility, const std::string& title) {
    return {{"facility_id", facility},       {"need_type", "skills_training"}, {"specialty_code", "anaesthesiology"},
            {"title", title},                {"description", "Found during the baseline assessment"},
            {"priority", "high"},            {"status", "identified"}};
}

inline nlohmann::json assessment_fields(const std::string& facility) {
    return {{"facility_id", facility},
            {"instrument_version_id", "instv-dehs-hna-1.0.0"},
            {"assessment_type", "baseline"},
            {"status", "draft"},
            {"visit_date", "2026-11-20"}};  // lead_assessor_id: the logged-in user, filled in by the library
}

}  // namespace ubuzima::test
