// Ubuzima Sync — MIT licence.
// sync()'s retry policy against a scripted transport: which failures retry, backoff growth, jitter, cap.
#include <catch2/catch.hpp>

#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>

#include "ubuzima/database.hpp"

using nlohmann::json;
using namespace ubuzima;

namespace {

/// Answers each POST with the next scripted result; an empty script fails with Network.
class ScriptedTransport : public HttpTransport {
public:
    std::deque<std::function<Result<HttpResponse>(const json&)>> script;
    std::vector<json> requests;

    Result<HttpResponse> post(const std::string&, const std::string& body, const HttpHeaders&) override {
        requests.push_back(json::parse(body));
        if (script.empty()) return Status(ErrorCode::Network, "scripted: link down");
        auto next = std::move(script.front());
        script.pop_front();
        return next(requests.back());
    }
    void fail(ErrorCode code, int times = 1) {
        for (int i = 0; i < times; ++i)
            script.push_back([code](const json&) -> Result<HttpResponse> { return Status(code, "scripted failure"); });
    }
    void reply(int status, const std::string& code, std::int64_t retry_after_ms = -1) {
        script.push_back([=](const json&) -> Result<HttpResponse> {
            HttpResponse r{status, json{{"error", {{"code", code}, {"message", "scripted"}}}}.dump()};
            r.retry_after_ms = retry_after_ms;
            return r;
        });
    }
    /// A 200 sync answer that accepts the whole batch.
    void ok(const std::string& cursor = "c1", bool more = false) {
        script.push_back([=](const json& req) -> Result<HttpResponse> {
            json resp{{"protocol", 1}, {"server_clock", "0000000000000000"}, {"changes", json::array()},
                      {"cursor", cursor}, {"more", more}, {"push", nullptr}};
            if (req.contains("batch"))
                resp["push"] = json{{"batch", req["batch"]["id"]}, {"applied", req["batch"]["changes"].size()},
                                    {"conflicts", json::array()}, {"rejected", json::array()}};
            return HttpResponse{200, resp.dump()};
        });
    }
};

struct Device {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("ubuzima_retry_" + std::to_string(std::random_device{}()) + ".db");
    std::shared_ptr<ScriptedTransport> net = std::make_shared<ScriptedTransport>();
    std::vector<std::int64_t> sleeps;
    std::optional<Database> db;

    explicit Device(RetryPolicy policy) {
        DatabaseOptions options;
        options.path = path.string();
        options.durability = Durability::Normal;
        options.sync.transport = net;
        options.sync.retry = std::move(policy);
        options.sync.retry.sleep = [this](std::int64_t ms) { sleeps.push_back(ms); };
        auto opened = Database::open(options);
        REQUIRE(opened.ok());
        db.emplace(std::move(*opened));
        net->script.push_back([](const json&) -> Result<HttpResponse> {
            return HttpResponse{200, R"({"access_token":"a","refresh_token":"r"})"};
        });
        REQUIRE(db->login("https://moh.example", "ana", "pw").ok());
        net->requests.clear();
    }
    ~Device() {
        db.reset();
        std::error_code ec;
        for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + s, ec);
    }
    void write() {
        REQUIRE(db->insert("need", json{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"specialty_code", "anaesthesiology"}, {"description", "x"},
                                        {"title", "t"}, {"priority", "high"}, {"status", "identified"}})
                    .ok());
    }
};

RetryPolicy policy(int attempts, std::int64_t initial, std::int64_t cap, double jitter) {
    RetryPolicy p;
    p.max_attempts = attempts;
    p.initial_backoff_ms = initial;
    p.max_backoff_ms = cap;
    p.jitter = jitter;
    return p;
}

}  // namespace

TEST_CASE("Without jitter the waits double from the initial backoff up to the cap", "[retry]") {
    Device d(policy(8, 100, 1000, 0.0));
    auto r = d.db->sync();
    CHECK(r.status().code() == ErrorCode::Network);
    CHECK(d.net->requests.size() == 8);  // attempts, the first included
    CHECK(d.sleeps == std::vector<std::int64_t>{100, 200, 400, 800, 1000, 1000, 1000});
}

TEST_CASE("Jittered waits stay within [base*(1-jitter), base] and spread over that range", "[retry]") {
    const std::vector<std::int64_t> base = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    std::vector<std::int64_t> lowest(base.size(), 1 << 30), highest(base.size(), 0);
    Device d(RetryPolicy{});  // the defaults: 500 ms doubling, 30 s cap, jitter 0.5
    d.db->set_sync_options([&] {
        SyncOptions o;
        o.transport = d.net;
        o.retry.max_attempts = 10;
        o.retry.sleep = [&](std::int64_t ms) { d.sleeps.push_back(ms); };
        return o;
    }());
    for (int run = 0; run < 100; ++run) {
        d.sleeps.clear();
        CHECK(d.db->sync().status().code() == ErrorCode::Network);
        REQUIRE(d.sleeps.size() == base.size());
        for (std::size_t i = 0; i < base.size(); ++i) {
            INFO("retry " << i + 1 << " waited " << d.sleeps[i]);
            CHECK(d.sleeps[i] >= base[i] / 2);
            CHECK(d.sleeps[i] <= base[i]);
            lowest[i] = std::min(lowest[i], d.sleeps[i]);
            highest[i] = std::max(highest[i], d.sleeps[i]);
        }
    }
    // 100 uniform draws per step: both ends of the range are reached (failure odds ~1e-12).
    for (std::size_t i = 0; i < base.size(); ++i) {
        CHECK(lowest[i] < base[i] * 6 / 10);
        CHECK(highest[i] > base[i] * 9 / 10);
    }
    CHECK(d.net->requests.size() == 1000);
}

TEST_CASE("Transient failures retry and the sync then completes, resuming the same batch", "[retry]") {
    Device d(policy(5, 100, 1000, 0.5));
    d.write();
    d.net->fail(ErrorCode::Timeout);
    d.net->reply(503, "unavailable");
    d.net->reply(502, "bad_gateway");
    d.net->ok("c1");
    auto r = d.db->sync();
    REQUIRE(r.ok());
    CHECK(r->retries == 3);
    CHECK(r->pushed == 1);
    CHECK(d.sleeps.size() == 3);
    REQUIRE(d.net->requests.size() == 4);
    const json first_batch = d.net->requests[0]["batch"]["id"];
    for (const json& req : d.net->requests) CHECK(req["batch"]["id"] == first_batch);  // resent, not re-cut
    CHECK(*d.db->pending_changes() == 0);
}

TEST_CASE("A failure on a later page resumes from the last applied cursor", "[retry]") {
    Device d(policy(3, 10, 100, 0.0));
    d.net->ok("page1", true);
    d.net->fail(ErrorCode::Network);
    d.net->ok("page2", false);
    auto r = d.db->sync();
    REQUIRE(r.ok());
    CHECK(r->round_trips == 2);
    CHECK(r->retries == 1);
    REQUIRE(d.net->requests.size() == 3);
    CHECK(d.net->requests[0]["cursor"].is_null());
    CHECK(d.net->requests[1]["cursor"] == "page1");
    CHECK(d.net->requests[2]["cursor"] == "page1");  // the lost answer's cursor was never stored
}

TEST_CASE("Non-transient failures return at once", "[retry]") {
    const std::vector<std::pair<int, std::string>> permanent = {
        {400, "bad_request"}, {403, "forbidden"}, {401, "unauthorized"}, {413, "too_large"}, {422, "invalid_value"},
        // A server bug answers the same way again: retrying only delays the error (and what
        // triggers it) reaching the app.
        {500, "internal"}};
    for (const auto& [status, code] : permanent) {
        Device d(policy(5, 100, 1000, 0.5));
        d.net->reply(status, code);
        auto r = d.db->sync();
        INFO(status);
        CHECK_FALSE(r.ok());
        CHECK(d.net->requests.size() == 1);
        CHECK(d.sleeps.empty());
    }
}

TEST_CASE("Every 5xx but 500 internal is transient, even 507 disk_full whose code is not", "[retry]") {
    Device d(policy(3, 100, 1000, 0.0));
    d.net->reply(507, "disk_full");
    d.net->reply(507, "disk_full");
    d.net->reply(507, "disk_full");
    auto r = d.db->sync();
    CHECK(r.status().code() == ErrorCode::DiskFull);  // the last attempt's error
    CHECK(d.net->requests.size() == 3);
    CHECK(d.sleeps == std::vector<std::int64_t>{100, 200});
}

TEST_CASE("Retry-After raises the wait, within the cap", "[retry]") {
    Device d(policy(4, 100, 5000, 0.0));
    d.net->reply(429, "rate_limited", 3000);
    d.net->reply(503, "unavailable", 60000);  // longer than the cap: capped
    d.net->reply(503, "unavailable", 10);     // shorter than the backoff: the backoff wins
    d.net->ok();
    REQUIRE(d.db->sync().ok());
    CHECK(d.sleeps == std::vector<std::int64_t>{3000, 5000, 400});
}

TEST_CASE("max_attempts 1 disables retrying; odd policies are clamped", "[retry]") {
    Device d(policy(1, 100, 1000, 0.5));
    CHECK(d.db->sync().status().code() == ErrorCode::Network);
    CHECK(d.net->requests.size() == 1);
    CHECK(d.sleeps.empty());

    Device odd(policy(0, -5, -1, 7.0));  // attempts < 1 → 1; negative delays → 0
    CHECK(odd.db->sync().status().code() == ErrorCode::Network);
    CHECK(odd.net->requests.size() == 1);

    Device zero(policy(3, 0, 0, 2.0));
    CHECK(zero.db->sync().status().code() == ErrorCode::Network);
    CHECK(zero.sleeps == std::vector<std::int64_t>{0, 0});
}
