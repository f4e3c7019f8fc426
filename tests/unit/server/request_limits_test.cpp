// Ubuzima Sync — MIT licence.
// The request edge against hostile input: undeclared methods, encoded paths, deep JSON, bodies
// per route (size, encoding, media type), request rate limits.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;
using ubuzima::server::gzip_compress;

namespace {

/// `depth` nested arrays: "[[[...]]]".
std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

json sync_request(const json& changes = nullptr, const std::string& batch = "b-1") {
    json req{{"protocol", 1}, {"schema_version", 1}, {"node", ubuzima::sync::to_hex16(0xaa)}};
    if (!changes.is_null()) req["batch"] = {{"id", batch}, {"changes", changes}};
    return req;
}

}  // namespace

TEST_CASE("every method no route declares is 405 with Allow, TRACE and OPTIONS included", "[server][http]") {
    TestServer s;
    const std::string token = s.admin_token();
    for (const char* method : {"TRACE", "OPTIONS", "HEAD", "DELETE", "PUT", "CONNECT", "PROPFIND"}) {
        Reply r = s.call(method, "/v1/health", "", token, {{"cookie", "session=secret"}});
        INFO(method);
        CHECK(r.status == 405);
        CHECK(r.raw.headers.at("Allow") == "GET");
        // Nothing of the request comes back (TRACE used to echo the bearer token).
        CHECK(r.raw.body.find(token) == std::string::npos);
        CHECK(r.raw.body.find("secret") == std::string::npos);
    }
    CHECK(s.call("TRACE", "/v1/admin/users/alice").raw.headers.at("Allow") == "PATCH");
    CHECK(s.call("GET", "/v1/admin/users/alice/extra").status == 404);
}

TEST_CASE("paths are split before they are decoded: %2F stays inside one segment", "[server][http]") {
    TestServer s;
    const std::string admin = s.admin_token();
    // "/v1/admin/users/a%2Fb" names user "a/b" (none), not the path /v1/admin/users/a/b.
    Reply r = s.call("PATCH", "/v1/admin/users/a%2Fb", json{{"disabled", true}}.dump(), admin);
    CHECK(r.status == 404);
    CHECK(r.body["error"]["code"] == "not_found");
    CHECK(r.body["error"]["message"] == "no user a/b");
    // Another spelling of a segment is the same segment (the table judges decoded segments, so no
    // spelling reaches a route past its roles), but an encoded '/' never splits one.
    CHECK(s.call("GET", "/v1/%68ealth").status == 200);
    CHECK(s.call("GET", "/v1/admin%2Fusers", "", admin).status == 404);
}

TEST_CASE("JSON nested 100,000 deep is refused with a clear error, on every route", "[server][http][json]") {
    TestServer s;
    const std::string token = s.token_for_node(s.admin_token(), 0xaa);
    const std::string deep = nested(100'000);  // ~200 KB: crashed the server (a recursive copy)
    json push = sync_request(json::array());
    std::string body = push.dump();
    body.replace(body.find("[]"), 2, "[{\"t\":\"need\",\"id\":\"n\",\"v\":\"0000000000000001@00000000000000aa\","
                                       "\"f\":{\"title\":" + deep + "}}]");
    Reply r = s.call("POST", "/v1/sync", body, token);
    CHECK(r.status == 400);
    CHECK(r.body["error"]["message"].get<std::string>().find("deeper than 64") != std::string::npos);
    for (const char* path : {"/v1/admin/users", "/v1/conflicts/1/resolve", "/v1/auth/logout"}) {
        Reply other = s.call("POST", path, nested(1'000), token);
        INFO(path);
        CHECK(other.status == 400);
    }
    // A json field value may nest, within its own limit (32).
    const json ok_value = json::parse(nested(30));
    const json too_deep = json::parse(nested(40));
    Reply within = s.post("/v1/sync", sync_request(json::array({change("instrument_item", "x", s.version(0xaa), {{"enable_when", ok_value}})})), token);
    CHECK(within.status == 200);  // refused as reference data, after the depth check passed
    CHECK(within.body["push"]["rejected"][0]["code"] == "read_only");
    json finding{{"facility_id", "fac-kabgayi"}, {"assessment_id", "a"}, {"item_id", "i"}, {"captured_at", 1},
                 {"value_codes", too_deep}};
    Reply deep_value = s.post("/v1/sync", sync_request(json::array({change("assessment_finding", "f", s.version(0xaa), finding)}), "b-2"), token);
    REQUIRE(deep_value.status == 200);
    CHECK(deep_value.body["push"]["rejected"][0]["code"] == "invalid_value");
    // The server is unharmed.
    CHECK(s.call("GET", "/v1/health").status == 200);
}

TEST_CASE("public routes take small, plain JSON bodies only", "[server][http][auth]") {
    TestServer s;
    const json login{{"username", "admin"}, {"password", TestServer::kAdminPassword}, {"device_id", "d"}};
    // A 30 KB gzip bomb inflating to 30 MB: refused before inflating (no encodings here at all).
    const std::string bomb = gzip_compress(nested(15'000'000)).value();
    REQUIRE(bomb.size() < 64 * 1024);
    Reply zipped = s.call("POST", "/v1/auth/login", bomb, "", {{"content-encoding", "gzip"}});
    CHECK(zipped.status == 413);  // larger than a login body may be, even compressed
    Reply small_zip = s.call("POST", "/v1/auth/login", gzip_compress(login.dump()).value(), "",
                             {{"content-encoding", "gzip"}});
    CHECK(small_zip.status == 415);
    CHECK(small_zip.body["error"]["code"] == "unsupported_media_type");
    Reply big = s.call("POST", "/v1/auth/login", std::string(5000, ' ') + login.dump());
    CHECK(big.status == 413);
    Reply form = s.call("POST", "/v1/auth/login", login.dump(), "", {{"content-type", "application/x-www-form-urlencoded"}});
    CHECK(form.status == 415);
    CHECK(s.call("POST", "/v1/auth/login", login.dump(), "", {{"content-type", "application/json; charset=utf-8"}}).status == 200);
}

TEST_CASE("requests past a device's rate are 429 with Retry-After; other devices go on", "[server][http][rate]") {
    TestServer s;
    s.options.rate = ubuzima::server::RateLimits{2, 5, 0, 0};  // 2/s, bursts of 5
    s.reopen();
    const std::string a = s.token_for_node(s.admin_token(), 0xaa);
    const std::string b = s.token_for_node(s.admin_token(), 0xbb);
    const std::string body_a = sync_request().dump();
    for (int i = 0; i < 5; ++i) CHECK(s.call("POST", "/v1/sync", body_a, a).status == 200);
    Reply limited = s.call("POST", "/v1/sync", body_a, a);
    CHECK(limited.status == 429);
    CHECK(limited.body["error"]["code"] == "rate_limited");
    CHECK(limited.raw.headers.at("Retry-After") == "1");
    json body_b = sync_request();
    body_b["node"] = ubuzima::sync::to_hex16(0xbb);
    CHECK(s.call("POST", "/v1/sync", body_b.dump(), b).status == 200);
    s.advance_ms(600);  // one token back
    CHECK(s.call("POST", "/v1/sync", body_a, a).status == 200);
    CHECK(s.call("POST", "/v1/sync", body_a, a).status == 429);
}

TEST_CASE("requests past an address's rate are 429, before any work; loopback is per device only", "[server][http][rate]") {
    TestServer s;
    s.options.rate = ubuzima::server::RateLimits{0, 0, 1, 3};
    s.reopen();
    for (int i = 0; i < 3; ++i) CHECK(s.call("GET", "/v1/health", "", "", {}, "203.0.113.7").status == 200);
    Reply limited = s.call("GET", "/v1/nowhere", "", "", {}, "203.0.113.7");  // even a 404 costs a token
    CHECK(limited.status == 429);
    CHECK(s.call("GET", "/v1/health", "", "", {}, "198.51.100.2").status == 200);
    // A front proxy on this machine makes every client 127.0.0.1: not limited as one address.
    for (int i = 0; i < 10; ++i) CHECK(s.call("GET", "/v1/health", "", "", {}, "127.0.0.1").status == 200);
}

TEST_CASE("a pull page never exceeds the server's maximum, whatever the device asks", "[server][http]") {
    TestServer s;
    s.options.max_page = 7;
    s.reopen();
    const std::string token = s.token_for_node(s.admin_token(), 0xaa);
    json req = sync_request();
    req["limit"] = 5000;
    Reply r = s.post("/v1/sync", req, token);
    REQUIRE(r.status == 200);
    CHECK(r.body["changes"].size() == 7);
    CHECK(r.body["more"] == true);
}
