// Ubuzima Sync — MIT licence.
// Two server processes on one PostgreSQL database: tokens, revocation and the feed hold across
// them, and killing one with -9 again and again under pushing devices loses and duplicates
// nothing. Runs when UBUZIMA_TEST_PG and PGHOST are set (scripts/test-postgres.sh gives it a
// throw-away cluster); otherwise the binary exits 77, which ctest reports as skipped.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include "reliability/retrying_device.hpp"
#include "support/server_process.hpp"
#include "ubuzima/database.hpp"

using nlohmann::json;
using namespace ubuzima;
using namespace ubuzima::test;

namespace {

/// A fresh database on the cluster the PG* variables name, dropped at the end.
class ThrowawayDatabase {
public:
    ThrowawayDatabase() {
        std::random_device rd;
        m_name = "ubz_multi_" + std::to_string(rd() % 1000000000u);
        if (std::system(("createdb " + m_name).c_str()) != 0) throw std::runtime_error("createdb " + m_name + " failed");
    }
    ~ThrowawayDatabase() { (void)std::system(("dropdb --force " + m_name + " >/dev/null 2>&1").c_str()); }
    ThrowawayDatabase(const ThrowawayDatabase&) = delete;
    ThrowawayDatabase& operator=(const ThrowawayDatabase&) = delete;
    /// libpq takes host, port, user and password from the environment.
    std::string url() const { return "postgresql:///" + m_name; }

private:
    std::string m_name;
};

/// Runs `ubuzima-server args...` and returns its exit status.
int console(const std::vector<std::string>& args, std::string* output = nullptr) {
    ExitResult r = run_server_to_exit(args, 60'000);
    if (output) *output = r.output;
    return r.status;
}

struct Pair {
    std::string access;
    std::string refresh;
};

Pair login_pair(const std::string& url, const std::string& user, const std::string& password, const std::string& device) {
    HttpResult r = http_request("POST", url + "/v1/auth/login",
                                json{{"username", user}, {"password", password}, {"device_id", device}}.dump());
    REQUIRE(r.status == 200);
    return Pair{r.json()["access_token"].get<std::string>(), r.json()["refresh_token"].get<std::string>()};
}

Database open_device(const TempDir& dir, const std::string& name, const std::string& url, const std::string& user,
                     const std::string& password) {
    return open_retrying_device(dir.file(name + ".db"), url, user, password);
}

/// UBUZIMA_TEST_PG asks for the PostgreSQL tests; PGHOST says where the cluster is (pg_virtualenv
/// exports it). A plain ctest run has neither and skips.
bool postgres_available() { return std::getenv("UBUZIMA_TEST_PG") && std::getenv("PGHOST"); }

struct PostgresRequired {
    PostgresRequired() {
        if (postgres_available()) return;
        std::printf("SKIPPED: UBUZIMA_TEST_PG and PGHOST are not set (scripts/test-postgres.sh gives a cluster)\n");
        std::exit(77);
    }
};

/// Two server processes on one fresh database; the first starts first (it creates the admin).
struct TwoServers : PostgresRequired {
    TwoServers() {
        first.start();
        second.start();
        admin = login_token(second.url(), "admin", first.admin_password());
    }
    ThrowawayDatabase database;
    TempDir dir;
    ServerProcess first{database.url()}, second{database.url()};
    std::string admin;
    const std::string password = "field-work-2026";
};

}  // namespace

TEST_CASE_METHOD(TwoServers, "Two servers on one PostgreSQL database share logins, revocations and the feed",
                 "[multiserver]") {
    ServerProcess& a = first;
    ServerProcess& b = second;
    create_user(a.url(), admin, "alice", password, "assessor", {"fac-gisenyi"});

    // A token issued by one process is honoured by the other; a refresh rotated on one is spent on both.
    const Pair login = login_pair(a.url(), "alice", password, "tablet-1");
    CHECK(http_request("GET", b.url() + "/v1/conflicts", "", login.access).status == 403);  // known, but an assessor
    HttpResult rotated = http_request("POST", b.url() + "/v1/auth/refresh",
                                      json{{"refresh_token", login.refresh}, {"device_id", "tablet-1"}}.dump());
    REQUIRE(rotated.status == 200);
    const std::string second_refresh = rotated.json()["refresh_token"].get<std::string>();
    HttpResult rotated_again = http_request("POST", a.url() + "/v1/auth/refresh",
                                            json{{"refresh_token", second_refresh}, {"device_id", "tablet-1"}}.dump());
    REQUIRE(rotated_again.status == 200);

    // Written through one, pulled through the other.
    Database writer = open_device(dir, "writer", a.url(), "alice", password);
    auto id = writer.insert("need", json{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"},
                                          {"description", "x"}, {"title", "through a"}, {"priority", "high"},
                                          {"status", "identified"}});
    REQUIRE(id.ok());
    REQUIRE(writer.sync().ok());
    create_user(b.url(), admin, "bob", password, "assessor", {"fac-gisenyi"});
    Database reader = open_device(dir, "reader", b.url(), "bob", password);
    REQUIRE(reader.sync().ok());
    CHECK(reader.get("need", *id).value().has_value());

    // Revoked on one, dead on both.
    const std::string access = rotated_again.json()["access_token"].get<std::string>();
    REQUIRE(http_request("POST", b.url() + "/v1/admin/devices/tablet-1/revoke", "{}", admin).status == 200);
    CHECK(http_request("POST", a.url() + "/v1/sync", json{{"protocol", 1}}.dump(), access).status == 401);
    CHECK(http_request("POST", b.url() + "/v1/sync", json{{"protocol", 1}}.dump(), access).status == 401);
}

TEST_CASE_METHOD(TwoServers,
                 "Two servers on one PostgreSQL database, one killed 30 times under 20 devices, lose and duplicate nothing",
                 "[multiserver]") {
    ServerProcess& victim = first;
    ServerProcess& steady = second;
    create_user(steady.url(), admin, "alice", password, "assessor", {"fac-gisenyi"});
    create_user(steady.url(), admin, "coord", password, "coordinator", {});

    constexpr int kDevices = 20;
    constexpr int kKills = 30;
    constexpr int kMaxRowsPerDevice = 150;
    std::vector<Database> devices;
    for (int d = 0; d < kDevices; ++d)
        devices.push_back(open_device(dir, "dev" + std::to_string(d), d % 2 ? steady.url() : victim.url(), "alice", password));

    std::atomic<bool> killing_done{false};
    std::mutex mutex;
    std::condition_variable acked_cv;
    std::int64_t acked_syncs = 0;  // guarded by mutex
    std::vector<std::vector<std::string>> written(kDevices), acknowledged(kDevices);
    std::vector<std::thread> threads;
    for (int d = 0; d < kDevices; ++d) {
        threads.emplace_back([&, d] {
            Database& db = devices[static_cast<std::size_t>(d)];
            for (int i = 0; !killing_done && i < kMaxRowsPerDevice; ++i) {
                const std::string title = "multi-" + std::to_string(d) + "-" + std::to_string(i);
                if (!db.insert("need", kill_test_need(title)).ok())
                    return;  // shows as a count mismatch below
                written[static_cast<std::size_t>(d)].push_back(title);
                if (db.sync().ok()) {
                    acknowledged[static_cast<std::size_t>(d)] = written[static_cast<std::size_t>(d)];
                    std::lock_guard<std::mutex> lock(mutex);
                    ++acked_syncs;
                    acked_cv.notify_all();
                }
            }
        });
    }
    std::mt19937 rng(20261201);
    for (int k = 0; k < kKills; ++k) {
        {
            std::unique_lock<std::mutex> lock(mutex);
            const std::int64_t target = acked_syncs + std::uniform_int_distribution<int>(2, 10)(rng);
            acked_cv.wait_for(lock, std::chrono::seconds(30), [&] { return acked_syncs >= target; });
        }
        std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 5000)(rng)));
        victim.kill_hard();  // mid-transaction on PostgreSQL: the backend rolls it back
        victim.start();
    }
    killing_done = true;
    for (auto& t : threads) t.join();

    std::size_t total_written = 0;
    for (int d = 0; d < kDevices; ++d) {
        auto r = devices[static_cast<std::size_t>(d)].sync();
        INFO("device " << d << ": " << (r.ok() ? "ok" : r.status().to_string()));
        REQUIRE(r.ok());
        CHECK(*devices[static_cast<std::size_t>(d)].pending_changes() == 0);
        total_written += written[static_cast<std::size_t>(d)].size();
    }
    Database coord = open_device(dir, "coord", victim.url(), "coord", password);
    REQUIRE(coord.sync().ok());
    auto rows = coord.query("need");
    REQUIRE(rows.ok());
    std::map<std::string, int> count;
    for (const json& row : *rows) ++count[row.at("title").get<std::string>()];
    for (int d = 0; d < kDevices; ++d)
        for (const std::string& title : written[static_cast<std::size_t>(d)]) {
            INFO("written " << title << (d % 2 ? " through the steady server" : " through the killed one"));
            REQUIRE(count[title] == 1);
        }
    CHECK(rows->size() == total_written);
    // Every device converges on the same rows (a last sync through its own server).
    for (int d = 0; d < kDevices; ++d) {
        REQUIRE(devices[static_cast<std::size_t>(d)].sync().ok());
        auto mine = devices[static_cast<std::size_t>(d)].query("need");
        REQUIRE(mine.ok());
        CHECK(mine->size() == rows->size());
    }
    std::string verdict;
    CHECK(console({"audit", "verify", "--db", database.url()}, &verdict) == 0);
    INFO(verdict);
    CHECK(verdict.find("audit log intact") != std::string::npos);
    WARN("multi-server crash test: " << kKills << " kills, " << total_written << " records from " << kDevices
                                     << " devices through two servers");
}

TEST_CASE("Two servers on one PostgreSQL database share one rate limit per device, not one each", "[multiserver][rate]") {
    PostgresRequired required;
    ThrowawayDatabase database;
    ServerProcess a{database.url()}, b{database.url()};
    // 1 request/s in bursts of 6; each process alone would allow a device 6 at once.
    a.set_extra_args({"--rate-per-device", "1"});
    b.set_extra_args({"--rate-per-device", "1"});
    a.start();
    b.start();
    const std::string admin = login_token(a.url(), "admin", a.admin_password());
    create_user(a.url(), admin, "alice", "field-work-2026", "assessor", {"fac-gisenyi"});
    const std::string node = "00000000000000ab";
    const Pair device = login_pair(b.url(), "alice", "field-work-2026", node);
    const std::string body = json{{"protocol", 1}, {"schema_version", 1}, {"node", node}}.dump();

    // The device alternates between the processes, as behind a load balancer without stickiness.
    int allowed = 0;
    std::map<int, int> refused_by;
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 12; ++i) {
        ServerProcess& server = i % 2 ? b : a;
        HttpResult r = http_request("POST", server.url() + "/v1/sync", body, device.access);
        if (r.status == 200) ++allowed;
        else if (r.status == 429) ++refused_by[i % 2];
        else FAIL("unexpected status " << r.status << ": " << r.body);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    INFO("allowed " << allowed << " of 12 in " << seconds << " s");
    // One shared bucket: 6, plus what it refilled meanwhile. Per-process buckets would allow 12.
    CHECK(allowed >= 6);
    CHECK(allowed <= 6 + static_cast<int>(std::ceil(seconds)));
    CHECK(refused_by[0] > 0);
    CHECK(refused_by[1] > 0);
}
