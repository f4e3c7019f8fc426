// Ubuzima Sync — MIT licence.
// POST /v1/sync pull path: seeds, scope filtering, paging and cursors.
#include <catch2/catch.hpp>

#include <set>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

namespace {
constexpr std::uint64_t kNodeA = 0xa1a1a1a1a1a1a1a1ull;
constexpr std::uint64_t kNodeB = 0xb2b2b2b2b2b2b2b2ull;
constexpr std::uint64_t kNodeC = 0xc3c3c3c3c3c3c3c3ull;

std::size_t count_table(const json& changes, const std::string& table) {
    std::size_t n = 0;
    for (const json& c : changes) n += c["t"] == table ? 1 : 0;
    return n;
}
}  // namespace

TEST_CASE("the first pull carries the seed data", "[server][pull]") {
    TestServer s;
    const std::string admin = s.admin_token();
    Reply r = s.sync(admin, kNodeA);
    REQUIRE(r.status == 200);
    CHECK(r.body["more"] == false);
    CHECK(r.body["push"].is_null());
    CHECK(count_table(r.body["changes"], "facility") == 10);
    CHECK(count_table(r.body["changes"], "specialty") == 26);
    json kabgayi = find_row(r.body["changes"], "facility", "fac-kabgayi");
    REQUIRE(kabgayi.is_object());
    CHECK(kabgayi["f"]["name"][0] == "Kabgayi District Hospital");
    CHECK(kabgayi["f"]["is_project_site"][0] == true);
    // Seeds are server writes: the version names the server's node.
    const std::string version = kabgayi["f"]["name"][1];
    CHECK(version.substr(17) == ubuzima::sync::to_hex16(s.store->node_id()));

    // Nothing new: an empty page, the cursor stays.
    Reply again = s.sync(admin, kNodeA, nullptr, "", r.body["cursor"]);
    CHECK(again.body["changes"].empty());
    CHECK(again.body["cursor"] == r.body["cursor"]);
}

TEST_CASE("pulls only show rows of the user's facilities", "[server][pull]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bob = s.user_token("bob", "focal_point", {"fac-kibuye"});
    const std::string carol = s.user_token("carol", "practitioner", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    s.sync(alice, kNodeA, json::array({change("need", "na", s.version(kNodeA), need_fields("fac-kabgayi"))}));
    s.sync(bob, kNodeB, json::array({change("need", "nb", s.version(kNodeB), need_fields("fac-kibuye"))}));

    json c1 = nullptr, c2 = nullptr;
    json carols = s.pull_all(carol, kNodeC, c1);
    CHECK(find_row(carols, "need", "na").is_object());
    CHECK(find_row(carols, "need", "nb").is_null());
    CHECK(count_table(carols, "facility") == 10);  // reference data is for everyone
    // Her facility's designation rows reach her, and no other facility's.
    int designations = 0;
    for (const json& c : carols) {
        if (c["t"] != "facility_designation") continue;
        ++designations;
        CHECK(c["f"]["facility_id"][0] == "fac-kabgayi");
    }
    CHECK(designations == 1);

    json coords = s.pull_all(coord, kNodeC + 1, c2);
    CHECK(find_row(coords, "need", "na").is_object());
    CHECK(find_row(coords, "need", "nb").is_object());
    CHECK(count_table(coords, "facility_designation") == 12);
}

TEST_CASE("paging: limit, more and cursor walk the whole feed exactly once", "[server][pull]") {
    TestServer s;
    const std::string coord = s.user_token("cora", "coordinator", {});
    json cursor = nullptr;
    std::set<std::string> seen;
    int pages = 0;
    for (;;) {
        Reply r = s.sync(coord, kNodeA, nullptr, "", cursor, 10);
        REQUIRE(r.status == 200);
        CHECK(r.body["changes"].size() <= 10);
        for (const json& c : r.body["changes"])
            CHECK(seen.insert(c["t"].get<std::string>() + "/" + c["id"].get<std::string>()).second);
        CHECK(r.body["cursor"] != cursor);
        cursor = r.body["cursor"];
        ++pages;
        if (!r.body["more"].get<bool>()) break;
        REQUIRE(pages < 100);
    }
    CHECK(seen.size() == 121);  // every seed row
    CHECK(pages == 13);
    CHECK(cursor.get<std::string>().find(':') == std::string::npos);  // caught up: a plain seq

    Reply bad = s.sync(coord, kNodeA, nullptr, "", "not-a-cursor");
    CHECK(bad.status == 400);
    CHECK(bad.body["error"]["code"] == "bad_request");
    CHECK(s.sync(coord, kNodeA, nullptr, "", "5:3").status == 400);
}

TEST_CASE("a row whose feed entry moves ahead of a paging device keeps its earlier fields", "[server][pull]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    json cursor = nullptr;
    s.pull_all(coord, kNodeC, cursor);  // caught up with the seeds

    // n1 is written, then ten other rows, then n1 again: its feed entry moves behind them while
    // its first fields keep their early seqs.
    const std::string v1 = s.version(kNodeA);
    s.sync(alice, kNodeA, json::array({change("need", "n1", v1, need_fields("fac-kabgayi"))}));
    for (int i = 0; i < 10; ++i)
        s.sync(alice, kNodeA, json::array({change("need", "x" + std::to_string(i), s.version(kNodeA), need_fields("fac-kabgayi"))}));
    const std::string v2 = s.version(kNodeA);
    s.sync(alice, kNodeA, json::array({change("need", "n1", v2, {{"title", "New title"}}, {{"title", v1}})}));

    // Paging in small pages, the device reaches n1 with a cursor past its first fields' seqs;
    // they must arrive all the same.
    json rest = s.pull_all(coord, kNodeC, cursor, 4);
    json row = find_row(rest, "need", "n1");
    REQUIRE(row.is_object());
    CHECK(row["f"]["title"] == json::array({"New title", v2}));
    CHECK(row["f"]["facility_id"] == json::array({"fac-kabgayi", v1}));
    CHECK(row["f"].size() == 6);
    CHECK(rest.size() == 11);

    // A page taken while rows change under it: the changed row is sent again, nothing is lost.
    json c2 = nullptr;
    Reply first = s.sync(coord, kNodeB, nullptr, "", c2, 125);
    REQUIRE(first.body["more"] == true);
    const std::string v3 = s.version(kNodeA);
    s.sync(alice, kNodeA, json::array({change("need", "x0", v3, {{"priority", "low"}})}));
    c2 = first.body["cursor"];
    json tail = s.pull_all(coord, kNodeB, c2, 125);
    json x0 = find_row(tail, "need", "x0");
    REQUIRE(x0.is_object());
    // (written without a base, so it also names the value it overwrote concurrently)
    CHECK(x0["f"]["priority"][0] == "low");
    CHECK(x0["f"]["priority"][1] == v3);
}

TEST_CASE("malformed sync requests are 400 and change nothing", "[server][pull]") {
    TestServer s;
    const std::string admin = s.admin_token();
    Reply wrong_type = s.post("/v1/sync", {{"protocol", 1}, {"schema_version", 1}, {"node", 42}}, admin);
    CHECK(wrong_type.status == 400);
    CHECK(wrong_type.body["error"]["code"] == "bad_request");
    Reply protocol = s.post("/v1/sync", {{"protocol", 2}, {"schema_version", 1}, {"node", "00000000000000aa"}}, admin);
    CHECK(protocol.status == 400);
    CHECK(protocol.body["error"]["code"] == "protocol_mismatch");
    Reply not_json = s.call("POST", "/v1/sync", "{\"protocol\":", admin);
    CHECK(not_json.status == 400);
    CHECK(not_json.body["error"]["code"] == "invalid_json");
    // A bad cursor fails the request before its batch is applied.
    Reply bad_cursor = s.sync(admin, kNodeA, json::array({change("need", "n1", s.version(kNodeA), need_fields("fac-kabgayi"))}),
                              "b-1", "zz");
    CHECK(bad_cursor.status == 400);
    json cursor = nullptr;
    CHECK(find_row(s.pull_all(admin, kNodeB, cursor), "need", "n1").is_null());
}

TEST_CASE("a push's own pull skips only rows that hold nothing new for the pushing device", "[server][pull]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bea = s.user_token("bea", "assessor", {"fac-kabgayi"});
    json a_cursor = nullptr;
    s.pull_all(alice, kNodeA, a_cursor);  // alice is caught up with the seeds

    // Bea creates n1; alice, before pulling it, edits its title in the same request that pulls.
    const std::string vb = s.version(kNodeB);
    s.sync(bea, kNodeB, json::array({change("need", "n1", vb, need_fields("fac-kabgayi"))}));
    const std::string va = s.version(kNodeA);
    Reply r = s.sync(alice, kNodeA,
                     json::array({change("need", "n1", va, {{"title", "Alice's title"}}, {{"title", vb}}),
                                  change("need", "n2", s.version(kNodeA), need_fields("fac-kabgayi"))}),
                     "", a_cursor);
    REQUIRE(r.status == 200);
    REQUIRE(r.body["push"]["applied"] == 2);
    // n1 was written by this very push, but bea's fields are new to alice: they come, alice's
    // own title does not. n2 holds only alice's own fields: it is not echoed.
    json n1 = expand_row(find_row(r.body["changes"], "need", "n1"));
    REQUIRE(n1.is_object());
    CHECK(n1["f"]["description"][1] == vb);
    CHECK_FALSE(n1["f"].contains("title"));
    CHECK(find_row(r.body["changes"], "need", "n2").is_null());

    // Caught up: nothing is sent again.
    Reply again = s.sync(alice, kNodeA, nullptr, "", r.body["cursor"]);
    CHECK(again.body["changes"].empty());
}

TEST_CASE("a row that moved since the cursor brings the device its own fields; otherwise they are skipped",
          "[server][pull][move]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bea = s.user_token("bea", "assessor", {"fac-kabgayi"});
    const std::string dana = s.user_token("dana", "assessor", {"fac-kabgayi", "fac-butaro"});
    json a_cursor = nullptr;
    const std::string va = s.version(kNodeA);
    s.sync(alice, kNodeA, json::array({change("need", "n1", va, need_fields("fac-kabgayi"))}));
    s.pull_all(alice, kNodeA, a_cursor);

    // Dana moves it to Butaro: alice's device drops it. Then back.
    s.sync(dana, kNodeC, json::array({change("need", "n1", s.version(kNodeC), {{"facility_id", "fac-butaro"}})}));
    CHECK(find_row(s.pull_all(alice, kNodeA, a_cursor), "need", "n1") == json{{"t", "need"}, {"id", "n1"}, {"gone", true}});
    s.sync(dana, kNodeC, json::array({change("need", "n1", s.version(kNodeC), {{"facility_id", "fac-kabgayi"}})}));
    json back = find_row(s.pull_all(alice, kNodeA, a_cursor), "need", "n1");
    REQUIRE(back.is_object());
    const json written = need_fields("fac-kabgayi");
    for (const auto& [field, value] : written.items()) {
        INFO(field);
        REQUIRE(back["f"].contains(field));
        CHECK(back["f"][field][0] == value);
        if (field != "facility_id") CHECK(back["f"][field][1] == va);  // alice's own write
    }

    // No move since the cursor: alice's own fields are not sent again, bea's are.
    const std::string vb = s.version(kNodeB);
    s.sync(bea, kNodeB, json::array({change("need", "n1", vb, {{"priority", "critical"}})}));
    json later = find_row(s.pull_all(alice, kNodeA, a_cursor), "need", "n1");
    REQUIRE(later.is_object());
    CHECK(later["f"].size() == 1);
    CHECK(later["f"]["priority"][1] == vb);
}
