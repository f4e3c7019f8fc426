// Ubuzima Sync — MIT licence.
// Database::write_batch: many captured writes in one transaction, all or nothing.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <random>

#include "ubuzima/database.hpp"

using nlohmann::json;
using ubuzima::BatchWrite;
using ubuzima::Database;
using ubuzima::DatabaseOptions;
using ubuzima::ErrorCode;

namespace {

struct BatchTempFile {
    std::filesystem::path path;
    BatchTempFile() {
        static std::atomic<int> counter{0};
        path = std::filesystem::temp_directory_path() /
               ("ubuzima_batch_" + std::to_string(std::random_device{}()) + "_" + std::to_string(counter++) + ".db");
    }
    ~BatchTempFile() {
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
    }
};

json need(const std::string& title) {
    return json{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", title},
                {"description", "Train nurses"},  {"priority", "high"},             {"status", "identified"}};
}

Database open_db(const BatchTempFile& file) {
    DatabaseOptions options;
    options.path = file.path.string();
    auto db = Database::open(options);
    REQUIRE(db.ok());
    return std::move(*db);
}

}  // namespace

TEST_CASE("write_batch captures every write like the single calls", "[client]") {
    BatchTempFile file;
    Database db = open_db(file);
    std::vector<BatchWrite> writes;
    for (int i = 0; i < 50; ++i) writes.push_back({BatchWrite::Op::Insert, "need", "", need("n" + std::to_string(i))});
    writes.push_back({BatchWrite::Op::Put, "need", "need-fixed", need("fixed")});
    writes.push_back({BatchWrite::Op::Update, "need", "need-fixed", json{{"priority", "low"}}});
    auto ids = db.write_batch(writes);
    REQUIRE(ids.ok());
    REQUIRE(ids->size() == writes.size());
    CHECK((*ids)[50] == "need-fixed");
    CHECK((*ids)[0] != (*ids)[1]);

    auto rows = db.query("need");
    REQUIRE(rows.ok());
    CHECK(rows->size() == 51);
    auto fixed = db.get("need", "need-fixed");
    REQUIRE(fixed.ok());
    REQUIRE(fixed->has_value());
    CHECK((**fixed)["priority"] == "low");
    // One outbox entry per write, exactly as 52 separate calls would leave.
    auto pending = db.pending_changes();
    REQUIRE(pending.ok());
    CHECK(*pending == 52);

    auto removed = db.write_batch({{BatchWrite::Op::Remove, "need", "need-fixed", nullptr}});
    REQUIRE(removed.ok());
    auto gone = db.get("need", "need-fixed");
    REQUIRE(gone.ok());
    CHECK_FALSE(gone->has_value());
}

TEST_CASE("a failing write_batch leaves nothing behind", "[client]") {
    BatchTempFile file;
    Database db = open_db(file);
    std::vector<BatchWrite> writes = {{BatchWrite::Op::Insert, "need", "a", need("first")},
                                      {BatchWrite::Op::Insert, "need", "b", need("second")},
                                      {BatchWrite::Op::Insert, "need", "c", json{{"priority", "urgent!"}}}};
    auto result = db.write_batch(writes);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == ErrorCode::InvalidValue);
    CHECK(result.status().message().find("write 2") != std::string::npos);
    auto rows = db.query("need");
    REQUIRE(rows.ok());
    CHECK(rows->empty());
    auto pending = db.pending_changes();
    REQUIRE(pending.ok());
    CHECK(*pending == 0);

    // The database stays usable after the rollback.
    auto again = db.write_batch({writes[0], writes[1]});
    REQUIRE(again.ok());
    auto after = db.query("need");
    REQUIRE(after.ok());
    CHECK(after->size() == 2);
}
