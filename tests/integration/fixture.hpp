// Ubuzima Sync — MIT licence.
// Integration fixture: a real server process on 127.0.0.1, users, and real device databases.
#pragma once

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>

#include "support/server_process.hpp"
#include "ubuzima/client.hpp"
#include "ubuzima/schema/schema.hpp"

namespace ubuzima::test {

constexpr const char* kPassword = "field-work-2026";

/// Starts a server with six users: alice and bob (assessors at Gisenyi), fiona and felix (focal
/// points at Gisenyi: sessions, trainees, tallies), carol (assessor at Butaro) and coord
/// (coordinator, all facilities).
class ServerFixture {
public:
    ServerFixture() : server(dir.file("server")) { server.start(); create_users(); }

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
