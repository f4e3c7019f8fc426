// Ubuzima Sync — MIT licence.
// Regression tests for bugs the convergence simulator found, each reduced to its smallest story.
#include <catch2/catch.hpp>

#include <filesystem>

#include <unistd.h>

#include "fault_transport.hpp"
#include "sim.hpp"
#include "storage/sqlite_store.hpp"
#include "ubuzima/database.hpp"

using namespace ubuzima;
using namespace ubuzima::sim;

namespace {

/// A server Api on a temp dir with a hand-driven clock, and devices that reach it in-process.
struct World {
    World() {
        dir = std::filesystem::temp_directory_path() / ("ubuzima-sim-regress-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        store = server::SqliteStore::open((dir / "server.db").string(), 7).value();
        server::ServerOptions o;
        o.pbkdf2_iterations = 1000;
        o.bootstrap_admin_password = "sim-admin-password";
        o.rate = server::RateLimits{0, 0, 0, 0};
        o.access_ttl_s = 60;
        o.wall = [this] { return now; };
        api = server::Api::create(*store, o).value();
    }
    ~World() {
        api.reset();
        store.reset();
        std::filesystem::remove_all(dir);
    }
    Database device(const std::string& user, sync::NodeId node,
                    const std::vector<std::string>& facilities = {"fac-gisenyi"}) {
        REQUIRE(api->users().create_user(server::Actor::console(), user, "pw-" + user + "-secret", "focal_point",
                                         facilities).ok());
        DatabaseOptions o;
        o.path = (dir / (user + ".db")).string();
        o.durability = Durability::Normal;
        o.wall_clock = [this] { return now; };
        o.node_id = node;
        o.sync.server_url = "sim://server";
        auto transport = std::make_shared<FaultTransport>(*api, rng, FaultRates{});
        transport->set_faults(false);
        o.sync.transport = transport;
        o.sync.retry.max_attempts = 1;
        Database db = Database::open(o).value();
        REQUIRE(db.login("", user, "pw-" + user + "-secret").ok());
        return db;
    }

    std::int64_t now = 1'795'154'400'000;
    Rng rng{1};
    std::filesystem::path dir;
    std::unique_ptr<server::SqliteStore> store;
    std::unique_ptr<server::Api> api;
};

}  // namespace

TEST_CASE("A device whose access token expired still refreshes after another user logs in", "[sim][regression]") {
    // Found by ubuzima_sim: login purged expired access tokens, so the offline device's token was
    // then "unknown" (401 unauthorized) instead of token_expired, and it never refreshed.
    World w;
    Database a = w.device("alice", 0xa);
    REQUIRE(a.sync().ok());
    w.now += 2 * 60 * 1000;  // past the 60 s access TTL, well within the refresh TTL
    Database b = w.device("bob", 0xb);  // its login cleans up expired tokens
    auto synced = a.sync();
    INFO(synced.status().to_string());
    CHECK(synced.ok());
}

TEST_CASE("An edit behind an insert deferred for clock skew is re-sent, not refused", "[sim][regression]") {
    // Found by ubuzima_sim: the server checked the edit against the (still missing) row before its
    // clock, refused it for good as "new row lacks required field", and the device rolled the
    // fields back to null while the re-stamped insert that carried them went on to win.
    World w;
    Database a = w.device("alice", 0xa);
    REQUIRE(a.sync().ok());
    // The device clock jumps an hour ahead (after its first sync it trusts the measured offset,
    // so a fresh database is used with the bad clock from the start).
    DatabaseOptions o;
    o.path = (w.dir / "ahead.db").string();
    o.durability = Durability::Normal;
    o.wall_clock = [&w] { return w.now + 3'600'000; };
    o.node_id = 0xc;
    o.sync.server_url = "sim://server";
    auto transport = std::make_shared<FaultTransport>(*w.api, w.rng, FaultRates{});
    transport->set_faults(false);
    o.sync.transport = transport;
    o.sync.retry.max_attempts = 1;
    REQUIRE(w.api->users().create_user(server::Actor::console(), "carol", "pw-carol-secret", "focal_point", {"fac-gisenyi"}).ok());
    Database c = Database::open(o).value();
    REQUIRE(c.login("", "carol", "pw-carol-secret").ok());
    REQUIRE(c.put("trainee", "t1", {{"facility_id", "fac-gisenyi"}, {"given_name", "Ann"}, {"family_name", "B"},
                                    {"cadre", "nurse"}, {"pseudonym_code", "P1"}}).ok());
    REQUIRE(c.update("trainee", "t1", {{"given_name", "Anne"}}).ok());
    auto synced = c.sync();
    REQUIRE(synced.ok());
    CHECK(c.rejected().value().empty());
    CHECK(c.pending_changes().value() == 0);
    CHECK(c.get("trainee", "t1").value().value()["given_name"] == "Anne");
    REQUIRE(a.sync().ok());
    CHECK(a.get("trainee", "t1").value().value()["given_name"] == "Anne");
}

namespace {

/// Answers login, then plays back canned /v1/sync responses (the batch id is copied in).
class ScriptedTransport final : public HttpTransport {
public:
    std::vector<nlohmann::json> pushes;  ///< one "push" object per sync request, without "batch"
    Result<HttpResponse> post(const std::string& url, const std::string& body, const HttpHeaders&) override {
        if (url.find("/v1/auth/") != std::string::npos)
            return HttpResponse{200, R"({"access_token":"a","refresh_token":"r"})", -1};
        const nlohmann::json request = nlohmann::json::parse(body);
        nlohmann::json response{{"protocol", 1}, {"server_clock", "01a0000000000000"}, {"changes", nlohmann::json::array()},
                                {"cursor", "0"}, {"more", false}};
        if (request.contains("batch") && !request["batch"].is_null() && m_next < pushes.size()) {
            response["push"] = pushes[m_next++];
            response["push"]["batch"] = request["batch"]["id"];
        }
        return HttpResponse{200, response.dump(), -1};
    }

private:
    std::size_t m_next = 0;
};

}  // namespace

TEST_CASE("Rolling back a refused write stops at an earlier write that was deferred", "[sim][regression]") {
    // The device's own defence for the story above: whatever the server refuses, a rejected
    // write's fields roll back to the device's earlier, re-stamped and still pending write of the
    // same field, never past it (else the value the device re-sends is missing on the device).
    World w;
    auto script = std::make_shared<ScriptedTransport>();
    script->pushes = {
        {{"applied", 0}, {"conflicts", nlohmann::json::array()},
         {"rejected", {{{"index", 0}, {"code", "clock_skew"}, {"message", "ahead"}},
                       {{"index", 1}, {"code", "out_of_scope"}, {"message", "elsewhere"}}}}},
        {{"applied", 1}, {"conflicts", nlohmann::json::array()}, {"rejected", nlohmann::json::array()}}};
    DatabaseOptions o;
    o.path = (w.dir / "scripted.db").string();
    o.durability = Durability::Normal;
    o.node_id = 0xd;
    o.sync.server_url = "sim://server";
    o.sync.transport = script;
    o.sync.retry.max_attempts = 1;
    Database d = Database::open(o).value();
    REQUIRE(d.login("", "dora", "pw").ok());
    REQUIRE(d.put("need", "n1", {{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", "T1"},
                                 {"description", "D"}, {"priority", "high"}, {"status", "identified"}}).ok());
    REQUIRE(d.update("need", "n1", {{"facility_id", "fac-butaro"}, {"title", "T2"}}).ok());
    REQUIRE(d.sync().ok());
    CHECK(d.rejected().value().size() == 1);
    CHECK(d.pending_changes().value() == 0);
    const nlohmann::json row = d.get("need", "n1").value().value();
    CHECK(row["facility_id"] == "fac-gisenyi");
    CHECK(row["title"] == "T1");
}

TEST_CASE("A write deferred for clock skew stays older than the device's later edit of the row", "[sim][regression]") {
    // Found by ubuzima_sim: an insert written while the clock was ahead got its fresh version only
    // when it was finally pushed, after the clock had been corrected and the row edited again;
    // the re-stamped insert then beat the later edit on the server, and the device kept the edit.
    World w;
    Database a = w.device("alice", 0xa);
    REQUIRE(w.api->users().create_user(server::Actor::console(), "carol", "pw-carol-secret", "focal_point", {"fac-gisenyi"}).ok());
    DatabaseOptions o;
    o.path = (w.dir / "ahead.db").string();
    o.durability = Durability::Normal;
    o.wall_clock = [&w] { return w.now + 3'600'000; };
    o.node_id = 0xc;
    o.sync.server_url = "sim://server";
    auto transport = std::make_shared<FaultTransport>(*w.api, w.rng, FaultRates{});
    transport->set_faults(false);
    o.sync.transport = transport;
    o.sync.retry.max_attempts = 1;
    o.sync.batch_size = 1;
    o.sync.max_round_trips = 1;
    Database c = Database::open(o).value();
    REQUIRE(c.login("", "carol", "pw-carol-secret").ok());
    REQUIRE(c.put("need", "n0", {{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", "X"},
                                 {"description", "D"}, {"priority", "high"}, {"status", "identified"}}).ok());
    REQUIRE(c.put("trainee", "t1", {{"facility_id", "fac-gisenyi"}, {"given_name", "Ann"}, {"family_name", "B"},
                                    {"cadre", "nurse"}, {"pseudonym_code", "P1"}}).ok());
    REQUIRE(c.sync().ok());  // one round trip: n0 is deferred for skew and the clock corrected
    w.now += 1000;
    REQUIRE(c.update("trainee", "t1", {{"given_name", "Anne"}}).ok());  // corrected clock: older than t1's insert
    o.sync.max_round_trips = 1000;
    c.set_sync_options(o.sync);
    REQUIRE(c.sync().ok());
    CHECK(c.pending_changes().value() == 0);
    CHECK(c.rejected().value().empty());
    CHECK(c.get("trainee", "t1").value().value()["given_name"] == "Anne");
    REQUIRE(a.sync().ok());
    CHECK(a.get("trainee", "t1").value().value()["given_name"] == "Anne");
}

TEST_CASE("A row moved out of a device's facilities and back returns with the fields that device wrote",
          "[sim][regression][move]") {
    World w;
    Database writer = w.device("gita", 0xa);  // Gisenyi only
    Database mover = w.device("mugabo", 0xb, {"fac-gisenyi", "fac-butaro"});
    const json need{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", "T"},
                    {"description", "D"}, {"priority", "high"}, {"status", "identified"}};
    REQUIRE(writer.put("need", "n0", need).ok());
    REQUIRE(writer.sync().ok());
    REQUIRE(mover.sync().ok());
    REQUIRE(mover.update("need", "n0", {{"facility_id", "fac-butaro"}}).ok());
    REQUIRE(mover.sync().ok());
    REQUIRE(writer.sync().ok());
    REQUIRE_FALSE(writer.get("need", "n0").value().has_value());  // purged on the way out
    REQUIRE(mover.update("need", "n0", {{"facility_id", "fac-gisenyi"}}).ok());
    REQUIRE(mover.sync().ok());
    REQUIRE(writer.sync().ok());
    auto back = writer.get("need", "n0").value();
    REQUIRE(back.has_value());
    for (const auto& [field, value] : need.items()) {
        INFO(field);
        CHECK(back->at(field) == value);
    }
}

namespace {

/// Runs one simulator seed as ubuzima_sim would; returns its failures (empty = passed).
std::string run_seed(std::uint64_t seed, int devices, int steps) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("ubuzima-sim-seed-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    SimOptions o;
    o.seed = seed;
    o.devices = devices;
    o.steps = steps;
    o.work_dir = (dir / "seed").string();
    o.server_template = (dir / "server-template.db").string();
    REQUIRE(Simulation::make_server_template(o.server_template).ok());
    std::string all;
    {
        Simulation sim(o);
        for (const std::string& f : sim.run()) all += f + "\n";
    }
    fs::remove_all(dir);
    return all;
}

}  // namespace

TEST_CASE("Seed 82 (5 devices, 200 steps): a need written on device 3, moved away and back by device 4",
          "[sim][regression][move]") {
    // Found once the simulator moved rows back (device 4 undoing a move): device 3 ended with
    // need-5's description and need_type null, the fields it had written before the move.
    CHECK(run_seed(82, 5, 200).empty());
}

TEST_CASE("Seed 2878 (8 devices, 300 steps): a re-stamped edit stays newer than the write it edited",
          "[sim][regression][clock]") {
    // The coordinator's edit of trai-5 was deferred for clock skew and re-stamped from the
    // clock just set back, below the version of its own create, accepted in an earlier sync,
    // that the edit was made on: the edit lost on the server to its own base, the device kept it.
    CHECK(run_seed(2878, 8, 300).empty());
}
