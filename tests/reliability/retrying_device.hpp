// Ubuzima Sync — MIT licence.
// A device database for the kill tests: logged in, and retrying long enough to outlast a server
// restart (12 attempts, 20 ms doubling to 400 ms, 10 s per request), and the row it writes.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "ubuzima/database.hpp"

namespace ubuzima::test {

inline Database open_retrying_device(const std::string& path, const std::string& url, const std::string& user,
                                     const std::string& password) {
    DatabaseOptions options;
    options.path = path;
    options.durability = Durability::Normal;  // device durability is not what these tests are about
    options.sync.timeouts.connect_timeout_ms = 2000;
    options.sync.timeouts.timeout_ms = 10000;
    options.sync.retry.max_attempts = 12;
    options.sync.retry.initial_backoff_ms = 20;
    options.sync.retry.max_backoff_ms = 400;
    auto db = Database::open(options);
    REQUIRE(db.ok());
    const Status s = db->login(url, user, password);
    INFO(s.to_string());
    REQUIRE(s.ok());
    return std::move(*db);
}

/// The need every kill-test device writes, told apart by its title.
inline nlohmann::json kill_test_need(const std::string& title) {
    return {{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"specialty_code", "anaesthesiology"},
            {"description", "x"}, {"title", title}, {"priority", "high"}, {"status", "identified"}};
}

}  // namespace ubuzima::test
