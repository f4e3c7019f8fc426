// Ubuzima Sync — MIT licence.
// Integration: a real server with --metrics-listen and --access-log. A device syncs; the scrape
// parses with the Prometheus project's own parser (python3-prometheus-client) and counts what the
// device pushed; the access log is JSON without secrets; liveness and readiness answer.
#include "integration/fixture.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {

// The Debian package's interpreter: `python3` on PATH may be a pyenv shim without the module.
constexpr const char* kPython = "/usr/bin/python3";

// Parses the exposition text with prometheus_client and prints {"name{labels}": value} for every
// sample as JSON (or exits non-zero with the parser's complaint).
constexpr const char* kParser = R"PY(
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
    out["#type " + family.name] = family.type
print(json.dumps(out))
)PY";

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Runs the real parser over `text`; REQUIREs that it accepts it.
json parse_with_prometheus_client(const TempDir& dir, const std::string& text) {
    const std::string metrics = dir.file("scrape.txt"), script = dir.file("parse.py"), out = dir.file("parsed.json");
    std::ofstream(metrics) << text;
    std::ofstream(script) << kParser;
    const std::string cmd = std::string(kPython) + " " + script + " " + metrics + " > " + out + " 2>&1";
    const int rc = std::system(cmd.c_str());
    const std::string printed = read_file(out);
    INFO(printed);
    REQUIRE(rc == 0);
    json j = json::parse(printed, nullptr, false);
    REQUIRE(j.is_object());
    return j;
}

}  // namespace

TEST_CASE("operations: /metrics parses with prometheus_client and counts a real sync; JSON access log; health",
          "[integration][operations]") {
    TempDir dir;
    ServerProcess server(dir.file("server"));
    const std::string log_path = dir.file("access.log");
    server.set_extra_args({"--metrics-listen", "127.0.0.1:0", "--access-log", log_path});
    server.start();
    REQUIRE_FALSE(server.metrics_url().empty());
    CHECK(server.metrics_url().rfind("http://127.0.0.1:", 0) == 0);

    const std::string admin = login_token(server.url(), "admin", server.admin_password());
    create_user(server.url(), admin, "alice", kPassword, "assessor", {"fac-gisenyi"});

    // A real device: three rows captured offline, then one sync.
    DatabaseOptions options;
    options.path = dir.file("alice.db");
    options.durability = Durability::Normal;
    auto db = Database::open(options);
    REQUIRE(db.ok());
    REQUIRE(db->login(server.url(), "alice", kPassword).ok());
    for (const char* title : {"Anaesthesia training", "Theatre lamps", "Oxygen supply"})
        REQUIRE(db->insert("need", need_fields("fac-gisenyi", title)).ok());
    const SyncReport report = must_sync(*db);
    REQUIRE(report.pushed == 3);

    // Tokens of a second login, used once each, that must never reach the log.
    HttpResult login = http_request("POST", server.url() + "/v1/auth/login",
                                    json{{"username", "alice"}, {"password", kPassword}, {"device_id", "ops-probe"}}.dump());
    REQUIRE(login.status == 200);
    const std::string access = login.json()["access_token"], refresh = login.json()["refresh_token"];
    HttpResult refreshed = http_request("POST", server.url() + "/v1/auth/refresh",
                                        json{{"refresh_token", refresh}, {"device_id", "ops-probe"}}.dump());
    REQUIRE(refreshed.status == 200);
    const std::string access2 = refreshed.json()["access_token"], refresh2 = refreshed.json()["refresh_token"];
    CHECK(http_request("GET", server.url() + "/v1/conflicts?status=open", "", access2).status == 403);
    CHECK(http_request("GET", server.url() + "/metrics", "", access2).status == 403);

    // Health on both listeners.
    const std::string metrics_base = server.metrics_url().substr(0, server.metrics_url().rfind("/metrics"));
    CHECK(http_request("GET", server.url() + "/v1/health/live").status == 200);
    CHECK(http_request("GET", server.url() + "/v1/health/ready").status == 200);
    CHECK(http_request("GET", metrics_base + "/v1/health/live").status == 200);
    CHECK(http_request("GET", metrics_base + "/v1/health/ready").status == 200);
    CHECK(http_request("GET", metrics_base + "/v1/admin/users", "", admin).status == 404);  // nothing else there

    // The scrape: unauthenticated on the metrics listener, and parsed by the real parser.
    HttpResult scrape = http_request("GET", server.metrics_url());
    REQUIRE(scrape.status == 200);
    const json samples = parse_with_prometheus_client(dir, scrape.body);
    INFO(scrape.body);
    // prometheus_client names a counter family without "_total"; its sample keeps it.
    CHECK(samples.value("#type ubuzima_sync_rows_pushed", "") == "counter");
    CHECK(samples.value("ubuzima_sync_rows_pushed_total", -1.0) == static_cast<double>(report.pushed));
    CHECK(samples.value("#type ubuzima_http_request_duration_seconds", "") == "histogram");
    CHECK(samples.value(R"(ubuzima_http_requests_total{method="POST",route="/v1/sync",status="200"})", 0.0) ==
          static_cast<double>(report.round_trips));
    CHECK(samples.value(R"(ubuzima_http_requests_total{method="GET",route="/metrics",status="403"})", 0.0) == 1);
    CHECK(samples.value(R"(ubuzima_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/sync"})",
                        0.0) == static_cast<double>(report.round_trips));
    CHECK(samples.value(R"(ubuzima_auth_failures_total{reason="forbidden",step="role"})", 0.0) == 2);
    CHECK(samples.value("ubuzima_devices_active", 0.0) >= 2);
    CHECK(samples.contains(R"(ubuzima_build_info{protocol="1",schema_version="1",version="0.2.0"})"));

    REQUIRE(server.stop() == 0);

    // The access log: one JSON object per line, patterns not paths, and no secret anywhere.
    const std::string text = read_file(log_path);
    REQUIRE_FALSE(text.empty());
    for (const std::string& secret : {access, refresh, access2, refresh2, admin, std::string(kPassword),
                                      server.admin_password(), std::string("Anaesthesia")}) {
        INFO(secret);
        CHECK(text.find(secret) == std::string::npos);
    }
    CHECK(text.find("status=open") == std::string::npos);
    std::istringstream lines(text);
    int syncs = 0, logins = 0, scrapes = 0;
    for (std::string line; std::getline(lines, line);) {
        INFO(line);
        const json j = json::parse(line, nullptr, false);
        REQUIRE(j.is_object());
        REQUIRE(j["route"].is_string());
        REQUIRE(j["status"].is_number_integer());
        if (j["route"] == "/v1/sync" && j["status"] == 200) {
            ++syncs;
            CHECK(j["user"].is_string());
            CHECK(j["device"].is_string());
            CHECK(j["rows_in"].is_number_integer());
            CHECK(j["address"] == "127.0.0.1");
        }
        if (j["route"] == "/v1/auth/login" && j["status"] == 200) ++logins;
        if (j["route"] == "/metrics") ++scrapes;
    }
    CHECK(syncs == report.round_trips);
    CHECK(logins == 3);  // admin, the device, the probe
    CHECK(scrapes == 2);  // the refused one and the scrape on the metrics listener
}

TEST_CASE("operations: --metrics-listen refuses every interface", "[integration][operations]") {
    TempDir dir;
    const ExitResult r =
        run_server_to_exit({"--data", dir.file("server"), "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:9090"});
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK(r.output.find("metrics-listen") != std::string::npos);
}
