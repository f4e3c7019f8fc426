// Ubuzima Sync — MIT licence.
// Server auth: login, token lifetimes, refresh rotation with reuse detection, logout, failed
// login throttling, password hashing cost and policy.
#include <catch2/catch.hpp>

#include "auth/passwords.hpp"
#include "server_test_support.hpp"

using namespace ubuzima::server::test;
using ubuzima::server::pbkdf2_iterations_run;

namespace {

constexpr std::uint64_t kTablet = 7;
const std::string kTabletId = ubuzima::sync::to_hex16(kTablet);

Reply refresh(TestServer& s, const json& token, const std::string& device = kTabletId) {
    return s.post("/v1/auth/refresh", {{"refresh_token", token}, {"device_id", device}});
}

/// The stored password hash of a user, read straight from the store.
std::string stored_hash(TestServer& s, const std::string& username) {
    std::string hash;
    REQUIRE(s.store->read([&](ubuzima::server::ReadTxn& tx) -> ubuzima::Status {
                auto u = tx.find_user_by_name(username);
                if (!u.ok()) return u.status();
                if (*u) hash = (*u)->password_hash;
                return {};
            }).ok());
    return hash;
}

std::vector<std::string> audit_actions(TestServer& s) {
    std::vector<std::string> actions;
    REQUIRE(s.store->read([&](ubuzima::server::ReadTxn& tx) -> ubuzima::Status {
                auto page = tx.audit_after(0, 100000);
                if (!page.ok()) return page.status();
                for (const auto& r : *page) actions.push_back(r.action);
                return {};
            }).ok());
    return actions;
}

}  // namespace

TEST_CASE("health needs no token and reports protocol and schema", "[server][auth]") {
    TestServer s;
    Reply r = s.call("GET", "/v1/health");
    REQUIRE(r.status == 200);
    CHECK(r.body["status"] == "ok");
    CHECK(r.body["version"] == ubuzima::server::kServerVersion);
    CHECK(r.body["protocol"] == 1);
    CHECK(r.body["schema_version"] == 1);
    CHECK(r.raw.headers.at("Content-Type") == "application/json");
    CHECK(r.raw.headers.at("Cache-Control") == "no-store");
}

TEST_CASE("login returns tokens and the user; bad credentials are 401", "[server][auth]") {
    TestServer s;
    Reply ok = s.login_reply("admin", TestServer::kAdminPassword);
    REQUIRE(ok.status == 200);
    CHECK(ok.body["token_type"] == "Bearer");
    CHECK(ok.body["expires_in"] == 900);  // 15 minutes
    CHECK(ok.body["access_token"].get<std::string>().size() == 64);
    CHECK(ok.body["refresh_token"].get<std::string>().size() == 64);
    CHECK(ok.body["user"]["username"] == "admin");
    CHECK(ok.body["user"]["role"] == "admin");
    // Usernames are looked up in lower case: "Admin" is the same account.
    CHECK(s.login_reply("Admin", TestServer::kAdminPassword).status == 200);

    Reply bad = s.login_reply("admin", "wrong-password");
    CHECK(bad.status == 401);
    CHECK(bad.body["error"]["code"] == "invalid_credentials");
    Reply unknown = s.login_reply("nobody", "whatever-password");
    CHECK(unknown.status == 401);
    CHECK(unknown.body["error"] == bad.body["error"]);  // the same words for both
    Reply malformed = s.post("/v1/auth/login", {{"username", 5}});
    CHECK(malformed.status == 400);
    CHECK(malformed.body["error"]["code"] == "bad_request");
    Reply extra = s.post("/v1/auth/login", {{"username", "admin"}, {"password", "x"}, {"device_id", "d"}, {"role", "admin"}});
    CHECK(extra.status == 400);
}

TEST_CASE("requests without a valid token are 401; expired tokens say so", "[server][auth]") {
    SECTION("missing or unknown") {
        TestServer s;
        Reply none = s.sync("", 1);
        CHECK(none.status == 401);
        CHECK(none.body["error"]["code"] == "unauthorized");
        CHECK(none.raw.headers.at("WWW-Authenticate") == "Bearer");
        Reply unknown = s.sync("00ff", 1);
        CHECK(unknown.status == 401);
        CHECK(unknown.body["error"]["code"] == "unauthorized");
    }
    SECTION("expired (access TTL 0)") {
        TestServer s(/*access_ttl_s=*/0);
        std::string token = s.login("admin", TestServer::kAdminPassword, ubuzima::sync::to_hex16(1));
        Reply r = s.sync(token, 1);
        CHECK(r.status == 401);
        CHECK(r.body["error"]["code"] == "token_expired");
    }
    SECTION("expired after the TTL passes") {
        TestServer s(60);
        std::string token = s.login("admin", TestServer::kAdminPassword, ubuzima::sync::to_hex16(1));
        CHECK(s.sync(token, 1).status == 200);
        s.advance_ms(61'000);
        CHECK(s.sync(token, 1).body["error"]["code"] == "token_expired");
    }
}

TEST_CASE("a sync must come from the device its token was issued to", "[server][auth][node]") {
    TestServer s;
    const std::string token = s.login("admin", TestServer::kAdminPassword, kTabletId);
    const json req{{"protocol", 1}, {"schema_version", 1}, {"node", ubuzima::sync::to_hex16(kTablet + 1)}};
    Reply other = s.post("/v1/sync", req, token);
    CHECK(other.status == 403);
    CHECK(other.body["error"]["code"] == "wrong_node");
    CHECK(s.post("/v1/sync", json{{"protocol", 1}, {"schema_version", 1}, {"node", kTabletId}}, token).status == 200);
}

TEST_CASE("a device id stays with the account that first logged in with it", "[server][auth][node]") {
    TestServer s;
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    s.user_token("bob", "assessor", {"fac-kabgayi"});
    const std::string alice_tablet = s.login("alice", "pw-alice-secret", kTabletId);
    const std::string v1 = s.version(kTablet);
    REQUIRE(s.sync(alice_tablet, kTablet, json::array({change("need", "n1", v1, need_fields("fac-kabgayi"))})).status ==
            200);

    // Bob read the tablet's id off a pulled version ("hlc@0000000000000007"). With it he could
    // push versions that rank as the tablet's own and shadow Alice's next writes: refused, even
    // with his right password, and the attempt is on the record.
    Reply taken = s.login_reply("bob", "pw-bob-secret", kTabletId);
    CHECK(taken.status == 403);
    CHECK(taken.body["error"]["code"] == "wrong_node");
    CHECK(taken.body["error"]["message"].get<std::string>().find("another account") != std::string::npos);
    const auto actions = audit_actions(s);
    CHECK(actions.back() == "login_refused");
    // Alice keeps her tablet, its tokens and her logins on it; Bob logs in from his own device.
    CHECK(s.sync(alice_tablet, kTablet).status == 200);
    CHECK(s.login_reply("alice", "pw-alice-secret", kTabletId).status == 200);
    CHECK(s.login_reply("bob", "pw-bob-secret", ubuzima::sync::to_hex16(kTablet + 1)).status == 200);
    // A wrong password for the taken id is an ordinary failure: it says nothing about the id.
    Reply wrong = s.login_reply("bob", "not-bobs-password", kTabletId);
    CHECK(wrong.status == 401);
    CHECK(wrong.body["error"]["code"] == "invalid_credentials");
}

TEST_CASE("refresh rotates; presented from another device it revokes the whole login", "[server][auth][refresh]") {
    TestServer s;
    Reply login = s.login_reply("admin", TestServer::kAdminPassword, kTabletId);
    const json r0 = login.body["refresh_token"];
    const std::string a0 = login.body["access_token"];
    Reply rotated = refresh(s, r0);
    REQUIRE(rotated.status == 200);
    CHECK(rotated.body["refresh_token"] != r0);
    CHECK(rotated.body["user"]["username"] == "admin");
    const std::string a1 = rotated.body["access_token"];
    CHECK(s.sync(a1, kTablet).status == 200);

    // A thief replays the newest refresh token from elsewhere: refused, and the login it belongs
    // to dies with every token in it, the sibling access token included.
    Reply stolen = refresh(s, rotated.body["refresh_token"], "thief-device");
    CHECK(stolen.status == 401);
    CHECK(stolen.body["error"]["code"] == "revoked");
    CHECK(s.sync(a1, kTablet).body["error"]["code"] == "revoked");
    CHECK(s.sync(a0, kTablet).body["error"]["code"] == "revoked");
    CHECK(refresh(s, rotated.body["refresh_token"]).body["error"]["code"] == "revoked");
    CHECK(refresh(s, r0).body["error"]["code"] == "revoked");  // the rotated parent mints nothing
    const auto actions = audit_actions(s);
    CHECK(std::count(actions.begin(), actions.end(), "token_reuse") == 1);
    // A password login starts a new one.
    CHECK(s.login_reply("admin", TestServer::kAdminPassword, kTabletId).status == 200);
}

TEST_CASE("only the previous refresh token is accepted again, once, within the grace window", "[server][auth][refresh]") {
    TestServer s;
    Reply login = s.login_reply("admin", TestServer::kAdminPassword, kTabletId);
    const json r0 = login.body["refresh_token"];

    SECTION("a lost answer is repeated once; the grant nobody received dies") {
        Reply lost = refresh(s, r0);  // the device never receives this answer
        REQUIRE(lost.status == 200);
        s.advance_ms(20'000);
        Reply again = refresh(s, r0);  // so it presents the same token again: not logged out
        REQUIRE(again.status == 200);
        CHECK(again.body["refresh_token"] != lost.body["refresh_token"]);
        CHECK(s.sync(lost.body["access_token"], kTablet).status == 401);
        CHECK(s.sync(again.body["access_token"], kTablet).status == 200);
        // Not twice: a third showing is reuse, and the whole login goes.
        Reply third = refresh(s, r0);
        CHECK(third.body["error"]["code"] == "revoked");
        CHECK(s.sync(again.body["access_token"], kTablet).body["error"]["code"] == "revoked");
    }
    SECTION("after the grace window the repeat is reuse") {
        REQUIRE(refresh(s, r0).status == 200);
        s.advance_ms(61'000);
        CHECK(refresh(s, r0).body["error"]["code"] == "revoked");
    }
    SECTION("once the new token is used, the old one is two generations back: reuse") {
        Reply g1 = refresh(s, r0);
        REQUIRE(g1.status == 200);
        Reply g2 = refresh(s, g1.body["refresh_token"]);
        REQUIRE(g2.status == 200);
        CHECK(refresh(s, r0).body["error"]["code"] == "revoked");
        CHECK(s.sync(g2.body["access_token"], kTablet).body["error"]["code"] == "revoked");
    }
    SECTION("the repeat must come from the same device") {
        REQUIRE(refresh(s, r0).status == 200);
        CHECK(refresh(s, r0, "thief-device").body["error"]["code"] == "revoked");
        CHECK(refresh(s, r0).body["error"]["code"] == "revoked");
    }
}

TEST_CASE("logout ends the device's tokens and no other device's", "[server][auth][logout]") {
    TestServer s;
    Reply tablet = s.login_reply("admin", TestServer::kAdminPassword, kTabletId);
    Reply phone = s.login_reply("admin", TestServer::kAdminPassword, ubuzima::sync::to_hex16(8));
    Reply out = s.call("POST", "/v1/auth/logout", "", tablet.body["access_token"]);
    REQUIRE(out.status == 200);
    CHECK(s.sync(tablet.body["access_token"], kTablet).body["error"]["code"] == "revoked");
    CHECK(refresh(s, tablet.body["refresh_token"]).body["error"]["code"] == "revoked");
    CHECK(s.sync(phone.body["access_token"], 8).status == 200);
    const auto actions = audit_actions(s);
    CHECK(std::count(actions.begin(), actions.end(), "logout") == 1);
}

TEST_CASE("failed logins back off exponentially per username, answered 429, never locked for good",
          "[server][auth][throttle]") {
    TestServer s;
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string right = TestServer::password_of("alice");
    for (int i = 0; i < 5; ++i) CHECK(s.login_reply("alice", "wrong-password-" + std::to_string(i)).status == 401);
    // The 6th failure starts the back-off: 1 s, then 2 s, 4 s, ...
    CHECK(s.login_reply("alice", "wrong-password-6").status == 401);
    Reply blocked = s.login_reply("alice", right);
    CHECK(blocked.status == 429);  // even the right password: it is not checked while blocked
    CHECK(blocked.body["error"]["code"] == "rate_limited");
    CHECK(blocked.raw.headers.at("Retry-After") == "1");
    const std::int64_t before = pbkdf2_iterations_run();
    CHECK(s.login_reply("alice", right).status == 429);
    CHECK(pbkdf2_iterations_run() == before);  // no hashing for a blocked attempt

    s.advance_ms(1'100);
    CHECK(s.login_reply("alice", "wrong-password-7").status == 401);
    Reply longer = s.login_reply("alice", right);
    CHECK(longer.status == 429);
    CHECK(longer.raw.headers.at("Retry-After") == "2");
    s.advance_ms(2'100);
    CHECK(s.login_reply("alice", right).status == 200);  // and a success forgets the failures
    CHECK(s.login_reply("alice", "wrong-password-8").status == 401);
    CHECK(s.login_reply("alice", right).status == 200);

    // The cap: however many failures, the wait never exceeds 15 minutes.
    for (int i = 0; i < 40; ++i) {
        (void)s.login_reply("alice", "wrong-password-x");
        s.advance_ms(16 * 60 * 1000);
    }
    Reply capped = s.login_reply("alice", "wrong-password-y");
    CHECK(capped.status == 401);
    Reply wait = s.login_reply("alice", right);
    REQUIRE(wait.status == 429);
    CHECK(std::stoll(wait.raw.headers.at("Retry-After")) <= 900);
    s.advance_ms(901'000);
    CHECK(s.login_reply("alice", right).status == 200);

    // Unknown usernames back off the same way (the answer does not tell them apart).
    for (int i = 0; i < 6; ++i) CHECK(s.login_reply("mallory", "guess-number-" + std::to_string(i)).status == 401);
    CHECK(s.login_reply("mallory", "guess-number-7").status == 429);
}

TEST_CASE("failed logins back off per client address too", "[server][auth][throttle]") {
    TestServer s;
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    auto login_from = [&](const std::string& user, const std::string& password, const std::string& address) {
        return s.call("POST", "/v1/auth/login",
                      json{{"username", user}, {"password", password}, {"device_id", "d1"}}.dump(), "", {}, address);
    };
    // One address spraying many usernames (each below its own threshold).
    for (int i = 0; i < 21; ++i)
        CHECK(login_from("user" + std::to_string(i), "some-password-1", "203.0.113.9").status == 401);
    CHECK(login_from("alice", TestServer::password_of("alice"), "203.0.113.9").status == 429);
    CHECK(login_from("alice", TestServer::password_of("alice"), "198.51.100.4").status == 200);
}

TEST_CASE("an unknown username costs the same PBKDF2 work as a known one", "[server][auth][timing]") {
    TestServer s;
    s.options.pbkdf2_iterations = 4321;
    s.reopen();
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    std::int64_t before = pbkdf2_iterations_run();
    CHECK(s.login_reply("alice", "wrong-password").status == 401);
    const std::int64_t known = pbkdf2_iterations_run() - before;
    before = pbkdf2_iterations_run();
    CHECK(s.login_reply("nobody-here", "wrong-password").status == 401);
    const std::int64_t unknown = pbkdf2_iterations_run() - before;
    CHECK(known == 4321);
    CHECK(unknown == known);
}

TEST_CASE("the iteration count is stored per hash; a login with an older count rehashes", "[server][auth][passwords]") {
    TestServer s;  // 1000 iterations
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    CHECK(stored_hash(s, "alice").rfind("pbkdf2-sha256$1000$", 0) == 0);
    s.options.pbkdf2_iterations = 2000;
    s.reopen();
    CHECK(s.login_reply("alice", "wrong-password").status == 401);
    CHECK(stored_hash(s, "alice").rfind("pbkdf2-sha256$1000$", 0) == 0);  // only a right password rehashes
    REQUIRE(s.login_reply("alice", TestServer::password_of("alice")).status == 200);
    CHECK(stored_hash(s, "alice").rfind("pbkdf2-sha256$2000$", 0) == 0);
    CHECK(s.login_reply("alice", TestServer::password_of("alice")).status == 200);
    CHECK(ubuzima::server::kDefaultPbkdf2Iterations == 600'000);
    CHECK(ubuzima::server::ServerOptions{}.pbkdf2_iterations == 600'000);
}

TEST_CASE("new passwords follow the policy", "[server][auth][passwords]") {
    TestServer s;
    const std::string admin = s.admin_token();
    auto create = [&](const std::string& user, const std::string& password) {
        return s.post("/v1/admin/users", {{"username", user}, {"password", password}, {"role", "assessor"},
                                          {"facilities", {"fac-kabgayi"}}},
                      admin);
    };
    for (const std::string& weak : {std::string("short-pw"), std::string("password123"), std::string("1234567890"),
                                    std::string("eric-the-nurse"), std::string("ERIC-THE-NURSE1")}) {
        Reply r = create("eric-the-nurse", weak);
        INFO(weak);
        CHECK(r.status == 422);
        CHECK(r.body["error"]["code"] == "invalid_value");
    }
    CHECK(create("eric-the-nurse", "kibuye ward B, night shift").status == 201);
    // Usernames: lower case, no control characters.
    CHECK(create("Bad\x01Name", "a long enough password").status == 422);
    CHECK(create("", "a long enough password").status == 400);
}

TEST_CASE("the bootstrap admin is created only in an empty store", "[server][auth]") {
    TestServer s;
    s.options.bootstrap_admin_password = "another-password";
    s.reopen();
    CHECK(s.login_reply("admin", TestServer::kAdminPassword).status == 200);
    CHECK(s.login_reply("admin", "another-password").status == 401);
}
