// Ubuzima Sync — MIT licence.
// Unit tests of the simulator's fault transport against the real in-process server Api.
#include <catch2/catch.hpp>

#include <filesystem>

#include <unistd.h>

#include "fault_transport.hpp"
#include "storage/sqlite_store.hpp"

using namespace ubuzima;
using namespace ubuzima::sim;
using nlohmann::json;

namespace {

struct ApiFixture {
    ApiFixture() {
        dir = std::filesystem::temp_directory_path() / ("ubuzima-sim-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        store = server::SqliteStore::open((dir / "s.db").string(), 7).value();
        server::ServerOptions o;
        o.pbkdf2_iterations = 1000;
        o.bootstrap_admin_password = "sim-admin-password";
        api = server::Api::create(*store, o).value();
    }
    ~ApiFixture() {
        api.reset();
        store.reset();
        std::filesystem::remove_all(dir);
    }
    std::filesystem::path dir;
    std::unique_ptr<server::SqliteStore> store;
    std::unique_ptr<server::Api> api;
};

const std::string kLogin =
    json{{"username", "admin"}, {"password", "sim-admin-password"}, {"device_id", "00000000000000aa"}}.dump();
const HttpHeaders kHeaders = {{"Content-Type", "application/json"}};

}  // namespace

TEST_CASE("to_server_request keeps the path and lower-cases header names", "[sim]") {
    const server::http::Request r = to_server_request("sim://server/v1/sync", "{}", {{"Authorization", "Bearer x"}});
    CHECK(r.method == "POST");
    CHECK(r.raw_path == "/v1/sync");
    CHECK(r.header("authorization") == "Bearer x");
    CHECK(r.body == "{}");
}

TEST_CASE_METHOD(ApiFixture, "Without faults every request reaches the server once", "[sim]") {
    Rng rng(1);
    FaultTransport t(*api, rng, FaultRates{});
    t.set_faults(false);
    auto r = t.post("sim://server/v1/auth/login", kLogin, kHeaders);
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(json::parse(r->body).contains("access_token"));
    CHECK(t.counts().delivered == 1);
}

TEST_CASE_METHOD(ApiFixture, "Each fault kind does what it says", "[sim]") {
    Rng rng(2);
    SECTION("lost request: a network error and nothing delivered") {
        FaultTransport t(*api, rng, FaultRates{1000, 0, 0, 0});
        auto r = t.post("sim://server/v1/auth/login", kLogin, kHeaders);
        CHECK(r.status().code() == ErrorCode::Network);
        CHECK(t.counts().delivered == 0);
        CHECK(t.counts().lost_requests == 1);
    }
    SECTION("lost response: delivered, yet the device sees a network error") {
        FaultTransport t(*api, rng, FaultRates{0, 1000, 0, 0});
        auto r = t.post("sim://server/v1/auth/login", kLogin, kHeaders);
        CHECK(r.status().code() == ErrorCode::Network);
        CHECK(t.counts().delivered == 1);
    }
    SECTION("duplicate: delivered twice, one answer") {
        FaultTransport t(*api, rng, FaultRates{0, 0, 1000, 0});
        auto r = t.post("sim://server/v1/auth/login", kLogin, kHeaders);
        REQUIRE(r.ok());
        CHECK(r->status == 200);
        CHECK(t.counts().delivered == 2);
    }
    SECTION("offline: refused before anything is sent") {
        FaultTransport t(*api, rng, FaultRates{0, 0, 0, 0});
        t.set_online(false);
        CHECK(t.post("sim://server/v1/auth/login", kLogin, kHeaders).status().code() == ErrorCode::Network);
        CHECK(t.counts().delivered == 0);
        CHECK(t.counts().offline == 1);
    }
    SECTION("stale replay: an earlier /v1/sync request is delivered again before the new one") {
        FaultTransport t(*api, rng, FaultRates{0, 0, 0, 1000});
        const std::string token = json::parse(t.post("sim://server/v1/auth/login", kLogin, kHeaders)->body)["access_token"];
        const HttpHeaders auth = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
        const std::string pull = json{{"protocol", 1}, {"schema_version", 1}, {"node", "00000000000000aa"},
                                      {"cursor", nullptr}, {"limit", 10}}.dump();
        REQUIRE(t.post("sim://server/v1/sync", pull, auth)->status == 200);
        REQUIRE(t.post("sim://server/v1/sync", pull, auth)->status == 200);
        CHECK(t.counts().stale_replays == 1);
        CHECK(t.counts().delivered == 4);  // login, first sync, the replay, second sync
    }
}

TEST_CASE_METHOD(ApiFixture, "The same seed injects the same faults", "[sim]") {
    auto outcomes = [&](std::uint64_t seed) {
        Rng rng(seed);
        FaultTransport t(*api, rng, FaultRates{300, 300, 300, 0});
        std::string trace;
        for (int i = 0; i < 30; ++i) trace += t.post("sim://server/v1/health", "", kHeaders).ok() ? 'o' : 'x';
        return trace + std::to_string(t.counts().delivered);
    };
    CHECK(outcomes(99) == outcomes(99));
    CHECK(outcomes(99) != outcomes(100));
}
