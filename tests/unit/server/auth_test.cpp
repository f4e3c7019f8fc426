// Ubuzima Sync — MIT licence.
// Server auth: health, login, token expiry and rotation, user administration.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

TEST_CASE("health needs no token and reports protocol and schema", "[server][auth]") {
    TestServer s;
    Reply r = s.call("GET", "/v1/health");
    REQUIRE(r.status == 200);
    CHECK(r.body["status"] == "ok");
    CHECK(r.body["version"] == "0.1.0");
    CHECK(r.body["protocol"] == 1);
    CHECK(r.body["schema_version"] == 1);
    CHECK(r.raw.headers.at("Content-Type") == "application/json");
}

TEST_CASE("login returns tokens and the user; bad credentials are 401", "[server][auth]") {
    TestServer s;
    Reply ok = s.login_reply("admin", TestServer::kAdminPassword);
    REQUIRE(ok.status == 200);
    CHECK(ok.body["token_type"] == "Bearer");
    CHECK(ok.body["expires_in"] == 3600);
    CHECK(ok.body["access_token"].get<std::string>().size() == 64);
    CHECK(ok.body["refresh_token"].get<std::string>().size() == 64);
    CHECK(ok.body["user"]["username"] == "admin");
    CHECK(ok.body["user"]["role"] == "admin");

    Reply bad = s.login_reply("admin", "wrong-password");
    CHECK(bad.status == 401);
    CHECK(bad.body["error"]["code"] == "invalid_credentials");
    Reply unknown = s.login_reply("nobody", "whatever");
    CHECK(unknown.status == 401);
    CHECK(unknown.body["error"]["code"] == "invalid_credentials");
    Reply malformed = s.post("/v1/auth/login", {{"username", 5}});
    CHECK(malformed.status == 400);
    CHECK(malformed.body["error"]["code"] == "bad_request");
}

TEST_CASE("requests without a valid token are 401; expired tokens say so", "[server][auth]") {
    SECTION("missing or unknown") {
        TestServer s;
        Reply none = s.sync("", 1);
        CHECK(none.status == 401);
        CHECK(none.body["error"]["code"] == "unauthorized");
        Reply unknown = s.sync("00ff", 1);
        CHECK(unknown.status == 401);
        CHECK(unknown.body["error"]["code"] == "unauthorized");
    }
    SECTION("expired (access TTL 0)") {
        TestServer s(/*access_ttl_s=*/0);
        std::string token = s.admin_token();
        Reply r = s.sync(token, 1);
        CHECK(r.status == 401);
        CHECK(r.body["error"]["code"] == "token_expired");
    }
    SECTION("expired after the TTL passes") {
        TestServer s(60);
        std::string token = s.admin_token();
        CHECK(s.sync(token, 1).status == 200);
        s.advance_ms(61'000);
        CHECK(s.sync(token, 1).body["error"]["code"] == "token_expired");
    }
}

TEST_CASE("refresh rotates the refresh token and is bound to the device", "[server][auth]") {
    TestServer s;
    Reply login = s.login_reply("admin", TestServer::kAdminPassword, "tablet-7");
    const std::string refresh = login.body["refresh_token"];

    Reply other_device = s.post("/v1/auth/refresh", {{"refresh_token", refresh}, {"device_id", "thief"}});
    CHECK(other_device.status == 401);
    // Presenting it from another device revoked it: the owner must log in again.
    CHECK(s.post("/v1/auth/refresh", {{"refresh_token", refresh}, {"device_id", "tablet-7"}}).status == 401);

    Reply login2 = s.login_reply("admin", TestServer::kAdminPassword, "tablet-7");
    const std::string refresh2 = login2.body["refresh_token"];
    Reply rotated = s.post("/v1/auth/refresh", {{"refresh_token", refresh2}, {"device_id", "tablet-7"}});
    REQUIRE(rotated.status == 200);
    CHECK(rotated.body["refresh_token"] != refresh2);
    CHECK(rotated.body["user"]["username"] == "admin");
    CHECK(s.sync(rotated.body["access_token"], 1).status == 200);
}

TEST_CASE("a refresh whose answer was lost can be repeated; using the new token retires the old", "[server][auth]") {
    TestServer s;
    auto refresh = [&](const json& token) {
        return s.post("/v1/auth/refresh", {{"refresh_token", token}, {"device_id", "tablet-7"}});
    };
    Reply login = s.login_reply("admin", TestServer::kAdminPassword, "tablet-7");
    const json r0 = login.body["refresh_token"];

    Reply lost = refresh(r0);  // the device never receives this answer
    REQUIRE(lost.status == 200);
    Reply again = refresh(r0);  // so it presents the same token again: not logged out
    REQUIRE(again.status == 200);
    CHECK(again.body["refresh_token"] != lost.body["refresh_token"]);
    // The grant nobody received is revoked: at most one grant per exchange stays alive.
    CHECK(s.sync(lost.body["access_token"], 1).status == 401);
    CHECK(refresh(lost.body["refresh_token"]).status == 401);
    CHECK(s.sync(again.body["access_token"], 1).status == 200);

    // The device uses what it got: r0 is retired for good.
    Reply next = refresh(again.body["refresh_token"]);
    REQUIRE(next.status == 200);
    Reply reuse = refresh(r0);
    CHECK(reuse.status == 401);
    CHECK(reuse.body["error"]["code"] == "unauthorized");
    CHECK(s.sync(next.body["access_token"], 1).status == 200);
    // The token it just exchanged may still be repeated (this answer may be lost too) ...
    Reply repeat = refresh(again.body["refresh_token"]);
    REQUIRE(repeat.status == 200);
    CHECK(s.sync(next.body["access_token"], 1).status == 401);
    // ... but not from another device, which revokes it and its grant.
    CHECK(s.post("/v1/auth/refresh", {{"refresh_token", again.body["refresh_token"]}, {"device_id", "thief"}}).status ==
          401);
    CHECK(refresh(again.body["refresh_token"]).status == 401);
    CHECK(s.sync(repeat.body["access_token"], 1).status == 401);
}

TEST_CASE("admins create users; others are forbidden; bad input is refused", "[server][auth]") {
    TestServer s;
    const std::string admin = s.admin_token();
    Reply created = s.post("/v1/admin/users",
                           {{"username", "alice"}, {"password", "alice-pw"}, {"role", "assessor"},
                            {"facilities", {"fac-kabgayi"}}},
                           admin);
    REQUIRE(created.status == 201);
    CHECK(created.body["username"] == "alice");
    CHECK(created.body["role"] == "assessor");
    CHECK(created.body["facilities"] == json::array({"fac-kabgayi"}));
    CHECK(!created.body["id"].get<std::string>().empty());

    Reply dup = s.post("/v1/admin/users", {{"username", "alice"}, {"password", "x"}, {"role", "assessor"}}, admin);
    CHECK(dup.status == 409);
    CHECK(dup.body["error"]["code"] == "conflict");
    Reply role = s.post("/v1/admin/users", {{"username", "bob"}, {"password", "x"}, {"role", "king"}}, admin);
    CHECK(role.status == 422);
    CHECK(role.body["error"]["code"] == "invalid_value");

    Reply alice = s.login_reply("alice", "alice-pw");
    REQUIRE(alice.status == 200);
    CHECK(alice.body["user"]["facilities"] == json::array({"fac-kabgayi"}));
    Reply forbidden = s.post("/v1/admin/users", {{"username", "eve"}, {"password", "x"}, {"role", "admin"}},
                             alice.body["access_token"].get<std::string>());
    CHECK(forbidden.status == 403);
    CHECK(forbidden.body["error"]["code"] == "forbidden");
}

TEST_CASE("the bootstrap admin is created only in an empty store", "[server][auth]") {
    TestServer s;
    s.options.bootstrap_admin_password = "another-password";
    s.reopen();
    CHECK(s.login_reply("admin", TestServer::kAdminPassword).status == 200);
    CHECK(s.login_reply("admin", "another-password").status == 401);
}
