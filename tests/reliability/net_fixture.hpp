// Ubuzima Sync — MIT licence.
// Shared fixture of the network fault tests: real server, fault proxy, devices pointed through it.
#pragma once

#include <catch2/catch.hpp>

#include <cctype>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fault_proxy.hpp"
#include "server_counts.hpp"
#include "support/server_process.hpp"
#include "ubuzima/database.hpp"
#include "ubuzima/schema/sqlite.hpp"

namespace ubuzima::test {

using nlohmann::json;


inline constexpr const char* kPassword = "field-work-2026";

inline json need(const std::string& facility, const std::string& title) {
    return {{"facility_id", facility}, {"need_type", "skills_training"}, {"specialty_code", "anaesthesiology"}, {"description", "x"}, {"title", title},
            {"priority", "high"},      {"status", "identified"}};
}

/// Offsets just past each complete HTTP message (Content-Length or chunked) in a byte stream.
inline std::vector<std::size_t> message_ends(const std::string& stream) {
    std::vector<std::size_t> ends;
    std::size_t at = 0;
    while (at < stream.size()) {
        const std::size_t head_end = stream.find("\r\n\r\n", at);
        if (head_end == std::string::npos) break;
        std::string head = stream.substr(at, head_end - at);
        for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::size_t body = head_end + 4;
        if (const auto cl = head.find("content-length:"); cl != std::string::npos) {
            body += std::stoul(head.substr(cl + 15));
        } else if (head.find("transfer-encoding: chunked") != std::string::npos) {
            for (;;) {
                const std::size_t line_end = stream.find("\r\n", body);
                if (line_end == std::string::npos) return ends;  // incomplete
                const std::size_t size = std::stoul(stream.substr(body, line_end - body), nullptr, 16);
                body = line_end + 2 + size + 2;
                if (size == 0) break;
            }
        }
        if (body > stream.size()) break;  // incomplete
        ends.push_back(body);
        at = body;
    }
    return ends;
}

inline std::string stored_meta(const std::string& path, const std::string& key) {
    auto raw = sql::Database::open(path);
    REQUIRE(raw.ok());
    auto stmt = raw->prepare("SELECT value FROM _meta WHERE key = '" + key + "'");
    REQUIRE(stmt.ok());
    auto has = stmt->step();
    REQUIRE(has.ok());
    return *has && !stmt->is_null(0) ? stmt->column_text(0) : std::string();
}

/// A server with assessors alice (Gisenyi) and carol (Butaro), a coordinator, and the proxy.
struct Net {
    TempDir dir;
    ServerProcess server{dir.file("server")};
    std::unique_ptr<FaultProxy> proxy;
    std::vector<std::int64_t> sleeps;   // waits asked for by the retry policy (never slept)
    std::function<void()> on_retry;     // inspects the device between a failed attempt and its retry

    Net() {
        server.start();
        const std::string admin = login_token(server.url(), "admin", server.admin_password());
        create_user(server.url(), admin, "alice", kPassword, "assessor", {"fac-gisenyi"});
        create_user(server.url(), admin, "carol", kPassword, "assessor", {"fac-butaro"});
        create_user(server.url(), admin, "coord", kPassword, "coordinator", {});
        proxy = std::make_unique<FaultProxy>(server.port());
    }

    /// Sync options through the proxy with a NEW transport (so the next request opens a new
    /// connection, which is the one arm_once() poisons) and a recorded, instant retry wait.
    SyncOptions via_proxy(int attempts = 3, std::int64_t timeout_ms = 10'000) {
        SyncOptions o;
        o.server_url = proxy->url();
        o.timeouts.connect_timeout_ms = 2000;
        o.timeouts.timeout_ms = timeout_ms;
        o.transport = std::make_shared<CurlTransport>(o.timeouts);
        o.retry.max_attempts = attempts;
        o.retry.sleep = [this](std::int64_t ms) {
            sleeps.push_back(ms);
            if (on_retry) on_retry();
        };
        return o;
    }

    /// A device logged in directly at the server, then pointed at the proxy.
    Database device(const std::string& file, const std::string& user) {
        DatabaseOptions options;
        options.path = dir.file(file);
        options.durability = Durability::Normal;  // thousands of syncs; durability is tested elsewhere
        auto db = Database::open(options);
        REQUIRE(db.ok());
        REQUIRE(db->login(server.url(), user, kPassword).ok());
        db->set_sync_options(via_proxy());
        return std::move(*db);
    }

    /// Every `need` row the server holds, as title → count, pulled by a fresh coordinator device.
    std::map<std::string, int> server_needs(const std::string& file) {
        return need_titles_on_server(server.url(), dir.file(file), "coord", kPassword);
    }
};


}  // namespace ubuzima::test
