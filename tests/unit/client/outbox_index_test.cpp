// Ubuzima Sync — MIT licence.
// The outbox is looked up by batch id on every round trip: the lookup must use an index.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "ubuzima/database.hpp"
#include "ubuzima/schema/sqlite.hpp"

TEST_CASE("loading and deleting a push batch uses the outbox batch index", "[client]") {
    const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                       ("ubuzima_outbox_index_" + std::to_string(std::random_device{}()) + ".db");
    {
        ubuzima::DatabaseOptions options;
        options.path = path.string();
        REQUIRE(ubuzima::Database::open(options).ok());
    }
    auto db = ubuzima::sql::Database::open(path.string());
    REQUIRE(db.ok());
    for (const char* sql : {"EXPLAIN QUERY PLAN SELECT seq FROM _outbox WHERE batch_id = 'b' ORDER BY seq",
                            "EXPLAIN QUERY PLAN DELETE FROM _outbox WHERE batch_id = 'b'"}) {
        auto plan = db->prepare(sql);
        REQUIRE(plan.ok());
        std::string detail;
        REQUIRE(plan->each([&](const ubuzima::sql::Statement& row) { detail += row.column_text(3) + "\n"; }).ok());
        INFO(sql << "\n" << detail);
        CHECK(detail.find("_outbox_batch") != std::string::npos);
    }
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
}
