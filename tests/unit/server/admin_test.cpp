// Ubuzima Sync — MIT licence.
// Users and devices, administered: list, create, change, disable, revoke; coordinators read only.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

namespace {

constexpr std::uint64_t kTablet = 0x7a7a7a7a7a7a7a7aull;

json user_named(const json& users, const std::string& name) {
    for (const json& u : users)
        if (u["username"] == name) return u;
    return nullptr;
}

}  // namespace

TEST_CASE("admins list, create and change users; coordinators may only read", "[server][admin]") {
    TestServer s;
    const std::string admin = s.admin_token();
    const std::string coord = s.user_token("cora", "coordinator", {});
    Reply created = s.post("/v1/admin/users", {{"username", "alice"}, {"password", "alice-password"}, {"role", "assessor"},
                                               {"facilities", {"fac-kabgayi", "fac-kabgayi"}}},
                           admin);
    REQUIRE(created.status == 201);
    CHECK(created.body["facilities"] == json::array({"fac-kabgayi"}));
    CHECK_FALSE(created.body.contains("password_hash"));
    CHECK(s.post("/v1/admin/users", {{"username", "alice"}, {"password", "another-password"}, {"role", "assessor"}}, admin)
              .body["error"]["code"] == "conflict");
    CHECK(s.post("/v1/admin/users", {{"username", "bob"}, {"password", "bob-password-1"}, {"role", "king"}}, admin)
              .body["error"]["code"] == "invalid_value");
    Reply no_such_facility = s.post("/v1/admin/users", {{"username", "bob"}, {"password", "bob-password-1"},
                                                        {"role", "assessor"}, {"facilities", {"fac-atlantis"}}},
                                    admin);
    CHECK(no_such_facility.status == 422);
    CHECK(no_such_facility.body["error"]["message"] == "no facility fac-atlantis");
    CHECK(s.post("/v1/admin/users", {{"username", "eve"}, {"password", "eve-password-1"}, {"role", "admin"}}, coord)
              .status == 403);
    CHECK(s.post("/v1/admin/users", {{"username", "eve"}, {"password", "eve-password-1"}, {"role", "admin"}, {"salary", 1}}, admin)
              .status == 400);

    Reply listed = s.call("GET", "/v1/admin/users", "", coord);
    REQUIRE(listed.status == 200);
    json alice = user_named(listed.body["users"], "alice");
    REQUIRE(alice.is_object());
    CHECK(alice["role"] == "assessor");
    CHECK(alice["disabled"] == false);
    CHECK(listed.raw.body.find("pbkdf2") == std::string::npos);  // no password data, ever

    Reply patched = s.call("PATCH", "/v1/admin/users/alice",
                           json{{"role", "focal_point"}, {"facilities", {"fac-kibuye", "fac-kabgayi"}}}.dump(), admin);
    REQUIRE(patched.status == 200);
    CHECK(patched.body["role"] == "focal_point");
    CHECK(patched.body["facilities"] == json::array({"fac-kabgayi", "fac-kibuye"}));
    CHECK(s.call("PATCH", "/v1/admin/users/alice", json{{"role", "admin"}}.dump(), coord).status == 403);
    CHECK(s.call("PATCH", "/v1/admin/users/nobody", json{{"disabled", true}}.dump(), admin).status == 404);
    CHECK(s.call("PATCH", "/v1/admin/users/alice", json{{"facilites", {}}}.dump(), admin).status == 400);  // typo
    CHECK(s.call("PATCH", "/v1/admin/users/admin", json{{"disabled", true}}.dump(), admin).status == 403);
}

TEST_CASE("disabling a user or changing their password ends their logins at once", "[server][admin]") {
    TestServer s;
    const std::string admin = s.admin_token();
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string tablet = s.login("alice", TestServer::password_of("alice"), ubuzima::sync::to_hex16(kTablet));
    Reply refresh_grant = s.login_reply("alice", TestServer::password_of("alice"), ubuzima::sync::to_hex16(kTablet + 1));
    CHECK(s.sync(tablet, kTablet).status == 200);

    REQUIRE(s.call("PATCH", "/v1/admin/users/alice", json{{"disabled", true}}.dump(), admin).status == 200);
    Reply after = s.sync(tablet, kTablet);
    CHECK(after.status == 401);
    CHECK(after.body["error"]["code"] == "revoked");
    CHECK(s.post("/v1/auth/refresh", {{"refresh_token", refresh_grant.body["refresh_token"]},
                                      {"device_id", ubuzima::sync::to_hex16(kTablet + 1)}})
              .body["error"]["code"] == "revoked");
    Reply login = s.login_reply("alice", TestServer::password_of("alice"));
    CHECK(login.status == 401);
    CHECK(login.body["error"]["code"] == "revoked");
    CHECK(s.login_reply("alice", "a-wrong-password").body["error"]["code"] == "invalid_credentials");  // no hint

    REQUIRE(s.call("PATCH", "/v1/admin/users/alice", json{{"disabled", false}}.dump(), admin).status == 200);
    const std::string again = s.login("alice", TestServer::password_of("alice"), ubuzima::sync::to_hex16(kTablet));
    CHECK(s.sync(again, kTablet).status == 200);
    REQUIRE(s.call("PATCH", "/v1/admin/users/alice", json{{"password", "a brand new password"}}.dump(), admin).status == 200);
    CHECK(s.sync(again, kTablet).body["error"]["code"] == "revoked");
    CHECK(s.login_reply("alice", TestServer::password_of("alice")).status == 401);
    CHECK(s.login_reply("alice", "a brand new password").status == 200);
    CHECK(s.call("PATCH", "/v1/admin/users/alice", json{{"password", "short"}}.dump(), admin).status == 422);
}

TEST_CASE("devices are listed with their user, sync times and what they report; revoking one ends it",
          "[server][admin][devices]") {
    TestServer s;
    const std::string admin = s.admin_token();
    const std::string coord = s.user_token("cora", "coordinator", {});
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string device = ubuzima::sync::to_hex16(kTablet);
    Reply grant = s.login_reply("alice", TestServer::password_of("alice"), device);
    const std::string tablet = grant.body["access_token"];
    json req{{"protocol", 1}, {"schema_version", 1}, {"node", device}, {"pending", 3}, {"rejected", 1}};
    REQUIRE(s.post("/v1/sync", req, tablet).status == 200);

    Reply listed = s.call("GET", "/v1/admin/devices", "", coord);
    REQUIRE(listed.status == 200);
    json mine = nullptr;
    for (const json& d : listed.body["devices"])
        if (d["device_id"] == device) mine = d;
    REQUIRE(mine.is_object());
    CHECK(mine["username"] == "alice");
    CHECK(mine["first_seen"].is_number());
    CHECK(mine["last_sync"].is_number());
    CHECK(mine["pending"] == 3);
    CHECK(mine["rejected"] == 1);
    CHECK(mine["revoked_at"].is_null());

    CHECK(s.call("POST", "/v1/admin/devices/" + device + "/revoke", "", coord).status == 403);
    CHECK(s.call("POST", "/v1/admin/devices/no-such-device/revoke", "", admin).status == 404);
    REQUIRE(s.call("POST", "/v1/admin/devices/" + device + "/revoke", "", admin).status == 200);
    // Every token of the device dies at once, access and refresh; a new login from it too.
    Reply next = s.post("/v1/sync", req, tablet);
    CHECK(next.status == 401);
    CHECK(next.body["error"]["code"] == "revoked");
    CHECK(s.post("/v1/auth/refresh", {{"refresh_token", grant.body["refresh_token"]}, {"device_id", device}})
              .body["error"]["code"] == "revoked");
    CHECK(s.login_reply("alice", TestServer::password_of("alice"), device).body["error"]["code"] == "revoked");
    // Alice on another device is unaffected.
    CHECK(s.login_reply("alice", TestServer::password_of("alice"), ubuzima::sync::to_hex16(kTablet + 1)).status == 200);
    Reply relisted = s.call("GET", "/v1/admin/devices", "", admin);
    for (const json& d : relisted.body["devices"])
        if (d["device_id"] == device) CHECK(d["revoked_at"].is_number());
}
