// Ubuzima Sync — MIT licence.
// Test support for the client: a scripted fake transport and a device database on a temp file,
// for sync-session tests that need no server.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>

#include "ubuzima/database.hpp"
#include "ubuzima/schema/sqlite.hpp"
#include "ubuzima/sync/field_versions.hpp"
#include "ubuzima/sync/protocol.hpp"

namespace ubuzima::client_test {

using nlohmann::json;
using ubuzima::Database;
using ubuzima::ErrorCode;
using ubuzima::HttpHeaders;
using ubuzima::HttpResponse;
using ubuzima::Result;
using ubuzima::Status;
namespace sync = ubuzima::sync;

inline constexpr std::int64_t kNow = 1'795'000'000'000;  // 2026-11-18, the fake wall clock
inline const std::string kServerNode = "5e5e5e5e5e5e5e5e";

inline std::string hlc_hex(std::int64_t ms, std::uint32_t counter = 0) { return sync::to_hex16(sync::make_hlc(ms, counter)); }
inline std::string server_version(std::int64_t ms) { return hlc_hex(ms) + "@" + kServerNode; }

/// One request as the fake saw it.
struct Request {
    std::string url;
    json body;
    HttpHeaders headers;
    std::string header(const std::string& name) const {
        for (const auto& [n, v] : headers)
            if (n == name) return v;
        return {};
    }
};

/// Answers each POST with the next scripted handler (or a failure when the script is empty).
class FakeTransport : public ubuzima::HttpTransport {
public:
    using Handler = std::function<Result<HttpResponse>(const Request&)>;
    std::deque<Handler> script;
    std::vector<Request> requests;

    Result<HttpResponse> post(const std::string& url, const std::string& body, const HttpHeaders& headers) override {
        requests.push_back(Request{url, json::parse(body), headers});
        if (script.empty()) return Status(ErrorCode::Network, "fake: no scripted response");
        Handler next = std::move(script.front());
        script.pop_front();
        return next(requests.back());
    }
    void reply(int status, json body) {
        script.push_back([status, body](const Request&) -> Result<HttpResponse> { return HttpResponse{status, body.dump()}; });
    }
    void fail(ErrorCode code) {
        script.push_back([code](const Request&) -> Result<HttpResponse> { return Status(code, "fake failure"); });
    }
    /// A 200 sync answer built from the request: applies the whole batch except `rejected`.
    void sync_ok(json changes = json::array(), std::string cursor = "c1", bool more = false, json rejected = json::array(),
                 json conflicts = json::array(), std::int64_t server_ms = kNow) {
        script.push_back([=](const Request& r) -> Result<HttpResponse> {
            json resp{{"protocol", 1}, {"server_clock", hlc_hex(server_ms)}, {"changes", changes},
                      {"cursor", cursor}, {"more", more}, {"push", nullptr}};
            if (r.body.contains("batch")) {
                const json& batch = r.body["batch"];
                resp["push"] = json{{"batch", batch["id"]},
                                    {"applied", batch["changes"].size() - rejected.size()},
                                    {"conflicts", conflicts},
                                    {"rejected", rejected}};
            }
            return HttpResponse{200, resp.dump()};
        });
    }
};

struct Fixture {
    std::filesystem::path path;
    std::shared_ptr<FakeTransport> fake = std::make_shared<FakeTransport>();
    std::shared_ptr<std::atomic<std::int64_t>> wall = std::make_shared<std::atomic<std::int64_t>>(kNow);
    std::optional<Database> db;

    Fixture() {
        path = std::filesystem::temp_directory_path() /
               ("ubuzima_sync_" + std::to_string(std::random_device{}()) + ".db");
        ubuzima::DatabaseOptions options;
        options.path = path.string();
        options.wall_clock = [w = wall] { return w->load(); };
        options.sync.transport = fake;
        options.sync.retry.max_attempts = 1;  // these cases script each answer; retries: tests/reliability
        auto opened = Database::open(options);
        REQUIRE(opened.ok());
        db.emplace(std::move(*opened));
    }
    ~Fixture() {
        db.reset();
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
    }
    void login() {
        fake->reply(200, json{{"access_token", "a1"}, {"token_type", "Bearer"}, {"expires_in", 900},
                              {"refresh_token", "r1"}, {"user", {{"id", "u1"}, {"username", "ana"}}}});
        REQUIRE(db->login("https://moh.example/", "ana", "secret").ok());
    }
    std::string meta(const std::string& key) {
        auto raw = ubuzima::sql::Database::open(path.string());
        REQUIRE(raw.ok());
        auto stmt = raw->prepare("SELECT value FROM _meta WHERE key = '" + key + "'");
        REQUIRE(stmt.ok());
        auto has = stmt->step();
        REQUIRE(has.ok());
        return *has ? stmt->column_text(0) : std::string();
    }
    json versions(const std::string& table, const std::string& id) {
        auto raw = ubuzima::sql::Database::open(path.string());
        REQUIRE(raw.ok());
        auto stmt = raw->prepare("SELECT _v FROM " + table + " WHERE id = '" + id + "'");
        REQUIRE(stmt.ok());
        auto has = stmt->step();
        REQUIRE(has.ok());
        return *has ? ubuzima::sync::decode_field_versions(stmt->column_text(0)) : json();
    }
};

inline json need_fields() {
    return json{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", "Neonatal resuscitation"},
                {"description", "Train nurses"},  {"priority", "high"},             {"status", "identified"}};
}

/// A pulled row change for `need` with every field at `version`.
inline json pulled_need(const std::string& id, const std::string& version, json fields = need_fields()) {
    json f = json::object();
    for (const auto& [name, value] : fields.items()) f[name] = json::array({value, version});
    return json{{"t", "need"}, {"id", id}, {"f", f}};
}

}  // namespace ubuzima::client_test
