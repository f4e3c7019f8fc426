// Ubuzima Sync — MIT licence.
// Conflict review: listing, access control and resolution flowing to devices.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

namespace {
constexpr std::uint64_t kNodeA = 0xa1a1a1a1a1a1a1a1ull;
constexpr std::uint64_t kNodeB = 0xb2b2b2b2b2b2b2b2ull;

/// Makes one open conflict on need n1.title; returns the id.
std::int64_t make_conflict(TestServer& s, const std::string& alice, const std::string& bob) {
    const std::string v0 = s.version(kNodeA);
    s.sync(alice, kNodeA, json::array({change("need", "n1", v0, need_fields("fac-kabgayi"))}));
    s.sync(alice, kNodeA, json::array({change("need", "n1", s.version(kNodeA), {{"title", "A"}}, {{"title", v0}})}));
    Reply r = s.sync(bob, kNodeB, json::array({change("need", "n1", s.version(kNodeB), {{"title", "B"}}, {{"title", v0}})}));
    REQUIRE(r.body["push"]["conflicts"].size() == 1);
    Reply list = s.call("GET", "/v1/conflicts", "", s.admin_token());
    REQUIRE(list.body["conflicts"].size() == 1);
    return list.body["conflicts"][0]["id"].get<std::int64_t>();
}
}  // namespace

TEST_CASE("only reviewers list and resolve conflicts", "[server][conflicts]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bob = s.user_token("bob", "focal_point", {"fac-kabgayi"});
    const std::int64_t id = make_conflict(s, alice, bob);
    Reply list = s.call("GET", "/v1/conflicts?status=open", "", alice);
    CHECK(list.status == 403);
    CHECK(list.body["error"]["code"] == "forbidden");
    Reply resolve = s.post("/v1/conflicts/" + std::to_string(id) + "/resolve", {{"value", "X"}}, alice);
    CHECK(resolve.status == 403);
    CHECK(s.call("GET", "/v1/conflicts?status=bogus", "", s.admin_token()).status == 400);
}

TEST_CASE("a resolution is a new server version that every device pulls", "[server][conflicts]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bob = s.user_token("bob", "focal_point", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    const std::int64_t id = make_conflict(s, alice, bob);
    json ca = nullptr, cb = nullptr;
    s.pull_all(alice, kNodeA, ca);
    s.pull_all(bob, kNodeB, cb);
    const std::string path = "/v1/conflicts/" + std::to_string(id) + "/resolve";

    Reply invalid = s.post(path, {{"value", 42}}, coord);
    CHECK(invalid.status == 422);
    CHECK(invalid.body["error"]["code"] == "invalid_value");
    CHECK(s.post(path, json::object(), coord).status == 400);

    Reply ok = s.post(path, {{"value", "Agreed title"}}, coord);
    REQUIRE(ok.status == 200);
    CHECK(ok.body["id"] == id);
    CHECK(ok.body["status"] == "resolved");
    const std::string version = ok.body["version"];
    CHECK(version.substr(17) == ubuzima::sync::to_hex16(s.store->node_id()));

    for (auto& [token, node, cursor] : {std::tuple{alice, kNodeA, &ca}, std::tuple{bob, kNodeB, &cb}}) {
        json row = find_row(s.pull_all(token, node, *cursor), "need", "n1");
        REQUIRE(row.is_object());
        CHECK(row["f"] == json{{"title", json::array({"Agreed title", version})}});
    }

    Reply again = s.post(path, {{"value", "Other"}}, coord);
    CHECK(again.status == 409);
    CHECK(again.body["error"]["code"] == "conflict");
    CHECK(s.post("/v1/conflicts/999/resolve", {{"value", "x"}}, coord).status == 404);
    CHECK(s.post("/v1/conflicts/abc/resolve", {{"value", "x"}}, coord).status == 404);

    CHECK(s.call("GET", "/v1/conflicts", "", coord).body["conflicts"].empty());
    Reply resolved = s.call("GET", "/v1/conflicts?status=resolved", "", coord);
    REQUIRE(resolved.body["conflicts"].size() == 1);
    CHECK(resolved.body["conflicts"][0]["status"] == "resolved");
    CHECK(resolved.body["conflicts"][0]["resolved_by"] == "cora");
    CHECK(s.call("GET", "/v1/conflicts?status=all", "", coord).body["conflicts"].size() == 1);
}
