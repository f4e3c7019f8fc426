// Ubuzima Sync — MIT licence.
// POST /v1/sync push path: round trip, idempotent batches, conflicts, per-change rejections.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

namespace {
constexpr std::uint64_t kNodeA = 0xa1a1a1a1a1a1a1a1ull;
constexpr std::uint64_t kNodeB = 0xb2b2b2b2b2b2b2b2ull;
constexpr std::uint64_t kNodeC = 0xc3c3c3c3c3c3c3c3ull;

json with(json fields, const std::string& key, const json& value) {
    fields[key] = value;
    return fields;
}
}  // namespace

TEST_CASE("a pushed row reaches other devices but not its author", "[server][sync]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    json cursor_a = nullptr, cursor_b = nullptr;
    s.pull_all(alice, kNodeA, cursor_a);
    s.pull_all(coord, kNodeB, cursor_b);

    const std::string v1 = s.version(kNodeA);
    Reply pushed = s.sync(alice, kNodeA, json::array({change("need", "n1", v1, need_fields("fac-kabgayi"))}));
    REQUIRE(pushed.status == 200);
    CHECK(pushed.body["push"]["applied"] == 1);
    CHECK(pushed.body["push"]["rejected"].empty());
    CHECK(pushed.body["push"]["conflicts"].empty());
    CHECK(pushed.body["server_clock"].get<std::string>().size() == 16);

    json got = s.pull_all(coord, kNodeB, cursor_b);
    json row = find_row(got, "need", "n1");
    REQUIRE(row.is_object());
    CHECK(row["f"]["title"] == json::array({"Anaesthesia training", v1}));
    CHECK(row["f"]["facility_id"] == json::array({"fac-kabgayi", v1}));
    CHECK(row["f"].size() == 6);

    // The author already has every field: nothing comes back to it.
    CHECK(find_row(s.pull_all(alice, kNodeA, cursor_a), "need", "n1").is_null());

    // An edit by the coordinator flows back to alice with only the changed field.
    const std::string v2 = s.version(kNodeB);
    Reply edit = s.sync(coord, kNodeB, json::array({change("need", "n1", v2, {{"title", "Theatre nursing"}}, {{"title", v1}})}));
    CHECK(edit.body["push"]["applied"] == 1);
    json back = find_row(s.pull_all(alice, kNodeA, cursor_a), "need", "n1");
    REQUIRE(back.is_object());
    CHECK(back["f"] == json{{"title", json::array({"Theatre nursing", v2})}});

    // Delete is a field too.
    const std::string v3 = s.version(kNodeA);
    s.sync(alice, kNodeA, json::array({change("need", "n1", v3, {{"_deleted", true}}, {{"_deleted", nullptr}})}));
    json del = find_row(s.pull_all(coord, kNodeB, cursor_b), "need", "n1");
    REQUIRE(del.is_object());
    CHECK(del["f"] == json{{"_deleted", json::array({true, v3})}});
}

TEST_CASE("a replayed batch returns the stored result and applies nothing", "[server][sync]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    json batch = json::array({change("need", "n1", s.version(kNodeA), need_fields("fac-kabgayi")),
                              change("nope", "x", s.version(kNodeA), {{"a", 1}})});
    Reply first = s.sync(alice, kNodeA, batch, "batch-1");
    REQUIRE(first.status == 200);
    CHECK(first.body["push"]["applied"] == 1);
    json cursor = nullptr;
    s.pull_all(coord, kNodeB, cursor);

    // Same id, even with different content: the first outcome stands.
    json other = json::array({change("need", "n1", s.version(kNodeA), {{"title", "changed"}})});
    Reply again = s.sync(alice, kNodeA, other, "batch-1");
    REQUIRE(again.status == 200);
    CHECK(again.body["push"] == first.body["push"]);
    Reply pull = s.sync(coord, kNodeB, nullptr, "", cursor);
    CHECK(pull.body["changes"].empty());
    CHECK(pull.body["cursor"] == cursor);  // no new seq was handed out

    // The batch id is per user: another user's batch with the same id is its own batch.
    const std::string bob = s.user_token("bob", "assessor", {"fac-kabgayi"});
    Reply bobs = s.sync(bob, kNodeC, json::array({change("need", "n2", s.version(kNodeC), need_fields("fac-kabgayi"))}),
                        "batch-1");
    CHECK(bobs.body["push"]["applied"] == 1);
}

TEST_CASE("concurrent edits keep the larger version and journal the loser", "[server][sync]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bob = s.user_token("bob", "focal_point", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    const std::string v0 = s.version(kNodeA);
    s.sync(alice, kNodeA, json::array({change("need", "n1", v0, need_fields("fac-kabgayi"))}));

    // Both edited the title having seen v0; alice's write arrives first, bob's is newer.
    const std::string va = s.version(kNodeA);
    const std::string vb = s.version(kNodeB);
    REQUIRE(vb > va);
    CHECK(s.sync(alice, kNodeA, json::array({change("need", "n1", va, {{"title", "A"}}, {{"title", v0}})}))
              .body["push"]["conflicts"]
              .empty());
    Reply rb = s.sync(bob, kNodeB, json::array({change("need", "n1", vb, {{"title", "B"}}, {{"title", v0}})}));
    REQUIRE(rb.body["push"]["applied"] == 1);
    REQUIRE(rb.body["push"]["conflicts"].size() == 1);
    json c = rb.body["push"]["conflicts"][0];
    CHECK(c["t"] == "need");
    CHECK(c["id"] == "n1");
    CHECK(c["field"] == "title");
    CHECK(c["kept"] == vb);
    CHECK(c["lost"] == va);
    CHECK(c["kept_value"] == "B");
    CHECK(c["lost_value"] == "A");

    // A late, older concurrent write loses and is journalled too.
    const std::string vold = ubuzima::sync::Version{ubuzima::sync::make_hlc(s.now_ms() - 60'000, 0), kNodeC}.to_string();
    const std::string carol = s.user_token("carol", "focal_point", {"fac-kabgayi"});
    Reply rc = s.sync(carol, kNodeC, json::array({change("need", "n1", vold, {{"title", "C"}}, {{"title", v0}})}));
    CHECK(rc.body["push"]["applied"] == 1);
    REQUIRE(rc.body["push"]["conflicts"].size() == 1);
    CHECK(rc.body["push"]["conflicts"][0]["kept"] == vb);
    CHECK(rc.body["push"]["conflicts"][0]["lost"] == vold);

    Reply list = s.call("GET", "/v1/conflicts?status=open", "", coord);
    REQUIRE(list.status == 200);
    REQUIRE(list.body["conflicts"].size() == 2);
    json j = list.body["conflicts"][0];
    CHECK(j["t"] == "need");
    CHECK(j["row_id"] == "n1");
    CHECK(j["kept"] == json{{"value", "B"}, {"version", vb}});
    CHECK(j["lost"] == json{{"value", "A"}, {"version", va}});
    CHECK(j["status"] == "open");

    json cursor = nullptr;
    json row = find_row(s.pull_all(coord, kNodeB + 1, cursor), "need", "n1");
    // The pulled value names the concurrent write it overwrote, so A's device journals its loss.
    CHECK(row["f"]["title"] == json::array({"B", vb, va}));
}

TEST_CASE("bad changes are rejected one by one and the rest of the batch applies", "[server][sync]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    json assessment{{"facility_id", "fac-kabgayi"}, {"instrument_version_id", "iv-1"}, {"assessment_type", "baseline"},
                    {"status", "draft"},           {"visit_date", "2026-11-20"}};
    json event{{"facility_id", "fac-kabgayi"}, {"need_id", "n0"}, {"to_status", "open"}};
    const std::string va = s.version(kNodeA);
    Reply setup = s.sync(alice, kNodeA,
                         json::array({change("needs_assessment", "a1", va, assessment),
                                      change("need_status_event", "e1", s.version(kNodeA), event)}));
    REQUIRE(setup.body["push"]["applied"] == 2);
    // Submitting seals the row: the submitting change itself is accepted.
    Reply submit = s.sync(alice, kNodeA,
                          json::array({change("needs_assessment", "a1", s.version(kNodeA), {{"status", "submitted"}})}));
    REQUIRE(submit.body["push"]["applied"] == 1);

    json finding{{"facility_id", "fac-kabgayi"}, {"assessment_id", "a1"}, {"item_id", "item-1"}, {"captured_at", 1}};
    json batch = json::array({
        change("nope", "x1", s.version(kNodeA), {{"a", 1}}),                                             // 0
        change("need", "n1", s.version(kNodeA), with(need_fields("fac-kabgayi"), "bogus", 1)),  // 1
        change("need", "n2", s.version(kNodeA), with(need_fields("fac-kabgayi"), "priority", "urgent")),  // 2
        change("facility", "fac-kabgayi", s.version(kNodeA), {{"name", "Renamed"}}),                      // 3
        change("need", "n3", s.version(kNodeA, 3'600'000), need_fields("fac-kabgayi")),                   // 4
        change("need", "n4", s.version(kNodeA), need_fields("fac-kibuye")),                               // 5
        change("need", "ok1", s.version(kNodeA), need_fields("fac-kabgayi")),                             // 6
        change("need_status_event", "e1", s.version(kNodeA), {{"note", "changed my mind"}}),              // 7
        change("needs_assessment", "a1", s.version(kNodeA), {{"visit_date", "2026-11-22"}}),              // 8
        change("assessment_finding", "f1", s.version(kNodeA), finding),                                   // 9
        change("need_status_event", "e1", s.version(kNodeA), {{"voided_at", 5}, {"void_reason", "typo"}}),  // 10
        change("need_status_event", "e1", s.version(kNodeA), {{"_deleted", true}}),                       // 11
        change("service_tally", "t9", s.version(kNodeA), {{"facility_id", "fac-kabgayi"}}),               // 12
    });
    Reply r = s.sync(alice, kNodeA, batch);
    REQUIRE(r.status == 200);
    CHECK(r.body["push"]["applied"] == 2);
    const json& rej = r.body["push"]["rejected"];
    std::map<int, std::string> codes;
    for (const json& x : rej) codes[x["index"].get<int>()] = x["code"].get<std::string>();
    INFO(rej.dump());
    CHECK(codes == std::map<int, std::string>{{0, "unknown_table"}, {1, "unknown_field"}, {2, "invalid_value"},
                                              {3, "read_only"},     {4, "clock_skew"},    {5, "out_of_scope"},
                                              {7, "append_only"},   {8, "sealed"},        {9, "sealed"},
                                              {11, "append_only"},  {12, "forbidden"}});
    for (const json& x : rej) {
        CHECK(!x["message"].get<std::string>().empty());
        if (x["index"] == 8) {
            // The device gets the stored value back to roll its copy back.
            CHECK(x["current"]["visit_date"] == json::array({"2026-11-20", va}));
        }
        if (x["index"] == 0 || x["index"] == 5) CHECK(x["current"].is_null());
    }

    // Reviewers may still move the seal field of a sealed row, and only that field.
    Reply validate = s.sync(coord, kNodeB,
                            json::array({change("needs_assessment", "a1", s.version(kNodeB), {{"status", "validated"}}),
                                         change("needs_assessment", "a1", s.version(kNodeB), {{"summary", "late"}})}));
    CHECK(validate.body["push"]["applied"] == 1);
    REQUIRE(validate.body["push"]["rejected"].size() == 1);
    CHECK(validate.body["push"]["rejected"][0]["code"] == "sealed");

    // Moving a row to a facility outside the user's own is out of scope.
    Reply move = s.sync(alice, kNodeA, json::array({change("need", "ok1", s.version(kNodeA), {{"facility_id", "fac-kibuye"}})}));
    REQUIRE(move.body["push"]["rejected"].size() == 1);
    CHECK(move.body["push"]["rejected"][0]["code"] == "out_of_scope");
}

TEST_CASE("an edit of a row in another facility is answered as one of a row that does not exist", "[server][sync]") {
    TestServer s;
    const std::string bob = s.user_token("bob", "focal_point", {"fac-kibuye"});
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    s.sync(bob, kNodeB, json::array({change("need", "nb", s.version(kNodeB), need_fields("fac-kibuye"))}));
    Reply foreign = s.sync(alice, kNodeA, json::array({change("need", "nb", s.version(kNodeA), {{"title", "mine now"}})}));
    Reply unknown = s.sync(alice, kNodeA, json::array({change("need", "nx", s.version(kNodeA), {{"title", "mine now"}})}));
    REQUIRE(foreign.body["push"]["rejected"].size() == 1);
    REQUIRE(unknown.body["push"]["rejected"].size() == 1);
    const json& f = foreign.body["push"]["rejected"][0];
    const json& u = unknown.body["push"]["rejected"][0];
    CHECK(f["code"] == u["code"]);
    CHECK(f["message"] == u["message"]);  // the same words: nothing tells that nb exists
    CHECK(f["current"].is_null());        // alice may not see it
    CHECK(u["current"].is_null());
    // A full row under a foreign id cannot take it over, and names no facility.
    Reply takeover = s.sync(alice, kNodeA, json::array({change("need", "nb", s.version(kNodeA), need_fields("fac-kabgayi"))}));
    REQUIRE(takeover.body["push"]["rejected"].size() == 1);
    CHECK(takeover.body["push"]["rejected"][0]["code"] == "out_of_scope");
    CHECK(takeover.body["push"]["rejected"][0]["message"].get<std::string>().find("kibuye") == std::string::npos);
}
