// Ubuzima Sync — MIT licence.
// The request edge: routes, methods, body limits, gzip both ways, JSON errors everywhere.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;
using ubuzima::server::gzip_compress;

namespace {
std::string sync_body(int limit = 1000) {
    return json{{"protocol", 1}, {"schema_version", 1}, {"node", "00000000000000aa"}, {"limit", limit}}.dump();
}
}  // namespace

TEST_CASE("unknown routes are 404 and wrong methods 405, as JSON", "[server][http]") {
    TestServer s;
    Reply missing = s.call("GET", "/v1/nothing");
    CHECK(missing.status == 404);
    CHECK(missing.body["error"]["code"] == "not_found");
    CHECK(missing.raw.headers.at("Content-Type") == "application/json");
    Reply method = s.call("GET", "/v1/sync");
    CHECK(method.status == 405);
    CHECK(method.body["error"]["code"] == "method_not_allowed");
    CHECK(method.raw.headers.at("Allow") == "POST");
}

TEST_CASE("bodies over the limit are 413, announced or not", "[server][http]") {
    TestServer s;
    s.options.max_body_bytes = 2048;
    s.reopen();
    const std::string token = s.token_for_node(s.admin_token(), 0xaa);
    Reply announced = s.call("POST", "/v1/sync", "", token, {{"content-length", "999999"}});
    CHECK(announced.status == 413);
    CHECK(announced.body["error"]["code"] == "too_large");
    Reply actual = s.call("POST", "/v1/sync", std::string(4096, ' ') + sync_body(), token);
    CHECK(actual.status == 413);
    // Within the limit the server keeps serving normally.
    CHECK(s.call("POST", "/v1/sync", sync_body(), token).status == 200);
}

TEST_CASE("a body of unannounced length (chunked) is refused with 411 before it is read", "[server][http]") {
    TestServer s;
    const std::string token = s.token_for_node(s.admin_token(), 0xaa);
    Reply chunked = s.call("POST", "/v1/sync", sync_body(), token, {{"transfer-encoding", "chunked"}});
    CHECK(chunked.status == 411);
    CHECK(chunked.body["error"]["code"] == "length_required");
    CHECK(chunked.raw.headers.at("Content-Type") == "application/json");
    CHECK(s.call("POST", "/v1/sync", sync_body(), token).status == 200);
}

TEST_CASE("gzip request bodies are inflated, with the size cap applied after inflating", "[server][http]") {
    TestServer s;
    const std::string token = s.token_for_node(s.admin_token(), 0xaa);
    Reply ok = s.call("POST", "/v1/sync", gzip_compress(sync_body()).value(), token, {{"content-encoding", "gzip"}});
    CHECK(ok.status == 200);
    CHECK(ok.body["changes"].size() == 121);

    Reply corrupt = s.call("POST", "/v1/sync", "\x1f\x8b not gzip at all", token, {{"content-encoding", "gzip"}});
    CHECK(corrupt.status == 400);
    CHECK(corrupt.body["error"]["code"] == "bad_request");

    s.options.max_body_bytes = 64 * 1024;
    s.reopen();
    const std::string t2 = s.token_for_node(s.admin_token(), 0xaa);
    const std::string bomb = gzip_compress(std::string(10 * 1024 * 1024, ' ')).value();
    REQUIRE(bomb.size() < 64 * 1024);
    Reply big = s.call("POST", "/v1/sync", bomb, t2, {{"content-encoding", "gzip"}});
    CHECK(big.status == 413);
    CHECK(big.body["error"]["code"] == "too_large");

    Reply brotli = s.call("POST", "/v1/sync", sync_body(), t2, {{"content-encoding", "br"}});
    CHECK(brotli.status == 415);
}

TEST_CASE("large responses are gzipped when the client accepts it", "[server][http]") {
    TestServer s;
    const std::string token = s.token_for_node(s.admin_token(), 0xaa);
    Reply zipped = s.call("POST", "/v1/sync", sync_body(), token, {{"accept-encoding", "deflate, gzip"}});
    REQUIRE(zipped.status == 200);
    CHECK(zipped.raw.headers.at("Content-Encoding") == "gzip");
    CHECK(zipped.body["changes"].size() == 121);  // the harness inflated it
    Reply plain = s.call("POST", "/v1/sync", sync_body(), token);
    CHECK(plain.raw.headers.count("Content-Encoding") == 0);
    CHECK(zipped.raw.body.size() * 3 < plain.raw.body.size());
    // Small bodies are not worth it.
    Reply small = s.call("GET", "/v1/health", "", "", {{"accept-encoding", "gzip"}});
    CHECK(small.raw.headers.count("Content-Encoding") == 0);
}

TEST_CASE("hostile bodies never crash the server or lose data", "[server][http]") {
    TestServer s;
    const std::string token = s.token_for_node(s.admin_token(), 0xaa);
    const std::vector<std::string> bodies = {
        "",        "null", "[]", "{}", "{\"protocol\":1}", std::string("\xff\xfe\x00", 3), "{\"a\":\"\xc3\x28\"}",
        "{\"protocol\":1,\"schema_version\":1,\"node\":\"00000000000000aa\",\"batch\":{\"id\":\"b\",\"changes\":[{}]}}",
        "{\"protocol\":1,\"schema_version\":1,\"node\":\"00000000000000aa\",\"batch\":{\"id\":\"b\",\"changes\":"
        "[{\"t\":\"need\",\"id\":\"n\",\"v\":\"0000000000000001@00000000000000aa\",\"f\":{\"title\":[1,2]}}]}}",
        std::string(10000, '['),
    };
    for (const std::string& b : bodies) {
        for (const char* path : {"/v1/sync", "/v1/auth/login", "/v1/auth/refresh", "/v1/admin/users", "/v1/conflicts/1/resolve"}) {
            Reply r = s.call("POST", path, b, token);
            INFO(path << " <- " << b.substr(0, 60) << " -> " << r.raw.body);
            CHECK(r.status >= 200);
            CHECK(r.status < 500);
            CHECK(r.raw.headers.at("Content-Type") == "application/json");
            if (r.status >= 400) CHECK(r.body["error"]["code"].is_string());
        }
    }
    Reply after = s.call("POST", "/v1/sync", sync_body(), token);
    CHECK(after.status == 200);
    CHECK(after.body["changes"].size() == 121);
}

TEST_CASE("a path or method that is not UTF-8 gets a JSON 4xx, not a 500", "[server][http][fuzz]") {
    // Found by fuzz_server_request (corpus file fuzz/corpus/fuzz_server_request/crash-non-utf8-path).
    TestServer s;
    Reply missing = s.call("GET", "/v1/\xdd\xf0");
    CHECK(missing.status == 404);
    CHECK(missing.body["error"]["code"] == "not_found");
    Reply method = s.call("\xff", "/v1/sync");
    CHECK(method.status == 405);
    CHECK(method.body["error"]["code"] == "method_not_allowed");
}
