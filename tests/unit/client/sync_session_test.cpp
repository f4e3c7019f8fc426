// Ubuzima Sync — MIT licence.
// The sync session against a scripted fake transport: batches, cursor, rejections, clock skew,
// conflicts, paging and token refresh, without a server.
#include "fake_server.hpp"

using namespace ubuzima::client_test;

TEST_CASE("login stores tokens; sync pushes the outbox with the bearer token", "[client][sync]") {
    Fixture fx;
    CHECK(fx.db->sync().status().code() == ErrorCode::NotLoggedIn);
    fx.login();
    const Request& login = fx.fake->requests.back();
    CHECK(login.url == "https://moh.example/v1/auth/login");
    CHECK(login.body["device_id"] == fx.db->node_id());
    CHECK(fx.meta("refresh_token") == "r1");

    auto id = fx.db->insert("need", need_fields());
    REQUIRE(id.ok());
    fx.fake->sync_ok();
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->round_trips == 1);
    CHECK(report->pushed == 1);
    const Request& sync_req = fx.fake->requests.back();
    CHECK(sync_req.url == "https://moh.example/v1/sync");
    CHECK(sync_req.header("Authorization") == "Bearer a1");
    CHECK(sync_req.body["protocol"] == 1);
    CHECK(sync_req.body["node"] == fx.db->node_id());
    CHECK(sync_req.body["cursor"].is_null());
    REQUIRE(sync_req.body["batch"]["changes"].size() == 1);
    const json& change = sync_req.body["batch"]["changes"][0];
    CHECK(change["t"] == "need");
    CHECK(change["id"] == *id);
    CHECK(change["f"] == need_fields());
    CHECK(*fx.db->pending_changes() == 0);

    // Nothing to do: one small request without a batch.
    fx.fake->sync_ok(json::array(), "c2");
    report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->round_trips == 1);
    CHECK_FALSE(fx.fake->requests.back().body.contains("batch"));
    CHECK(fx.fake->requests.back().body["cursor"] == "c1");
}

TEST_CASE("a batch whose answer was lost is resent with the same id", "[client][sync]") {
    Fixture fx;
    fx.login();
    REQUIRE(fx.db->insert("need", need_fields()).ok());
    fx.fake->fail(ErrorCode::Timeout);
    CHECK(fx.db->sync().status().code() == ErrorCode::Timeout);
    const std::string first_id = fx.fake->requests.back().body["batch"]["id"];
    CHECK(*fx.db->pending_changes() == 1);

    REQUIRE(fx.db->insert("need", need_fields()).ok());  // written meanwhile: goes in a later batch
    fx.fake->reply(503, json{{"error", {{"code", "unavailable"}, {"message", "maintenance"}}}});
    auto failed = fx.db->sync();
    CHECK(failed.status().code() == ErrorCode::Unavailable);
    CHECK(failed.status().message() == "maintenance");
    CHECK(fx.fake->requests.back().body["batch"]["id"] == first_id);
    CHECK(fx.fake->requests.back().body["batch"]["changes"].size() == 1);

    fx.fake->sync_ok();
    fx.fake->sync_ok();
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->round_trips == 2);
    CHECK(report->pushed == 2);
    const std::size_t n = fx.fake->requests.size();
    CHECK(fx.fake->requests[n - 2].body["batch"]["id"] == first_id);
    CHECK(fx.fake->requests[n - 1].body["batch"]["id"] != first_id);
    CHECK(*fx.db->pending_changes() == 0);
}

TEST_CASE("pulled pages are applied with their cursor; more keeps pulling", "[client][sync]") {
    Fixture fx;
    fx.login();
    fx.fake->sync_ok(json::array({pulled_need("need-a", server_version(kNow - 5000))}), "page1", true);
    json second = pulled_need("need-b", server_version(kNow - 4000));
    second["f"]["colour"] = json::array({"red", server_version(kNow - 4000)});  // unknown field: ignored
    fx.fake->sync_ok(json::array({second, json{{"t", "future_table"}, {"id", "x"}, {"f", json::object()}}}), "page2",
                     false);
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->round_trips == 2);
    CHECK(report->pulled == 2);
    CHECK(fx.fake->requests.back().body["cursor"] == "page1");
    CHECK(fx.meta("cursor") == "page2");
    CHECK((**fx.db->get("need", "need-a"))["title"] == "Neonatal resuscitation");
    CHECK(fx.db->get("need", "need-b")->has_value());
    CHECK(fx.versions("need", "need-a")["title"] == server_version(kNow - 5000));
    CHECK(*fx.db->pending_changes() == 0);  // pulled rows are not pushed back

    // A pulled tombstone hides the row.
    fx.fake->sync_ok(json::array({json{{"t", "need"}, {"id", "need-a"},
                                       {"f", {{"_deleted", json::array({true, server_version(kNow - 3000)})}}}}}),
                     "page3");
    REQUIRE(fx.db->sync().ok());
    CHECK_FALSE(fx.db->get("need", "need-a")->has_value());
}

TEST_CASE("a rejected change is kept in _rejected and the row rolled back", "[client][sync]") {
    Fixture fx;
    fx.login();
    const std::string sv = server_version(kNow - 5000);
    fx.fake->sync_ok(json::array({pulled_need("need-a", sv)}));
    REQUIRE(fx.db->sync().ok());

    REQUIRE(fx.db->update("need", "need-a", json{{"title", "Moved"}, {"priority", "low"}}).ok());
    auto fresh = fx.db->insert("need", need_fields());
    REQUIRE(fresh.ok());
    json rejected = json::array(
        {json{{"index", 0}, {"code", "out_of_scope"}, {"message", "not your facility"},
              {"current", {{"title", json::array({"Neonatal resuscitation", sv})}}}},
         json{{"index", 1}, {"code", "out_of_scope"}, {"message", "not your facility"}, {"current", nullptr}}});
    fx.fake->sync_ok(json::array(), "c2", false, rejected);
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->rejected == 2);
    CHECK(report->round_trips == 1);  // rejected changes are never retried
    CHECK(*fx.db->pending_changes() == 0);

    auto row = fx.db->get("need", "need-a");
    REQUIRE(row->has_value());
    CHECK((**row)["title"] == "Neonatal resuscitation");  // the server's value
    CHECK((**row)["priority"].is_null());                  // the server has none
    const json v = fx.versions("need", "need-a");
    CHECK(v["title"] == sv);
    CHECK_FALSE(v.contains("priority"));
    CHECK_FALSE(fx.db->get("need", *fresh)->has_value());  // never existed on the server
    CHECK(fx.versions("need", *fresh).is_null());

    auto list = fx.db->rejected();
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    CHECK((*list)[0]["code"] == "out_of_scope");
    CHECK((*list)[0]["row_id"] == "need-a");
    CHECK((*list)[0]["fields"]["title"] == "Moved");
    CHECK((*list)[1]["row_id"] == *fresh);
}

TEST_CASE("a change refused for clock skew is re-stamped with corrected time and resent", "[client][sync]") {
    Fixture fx;
    fx.login();
    fx.wall->store(kNow + 10LL * 365 * 24 * 3600 * 1000);  // device clock 10 years ahead
    auto id = fx.db->insert("need", need_fields());
    REQUIRE(id.ok());
    const std::string skewed = fx.versions("need", *id)["title"];

    fx.fake->sync_ok(json::array(), "c1", false,
                     json::array({json{{"index", 0}, {"code", "clock_skew"}, {"message", "version too far ahead"}}}));
    fx.fake->sync_ok(json::array(), "c2");
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->round_trips == 2);
    CHECK(report->rejected == 0);
    CHECK(report->pushed == 1);
    const json& resent = fx.fake->requests.back().body["batch"];
    const std::string fresh = resent["changes"][0]["v"];
    CHECK(fresh != skewed);
    CHECK(resent["id"] != fx.fake->requests[fx.fake->requests.size() - 2].body["batch"]["id"]);
    auto parsed = sync::Version::parse(fresh);
    REQUIRE(parsed);
    CHECK(sync::hlc_millis(parsed->hlc) >= kNow);
    CHECK(sync::hlc_millis(parsed->hlc) < kNow + 60'000);
    CHECK(fx.versions("need", *id)["title"] == fresh);
    CHECK(fx.db->rejected()->empty());

    // Later writes use the server-corrected clock.
    REQUIRE(fx.db->update("need", *id, json{{"title", "Later"}}).ok());
    auto later = sync::Version::parse(fx.versions("need", *id)["title"].get<std::string>());
    CHECK(sync::hlc_millis(later->hlc) < kNow + 60'000);
    CHECK(fx.meta("clock_offset_ms") != "0");
}

TEST_CASE("push conflicts lost by this device go to the journal", "[client][sync]") {
    Fixture fx;
    fx.login();
    auto id = fx.db->insert("need", need_fields());
    REQUIRE(id.ok());
    const std::string mine = fx.versions("need", *id)["title"];
    const std::string theirs = server_version(kNow + 1000);
    json conflicts = json::array(
        {json{{"t", "need"}, {"id", *id}, {"field", "title"}, {"kept", theirs}, {"lost", mine},
              {"kept_value", "Their title"}, {"lost_value", "Neonatal resuscitation"}},
         json{{"t", "need"}, {"id", *id}, {"field", "priority"}, {"kept", mine}, {"lost", theirs},
              {"kept_value", "high"}, {"lost_value", "low"}}});
    fx.fake->sync_ok(json::array(), "c1", false, json::array(), conflicts);
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->conflicts == 1);
    auto journal = fx.db->conflicts();
    REQUIRE(journal.ok());
    REQUIRE(journal->size() == 1);
    CHECK((*journal)[0]["source"] == "push");
    CHECK((*journal)[0]["field"] == "title");
    CHECK((*journal)[0]["kept_value"] == "Their title");
    CHECK((*journal)[0]["lost_version"] == mine);
}

TEST_CASE("pulling a newer value over an unsynced local write journals the local one", "[client][sync]") {
    Fixture fx;
    fx.login();
    fx.fake->sync_ok(json::array({pulled_need("need-a", server_version(kNow - 5000))}));
    REQUIRE(fx.db->sync().ok());
    REQUIRE(fx.db->update("need", "need-a", json{{"title", "Local"}, {"priority", "low"}}).ok());

    // The page arrives while the local write is still pending (the fake ignores the batch).
    json page = json::array({pulled_need("need-a", server_version(kNow + 5000), json{{"title", "Remote"}}),
                             pulled_need("need-a", server_version(kNow - 9000), json{{"priority", "critical"}})});
    fx.fake->script.push_back([page](const Request&) -> Result<HttpResponse> {
        return HttpResponse{200, json{{"protocol", 1}, {"server_clock", hlc_hex(kNow)}, {"push", nullptr},
                                      {"changes", page}, {"cursor", "c2"}, {"more", false}}
                                     .dump()};
    });
    fx.fake->sync_ok();  // the batch is replayed next round trip and accepted
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->round_trips == 2);
    auto row = fx.db->get("need", "need-a");
    CHECK((**row)["title"] == "Remote");  // newer remote wins
    CHECK((**row)["priority"] == "low");  // older remote loses to the local write
    auto journal = fx.db->conflicts();
    REQUIRE(journal->size() == 1);
    CHECK((*journal)[0]["source"] == "pull");
    CHECK((*journal)[0]["lost_value"] == "Local");
    CHECK((*journal)[0]["kept_value"] == "Remote");
}

TEST_CASE("401 token_expired refreshes once and retries", "[client][sync]") {
    Fixture fx;
    fx.login();
    const json expired{{"error", {{"code", "token_expired"}, {"message", "access token expired"}}}};

    SECTION("refresh succeeds") {
        fx.fake->reply(401, expired);
        fx.fake->reply(200, json{{"access_token", "a2"}, {"refresh_token", "r2"}, {"token_type", "Bearer"}});
        fx.fake->sync_ok();
        auto report = fx.db->sync();
        REQUIRE(report.ok());
        REQUIRE(fx.fake->requests.size() == 4);
        CHECK(fx.fake->requests[2].url == "https://moh.example/v1/auth/refresh");
        CHECK(fx.fake->requests[2].body["refresh_token"] == "r1");
        CHECK(fx.fake->requests[2].body["device_id"] == fx.db->node_id());
        CHECK(fx.fake->requests[3].header("Authorization") == "Bearer a2");
        CHECK(fx.meta("refresh_token") == "r2");
    }
    SECTION("refresh refused: log in again") {
        fx.fake->reply(401, expired);
        fx.fake->reply(401, json{{"error", {{"code", "unauthorized"}, {"message", "device revoked"}}}});
        CHECK(fx.db->sync().status().code() == ErrorCode::NotLoggedIn);
        CHECK(fx.fake->requests.size() == 3);
    }
    SECTION("still expired after refresh: no loop") {
        fx.fake->reply(401, expired);
        fx.fake->reply(200, json{{"access_token", "a2"}, {"refresh_token", "r2"}});
        fx.fake->reply(401, expired);
        CHECK(fx.db->sync().status().code() == ErrorCode::TokenExpired);
        CHECK(fx.fake->requests.size() == 4);
    }
    SECTION("invalid credentials at login") {
        fx.fake->reply(401, json{{"error", {{"code", "invalid_credentials"}, {"message", "wrong password"}}}});
        CHECK(fx.db->login("https://moh.example", "ana", "bad").code() == ErrorCode::InvalidCredentials);
    }
}

TEST_CASE("max_round_trips bounds one sync", "[client][sync]") {
    Fixture fx;
    fx.login();
    ubuzima::SyncOptions options;
    options.transport = fx.fake;
    options.max_round_trips = 2;
    options.batch_size = 1;
    fx.db->set_sync_options(options);
    for (int i = 0; i < 3; ++i) REQUIRE(fx.db->insert("need", need_fields()).ok());
    fx.fake->sync_ok();
    fx.fake->sync_ok();
    auto report = fx.db->sync();
    REQUIRE(report.ok());
    CHECK(report->round_trips == 2);
    CHECK(report->pushed == 2);
    CHECK(*fx.db->pending_changes() == 1);
}
