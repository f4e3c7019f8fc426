// Ubuzima Sync — MIT licence.
// Integration: real devices and a real server converge; concurrent edits keep the loser.
#include "integration/fixture.hpp"

#include <chrono>
#include <thread>

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

TEST_CASE_METHOD(ServerFixture, "Two devices capture offline and converge", "[integration]") {
    Database a = device("alice", "alice");
    Database b = device("fiona", "fiona");

    // Offline on A: an assessment with findings and a need.
    auto assessment = a.insert("needs_assessment", assessment_fields("fac-gisenyi"));
    REQUIRE(assessment.ok());
    for (const char* item : {"item-amn-power", "item-amn-water", "item-eqp-bp"}) {
        CAPTURE(item);
        REQUIRE(a.insert("assessment_finding", {{"facility_id", "fac-gisenyi"},
                                                {"assessment_id", *assessment},
                                                {"item_id", item},
                                                {"availability", "observed_functional"},
                                                {"captured_at", 1'764'000'000'000}})
                    .ok());
    }
    auto need = a.insert("need", need_fields("fac-gisenyi", "Anaesthesia cover for C-sections"));
    REQUIRE(need.ok());

    // Offline on B: a trainee, a skill-transfer session with attendance, and a tally.
    auto trainee = b.insert("trainee", {{"facility_id", "fac-gisenyi"}, {"given_name", "Jeanne"},
                                        {"family_name", "Example"}, {"cadre", "nurse"}, {"pseudonym_code", "GIS-0001"}});
    REQUIRE(trainee.ok());
    auto session = b.insert("skill_transfer_session",
                            {{"deployment_id", "dep-001"}, {"facility_id", "fac-gisenyi"},
                             {"topic", "Post-stroke mobilisation"}, {"specialty_code", "physiotherapy"},
                             {"method", "bedside_teaching"}, {"start_at", 1'764'000'000'000},
                             {"duration_minutes", 120}, {"delivery", "in_person"}, {"status", "held"}});
    REQUIRE(session.ok());
    REQUIRE(b.insert("session_attendance", {{"facility_id", "fac-gisenyi"}, {"session_id", *session},
                                            {"trainee_id", *trainee}, {"attendance", "present"}})
                .ok());
    REQUIRE(b.insert("service_tally", {{"deployment_id", "dep-001"}, {"facility_id", "fac-gisenyi"},
                                       {"service_date", "2026-11-21"}, {"service_type", "physiotherapy_session"},
                                       {"sex", "female"}, {"age_band", "50_plus"}, {"patient_count", 6}})
                .ok());

    // A link appears: each device syncs (push + pull), then once more to see the other's writes.
    SyncReport ra = must_sync(a);
    CHECK(ra.pushed == 5);
    SyncReport rb = must_sync(b);
    CHECK(rb.pushed == 4);
    must_sync(a);

    CHECK(a.pending_changes().value() == 0);
    CHECK(b.pending_changes().value() == 0);
    const json state_a = facility_state(a, "fac-gisenyi");
    const json state_b = facility_state(b, "fac-gisenyi");
    CHECK(state_a == state_b);
    CHECK(state_a["assessment_finding"].size() == 3);
    CHECK(state_a["session_attendance"].size() == 1);
    CHECK(state_a["facility"].size() == 10);  // reference data arrived through the feed

    // The server holds the same: a coordinator's fresh device sees the same Gisenyi state.
    Database c = device("coord", "coord");
    must_sync(c);
    CHECK(facility_state(c, "fac-gisenyi") == state_a);
}

TEST_CASE_METHOD(ServerFixture, "A concurrent edit of one field keeps the loser in the journal", "[integration]") {
    Database a = device("alice", "alice");
    Database b = device("bob", "bob");
    auto need = a.insert("need", need_fields("fac-gisenyi", "Radiology reporting"));
    REQUIRE(need.ok());
    must_sync(a);
    must_sync(b);
    REQUIRE(b.get("need", *need).value().has_value());

    // Both edit the same field offline. B writes 10 ms later, so B's version is larger and wins
    // (in the same millisecond the random node ids would decide, equally on every replica).
    REQUIRE(a.update("need", *need, {{"priority", "critical"}}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(b.update("need", *need, {{"priority", "low"}}).ok());
    SyncReport ra = must_sync(a);
    CHECK(ra.conflicts == 0);
    SyncReport rb = must_sync(b);
    CHECK(rb.pushed == 1);
    must_sync(a);

    // Converged on the same winner everywhere.
    CHECK(a.get("need", *need).value()->at("priority") == "low");
    CHECK(b.get("need", *need).value()->at("priority") == "low");

    // The server journal holds both values for review.
    HttpResult list = http_request("GET", server.url() + "/v1/conflicts?status=open", "", token("coord"));
    REQUIRE(list.status == 200);
    json conflicts = list.json()["conflicts"];
    REQUIRE(conflicts.size() == 1);
    CHECK(conflicts[0]["field"] == "priority");
    CHECK(conflicts[0]["kept"]["value"] == "low");
    CHECK(conflicts[0]["lost"]["value"] == "critical");

    // The device whose write lost keeps it in its own journal.
    json journal_a = a.conflicts().value();
    REQUIRE(journal_a.size() == 1);
    CHECK(journal_a[0]["lost_value"] == "critical");
    CHECK(journal_a[0]["kept_value"] == "low");

    // Assessors may not review conflicts; a coordinator resolves, and the choice reaches devices.
    CHECK(http_request("GET", server.url() + "/v1/conflicts", "", token("alice")).status == 403);
    const std::string id = conflicts[0]["id"].is_string() ? conflicts[0]["id"].get<std::string>()
                                                          : std::to_string(conflicts[0]["id"].get<long long>());
    HttpResult resolved = http_request("POST", server.url() + "/v1/conflicts/" + id + "/resolve",
                                       json{{"value", "critical"}}.dump(), token("coord"));
    CHECK(resolved.status == 200);
    must_sync(a);
    must_sync(b);
    CHECK(a.get("need", *need).value()->at("priority") == "critical");
    CHECK(b.get("need", *need).value()->at("priority") == "critical");
    CHECK(http_request("GET", server.url() + "/v1/conflicts?status=open", "", token("coord")).json()["conflicts"].empty());
}

TEST_CASE_METHOD(ServerFixture, "Deletes and edits of other fields merge without loss", "[integration]") {
    Database a = device("alice", "alice");
    Database b = device("bob", "bob");
    auto keep = a.insert("need", need_fields("fac-gisenyi", "Dialysis nurse training"));
    auto drop = a.insert("need", need_fields("fac-gisenyi", "Duplicate entry"));
    REQUIRE(keep.ok());
    REQUIRE(drop.ok());
    must_sync(a);
    must_sync(b);
    REQUIRE(a.update("need", *keep, {{"priority", "critical"}}).ok());
    REQUIRE(b.update("need", *keep, {{"trainees_expected", 12}}).ok());
    REQUIRE(b.remove("need", *drop).ok());
    must_sync(a);
    must_sync(b);
    must_sync(a);
    auto on_a = a.get("need", *keep).value();
    REQUIRE(on_a);
    CHECK(on_a->at("priority") == "critical");
    CHECK(on_a->at("trainees_expected") == 12);
    CHECK_FALSE(a.get("need", *drop).value().has_value());
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(b, "fac-gisenyi"));
    CHECK(http_request("GET", server.url() + "/v1/conflicts?status=all", "", token("coord")).json()["conflicts"].empty());
}
