// Ubuzima Sync — MIT licence.
// When what a user may see changes (facilities added or removed, another role), the next pull
// restarts from the beginning and says what the device may keep; cursors cannot skip it.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

namespace {

constexpr std::uint64_t kAlice = 0xa1a1a1a1a1a1a1a1ull;
constexpr std::uint64_t kBob = 0xb2b2b2b2b2b2b2b2ull;

/// Every page of one pull from `cursor`, and whether its first page carried a scope notice.
struct Pulled {
    json rows = json::array();
    json scope;  ///< the notice of the first page, or null
};

Pulled pull(TestServer& s, const std::string& token, std::uint64_t node, json& cursor) {
    Pulled out;
    for (int page = 0;; ++page) {
        Reply r = s.sync(token, node, nullptr, "", cursor, 5);
        REQUIRE(r.status == 200);
        if (page == 0 && r.body.contains("scope")) out.scope = r.body["scope"];
        for (const json& c : r.body["changes"]) out.rows.push_back(expand_row(c));
        cursor = r.body["cursor"];
        if (!r.body["more"].get<bool>()) break;
    }
    return out;
}

}  // namespace

TEST_CASE("a user's facilities change: the next pull restarts and brings old rows that became visible",
          "[server][scope]") {
    TestServer s;
    const std::string admin = s.admin_token();
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bob = s.user_token("bob", "assessor", {"fac-kibuye"});
    s.sync(bob, kBob, json::array({change("need", "old-kibuye", s.version(kBob), need_fields("fac-kibuye"))}));
    s.sync(alice, kAlice, json::array({change("need", "mine", s.version(kAlice), need_fields("fac-kabgayi"))}));
    json cursor = nullptr;
    Pulled first = pull(s, alice, kAlice, cursor);
    CHECK(first.scope.is_null());  // a first pull starts from the beginning anyway
    CHECK(find_row(first.rows, "need", "old-kibuye").is_null());
    CHECK(cursor.get<std::string>().find('/') != std::string::npos);  // the cursor carries the scope

    SECTION("grown: old rows of the new facility arrive, whatever the cursor says") {
        REQUIRE(s.call("PATCH", "/v1/admin/users/alice", json{{"facilities", {"fac-kabgayi", "fac-kibuye"}}}.dump(), admin)
                    .status == 200);
        Pulled after = pull(s, s.token_for_node(alice, kAlice), kAlice, cursor);
        CHECK(after.scope == json::array({"fac-kabgayi", "fac-kibuye"}));
        CHECK(find_row(after.rows, "need", "old-kibuye").is_object());
        // A full pull: even her own rows come again (she may have dropped them with a facility).
        CHECK(find_row(after.rows, "need", "mine").is_object());
        CHECK(pull(s, alice, kAlice, cursor).rows.empty());  // and then it is caught up again
    }
    SECTION("shrunk: the device is told what it keeps, and nothing of the rest comes") {
        REQUIRE(s.call("PATCH", "/v1/admin/users/alice", json{{"facilities", {"fac-kibuye"}}}.dump(), admin).status == 200);
        Pulled after = pull(s, alice, kAlice, cursor);
        CHECK(after.scope == json::array({"fac-kibuye"}));
        CHECK(find_row(after.rows, "need", "mine").is_null());
        CHECK(find_row(after.rows, "need", "old-kibuye").is_object());
    }
    SECTION("promoted to coordinator: everything, and the notice says all") {
        REQUIRE(s.call("PATCH", "/v1/admin/users/alice", json{{"role", "coordinator"}}.dump(), admin).status == 200);
        Pulled after = pull(s, alice, kAlice, cursor);
        CHECK(after.scope == "*");
        CHECK(find_row(after.rows, "need", "old-kibuye").is_object());
    }
}

TEST_CASE("cursors: forged scope restarts harmlessly, old cursors without one still work", "[server][scope]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string bob = s.user_token("bob", "assessor", {"fac-kibuye"});
    s.sync(bob, kBob, json::array({change("need", "kibuye-1", s.version(kBob), need_fields("fac-kibuye"))}));
    json cursor = nullptr;
    pull(s, alice, kAlice, cursor);
    const std::string text = cursor.get<std::string>();
    const std::string seq = text.substr(0, text.find('/'));
    json forged = seq + "/all";  // claims the coordinators' scope
    Pulled f = pull(s, alice, kAlice, forged);
    CHECK(f.scope == json::array({"fac-kabgayi"}));  // restarted, with her own scope
    CHECK(find_row(f.rows, "need", "kibuye-1").is_null());
    json old = seq;  // a cursor from before scopes: taken as it is
    Pulled o = pull(s, alice, kAlice, old);
    CHECK(o.scope.is_null());
    CHECK(o.rows.empty());
    for (const char* bad : {"12/", "12/ALL", "12/x/y", "3:2/abc", "12/abc++"}) {
        json c = bad;
        INFO(bad);
        CHECK(s.sync(alice, kAlice, nullptr, "", c).status == 400);
    }
}
