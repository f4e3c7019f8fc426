// Ubuzima Sync — MIT licence.
// One Database driven from four threads at once (writes, reads, queries, sync); run under TSan.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ubuzima/database.hpp"
#include "ubuzima/sync/protocol.hpp"

using nlohmann::json;
using ubuzima::Database;
using ubuzima::ErrorCode;
using ubuzima::HttpHeaders;
using ubuzima::HttpResponse;
using ubuzima::Result;
using ubuzima::Status;
namespace sync = ubuzima::sync;

namespace {

constexpr std::int64_t kNow = 1'795'000'000'000;
constexpr int kWrites = 60;

json need(const std::string& title) {
    return json{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", title},
                {"description", "Train nurses"},  {"priority", "high"},             {"status", "identified"}};
}

/// A tiny thread-safe server: accepts every pushed batch and, on each sync, hands out one new
/// row written by another device, so pulls apply while the app writes.
class FakeServer final : public ubuzima::HttpTransport {
public:
    Result<HttpResponse> post(const std::string& url, const std::string& body, const HttpHeaders&) override {
        if (url.find("/v1/auth/login") != std::string::npos)
            return HttpResponse{200, R"({"access_token":"a","refresh_token":"r"})"};
        auto request = sync::decode_sync_request(body);
        if (!request.ok()) return HttpResponse{400, sync::encode_error(request.status())};
        std::lock_guard<std::mutex> lock(m_mutex);
        sync::SyncResponse resp;
        resp.server_clock = sync::make_hlc(kNow, 0);
        if (request->batch) {
            sync::PushResult push;
            push.batch = request->batch->id;
            push.applied = static_cast<int>(request->batch->changes.size());
            for (const sync::Change& c : request->batch->changes) m_accepted.insert(c.row_id);
            resp.push = push;
        }
        const int n = m_remote++;
        const sync::Version v{sync::make_hlc(kNow - 1000, static_cast<std::uint32_t>(n)), 0xffu};
        sync::RowChange rc{"need", "remote-" + std::to_string(n), {}};
        const json fields = need("remote " + std::to_string(n));  // items() does not extend a temporary's life
        for (const auto& [field, value] : fields.items()) rc.fields[field] = sync::VersionedValue{value, v};
        resp.changes.push_back(rc);
        resp.cursor = std::to_string(n + 1);
        return HttpResponse{200, sync::encode_sync_response(resp)};
    }
    std::set<std::string> accepted() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_accepted;
    }
    int remote_rows() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_remote;
    }

private:
    std::mutex m_mutex;
    std::set<std::string> m_accepted;
    int m_remote = 0;
};

/// Releases every thread at once, so the four really overlap.
class StartGate {
public:
    void wait() {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_cv.wait(lock, [this] { return m_open; });
    }
    void open() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_open = true;
        }
        m_cv.notify_all();
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_open = false;
};

}  // namespace

TEST_CASE("one Database used from four threads at once stays consistent", "[client][threads]") {
    const auto path = std::filesystem::temp_directory_path() /
                      ("ubuzima_threads_" + std::to_string(std::random_device{}()) + ".db");
    auto server = std::make_shared<FakeServer>();
    {
        ubuzima::DatabaseOptions options;
        options.path = path.string();
        options.durability = ubuzima::Durability::Normal;
        options.wall_clock = [] { return kNow; };
        options.sync.transport = server;
        options.sync.batch_size = 7;  // several round trips per sync
        auto opened = Database::open(options);
        REQUIRE(opened.ok());
        Database db = std::move(*opened);
        REQUIRE(db.login("http://fake.invalid", "alice", "pw").ok());

        StartGate gate;
        std::atomic<int> written{0};
        std::atomic<bool> writing{true};
        std::atomic<int> failures{0};
        auto expect = [&failures](const Status& s) {
            if (!s.ok()) ++failures;
        };

        std::vector<std::thread> threads;
        threads.emplace_back([&] {  // writer: inserts, then updates and deletes some rows
            gate.wait();
            for (int i = 0; i < kWrites; ++i) {
                const std::string id = "local-" + std::to_string(i);
                expect(db.put("need", id, need("local " + std::to_string(i))));
                written.store(i + 1);
                if (i % 3 == 0) expect(db.update("need", id, json{{"priority", "low"}}));
                auto fresh = db.insert("need", need("fresh " + std::to_string(i)));
                if (!fresh.ok()) ++failures;
                if (i % 5 == 0 && fresh.ok()) expect(db.remove("need", *fresh));
            }
            writing.store(false);
        });
        threads.emplace_back([&] {  // reader: every row the writer said it wrote is there
            gate.wait();
            while (writing.load()) {
                const int n = written.load();
                if (n == 0) continue;
                auto row = db.get("need", "local-" + std::to_string(n - 1));
                if (!row.ok() || !*row) ++failures;
            }
        });
        threads.emplace_back([&] {  // queries and journal reads
            gate.wait();
            while (writing.load()) {
                auto rows = db.query("need", json{{"facility_id", "fac-gisenyi"}});
                if (!rows.ok()) ++failures;
                if (!db.pending_changes().ok() || !db.conflicts().ok() || !db.rejected().ok()) ++failures;
                if (db.node_id().size() != 16) ++failures;
            }
        });
        threads.emplace_back([&] {  // sync loop, concurrent with everything above
            gate.wait();
            while (writing.load()) {
                auto report = db.sync();
                if (!report.ok()) ++failures;
            }
        });
        gate.open();
        for (auto& t : threads) t.join();

        CHECK(failures.load() == 0);
        auto last = db.sync();
        REQUIRE(last.ok());
        auto pending = db.pending_changes();
        REQUIRE(pending.ok());
        CHECK(*pending == 0);
        // Every local row reached the server, and every remote row handed out is stored locally.
        const std::set<std::string> accepted = server->accepted();
        for (int i = 0; i < kWrites; ++i) CHECK(accepted.count("local-" + std::to_string(i)) == 1);
        auto remote = db.query("need", json{{"description", "Train nurses"}, {"priority", "high"}});
        REQUIRE(remote.ok());
        int remote_rows = 0;
        for (const json& row : *remote)
            if (row["id"].get<std::string>().rfind("remote-", 0) == 0) ++remote_rows;
        CHECK(remote_rows == server->remote_rows());
    }
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
}
