// Ubuzima Sync — MIT licence.
// Integration: a user's facilities change while devices hold data (purge, re-pull), and a second
// user on one device, with real devices and the real server.
#include "integration/fixture.hpp"

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {

void set_facilities(ServerFixture& fx, const std::string& user, const std::vector<std::string>& facilities) {
    const std::string admin = login_token(fx.server.url(), "admin", fx.server.admin_password());
    HttpResult r = http_request("PATCH", fx.server.url() + "/v1/admin/users/" + user,
                                json{{"facilities", facilities}}.dump(), admin);
    INFO(r.body);
    REQUIRE(r.status == 200);
}

/// Dana: an assessor of Gisenyi and Butaro (she moves rows between them).
void create_dana(ServerFixture& fx) {
    create_user(fx.server.url(), login_token(fx.server.url(), "admin", fx.server.admin_password()), "dana", kPassword,
                "assessor", {"fac-gisenyi", "fac-butaro"});
}

}  // namespace

TEST_CASE_METHOD(ServerFixture, "Facilities taken from a user: the device drops them, unpushed edits kept as rejected",
                 "[integration][scope]") {
    create_dana(*this);
    Database d = device("dana", "dana");
    auto gisenyi = d.insert("need", need_fields("fac-gisenyi", "Stays"));
    auto butaro = d.insert("need", need_fields("fac-butaro", "Goes"));
    REQUIRE(gisenyi.ok());
    REQUIRE(butaro.ok());
    Database c = device("carol", "carol");  // Butaro's own assessor: her rows go from dana's device too
    auto carols = c.insert("need", need_fields("fac-butaro", "Carol's"));
    REQUIRE(carols.ok());
    must_sync(c);
    must_sync(d);
    REQUIRE(d.get("need", *carols).value().has_value());

    set_facilities(*this, "dana", {"fac-gisenyi"});
    REQUIRE(d.update("need", *butaro, {{"priority", "critical"}}).ok());  // offline, before she knows
    SyncReport r = must_sync(d);
    CHECK(r.removed == 3);  // the two needs and Butaro's facility_designation row
    CHECK(r.rejected == 1);
    CHECK_FALSE(d.get("need", *butaro).value().has_value());
    CHECK_FALSE(d.get("need", *carols).value().has_value());
    CHECK(d.get("need", *gisenyi).value().has_value());
    json rejected = d.rejected().value();
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0]["code"] == "out_of_scope");
    CHECK(rejected[0]["fields"]["priority"] == "critical");
    CHECK(facility_state(d, "fac-butaro")["need"].empty());
    // The server kept Butaro's rows as they were.
    must_sync(c);
    CHECK(c.get("need", *butaro).value()->at("priority") == "high");
}

TEST_CASE_METHOD(ServerFixture, "Facilities given to a user: the next sync brings their old rows, whatever the cursor",
                 "[integration][scope]") {
    Database c = device("carol", "carol");
    std::vector<std::string> old_rows;
    for (int i = 0; i < 30; ++i) {
        auto id = c.insert("need", need_fields("fac-butaro", "Butaro need " + std::to_string(i)));
        REQUIRE(id.ok());
        old_rows.push_back(*id);
    }
    must_sync(c);
    DatabaseOptions small_pages;
    small_pages.sync.page_limit = 7;  // the restarted pull pages too
    Database a = device("alice", "alice", small_pages);
    REQUIRE(a.insert("need", need_fields("fac-gisenyi", "Alice's")).ok());
    must_sync(a);
    CHECK(facility_state(a, "fac-butaro")["need"].empty());

    set_facilities(*this, "alice", {"fac-gisenyi", "fac-butaro"});
    must_sync(a);
    for (const std::string& id : old_rows) CHECK(a.get("need", id).value().has_value());
    CHECK(facility_state(a, "fac-butaro") == facility_state(c, "fac-butaro"));
    CHECK(a.query("need").value().size() == 31);
}

TEST_CASE_METHOD(ServerFixture, "A second user logging in on a device never sees the first user's data",
                 "[integration][second_user]") {
    Database tablet = device("shared-tablet", "alice");
    auto mine = tablet.insert("need", need_fields("fac-gisenyi", "Alice's need"));
    REQUIRE(mine.ok());
    // Unsynced changes of alice: carol cannot log in (they would be pushed as hers, or lost).
    CHECK(tablet.login(server.url(), "carol", kPassword).code() == ErrorCode::Conflict);
    must_sync(tablet);
    const std::string alice_node = tablet.node_id();
    REQUIRE(tablet.login(server.url(), "carol", kPassword).ok());
    CHECK_FALSE(tablet.get("need", *mine).value().has_value());
    CHECK(facility_state(tablet, "fac-gisenyi")["need"].empty());
    CHECK(tablet.node_id() != alice_node);
    Database c = device("carol-phone", "carol");
    auto hers = c.insert("need", need_fields("fac-butaro", "Carol's need"));
    REQUIRE(hers.ok());
    must_sync(c);
    must_sync(tablet);
    CHECK(tablet.get("need", *hers).value().has_value());
    CHECK_FALSE(tablet.get("need", *mine).value().has_value());
    CHECK(tablet.query("facility").value().size() == 10);  // reference data is everyone's
}

TEST_CASE_METHOD(ServerFixture, "A row that leaves a device's facilities and comes back returns whole, its own fields included",
                 "[integration][scope][move]") {
    create_dana(*this);
    Database a = device("alice", "alice");
    auto need = a.insert("need", need_fields("fac-gisenyi", "Alice's need"));
    REQUIRE(need.ok());
    must_sync(a);
    Database d = device("dana", "dana");
    must_sync(d);

    SECTION("moved away by another user and back") {
        REQUIRE(d.update("need", *need, {{"facility_id", "fac-butaro"}}).ok());
        must_sync(d);
        CHECK(must_sync(a).removed == 1);
        REQUIRE_FALSE(a.get("need", *need).value().has_value());
        REQUIRE(d.update("need", *need, {{"facility_id", "fac-gisenyi"}}).ok());
        must_sync(d);
    }
    SECTION("moved away and back while the device was offline") {
        REQUIRE(d.update("need", *need, {{"facility_id", "fac-butaro"}}).ok());
        must_sync(d);
        REQUIRE(d.update("need", *need, {{"facility_id", "fac-gisenyi"}}).ok());
        must_sync(d);
    }
    SECTION("the user's facilities shrink and grow again") {
        set_facilities(*this, "alice", {"fac-butaro"});
        must_sync(a);
        REQUIRE_FALSE(a.get("need", *need).value().has_value());
        set_facilities(*this, "alice", {"fac-gisenyi"});
    }
    must_sync(a);
    auto back = a.get("need", *need).value();
    REQUIRE(back.has_value());
    const nlohmann::json written = need_fields("fac-gisenyi", "Alice's need");
    for (const auto& [field, value] : written.items()) {
        INFO(field);
        CHECK(back->at(field) == value);
    }
    must_sync(d);
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(d, "fac-gisenyi"));
}
