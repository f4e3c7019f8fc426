// Ubuzima Sync — MIT licence.
// Integration: paging, long offline periods, server restarts and crashes, replays, wrong clocks.
#include <chrono>
#include <thread>

#include "integration/fixture.hpp"

#include "ubuzima/sync/protocol.hpp"

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {
json tally(int i) {
    return {{"deployment_id", "dep-bulk"},   {"facility_id", "fac-gisenyi"},
            {"service_date", "2026-11-21"},  {"service_type", "outpatient_consultation"},
            {"sex", i % 2 ? "female" : "male"}, {"age_band", "25_49"},
            {"patient_count", i % 40}};
}
constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;
}  // namespace

TEST_CASE_METHOD(ServerFixture, "10,000 rows pulled in pages leave the device equal to the server", "[integration][slow]") {
    Database a = device("fiona", "fiona");
    for (int i = 0; i < 10'000; ++i) REQUIRE(a.insert("service_tally", tally(i)).ok());
    SyncReport ra = must_sync(a);
    CHECK(ra.pushed == 10'000);
    CHECK(ra.round_trips >= 20);  // 500 changes per batch

    DatabaseOptions small_pages;
    small_pages.sync.page_limit = 700;
    Database b = device("bob", "bob", small_pages);
    SyncReport rb = must_sync(b);
    CHECK(rb.round_trips >= 15);  // 10,000 rows + reference data in pages of 700
    CHECK(b.query("service_tally").value().size() == 10'000);
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(b, "fac-gisenyi"));
    SyncReport again = must_sync(b);  // nothing left: one round trip, nothing pulled
    CHECK(again.round_trips == 1);
    CHECK(again.pulled == 0);
}

TEST_CASE_METHOD(ServerFixture, "A progress callback sees every round trip and can stop between two", "[integration]") {
    Database a = device("fiona", "fiona");
    for (int i = 0; i < 300; ++i) REQUIRE(a.insert("service_tally", tally(i)).ok());
    SyncOptions small;
    small.batch_size = 100;
    small.page_limit = 50;
    a.set_sync_options(small);
    std::vector<std::int64_t> pending_seen;
    SyncReport ra = *a.sync([&](const SyncReport& so_far, std::int64_t pending, bool) {
        CHECK(so_far.round_trips == static_cast<std::int64_t>(pending_seen.size()) + 1);
        pending_seen.push_back(pending);
        return true;
    });
    CHECK(ra.pushed == 300);
    REQUIRE(pending_seen.size() == static_cast<std::size_t>(ra.round_trips));
    CHECK(pending_seen[0] == 200);  // 100 pushed per round trip
    CHECK(pending_seen[1] == 100);
    CHECK(pending_seen.back() == 0);

    // Bob's phone goes to the background after two pages: stop, keep what arrived, resume later.
    Database b = device("bob", "bob", [] {
        DatabaseOptions o;
        o.sync.page_limit = 50;
        return o;
    }());
    int calls = 0;
    auto stopped = b.sync([&](const SyncReport&, std::int64_t, bool more) {
        CHECK(more);
        return ++calls < 2;
    });
    REQUIRE_FALSE(stopped.ok());
    CHECK(stopped.status().code() == ErrorCode::Cancelled);
    CHECK(calls == 2);
    const std::size_t kept = b.query("service_tally").value().size() + b.query("facility").value().size() +
                             b.query("specialty").value().size() + b.query("admin_area").value().size();
    CHECK(kept > 0);
    CHECK(kept <= 100);  // two pages of 50 rows
    SyncReport rest = must_sync(b);
    CHECK(b.query("service_tally").value().size() == 300);
    CHECK(rest.pulled + 100 >= 300);
    // Stopping on the last round trip stops nothing.
    CHECK(b.sync([](const SyncReport&, std::int64_t, bool) { return false; }).ok());
}

TEST_CASE_METHOD(ServerFixture, "A device offline for weeks catches up in one sync", "[integration]") {
    std::int64_t now = sync::system_wall_ms();
    DatabaseOptions slow_clock;
    slow_clock.wall_clock = [&now] { return now; };
    Database a = device("fiona", "fiona", slow_clock);
    Database b = device("felix", "felix");
    auto need = b.insert("need", need_fields("fac-gisenyi", "Physiotherapy training"));
    REQUIRE(need.ok());
    must_sync(b);
    must_sync(a);

    // Three weeks: A works offline every day, B keeps syncing a stream of edits.
    for (int day = 0; day < 21; ++day) {
        now += kDayMs;
        REQUIRE(a.insert("service_tally", tally(day)).ok());
        REQUIRE(b.update("need", *need, {{"trainees_expected", day + 1}}).ok());
        REQUIRE(b.insert("trainee", {{"facility_id", "fac-gisenyi"}, {"given_name", "T" + std::to_string(day)},
                                     {"family_name", "Example"}, {"cadre", "nurse"},
                                     {"pseudonym_code", "GIS-" + std::to_string(100 + day)}})
                    .ok());
        must_sync(b);
    }
    SyncReport ra = must_sync(a);
    CHECK(ra.pushed == 21);
    must_sync(b);
    CHECK(a.get("need", *need).value()->at("trainees_expected") == 21);
    CHECK(a.query("trainee").value().size() == 21);
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(b, "fac-gisenyi"));
}

TEST_CASE_METHOD(ServerFixture, "The server restarts or crashes between syncs and nothing is lost", "[integration]") {
    Database a = device("fiona", "fiona");
    Database b = device("bob", "bob");
    for (int i = 0; i < 50; ++i) REQUIRE(a.insert("service_tally", tally(i)).ok());
    must_sync(a);

    CHECK(server.stop() == 0);  // clean SIGTERM shutdown
    for (int i = 50; i < 80; ++i) REQUIRE(a.insert("service_tally", tally(i)).ok());
    SyncOptions no_retry;  // fail at once instead of backing off (retries: tests/reliability)
    no_retry.retry.max_attempts = 1;
    a.set_sync_options(no_retry);
    auto offline = a.sync();  // the server is down: an error, nothing lost
    REQUIRE_FALSE(offline.ok());
    CHECK(offline.status().is_transient());
    CHECK(a.pending_changes().value() == 30);

    server.start();
    must_sync(a);
    server.kill_hard();  // a crash right after acknowledging
    server.start();
    must_sync(b);
    CHECK(b.query("service_tally").value().size() == 80);
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(b, "fac-gisenyi"));
}

TEST_CASE_METHOD(ServerFixture, "A replayed batch applies nothing twice", "[integration]") {
    sync::SyncRequest req;
    req.schema_version = schema::Schema::builtin().version();
    req.node = 0x1111222233334444ULL;
    const std::string tok = login_token(server.url(), "fiona", kPassword, sync::to_hex16(req.node));
    req.clock = sync::make_hlc(sync::system_wall_ms(), 0);
    sync::Change change;
    change.table = "service_tally";
    change.row_id = "0193a0c2-0000-7000-8000-00000000beef";
    change.version = sync::Version{req.clock, req.node};
    const json fields = tally(7);
    for (const auto& [k, v] : fields.items()) change.fields[k] = v;
    req.batch = sync::PushBatch{"batch-replayed-1", {change}};
    req.cursor = std::nullopt;
    const std::string body = sync::encode_sync_request(req);

    HttpResult first = http_request("POST", server.url() + "/v1/sync", body, tok);
    REQUIRE(first.status == 200);
    auto first_resp = sync::decode_sync_response(first.body);
    REQUIRE(first_resp.ok());
    CHECK(first_resp->push->applied == 1);

    // The same batch again, e.g. because the answer was lost: same result, nothing new in the feed.
    req.cursor = first_resp->cursor;
    HttpResult second = http_request("POST", server.url() + "/v1/sync", sync::encode_sync_request(req), tok);
    REQUIRE(second.status == 200);
    auto second_resp = sync::decode_sync_response(second.body);
    REQUIRE(second_resp.ok());
    CHECK(sync::push_result_to_json(*second_resp->push) == sync::push_result_to_json(*first_resp->push));
    CHECK(second_resp->changes.empty());
    CHECK(second_resp->cursor == first_resp->cursor);

    // The same change under a new batch id is a duplicate field by field: still nothing new.
    req.batch->id = "batch-replayed-2";
    HttpResult third = http_request("POST", server.url() + "/v1/sync", sync::encode_sync_request(req), tok);
    REQUIRE(third.status == 200);
    auto third_resp = sync::decode_sync_response(third.body);
    REQUIRE(third_resp.ok());
    CHECK(third_resp->push->conflicts.empty());
    CHECK(third_resp->cursor == first_resp->cursor);

    Database b = device("bob", "bob");
    must_sync(b);
    CHECK(b.query("service_tally").value().size() == 1);
}

TEST_CASE_METHOD(ServerFixture, "Devices with clocks at 1970 and 2040 still sync correctly", "[integration]") {
    const std::int64_t real = sync::system_wall_ms();
    const std::int64_t year = 365 * kDayMs;
    std::int64_t future_now = real + 14 * year;
    std::int64_t past_now = 0;
    DatabaseOptions future;
    future.wall_clock = [&future_now] { return future_now; };
    DatabaseOptions past;
    past.wall_clock = [&past_now] { return past_now; };
    Database f = device("future", "alice", future);
    Database p = device("past", "bob", past);

    auto need = f.insert("need", need_fields("fac-gisenyi", "Written in 2040"));
    REQUIRE(need.ok());
    SyncReport rf = must_sync(f);
    CHECK(rf.rejected == 0);  // re-stamped after the clock_skew answer, not lost
    CHECK(f.pending_changes().value() == 0);
    CHECK(f.rejected().value().empty());

    must_sync(p);
    REQUIRE(p.get("need", *need).value().has_value());
    // The 1970 device edits after learning the server time: its write is newer and wins.
    REQUIRE(p.update("need", *need, {{"priority", "critical"}}).ok());
    must_sync(p);
    must_sync(f);
    CHECK(f.get("need", *need).value()->at("priority") == "critical");

    // The 2040 device edits again: its corrected clock does not beat later real-time writes.
    REQUIRE(f.update("need", *need, {{"priority", "medium"}}).ok());
    must_sync(f);
    future_now += 60'000;  // a minute later on both devices
    past_now += 60'000;
    REQUIRE(p.update("need", *need, {{"priority", "low"}}).ok());
    must_sync(p);
    must_sync(f);
    CHECK(f.get("need", *need).value()->at("priority") == "low");
    CHECK(facility_state(f, "fac-gisenyi") == facility_state(p, "fac-gisenyi"));
}

TEST_CASE("Over its rate the device is told to wait, waits as told, and the sync completes", "[integration][rate]") {
    TempDir dir;
    ServerProcess server(dir.file("server"));
    server.set_extra_args({"--rate-per-device", "5"});  // 5 requests/s, bursts of 30
    server.start();
    const std::string admin = login_token(server.url(), "admin", server.admin_password());
    create_user(server.url(), admin, "fiona", kPassword, "focal_point", {"fac-gisenyi"});
    DatabaseOptions o;
    o.path = dir.file("fiona.db");
    o.durability = Durability::Normal;
    o.sync.batch_size = 10;  // 40 round trips for 400 rows: past the burst
    std::vector<std::int64_t> waits;
    o.sync.retry.max_attempts = 10;
    o.sync.retry.jitter = 0;
    o.sync.retry.sleep = [&waits](std::int64_t ms) {
        waits.push_back(ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    };
    auto db = Database::open(o);
    REQUIRE(db.ok());
    REQUIRE(db->login(server.url(), "fiona", kPassword).ok());
    for (int i = 0; i < 400; ++i) REQUIRE(db->insert("service_tally", tally(i)).ok());
    auto report = db->sync();
    INFO((report.ok() ? std::string() : report.status().to_string()));
    REQUIRE(report.ok());
    CHECK(report->pushed == 400);
    REQUIRE_FALSE(waits.empty());
    for (std::int64_t w : waits) CHECK(w >= 1000);  // Retry-After: 1, at least
    CHECK(server.stop() == 0);
}
