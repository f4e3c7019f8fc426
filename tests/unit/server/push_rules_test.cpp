// Ubuzima Sync — MIT licence.
// Who may write what, from the schema file: tables per role, role-bound values, actor fields set
// from the login, versions bound to the device, parents in the writer's scope.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

namespace {

constexpr std::uint64_t kNode = 0xa1a1a1a1a1a1a1a1ull;
constexpr std::uint64_t kOther = 0xb2b2b2b2b2b2b2b2ull;

json assessment(const std::string& facility) {
    return {{"facility_id", facility}, {"instrument_version_id", "instv-dehs-hna-1.0.0"},
            {"assessment_type", "baseline"}, {"status", "draft"}, {"visit_date", "2026-11-20"}};
}

json rejection(const Reply& r, std::size_t i = 0) {
    REQUIRE(r.status == 200);
    REQUIRE(r.body["push"]["rejected"].size() > i);
    return r.body["push"]["rejected"][i];
}


}  // namespace

TEST_CASE("which role may write which table comes from the schema's write_roles", "[server][authz]") {
    TestServer s;
    const std::string practitioner = s.user_token("pia", "practitioner", {"fac-kabgayi"});
    const std::string assessor = s.user_token("alice", "assessor", {"fac-kabgayi"});
    // A practitioner records sessions, not assessments.
    Reply r = s.sync(practitioner, kNode, json::array({change("needs_assessment", "a1", s.version(kNode), assessment("fac-kabgayi"))}));
    CHECK(rejection(r)["code"] == "forbidden");
    CHECK(rejection(r)["message"] == "practitioners may not write needs_assessment (written by admin, coordinator, assessor)");
    json session{{"deployment_id", "dep-1"}, {"facility_id", "fac-kabgayi"}, {"topic", "Airway"},
                 {"specialty_code", "anaesthesiology"}, {"method", "lecture"}, {"start_at", 1},
                 {"duration_minutes", 60}, {"delivery", "in_person"}, {"status", "held"}};
    CHECK(s.sync(practitioner, kNode, json::array({change("skill_transfer_session", "s1", s.version(kNode), session)}))
              .body["push"]["applied"] == 1);
    // ... and an assessor assessments, not sessions.
    CHECK(rejection(s.sync(assessor, kOther, json::array({change("skill_transfer_session", "s2", s.version(kOther), session)})))["code"] == "forbidden");
    CHECK(s.sync(assessor, kOther, json::array({change("needs_assessment", "a1", s.version(kOther), assessment("fac-kabgayi"))}))
              .body["push"]["applied"] == 1);
}

TEST_CASE("validating is the Ministry's step: role-bound values", "[server][authz]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    json validated = assessment("fac-kabgayi");
    validated["status"] = "validated";
    // Created validated, or moved there from a draft: refused unless a reviewer does it.
    CHECK(rejection(s.sync(alice, kNode, json::array({change("needs_assessment", "a0", s.version(kNode), validated)})))["code"] == "forbidden");
    REQUIRE(s.sync(alice, kNode, json::array({change("needs_assessment", "a1", s.version(kNode), assessment("fac-kabgayi"))}))
                .body["push"]["applied"] == 1);
    Reply by_assessor = s.sync(alice, kNode, json::array({change("needs_assessment", "a1", s.version(kNode), {{"status", "validated"}})}));
    CHECK(rejection(by_assessor)["code"] == "forbidden");
    CHECK(rejection(by_assessor)["message"] == "only admin, coordinator may set needs_assessment.status to 'validated'");
    REQUIRE(s.sync(alice, kNode, json::array({change("needs_assessment", "a1", s.version(kNode), {{"status", "submitted"}})}))
                .body["push"]["applied"] == 1);
    CHECK(s.sync(coord, kOther, json::array({change("needs_assessment", "a1", s.version(kOther), {{"status", "validated"}})}))
              .body["push"]["applied"] == 1);
    // Needs too.
    json need{{"facility_id", "fac-kabgayi"}, {"need_type", "skills_training"}, {"title", "t"}, {"description", "d"},
              {"priority", "high"}, {"status", "validated"}};
    CHECK(rejection(s.sync(alice, kNode, json::array({change("need", "n1", s.version(kNode), need)})))["code"] == "forbidden");
}

TEST_CASE("actor fields are set from the login, never from what a device claims", "[server][authz]") {
    TestServer s;
    const std::string admin = s.admin_token();
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string alice_id = s.login_reply("alice", TestServer::password_of("alice")).body["user"]["id"];
    const std::string admin_id = s.login_reply("admin", TestServer::kAdminPassword).body["user"]["id"];
    const std::string coord = s.user_token("cora", "coordinator", {});

    SECTION("a forged actor is refused") {
        json event{{"facility_id", "fac-kabgayi"}, {"need_id", "n"}, {"to_status", "open"}, {"by_user_id", admin_id}};
        Reply r = s.sync(alice, kNode, json::array({change("need_status_event", "e1", s.version(kNode), event)}));
        CHECK(rejection(r)["code"] == "forbidden");
        CHECK(rejection(r)["message"].get<std::string>().find("by_user_id is set from your login") != std::string::npos);
        json forged = assessment("fac-kabgayi");
        forged["lead_assessor_id"] = "someone-else";
        forged["validated_by"] = admin_id;
        CHECK(rejection(s.sync(alice, kNode, json::array({change("needs_assessment", "a1", s.version(kNode), forged)})))["code"] == "forbidden");
    }
    SECTION("the own id is accepted, and a left-out actor is filled in by the server") {
        json event{{"facility_id", "fac-kabgayi"}, {"need_id", "n"}, {"to_status", "open"}, {"by_user_id", alice_id}};
        CHECK(s.sync(alice, kNode, json::array({change("need_status_event", "e1", s.version(kNode), event)})).body["push"]["applied"] == 1);
        // lead_assessor_id (required) left out: the row is accepted and the server sets it, under
        // its own version, so the device that wrote the row pulls it.
        Reply r = s.sync(alice, kNode, json::array({change("needs_assessment", "a1", s.version(kNode), assessment("fac-kabgayi"))}));
        CHECK(r.body["push"]["applied"] == 1);
        json stamped = find_row(r.body["changes"], "needs_assessment", "a1");
        REQUIRE(stamped.is_object());
        CHECK(stamped["f"]["lead_assessor_id"][0] == alice_id);
        CHECK(stamped["f"]["lead_assessor_id"][1].get<std::string>().substr(17) == ubuzima::sync::to_hex16(s.store->node_id()));
        CHECK_FALSE(stamped["f"].contains("status"));  // what alice wrote herself is not sent back
        // voided_by follows voided_at.
        Reply voided = s.sync(alice, kNode, json::array({change("need_status_event", "e1", s.version(kNode),
                                                                {{"voided_at", 5}, {"void_reason", "typo"}})}));
        CHECK(voided.body["push"]["applied"] == 1);
        json cursor = nullptr;
        json row = find_row(s.pull_all(coord, kOther, cursor), "need_status_event", "e1");
        CHECK(row["f"]["voided_by"][0] == alice_id);
        CHECK(row["f"]["by_user_id"][0] == alice_id);
    }
    (void)admin;
}

TEST_CASE("a change must carry the pushing device's node", "[server][authz][node]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    json need{{"facility_id", "fac-kabgayi"}, {"need_type", "skills_training"}, {"title", "t"}, {"description", "d"},
              {"priority", "high"}, {"status", "identified"}};
    // Written "as" a colleague's device: that device would skip it in its pulls, never seeing it.
    Reply r = s.sync(alice, kNode, json::array({change("need", "n1", s.version(kOther), need)}));
    CHECK(rejection(r)["code"] == "wrong_node");
    CHECK(s.sync(alice, kNode, json::array({change("need", "n1", s.version(kNode), need)})).body["push"]["applied"] == 1);
}

TEST_CASE("a finding's assessment must be visible to the writer and in the same facility", "[server][authz]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bob = s.user_token("bob", "assessor", {"fac-kibuye"});
    const std::string dana = s.user_token("dana", "assessor", {"fac-kabgayi", "fac-kibuye"});
    REQUIRE(s.sync(bob, kOther, json::array({change("needs_assessment", "kibuye-1", s.version(kOther), assessment("fac-kibuye"))}))
                .body["push"]["applied"] == 1);
    auto finding = [](const std::string& facility, const std::string& parent) {
        return json{{"facility_id", facility}, {"assessment_id", parent}, {"item_id", "item-amn-power"}, {"captured_at", 1}};
    };
    // Hanging a finding of her hospital off another hospital's assessment: refused, and answered
    // exactly as for an assessment id that does not exist.
    Reply foreign = s.sync(alice, kNode, json::array({change("assessment_finding", "f1", s.version(kNode), finding("fac-kabgayi", "kibuye-1"))}));
    Reply missing = s.sync(alice, kNode, json::array({change("assessment_finding", "f2", s.version(kNode), finding("fac-kabgayi", "nope-1"))}));
    CHECK(rejection(foreign)["code"] == "out_of_scope");
    CHECK(rejection(missing)["code"] == "out_of_scope");
    CHECK(rejection(foreign)["message"] == "no needs_assessment kibuye-1 among your facilities");
    CHECK(rejection(missing)["message"] == "no needs_assessment nope-1 among your facilities");
    // Dana sees both, but a Kabgayi finding still cannot belong to a Kibuye assessment.
    Reply mixed = s.sync(dana, kNode + 1, json::array({change("assessment_finding", "f3", s.version(kNode + 1), finding("fac-kabgayi", "kibuye-1"))}));
    CHECK(rejection(mixed)["code"] == "invalid_value");
    CHECK(s.sync(dana, kNode + 1, json::array({change("assessment_finding", "f4", s.version(kNode + 1), finding("fac-kibuye", "kibuye-1"))}))
              .body["push"]["applied"] == 1);
}
