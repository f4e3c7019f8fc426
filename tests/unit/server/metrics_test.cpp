// Ubuzima Sync — MIT licence.
// The metrics registry and its Prometheus text, and the counters the API keeps: requests by
// route and status, sync rows, auth failures; /metrics access; liveness and readiness; the
// access log's lines.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include "cli/server_args.hpp"
#include "ops/access_log.hpp"
#include "ops/metrics.hpp"
#include "server_test_support.hpp"

using namespace ubuzima::server;
using namespace ubuzima::server::test;

namespace {

constexpr std::uint64_t kNode = 0xa1a1a1a1a1a1a1a1ull;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

std::size_t count_lines(const std::string& text, const std::string& line) {
    std::size_t n = 0;
    for (const std::string& l : lines_of(text)) n += l == line;
    return n;
}

/// The value of the sample written exactly as `series` (name plus labels), or -1 when absent.
double sample(const std::string& text, const std::string& series) {
    for (const std::string& l : lines_of(text))
        if (l.size() > series.size() && l.compare(0, series.size(), series) == 0 && l[series.size()] == ' ')
            return std::stod(l.substr(series.size() + 1));
    return -1;
}

std::string scrape(TestServer& s, const std::string& admin) {
    Reply r = s.call("GET", "/metrics", "", admin);
    REQUIRE(r.status == 200);
    std::string text = r.raw.body;
    if (r.raw.headers.count("Content-Encoding")) text = gzip_decompress(text, 1u << 30).value();
    return text;
}

http::Request get(const std::string& path) {
    http::Request r;
    r.method = "GET";
    r.raw_path = path;
    return r;
}

}  // namespace

TEST_CASE("exposition: HELP and TYPE once per family, counters, escaping", "[metrics]") {
    ops::Metrics m;
    auto& c = m.counter("test_events_total", "Events with a \\ backslash\nand a newline.", {"kind"});
    c.with({"a\\b"}).inc(2);
    c.with({"say \"hi\""}).inc();
    c.with({"two\nlines"}).inc(3);
    m.gauge("test_level", "A level.").get().set(-1.5);
    const std::string text = m.serialize();
    INFO(text);

    CHECK(count_lines(text, "# HELP test_events_total Events with a \\\\ backslash\\nand a newline.") == 1);
    CHECK(count_lines(text, "# TYPE test_events_total counter") == 1);
    CHECK(count_lines(text, "test_events_total{kind=\"a\\\\b\"} 2") == 1);
    CHECK(count_lines(text, "test_events_total{kind=\"say \\\"hi\\\"\"} 1") == 1);
    CHECK(count_lines(text, "test_events_total{kind=\"two\\nlines\"} 3") == 1);
    CHECK(count_lines(text, "# TYPE test_level gauge") == 1);
    CHECK(count_lines(text, "test_level -1.5") == 1);
    // HELP and TYPE come before the family's samples, and the text ends with a newline.
    CHECK(text.find("# TYPE test_events_total counter") < text.find("test_events_total{"));
    CHECK(text.back() == '\n');
    // The same family asked for again is the same family: still one HELP.
    m.counter("test_events_total", "Events with a \\ backslash\nand a newline.", {"kind"}).with({"a\\b"}).inc();
    CHECK(count_lines(m.serialize(), "# TYPE test_events_total counter") == 1);
    CHECK(count_lines(m.serialize(), "test_events_total{kind=\"a\\\\b\"} 3") == 1);

    CHECK_THROWS_AS(m.counter("test_events", "no _total"), std::invalid_argument);
    CHECK_THROWS_AS(m.gauge("test_events_total", "same name, other type"), std::invalid_argument);
    CHECK_THROWS_AS(m.gauge("bad-name", "dash"), std::invalid_argument);
    CHECK_THROWS_AS(c.with({"one", "too many"}), std::invalid_argument);
    CHECK(ops::format_value(0.005) == "0.005");
    CHECK(ops::format_value(1.0 / 0.0) == "+Inf");
}

TEST_CASE("exposition: histogram buckets are cumulative and end in +Inf, then _sum and _count", "[metrics]") {
    ops::Metrics m;
    auto& h = m.histogram("test_wait_seconds", "Waits.", {"route"}, {0.1, 1});
    auto& series = h.with({"/v1/sync"});
    for (double v : {0.05, 0.1, 0.5, 5.0}) series.observe(v);  // 0.1 lands in le="0.1": bounds are inclusive
    const std::string text = m.serialize();
    INFO(text);
    const std::vector<std::string> want = {
        "# HELP test_wait_seconds Waits.",
        "# TYPE test_wait_seconds histogram",
        "test_wait_seconds_bucket{route=\"/v1/sync\",le=\"0.1\"} 2",
        "test_wait_seconds_bucket{route=\"/v1/sync\",le=\"1\"} 3",
        "test_wait_seconds_bucket{route=\"/v1/sync\",le=\"+Inf\"} 4",
        "test_wait_seconds_sum{route=\"/v1/sync\"} 5.65",
        "test_wait_seconds_count{route=\"/v1/sync\"} 4",
    };
    CHECK(lines_of(text) == want);
    CHECK_THROWS_AS(m.histogram("test_bad_seconds", "unsorted", {}, {1, 0.5}), std::invalid_argument);
}

TEST_CASE("scrape-time gauges: a callback runs at each scrape, a throwing one drops only its sample", "[metrics]") {
    ops::Metrics m;
    int calls = 0;
    CHECK(m.add_gauge_callback("test_pool_connections", "Open connections.", [&] { return static_cast<double>(++calls); },
                               {{"pool", "main"}}));
    CHECK_FALSE(m.add_gauge_callback("test_pool_connections", "again", [] { return 0.0; }));
    CHECK(m.add_gauge_callback("test_broken", "Fails.", []() -> double { throw std::runtime_error("db down"); }));
    std::string text = m.serialize();
    CHECK(count_lines(text, "test_pool_connections{pool=\"main\"} 1") == 1);
    CHECK(count_lines(text, "# TYPE test_broken gauge") == 1);
    CHECK(sample(text, "test_broken") == -1);
    CHECK(count_lines(m.serialize(), "test_pool_connections{pool=\"main\"} 2") == 1);
}

TEST_CASE("concurrent increments from several threads add up exactly", "[metrics]") {
    ops::Metrics m;
    auto& requests = m.counter("test_requests_total", "Requests.", {"route"});
    auto& hist = m.histogram("test_latency_seconds", "Latency.", {"route"}, {0.5});
    constexpr int kThreads = 4, kEach = 50000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                // Series looked up on every call, as the API does, and created concurrently.
                requests.with({i % 2 ? "/odd" : "/even"}).inc();
                hist.with({"/r"}).observe(t % 2 ? 0.25 : 1.0);
            }
        });
    for (auto& t : threads) t.join();
    const std::string text = m.serialize();
    CHECK(sample(text, "test_requests_total{route=\"/odd\"}") == kThreads * kEach / 2);
    CHECK(sample(text, "test_requests_total{route=\"/even\"}") == kThreads * kEach / 2);
    CHECK(sample(text, "test_latency_seconds_count{route=\"/r\"}") == kThreads * kEach);
    CHECK(sample(text, "test_latency_seconds_bucket{route=\"/r\",le=\"0.5\"}") == kThreads / 2 * kEach);
    CHECK(sample(text, "test_latency_seconds_sum{route=\"/r\"}") == Approx(kThreads / 2 * kEach * 1.25));
}

TEST_CASE("the API counts requests by route pattern and status, sync rows and auth failures", "[metrics][server]") {
    TestServer s;
    const std::string admin = s.admin_token();
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string alice_node = s.token_for_node(alice, kNode);  // log in as the pushing device first
    const std::string before = scrape(s, admin);
    const auto delta = [&](const std::string& after, const std::string& series) {
        return std::max(0.0, sample(after, series)) - std::max(0.0, sample(before, series));
    };

    CHECK(s.login_reply("alice", "wrong-password").status == 401);
    CHECK(s.login_reply("nobody", "whatever").status == 401);
    CHECK(s.login_reply("alice", TestServer::password_of("alice")).status == 200);
    Reply pushed = s.sync(alice_node, kNode,
                          json::array({change("need", "n1", s.version(kNode), need_fields("fac-kabgayi")),
                                       change("need", "n2", s.version(kNode), need_fields("fac-kabgayi", "Second")),
                                       change("need", "n3", s.version(kNode), need_fields("fac-other"))}));
    REQUIRE(pushed.status == 200);
    REQUIRE(pushed.body["push"]["applied"] == 2);
    REQUIRE(pushed.body["push"]["rejected"].size() == 1);  // another facility's row
    CHECK(s.call("GET", "/v1/admin/users/alice", "", admin).status == 405);
    CHECK(s.call("PATCH", "/v1/admin/users/alice", R"({"role":"assessor"})", admin).status == 200);
    CHECK(s.call("GET", "/v1/no/such/path?token=secret").status == 404);
    CHECK(s.call("GET", "/v1/admin/users", "", "not-a-token").status == 401);

    const std::string after = scrape(s, admin);
    INFO(after);
    CHECK(delta(after, R"(ubuzima_http_requests_total{method="POST",route="/v1/auth/login",status="401"})") == 2);
    CHECK(delta(after, R"(ubuzima_http_requests_total{method="POST",route="/v1/auth/login",status="200"})") == 1);
    CHECK(delta(after, R"(ubuzima_http_requests_total{method="POST",route="/v1/sync",status="200"})") == 1);
    // The pattern, never the user name in the path.
    CHECK(delta(after, R"(ubuzima_http_requests_total{method="PATCH",route="/v1/admin/users/{username}",status="200"})") == 1);
    CHECK(after.find("users/alice") == std::string::npos);
    CHECK(delta(after, R"(ubuzima_http_requests_total{method="GET",route="unmatched",status="405"})") == 1);
    CHECK(delta(after, R"(ubuzima_http_requests_total{method="GET",route="unmatched",status="404"})") == 1);
    CHECK(after.find("no/such") == std::string::npos);
    CHECK(delta(after, R"(ubuzima_http_request_duration_seconds_count{method="POST",route="/v1/sync"})") == 1);
    CHECK(delta(after, R"(ubuzima_http_request_duration_seconds_bucket{method="POST",route="/v1/sync",le="+Inf"})") == 1);
    CHECK(delta(after, "ubuzima_sync_rows_pushed_total") == 2);
    CHECK(delta(after, "ubuzima_sync_rejected_changes_total") == 1);
    CHECK(delta(after, R"(ubuzima_auth_failures_total{step="login",reason="invalid_credentials"})") == 2);
    CHECK(delta(after, R"(ubuzima_auth_failures_total{step="bearer",reason="unauthorized"})") == 1);
    // The scrape before this one is counted too, under its own route.
    CHECK(delta(after, R"(ubuzima_http_requests_total{method="GET",route="/metrics",status="200"})") == 1);
    CHECK(sample(after, "ubuzima_devices_active") >= 2);  // admin's and alice's devices
    CHECK(count_lines(after, "# TYPE ubuzima_build_info gauge") == 1);
    CHECK(after.find("ubuzima_build_info{") != std::string::npos);
    CHECK(sample(after, "ubuzima_process_start_time_seconds") > 1.7e9);
    // The feed moved by the two rows written; the store says what it is and how it queues writers.
    CHECK(delta(after, "ubuzima_feed_head_seq") >= 2);
    const std::string backend = on_postgres() ? "postgresql" : "sqlite";
    CHECK(sample(after, "ubuzima_db_pool_size{backend=\"" + backend + "\"}") >= 1);
    CHECK(sample(after, "ubuzima_db_pool_in_use{backend=\"" + backend + "\"}") >= 0);  // present (-1: absent)
    CHECK(delta(after, "ubuzima_db_write_transactions{backend=\"" + backend + "\"}") >= 4);  // logins, push, patch
    CHECK(sample(after, "ubuzima_db_writer_wait_seconds{backend=\"" + backend + "\"}") >= 0);

    // A pull: what is sent counts as pulled rows.
    const std::string coord = s.user_token("cora", "coordinator", {});
    json cursor = nullptr;
    const json pulled = s.pull_all(coord, 0xc3c3c3c3c3c3c3c3ull, cursor);
    CHECK(sample(scrape(s, admin), "ubuzima_sync_rows_pulled_total") - sample(after, "ubuzima_sync_rows_pulled_total") ==
          static_cast<double>(pulled.size()));
}

TEST_CASE("/metrics is for admins on the main listener, open on the metrics listener", "[metrics][server]") {
    TestServer s;
    const std::string coord = s.user_token("cora", "coordinator", {});
    const Reply anonymous = s.call("GET", "/metrics");
    CHECK(anonymous.status == 401);
    CHECK(s.call("GET", "/metrics", "", coord).status == 403);
    const Reply admin = s.call("GET", "/metrics", "", s.admin_token());
    CHECK(admin.status == 200);
    CHECK(admin.raw.headers.at("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");

    const std::string text = scrape(s, s.admin_token());
    CHECK(sample(text, R"(ubuzima_auth_failures_total{step="role",reason="forbidden"})") == 1);
    CHECK(sample(text, R"(ubuzima_auth_failures_total{step="bearer",reason="unauthorized"})") == 1);

    // The internal listener's surface: /metrics without a token, health, and nothing else.
    const http::Response open = s.api->handle_ops(get("/metrics"));
    CHECK(open.status == 200);
    CHECK(open.headers.at("Content-Type") == ops::Metrics::kContentType);
    CHECK(open.body.find("# TYPE ubuzima_http_requests_total counter") != std::string::npos);
    CHECK(s.api->handle_ops(get("/v1/health/live")).status == 200);
    CHECK(s.api->handle_ops(get("/v1/health/ready")).status == 200);
    CHECK(s.api->handle_ops(get("/v1/health")).status == 200);
    CHECK(s.api->handle_ops(get("/v1/admin/users")).status == 404);
    CHECK(s.api->handle_ops(get("/v1/conflicts")).status == 404);
    CHECK(s.api->handle_ops(get("/v1/sync")).status == 404);  // a POST route: not even 405 there
}

TEST_CASE("health: live needs nothing, ready needs a readable store", "[metrics][server]") {
    TestServer s;
    const Reply live = s.call("GET", "/v1/health/live");
    CHECK(live.status == 200);
    CHECK(live.raw.body.empty());
    const Reply ready = s.call("GET", "/v1/health/ready");
    CHECK(ready.status == 200);
    CHECK(ready.raw.body.empty());
    CHECK(s.call("GET", "/v1/health").body["status"] == "ok");  // unchanged

    // An insider breaks the database under the running server: ready says so, live does not.
    const ubuzima::Status dropped = s.exec_raw(on_postgres() ? "DROP TABLE srv_users CASCADE"
                                                    : "PRAGMA foreign_keys=OFF; DROP TABLE srv_users;");
    INFO(dropped.to_string());
    REQUIRE(dropped.ok());
    const Reply broken = s.call("GET", "/v1/health/ready");
    CHECK(broken.status == 503);
    CHECK(broken.raw.headers.count("Retry-After") == 1);
    CHECK(broken.body["error"]["code"] == "unavailable");
    CHECK(s.call("GET", "/v1/health/live").status == 200);
}

TEST_CASE("access log: one JSON line per request, route and status, no secrets", "[metrics][server]") {
    TestServer s;
    const std::string path = s.db_path() + ".access.log";
    auto log = ops::AccessLog::open(path);
    REQUIRE(log.ok());
    s.api->set_access_log(std::move(*log));
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string node_token = s.token_for_node(alice, kNode);
    REQUIRE(s.sync(node_token, kNode, json::array({change("need", "n1", s.version(kNode), need_fields("fac-kabgayi"))}))
                .status == 200);
    CHECK(s.call("GET", "/v1/conflicts?status=open", "", alice).status == 403);
    s.api->set_access_log(nullptr);  // closes the file

    std::ifstream in(path);
    std::stringstream all;
    all << in.rdbuf();
    const std::string text = all.str();
    CHECK(text.find(alice) == std::string::npos);
    CHECK(text.find(node_token) == std::string::npos);
    CHECK(text.find(TestServer::password_of("alice")) == std::string::npos);
    CHECK(text.find(TestServer::kAdminPassword) == std::string::npos);
    CHECK(text.find("Anaesthesia") == std::string::npos);  // no field values
    bool saw_sync = false, saw_forbidden = false;
    for (const std::string& line : lines_of(text)) {
        const json j = json::parse(line, nullptr, false);
        REQUIRE(j.is_object());
        CHECK(j["ts"].get<std::string>().size() == 24);  // 2026-12-01T16:30:48.123Z
        CHECK(j["ts"].get<std::string>().back() == 'Z');
        if (j["route"] == "/v1/sync") {
            saw_sync = true;
            CHECK(j["status"] == 200);
            CHECK(j["rows_in"] == 1);
            CHECK(j["rows_out"].is_number());
            CHECK(j["user"].is_string());
            CHECK(j["device"] == ubuzima::sync::to_hex16(kNode));
            CHECK(j["bytes_in"].get<std::int64_t>() > 0);
            CHECK(j["bytes_out"].get<std::int64_t>() > 0);
            CHECK(j["duration_ms"].get<double>() >= 0);
        }
        if (j["route"] == "/v1/conflicts") {
            saw_forbidden = true;
            CHECK(j["status"] == 403);
            CHECK(j["rows_in"].is_null());
        }
    }
    CHECK(saw_sync);
    CHECK(saw_forbidden);
    CHECK(text.find("status=open") == std::string::npos);  // no query strings
}

TEST_CASE("access log: escaping and the time format", "[metrics]") {
    ops::AccessRecord r;
    r.ts_ms = 1764606648123;  // 2025-12-01T16:30:48.123Z
    r.method = "GET";
    r.route = "unmatched";
    r.status = 404;
    r.device = std::string("dev \"quoted\" \\ \n\xff");
    const std::string line = ops::access_line(r);
    CHECK(line.find('\n') == std::string::npos);
    const json j = json::parse(line, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["ts"] == "2025-12-01T16:30:48.123Z");
    CHECK(j["device"].get<std::string>().rfind("dev \"quoted\" \\ \n", 0) == 0);
    CHECK(j["user"].is_null());
    CHECK(j["address"].is_null());
    CHECK(j["bytes_out"].is_null());
}

TEST_CASE("--metrics-listen and --access-log on the command line", "[metrics]") {
    const auto parse = [](std::vector<std::string> extra, ServerOptions& o) {
        std::vector<std::string> args = {"--data", "/tmp/x", "--listen", "127.0.0.1:8080"};
        args.insert(args.end(), extra.begin(), extra.end());
        bool help = false;
        return parse_serve_args(args, o, help);
    };
    std::vector<std::string> warnings;
    ServerOptions defaults;
    REQUIRE(parse({}, defaults).ok());
    CHECK(defaults.metrics_host.empty());  // no metrics listener unless asked
    CHECK(defaults.access_log == "-");

    ServerOptions local;
    REQUIRE(parse({"--metrics-listen", ":9464", "--access-log", "off"}, local).ok());
    CHECK(local.metrics_host == "127.0.0.1");
    CHECK(local.metrics_port == 9464);
    CHECK(local.access_log == "off");
    REQUIRE(check_serve_options(local, warnings).ok());
    CHECK(warnings.empty());

    ServerOptions internal;
    REQUIRE(parse({"--metrics-listen", "10.0.5.12:9464"}, internal).ok());
    REQUIRE(check_serve_options(internal, warnings).ok());
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("internal") != std::string::npos);

    for (const char* wildcard : {"0.0.0.0:9464", "[::]:9464"}) {
        ServerOptions open;
        REQUIRE(parse({"--metrics-listen", wildcard}, open).ok());
        CHECK_FALSE(check_serve_options(open, warnings).ok());
    }
    ServerOptions bad;
    CHECK_FALSE(parse({"--metrics-listen", "9464"}, bad).ok());
}
