// Ubuzima Sync — MIT licence.
// Integration: scope (and rows moving between facilities), sealed and append-only rules, rejected
// changes kept and rolled back.
#include "integration/fixture.hpp"

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

TEST_CASE_METHOD(ServerFixture, "Users see only their facilities and cannot write outside them", "[integration]") {
    Database a = device("alice", "alice");
    Database c = device("carol", "carol");
    auto gisenyi_need = a.insert("need", need_fields("fac-gisenyi", "Gisenyi need"));
    REQUIRE(gisenyi_need.ok());
    must_sync(a);

    must_sync(c);
    CHECK_FALSE(c.get("need", *gisenyi_need).value().has_value());
    CHECK(c.query("facility").value().size() == 10);  // reference data is for everyone

    // Carol records a need for a hospital that is not hers: refused, kept, rolled back.
    auto foreign = c.insert("need", need_fields("fac-gisenyi", "Not my hospital"));
    REQUIRE(foreign.ok());  // offline the device cannot know the server's scope rules
    SyncReport r = must_sync(c);
    CHECK(r.rejected == 1);
    CHECK(c.pending_changes().value() == 0);
    json rejected = c.rejected().value();
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0]["code"] == "out_of_scope");
    CHECK_FALSE(c.get("need", *foreign).value().has_value());
    must_sync(a);
    CHECK_FALSE(a.get("need", *foreign).value().has_value());
}

TEST_CASE_METHOD(ServerFixture, "A row moved between facilities leaves the devices that no longer see it", "[integration]") {
    // dana sees both hospitals and moves a need from Gisenyi to Butaro and back.
    create_user(server.url(), login_token(server.url(), "admin", server.admin_password()), "dana", kPassword,
                "assessor", {"fac-gisenyi", "fac-butaro"});
    Database d = device("dana", "dana");
    Database a = device("alice", "alice");  // Gisenyi only
    Database c = device("carol", "carol");  // Butaro only
    Database k = device("coord", "coord");  // everything
    auto id = d.insert("need", need_fields("fac-gisenyi", "Anaesthesia mentoring"));
    REQUIRE(id.ok());
    must_sync(d);
    for (Database* db : {&a, &c, &k}) must_sync(*db);
    REQUIRE(a.get("need", *id).value().has_value());
    REQUIRE_FALSE(c.get("need", *id).value().has_value());

    // Alice edits it offline while dana moves it to Butaro.
    REQUIRE(a.update("need", *id, {{"priority", "critical"}}).ok());
    REQUIRE(d.update("need", *id, {{"facility_id", "fac-butaro"}}).ok());
    must_sync(d);

    SyncReport ra = must_sync(a);
    CHECK(ra.removed == 1);
    CHECK(ra.rejected == 1);  // her edit reached a row she may no longer change: kept, not lost
    CHECK_FALSE(a.get("need", *id).value().has_value());
    json rejected = a.rejected().value();
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0]["code"] == "out_of_scope");
    CHECK(rejected[0]["fields"]["priority"] == "critical");

    // Carol never had it and now gets all of it, not just the field that moved it.
    SyncReport rc = must_sync(c);
    CHECK(rc.removed == 0);
    auto at_carol = c.get("need", *id).value();
    REQUIRE(at_carol.has_value());
    CHECK((*at_carol)["title"] == "Anaesthesia mentoring");
    CHECK((*at_carol)["description"] == "Found during the baseline assessment");
    CHECK((*at_carol)["facility_id"] == "fac-butaro");
    // The coordinator sees both: nothing is removed, the move arrives as an edit.
    SyncReport rk = must_sync(k);
    CHECK(rk.removed == 0);
    CHECK(k.get("need", *id).value().value()["facility_id"] == "fac-butaro");
    CHECK(facility_state(k, "fac-butaro") == facility_state(c, "fac-butaro"));

    // Carol edits it; dana moves it back: Alice gets it whole again, with Carol's edit.
    REQUIRE(c.update("need", *id, {{"status", "open"}}).ok());
    must_sync(c);
    must_sync(d);
    REQUIRE(d.update("need", *id, {{"facility_id", "fac-gisenyi"}}).ok());
    must_sync(d);
    must_sync(a);
    auto back = a.get("need", *id).value();
    REQUIRE(back.has_value());
    CHECK((*back)["title"] == "Anaesthesia mentoring");
    CHECK((*back)["status"] == "open");
    CHECK((*back)["facility_id"] == "fac-gisenyi");
    CHECK(must_sync(c).removed == 1);
    CHECK_FALSE(c.get("need", *id).value().has_value());
    for (Database* db : {&d, &k}) must_sync(*db);
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(k, "fac-gisenyi"));
    CHECK(facility_state(d, "fac-gisenyi") == facility_state(k, "fac-gisenyi"));
    CHECK(facility_state(c, "fac-butaro") == facility_state(k, "fac-butaro"));
}

TEST_CASE_METHOD(ServerFixture, "A submitted assessment is sealed on every device", "[integration]") {
    Database a = device("alice", "alice");
    Database b = device("bob", "bob");
    auto assessment = a.insert("needs_assessment", assessment_fields("fac-gisenyi"));
    REQUIRE(assessment.ok());
    auto finding = a.insert("assessment_finding", {{"facility_id", "fac-gisenyi"}, {"assessment_id", *assessment},
                                                   {"item_id", "item-amn-power"}, {"availability", "not_available"},
                                                   {"captured_at", 1'764'000'000'000}});
    REQUIRE(finding.ok());
    must_sync(a);
    must_sync(b);

    // A submits; B, still offline, edits the draft it has.
    REQUIRE(a.update("needs_assessment", *assessment, {{"status", "submitted"}}).ok());
    Status local = a.update("needs_assessment", *assessment, {{"summary", "late edit"}});
    CHECK(local.code() == ErrorCode::Sealed);
    CHECK(a.update("assessment_finding", *finding, {{"comment", "late"}}).code() == ErrorCode::Sealed);
    REQUIRE(b.update("needs_assessment", *assessment, {{"summary", "B's summary"}}).ok());
    must_sync(a);

    SyncReport rb = must_sync(b);
    CHECK(rb.rejected == 1);
    json rejected = b.rejected().value();
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0]["code"] == "sealed");
    auto on_b = b.get("needs_assessment", *assessment).value();
    REQUIRE(on_b);
    CHECK(on_b->at("status") == "submitted");
    CHECK(on_b->at("summary").is_null());
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(b, "fac-gisenyi"));
}

TEST_CASE_METHOD(ServerFixture, "Append-only rows refuse updates but can be voided", "[integration]") {
    Database a = device("fiona", "fiona");
    auto tally = a.insert("service_tally", {{"deployment_id", "dep-002"}, {"facility_id", "fac-gisenyi"},
                                            {"service_date", "2026-11-21"}, {"service_type", "major_surgery"},
                                            {"sex", "female"}, {"age_band", "25_49"}, {"patient_count", 3}});
    REQUIRE(tally.ok());
    CHECK(a.update("service_tally", *tally, {{"patient_count", 4}}).code() == ErrorCode::AppendOnly);
    CHECK(a.remove("service_tally", *tally).code() == ErrorCode::AppendOnly);
    REQUIRE(a.update("service_tally", *tally, {{"voided_at", 1'764'000'000'000}, {"void_reason", "entered twice"}}).ok());
    must_sync(a);
    CHECK(a.rejected().value().empty());
    CHECK(a.update("facility", "fac-gisenyi", {{"beds", 10}}).code() == ErrorCode::ReadOnly);
}
