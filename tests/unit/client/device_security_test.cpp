// Ubuzima Sync — MIT licence.
// The device side of security: plain HTTP only to this machine, text checked at the write, actor
// fields from the login, oversize batches split, scope changes purge, a second user never sees
// the first one's data, reset and logout.
#include <set>

#include "fake_server.hpp"

using namespace ubuzima::client_test;

namespace {

json assessment() {
    return {{"facility_id", "fac-gisenyi"}, {"instrument_version_id", "instv-dehs-hna-1.0.0"},
            {"assessment_type", "baseline"}, {"status", "draft"}, {"visit_date", "2026-11-20"}};
}

json grant(const std::string& user, const std::string& id) {
    return json{{"access_token", "a-" + user}, {"token_type", "Bearer"}, {"expires_in", 900},
                {"refresh_token", "r-" + user}, {"user", {{"id", id}, {"username", user}}}};
}

std::int64_t rows(Database& db, const std::string& table) { return static_cast<std::int64_t>(db.query(table).value().size()); }

}  // namespace

TEST_CASE("plain http:// goes only to this machine; other schemes never", "[client][tls]") {
    ubuzima::CurlTransport transport;
    for (const char* url : {"http://192.0.2.10:8080/v1/sync", "http://moh.example/v1/sync", "http://127.0.0.1.example/x",
                            "ftp://127.0.0.1/x", "file:///etc/passwd", "not a url"}) {
        auto r = transport.post(url, "{}", {});
        INFO(url);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == ErrorCode::InvalidArgument);
    }
    // Loopback is allowed (nothing listens on port 1: the connection itself fails).
    for (const char* url : {"http://127.0.0.1:1/v1/sync", "http://localhost:1/v1/sync", "http://[::1]:1/v1/sync"}) {
        auto r = transport.post(url, "{}", {});
        INFO(url);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == ErrorCode::Network);
    }
}

TEST_CASE("text that is not UTF-8 is refused at the write, not at every later sync", "[client][utf8]") {
    Fixture fx;
    json bad = need_fields();
    bad["title"] = std::string("caf\xe9", 4);  // Latin-1, not UTF-8
    CHECK(fx.db->insert("need", bad).status().code() == ErrorCode::InvalidValue);
    json overlong = need_fields();
    overlong["description"] = std::string("\xc0\xaf", 2);
    CHECK(fx.db->insert("need", overlong).status().code() == ErrorCode::InvalidValue);
    json bad_json_key = {{"facility_id", "fac-gisenyi"}, {"assessment_id", "a"}, {"item_id", "i"}, {"captured_at", 1},
                         {"value_codes", {{std::string("\xff", 1), 1}}}};
    CHECK(fx.db->insert("assessment_finding", bad_json_key).status().code() == ErrorCode::InvalidValue);
    CHECK(fx.db->put("need", std::string("id-\xff", 4), need_fields()).code() == ErrorCode::InvalidArgument);
    CHECK(fx.db->put("need", "id\nwith-newline", need_fields()).code() == ErrorCode::InvalidArgument);
    CHECK(fx.db->pending_changes().value() == 0);
    json good = need_fields();
    good["title"] = "Café, Kinyarwanda: Murakoze";
    CHECK(fx.db->insert("need", good).ok());
}

TEST_CASE("actor fields are filled from the login; another user's id is refused at once", "[client][actor]") {
    Fixture fx;
    auto before = fx.db->insert("needs_assessment", assessment());  // offline before any login
    REQUIRE(before.ok());
    CHECK(fx.db->get("needs_assessment", *before).value()->at("lead_assessor_id").is_null());  // the server fills it
    fx.login();  // user id u1
    auto id = fx.db->insert("needs_assessment", assessment());
    REQUIRE(id.ok());
    CHECK(fx.db->get("needs_assessment", *id).value()->at("lead_assessor_id") == "u1");
    json forged = assessment();
    forged["lead_assessor_id"] = "the-director";
    CHECK(fx.db->insert("needs_assessment", forged).status().code() == ErrorCode::InvalidValue);
    forged["lead_assessor_id"] = "u1";
    CHECK(fx.db->insert("needs_assessment", forged).ok());
    // voided_by follows voided_at.
    auto event = fx.db->insert("need_status_event", {{"facility_id", "fac-gisenyi"}, {"need_id", "n"}, {"to_status", "open"}});
    REQUIRE(event.ok());
    CHECK(fx.db->get("need_status_event", *event).value()->at("by_user_id") == "u1");
    REQUIRE(fx.db->update("need_status_event", *event, {{"voided_at", kNow}, {"void_reason", "typo"}}).ok());
    CHECK(fx.db->get("need_status_event", *event).value()->at("voided_by") == "u1");
}

TEST_CASE("a batch over the server's body limit is sent again in halves; a lone oversize change is refused",
          "[client][413]") {
    Fixture fx;
    fx.login();
    for (int i = 0; i < 5; ++i) REQUIRE(fx.db->insert("need", need_fields()).ok());
    // The "server" takes at most 2 changes per request; a 413 means nothing was applied.
    auto answer = [&](const Request& r) -> Result<HttpResponse> {
        if (r.body.contains("batch") && r.body["batch"]["changes"].size() > 2)
            return HttpResponse{413, R"({"error":{"code":"too_large","message":"body over the limit"}})"};
        json resp{{"protocol", 1}, {"server_clock", hlc_hex(kNow)}, {"changes", json::array()}, {"cursor", "c"},
                  {"more", false}, {"push", nullptr}};
        if (r.body.contains("batch"))
            resp["push"] = {{"batch", r.body["batch"]["id"]}, {"applied", r.body["batch"]["changes"].size()},
                            {"conflicts", json::array()}, {"rejected", json::array()}};
        return HttpResponse{200, resp.dump()};
    };
    for (int i = 0; i < 10; ++i) fx.fake->script.push_back(answer);
    auto report = fx.db->sync();
    INFO((report.ok() ? std::string() : report.status().to_string()));
    REQUIRE(report.ok());
    CHECK(report->pushed == 5);
    CHECK(report->rejected == 0);
    std::vector<std::size_t> sizes;
    std::set<std::string> ids;
    for (const Request& r : fx.fake->requests)
        if (r.body.contains("batch")) {
            sizes.push_back(r.body["batch"]["changes"].size());
            ids.insert(r.body["batch"]["id"].get<std::string>());
        }
    CHECK(sizes == std::vector<std::size_t>{5, 2, 2, 1});
    CHECK(ids.size() == 4);  // the refused batch's id is never reused for other changes

    // One change alone over the limit can never go: it is kept in the rejected list.
    fx.fake->script.clear();
    REQUIRE(fx.db->insert("need", need_fields()).ok());
    fx.fake->reply(413, json{{"error", {{"code", "too_large"}, {"message", "body over the limit"}}}});
    fx.fake->sync_ok();
    auto lone = fx.db->sync();
    REQUIRE(lone.ok());
    CHECK(lone->rejected == 1);
    CHECK(fx.db->pending_changes().value() == 0);
    json rejected = fx.db->rejected().value();
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0]["code"] == "too_large");
}

TEST_CASE("a scope notice drops the rows of facilities the user no longer has", "[client][scope]") {
    Fixture fx;
    fx.login();
    json butaro = need_fields();
    butaro["facility_id"] = "fac-butaro";
    fx.fake->sync_ok(json::array({pulled_need("n-gis", server_version(kNow)), pulled_need("n-but", server_version(kNow), butaro)}));
    REQUIRE(fx.db->sync().ok());
    REQUIRE(rows(*fx.db, "need") == 2);
    REQUIRE(fx.db->update("need", "n-but", {{"priority", "low"}}).ok());  // an unpushed edit
    fx.fake->script.push_back([&](const Request& r) -> Result<HttpResponse> {
        json resp{{"protocol", 1}, {"server_clock", hlc_hex(kNow)}, {"changes", json::array()}, {"cursor", "c2"},
                  {"more", false}, {"scope", {"fac-gisenyi"}},
                  {"push", {{"batch", r.body["batch"]["id"]}, {"applied", 0}, {"conflicts", json::array()},
                            {"rejected", {{{"index", 0}, {"code", "out_of_scope"}, {"message", "no such need"}, {"current", nullptr}}}}}}};
        return HttpResponse{200, resp.dump()};
    });
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->removed == 1);
    CHECK(report->rejected == 1);
    CHECK(fx.db->get("need", "n-but").value() == std::nullopt);
    CHECK(fx.db->get("need", "n-gis").value().has_value());
    json rejected = fx.db->rejected().value();
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0]["fields"]["priority"] == "low");  // kept, not lost
}

TEST_CASE("another user on the device: refused while the last one's changes are unsynced, then a clean device",
          "[client][second_user]") {
    Fixture fx;
    fx.login();  // ana
    const std::string ana_node = fx.db->node_id();
    fx.fake->sync_ok(json::array({pulled_need("n-1", server_version(kNow))}));
    REQUIRE(fx.db->sync().ok());
    REQUIRE(fx.db->insert("need", need_fields()).ok());
    const std::size_t before = fx.fake->requests.size();
    Status refused = fx.db->login("https://moh.example/", "Bob", "bob-password");
    CHECK(refused.code() == ErrorCode::Conflict);
    CHECK(refused.message().find("1 unsynced") != std::string::npos);
    CHECK(fx.fake->requests.size() == before);  // the password did not even leave the device

    fx.fake->sync_ok();
    REQUIRE(fx.db->sync().ok());
    // A failed login changes nothing.
    fx.fake->reply(401, json{{"error", {{"code", "invalid_credentials"}, {"message", "no"}}}});
    CHECK(fx.db->login("https://moh.example/", "bob", "wrong").code() == ErrorCode::InvalidCredentials);
    CHECK(rows(*fx.db, "need") == 2);
    CHECK(fx.db->node_id() == ana_node);

    fx.fake->reply(200, grant("bob", "u2"));
    REQUIRE(fx.db->login("https://moh.example/", "bob", "bob-password").ok());
    CHECK(rows(*fx.db, "need") == 0);
    CHECK(fx.db->conflicts().value().empty());
    CHECK(fx.db->node_id() != ana_node);  // a new replica: its first pull must not skip "its own" rows
    CHECK(fx.fake->requests.back().body["device_id"] == fx.db->node_id());
    CHECK(fx.meta("cursor").empty());
    // The same user again keeps everything.
    REQUIRE(fx.db->insert("need", need_fields()).ok());
    fx.fake->reply(200, grant("bob", "u2"));
    REQUIRE(fx.db->login("https://moh.example/", "bob", "bob-password").ok());
    CHECK(rows(*fx.db, "need") == 1);
}

TEST_CASE("reset wipes the device; logout voids the tokens, even offline", "[client][reset]") {
    Fixture fx;
    fx.login();
    REQUIRE(fx.db->insert("need", need_fields()).ok());
    fx.fake->fail(ErrorCode::Network);  // logout cannot reach the server
    CHECK(fx.db->logout().code() == ErrorCode::Network);
    CHECK(fx.meta("access_token").empty());
    CHECK(fx.meta("refresh_token").empty());
    CHECK(fx.db->pending_changes().value() == 1);  // data stays
    CHECK(fx.db->sync().status().code() == ErrorCode::NotLoggedIn);

    const std::string node = fx.db->node_id();
    REQUIRE(fx.db->reset().ok());
    CHECK(fx.db->pending_changes().value() == 0);
    CHECK(rows(*fx.db, "need") == 0);
    CHECK(fx.db->node_id() != node);
    CHECK(fx.meta("username").empty());
}

TEST_CASE("each sync request tells the server what the device holds", "[client][health]") {
    Fixture fx;
    fx.login();
    REQUIRE(fx.db->insert("need", need_fields()).ok());
    REQUIRE(fx.db->insert("need", need_fields()).ok());
    fx.fake->sync_ok(json::array(), "c1", false,
                     json::array({{{"index", 0}, {"code", "sealed"}, {"message", "no"}, {"current", nullptr}}}));
    REQUIRE(fx.db->sync().ok());
    CHECK(fx.fake->requests.back().body["pending"] == 2);
    CHECK(fx.fake->requests.back().body["rejected"] == 0);
    fx.fake->sync_ok();
    REQUIRE(fx.db->sync().ok());
    CHECK(fx.fake->requests.back().body["pending"] == 0);
    CHECK(fx.fake->requests.back().body["rejected"] == 1);
}
