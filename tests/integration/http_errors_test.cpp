// Ubuzima Sync — MIT licence.
// Integration: bad requests get the protocol's JSON errors and the server keeps serving.
#include "integration/fixture.hpp"

#include <thread>

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {
void check_error(const HttpResult& r, long status, const std::string& code) {
    INFO(r.body);
    CHECK(r.status == status);
    json j = r.json();
    REQUIRE(j.is_object());
    REQUIRE(j.contains("error"));
    CHECK(j["error"]["code"] == code);
    CHECK(j["error"]["message"].is_string());
}
}  // namespace

TEST_CASE_METHOD(ServerFixture, "Bad requests get clear JSON errors and lose nothing", "[integration]") {
    Database a = device("alice", "alice");
    auto need = a.insert("need", need_fields("fac-gisenyi", "Kept through the storm"));
    REQUIRE(need.ok());
    must_sync(a);
    const std::string tok = login_token(server.url(), "alice", kPassword, "00000000000000aa");
    const std::string sync_url = server.url() + "/v1/sync";

    check_error(http_request("POST", sync_url, "{\"protocol\":1,", tok), 400, "invalid_json");
    check_error(http_request("POST", sync_url, R"({"protocol":"one"})", tok), 400, "bad_request");
    check_error(http_request("POST", sync_url, R"({"protocol":1,"schema_version":1,"node":"0000000000000001"})"),
                401, "unauthorized");
    check_error(http_request("POST", sync_url, R"({"protocol":1,"schema_version":1,"node":"0000000000000001"})",
                             "not-a-token"),
                401, "unauthorized");
    check_error(http_request("GET", server.url() + "/v1/nowhere", "", tok), 404, "not_found");
    check_error(http_request("POST", server.url() + "/v1/auth/login",
                             R"({"username":"alice","password":"wrong","device_id":"x"})"),
                401, "invalid_credentials");
    check_error(http_request("POST", server.url() + "/v1/admin/users",
                             R"({"username":"eve","password":"x","role":"admin","facilities":[]})", tok),
                403, "forbidden");
    // A batch with an unknown table and a wrongly typed value: per-change rejections, the rest applies.
    const std::string batch = R"({"protocol":1,"schema_version":1,"node":"00000000000000aa","batch":{"id":"b-bad","changes":[
        {"t":"no_such_table","id":"x1","v":"0001000000000000@00000000000000aa","f":{"a":1}},
        {"t":"need","id":")" + *need + R"(","v":"0001000000000001@00000000000000aa","f":{"priority":42}}]}})";
    HttpResult mixed = http_request("POST", sync_url, batch, tok);
    REQUIRE(mixed.status == 200);
    json push = mixed.json()["push"];
    REQUIRE(push["rejected"].size() == 2);
    CHECK(push["rejected"][0]["code"] == "unknown_table");
    CHECK(push["rejected"][1]["code"] == "invalid_value");

    HttpResult health = http_request("GET", server.url() + "/v1/health");
    CHECK(health.status == 200);
    CHECK(health.json()["status"] == "ok");
    Database b = device("bob", "bob");
    must_sync(b);
    auto kept = b.get("need", *need).value();
    REQUIRE(kept);
    CHECK(kept->at("priority") == "high");
}

TEST_CASE("Oversize bodies get 413 and expired tokens are refreshed by the client", "[integration]") {
    TempDir dir;
    ServerProcess server(dir.file("server"));
    server.set_extra_args({"--max-body-bytes", "65536", "--access-ttl", "1"});
    server.start();
    const std::string admin = login_token(server.url(), "admin", server.admin_password());
    create_user(server.url(), admin, "alice", kPassword, "assessor", {"fac-gisenyi"});

    const std::string big(200'000, 'x');
    HttpResult r = http_request("POST", server.url() + "/v1/sync", "{\"pad\":\"" + big + "\"}", admin);
    INFO(r.body);
    CHECK(r.status == 413);
    CHECK(r.json()["error"]["code"] == "too_large");
    // The same without a length (chunked): the server could only measure it by buffering it all.
    HttpResult chunked = http_request("POST", server.url() + "/v1/sync", "{\"pad\":\"" + big + "\"}", admin,
                                      "Transfer-Encoding: chunked");
    INFO(chunked.body);
    CHECK(chunked.status == 411);
    CHECK(chunked.json()["error"]["code"] == "length_required");

    DatabaseOptions options;
    options.path = dir.file("alice.db");
    auto db = Database::open(options);
    REQUIRE(db.ok());
    REQUIRE(db->login(server.url(), "alice", kPassword).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // the 1 s access token expires
    check_error(http_request("POST", server.url() + "/v1/sync",
                             R"({"protocol":1,"schema_version":1,"node":"0000000000000001"})", admin),
                401, "token_expired");
    REQUIRE(db->insert("need", need_fields("fac-gisenyi", "After expiry")).ok());
    auto report = db->sync();  // the client refreshes its token once and goes on
    INFO((report.ok() ? std::string() : report.status().to_string()));
    REQUIRE(report.ok());
    CHECK(report->pushed == 1);
    CHECK(server.stop() == 0);
}
