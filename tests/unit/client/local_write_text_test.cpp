// Ubuzima Sync — MIT licence.
// Captured writes build `_v` and the outbox texts without JSON trees: they must be what nlohmann writes.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "ubuzima/database.hpp"
#include "ubuzima/schema/sqlite.hpp"
#include "ubuzima/sync/field_versions.hpp"

using nlohmann::json;

namespace {

struct TextTempFile {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("ubuzima_write_text_" + std::to_string(std::random_device{}()) + ".db");
    ~TextTempFile() {
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
    }
};

// Every stored JSON text must be canonical (equal to nlohmann's dump of its own parse).
void check_canonical(const std::string& text) {
    INFO(text);
    const json parsed = json::parse(text);
    CHECK(parsed.dump() == text);
}

}  // namespace

TEST_CASE("fresh inserts and later updates store canonical _v and outbox texts", "[client]") {
    TextTempFile file;
    const json first = {{"facility_id", "fac-gisenyi"},
                        {"need_type", "skills_training"},
                        {"title", "Amahugurwa y'abaforomo — \"urgent\" \\ path\nline\ttab"},
                        {"description", "Train nurses: ébola triage, 90% coverage"},
                        {"priority", "high"},
                        {"status", "identified"}};
    std::string id;
    {
        ubuzima::DatabaseOptions options;
        options.path = file.path.string();
        auto db = ubuzima::Database::open(options);
        REQUIRE(db.ok());
        auto inserted = db->insert("need", first);
        REQUIRE(inserted.ok());
        id = *inserted;
        // A second shape of upsert (one column) and then the first shape again: each must bind
        // its own prepared statement.
        REQUIRE(db->update("need", id, {{"priority", "low"}}).ok());
        json plain = first;
        plain["title"] = "Plain";
        plain["priority"] = "medium";
        auto second = db->insert("need", plain);
        INFO((second.ok() ? std::string() : second.status().message()));
        REQUIRE(second.ok());
        auto got = db->get("need", id);
        REQUIRE(got.ok());
        REQUIRE(got->has_value());
        CHECK((**got)["title"] == first["title"]);
        CHECK((**got)["description"] == first["description"]);
        CHECK((**got)["priority"] == "low");
        auto other = db->get("need", *second);
        REQUIRE(other.ok());
        REQUIRE(other->has_value());
        CHECK((**other)["priority"] == "medium");
        CHECK((**other)["title"] == "Plain");
    }
    auto raw = ubuzima::sql::Database::open(file.path.string());
    REQUIRE(raw.ok());
    auto outbox = raw->prepare("SELECT row_id, version, fields, base FROM _outbox ORDER BY seq");
    REQUIRE(outbox.ok());
    std::vector<std::vector<std::string>> entries;
    REQUIRE(outbox->each([&](const ubuzima::sql::Statement& row) {
                      entries.push_back({row.column_text(0), row.column_text(1), row.column_text(2), row.column_text(3)});
                  }).ok());
    REQUIRE(entries.size() == 3);
    // The second insert's entry refers to its row (empty `fields`); the first insert's was copied
    // in, canonical, before the update changed the row.
    CHECK(entries[2][2].empty());
    for (const auto& e : entries) {
        if (!e[2].empty()) check_canonical(e[2]);
        check_canonical(e[3]);
    }
    CHECK(json::parse(entries[0][2]) == first);
    CHECK(entries[0][3] == "{}");
    CHECK(json::parse(entries[1][2]) == json{{"priority", "low"}});
    CHECK(json::parse(entries[1][3]) == json{{"priority", entries[0][1]}});  // the update names its base

    auto versions = raw->prepare("SELECT _v FROM need WHERE id = ?");
    REQUIRE(versions.ok());
    versions->bind(1, id);
    auto has = versions->step();
    REQUIRE(has.ok());
    REQUIRE(*has);
    const std::string v_text = versions->column_text(0);
    versions->reset();
    check_canonical(v_text);
    const json v = ubuzima::sync::decode_field_versions(v_text);
    CHECK(v.size() == first.size());
    CHECK(v["priority"] == entries[1][1]);
    CHECK(v["title"] == entries[0][1]);
}
