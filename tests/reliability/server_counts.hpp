// Ubuzima Sync — MIT licence.
// Reliability-test helper: what the server holds, seen through a fresh coordinator device.
#pragma once

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "ubuzima/database.hpp"

namespace ubuzima::test {

/// Pulls everything into a new device file as `user` and counts the `need` rows per title, so a
/// test can assert that every record is on the server exactly once.
inline std::map<std::string, int> need_titles_on_server(const std::string& server_url, const std::string& db_path,
                                                        const std::string& user, const std::string& password) {
    DatabaseOptions options;
    options.path = db_path;
    options.durability = Durability::Normal;  // a throw-away reader: durability is not under test
    auto db = Database::open(options);
    REQUIRE(db.ok());
    REQUIRE(db->login(server_url, user, password).ok());
    REQUIRE(db->sync().ok());
    std::map<std::string, int> out;
    const std::vector<nlohmann::json> rows = db->query("need").value();
    for (const nlohmann::json& row : rows) ++out[row.at("title").get<std::string>()];
    return out;
}

}  // namespace ubuzima::test
