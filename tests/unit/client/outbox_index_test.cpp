// Ubuzima Sync — MIT licence.
// The outbox is looked up by batch id on every round trip: the lookup must use an index, which
// holds only entries that are in a batch (captured writes add nothing to it).
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

TEST_CASE("a file with the older full batch index gets the partial one", "[client]") {
    const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                       ("ubuzima_outbox_index_old_" + std::to_string(std::random_device{}()) + ".db");
    ubuzima::DatabaseOptions options;
    options.path = path.string();
    std::string id;
    {
        auto db = ubuzima::Database::open(options);
        REQUIRE(db.ok());
        auto inserted = db->insert("need", nlohmann::json{{"facility_id", "fac-gisenyi"},
                                                          {"need_type", "skills_training"},
                                                          {"title", "Neonatal care"},
                                                          {"description", "Train nurses"},
                                                          {"priority", "high"},
                                                          {"status", "identified"}});
        REQUIRE(inserted.ok());
        id = *inserted;
    }
    auto index_sql = [&] {
        auto raw = ubuzima::sql::Database::open(path.string());
        REQUIRE(raw.ok());
        auto q = raw->prepare("SELECT sql FROM sqlite_master WHERE name = '_outbox_batch'");
        REQUIRE(q.ok());
        REQUIRE(*q->step());
        return q->column_text(0);
    };
    {
        auto raw = ubuzima::sql::Database::open(path.string());
        REQUIRE(raw.ok());
        REQUIRE(raw->exec("DROP INDEX _outbox_batch; CREATE INDEX _outbox_batch ON _outbox (batch_id);").ok());
    }
    CHECK(index_sql().find("WHERE") == std::string::npos);
    {
        auto db = ubuzima::Database::open(options);
        REQUIRE(db.ok());
        CHECK(*db->pending_changes() == 1);  // the entry is still there
        CHECK((**db->get("need", id))["title"] == "Neonatal care");
    }
    CHECK(index_sql().find("WHERE batch_id IS NOT NULL") != std::string::npos);
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
}
