// Ubuzima Sync — MIT licence.
// Device store: captured local writes, reads, class rules, atomicity, reopen and schema upgrade.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>

#include "ubuzima/database.hpp"
#include "ubuzima/sync/field_versions.hpp"
#include "ubuzima/schema/schema.hpp"
#include "ubuzima/schema/sqlite.hpp"

using nlohmann::json;
using ubuzima::Database;
using ubuzima::DatabaseOptions;
using ubuzima::ErrorCode;

namespace {

/// A fresh database file in the temp directory, removed with its WAL files afterwards.
struct TempFile {
    std::filesystem::path path;
    TempFile() {
        static std::atomic<int> counter{0};
        path = std::filesystem::temp_directory_path() /
               ("ubuzima_store_" + std::to_string(std::random_device{}()) + "_" + std::to_string(counter++) + ".db");
        cleanup();
    }
    ~TempFile() { cleanup(); }
    void cleanup() {
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
    }
};

Database open_db(const TempFile& file, const ubuzima::schema::Schema* schema = nullptr) {
    DatabaseOptions options;
    options.path = file.path.string();
    options.schema = schema;
    auto db = Database::open(options);
    REQUIRE(db.ok());
    return std::move(*db);
}

json need_fields() {
    return json{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", "Neonatal resuscitation"},
                {"description", "Train nurses"},  {"priority", "high"},             {"status", "identified"}};
}

json assessment_fields() {
    return json{{"facility_id", "fac-gisenyi"},   {"instrument_version_id", "iv-1"}, {"assessment_type", "baseline"},
                {"status", "draft"},              {"visit_date", "2026-11-20"},      {"lead_assessor_id", "u-1"}};
}

json finding_fields(const std::string& assessment_id) {
    return json{{"facility_id", "fac-gisenyi"}, {"assessment_id", assessment_id}, {"item_id", "item-1"},
                {"captured_at", 1767225600000}};
}

json tally_fields() {
    return json{{"deployment_id", "dep-1"}, {"facility_id", "fac-gisenyi"}, {"service_date", "2026-11-21"},
                {"service_type", "major_surgery"}, {"sex", "female"}, {"age_band", "25_49"}, {"patient_count", 3}};
}

/// Runs `sql` straight on the SQLite file and hands its first row to `read`.
template <typename Read>
auto raw_first_row(const TempFile& file, const std::string& sql, Read read) {
    auto db = ubuzima::sql::Database::open(file.path.string());
    REQUIRE(db.ok());
    auto stmt = db->prepare(sql);
    REQUIRE(stmt.ok());
    auto has = stmt->step();
    REQUIRE(has.ok());
    REQUIRE(*has);
    return read(*stmt);
}

/// Reads one text column of one row straight from the SQLite file.
std::string raw_text(const TempFile& file, const std::string& sql) {
    return raw_first_row(file, sql, [](const ubuzima::sql::Statement& s) { return s.column_text(0); });
}

std::int64_t raw_int(const TempFile& file, const std::string& sql) {
    return raw_first_row(file, sql, [](const ubuzima::sql::Statement& s) { return s.column_int(0); });
}

}  // namespace

TEST_CASE("insert, get, update, put, remove and query", "[client]") {
    TempFile file;
    Database db = open_db(file);
    CHECK(db.node_id().size() == 16);

    auto id = db.insert("need", need_fields());
    REQUIRE(id.ok());
    CHECK(id->size() == 36);
    CHECK((*id)[14] == '7');  // UUIDv7

    auto row = db.get("need", *id);
    REQUIRE(row.ok());
    REQUIRE(row->has_value());
    CHECK((**row)["id"] == *id);
    CHECK((**row)["title"] == "Neonatal resuscitation");
    CHECK((**row)["priority_rank"].is_null());

    REQUIRE(db.update("need", *id, json{{"priority", "critical"}, {"priority_rank", 1}}).ok());
    row = db.get("need", *id);
    CHECK((**row)["priority"] == "critical");
    CHECK((**row)["priority_rank"] == 1);
    CHECK((**row)["title"] == "Neonatal resuscitation");  // partial update

    REQUIRE(db.put("need", "need-fixed-id", need_fields()).ok());
    REQUIRE(db.put("need", "need-fixed-id", json{{"title", "Changed"}}).ok());
    CHECK((**db.get("need", "need-fixed-id"))["title"] == "Changed");

    auto all = db.query("need");
    REQUIRE(all.ok());
    CHECK(all->size() == 2);
    auto critical = db.query("need", json{{"priority", "critical"}});
    REQUIRE(critical.ok());
    REQUIRE(critical->size() == 1);
    CHECK((*critical)[0]["id"] == *id);
    auto limited = db.query("need", nullptr, 1, 1);
    REQUIRE(limited.ok());
    CHECK(limited->size() == 1);
    CHECK(db.query("need", json{{"nope", 1}}).status().code() == ErrorCode::UnknownField);
    CHECK(db.query("need", json{{"priority_rank", "x"}}).status().code() == ErrorCode::InvalidArgument);

    REQUIRE(db.remove("need", *id).ok());
    row = db.get("need", *id);
    REQUIRE(row.ok());
    CHECK_FALSE(row->has_value());
    CHECK(db.query("need")->size() == 1);
    CHECK(db.update("need", *id, json{{"title", "x"}}).code() == ErrorCode::NotFound);
    CHECK(db.remove("need", *id).code() == ErrorCode::NotFound);
    CHECK(*db.pending_changes() == 5);

    // put over a tombstone revives the row (an undelete that syncs like any write)
    REQUIRE(db.put("need", *id, need_fields()).ok());
    CHECK(db.get("need", *id)->has_value());
}

TEST_CASE("validation errors leave nothing behind", "[client]") {
    TempFile file;
    Database db = open_db(file);
    CHECK(db.insert("nope", need_fields()).status().code() == ErrorCode::UnknownTable);
    json unknown = need_fields();
    unknown["colour"] = "red";
    CHECK(db.insert("need", unknown).status().code() == ErrorCode::UnknownField);
    json bad = need_fields();
    bad["priority"] = "urgent";
    CHECK(db.insert("need", bad).status().code() == ErrorCode::InvalidValue);
    json missing = need_fields();
    missing.erase("title");
    auto r = db.insert("need", missing);
    CHECK(r.status().code() == ErrorCode::InvalidValue);
    CHECK_THAT(r.status().message(), Catch::Contains("title"));
    CHECK(db.insert("need", json::array()).status().code() == ErrorCode::InvalidArgument);
    CHECK(db.insert("need", json{{"_deleted", true}}).status().code() == ErrorCode::InvalidArgument);
    CHECK(db.get("nope", "x").status().code() == ErrorCode::UnknownTable);
    CHECK(*db.pending_changes() == 0);
    CHECK(db.query("need")->empty());
}

TEST_CASE("reference, append-only, sealed and sealed_with rows refuse writes unchanged", "[client]") {
    TempFile file;
    Database db = open_db(file);

    SECTION("reference tables are read-only") {
        auto r = db.put("facility", "fac-x", json{{"name", "X"}});
        CHECK(r.code() == ErrorCode::ReadOnly);
        CHECK_FALSE(db.get("facility", "fac-x")->has_value());
    }
    SECTION("append-only: only the void fields change after insert; no delete") {
        auto id = db.insert("service_tally", tally_fields());
        REQUIRE(id.ok());
        auto r = db.update("service_tally", *id, json{{"patient_count", 4}});
        CHECK(r.code() == ErrorCode::AppendOnly);
        CHECK((**db.get("service_tally", *id))["patient_count"] == 3);
        CHECK(db.remove("service_tally", *id).code() == ErrorCode::AppendOnly);
        CHECK(db.update("service_tally", *id,
                        json{{"voided_at", 1767225600000}, {"voided_by", "u-1"}, {"void_reason", "duplicate"}})
                  .ok());
        CHECK((**db.get("service_tally", *id))["void_reason"] == "duplicate");
    }
    SECTION("sealed: a submitted assessment is immutable") {
        auto id = db.insert("needs_assessment", assessment_fields());
        REQUIRE(id.ok());
        REQUIRE(db.update("needs_assessment", *id, json{{"summary", "draft notes"}}).ok());
        REQUIRE(db.update("needs_assessment", *id, json{{"status", "submitted"}}).ok());
        auto r = db.update("needs_assessment", *id, json{{"summary", "late edit"}});
        CHECK(r.code() == ErrorCode::Sealed);
        CHECK_THAT(r.message(), Catch::Contains("submitted") && Catch::Contains("supersedes"));
        CHECK(db.remove("needs_assessment", *id).code() == ErrorCode::Sealed);
        CHECK((**db.get("needs_assessment", *id))["summary"] == "draft notes");
    }
    SECTION("sealed_with: findings of a submitted assessment are immutable") {
        auto parent = db.insert("needs_assessment", assessment_fields());
        REQUIRE(parent.ok());
        auto finding = db.insert("assessment_finding", finding_fields(*parent));
        REQUIRE(finding.ok());
        REQUIRE(db.update("assessment_finding", *finding, json{{"comment", "ok"}}).ok());
        REQUIRE(db.update("needs_assessment", *parent, json{{"status", "submitted"}}).ok());
        auto r = db.update("assessment_finding", *finding, json{{"comment", "changed"}});
        CHECK(r.code() == ErrorCode::Sealed);
        CHECK_THAT(r.message(), Catch::Contains("needs_assessment"));
        CHECK((**db.get("assessment_finding", *finding))["comment"] == "ok");
        CHECK(db.insert("assessment_finding", finding_fields(*parent)).status().code() == ErrorCode::Sealed);
    }
}

TEST_CASE("a write stores row, field versions and outbox entry together", "[client]") {
    TempFile file;
    std::string id;
    std::string node;
    {
        Database db = open_db(file);
        node = db.node_id();
        id = *db.insert("need", need_fields());
        REQUIRE(db.update("need", id, json{{"title", "New title"}}).ok());
    }
    const json versions =
        ubuzima::sync::decode_field_versions(raw_text(file, "SELECT _v FROM need WHERE id = '" + id + "'"));
    REQUIRE(versions.contains("title"));
    REQUIRE(versions.contains("facility_id"));
    const std::string v1 = versions["facility_id"];
    const std::string v2 = versions["title"];
    CHECK(v1.size() == 33);
    CHECK(v1.substr(17) == node);
    CHECK(v2 > v1);
    CHECK(raw_int(file, "SELECT COUNT(*) FROM _outbox") == 2);
    const json first_fields = json::parse(raw_text(file, "SELECT fields FROM _outbox ORDER BY seq LIMIT 1"));
    CHECK(first_fields == need_fields());
    CHECK(raw_text(file, "SELECT base FROM _outbox ORDER BY seq LIMIT 1") == "{}");
    const json second_base = json::parse(raw_text(file, "SELECT base FROM _outbox ORDER BY seq DESC LIMIT 1"));
    CHECK(second_base == json{{"title", v1}});
    CHECK(raw_text(file, "SELECT version FROM _outbox ORDER BY seq DESC LIMIT 1") == v2);
    // The insert's entry referred to the row (empty `fields`) until the update: the update copied
    // the fields in before changing the row, so the entry still pushes what was inserted.
}

TEST_CASE("reopening keeps rows, node id and a monotonic clock", "[client]") {
    TempFile file;
    std::string id;
    std::string node;
    std::string first_version;
    {
        Database db = open_db(file);
        node = db.node_id();
        id = *db.insert("need", need_fields());
        first_version = raw_text(file, "SELECT version FROM _outbox");
    }
    // The second session's wall clock is an hour behind: versions must still grow.
    DatabaseOptions options;
    options.path = file.path.string();
    options.wall_clock = [] { return ubuzima::sync::system_wall_ms() - 3'600'000; };
    auto db = Database::open(options);
    REQUIRE(db.ok());
    CHECK(db->node_id() == node);
    CHECK((**db->get("need", id))["title"] == "Neonatal resuscitation");
    REQUIRE(db->update("need", id, json{{"title", "Later"}}).ok());
    const std::string second_version = raw_text(file, "SELECT version FROM _outbox ORDER BY seq DESC LIMIT 1");
    CHECK(second_version > first_version);
}

TEST_CASE("opening with a newer schema upgrades the file in place", "[client]") {
    const char* v1_text = R"({"schema_version": 1, "tables": [
        {"name": "visit", "class": "editable", "fields": [
            {"name": "facility_id", "type": "text", "required": true},
            {"name": "notes", "type": "text"}]}]})";
    const char* v2_text = R"({"schema_version": 2, "tables": [
        {"name": "visit", "class": "editable", "fields": [
            {"name": "facility_id", "type": "text", "required": true},
            {"name": "notes", "type": "text"},
            {"name": "visitors", "type": "int", "min": 0}]},
        {"name": "equipment", "class": "editable", "fields": [
            {"name": "label", "type": "text", "required": true}]}]})";
    auto v1 = ubuzima::schema::Schema::parse(v1_text);
    auto v2 = ubuzima::schema::Schema::parse(v2_text);
    REQUIRE(v1.ok());
    REQUIRE(v2.ok());
    TempFile file;
    std::vector<std::string> ids;
    {
        Database db = open_db(file, &*v1);
        for (int i = 0; i < 5; ++i) ids.push_back(*db.insert("visit", json{{"facility_id", "fac-" + std::to_string(i)}}));
        CHECK(db.insert("equipment", json{{"label", "x"}}).status().code() == ErrorCode::UnknownTable);
    }
    CHECK(raw_text(file, "SELECT value FROM _meta WHERE key = 'schema_version'") == "1");
    {
        auto raw = ubuzima::sql::Database::open(file.path.string());
        REQUIRE(raw.ok());
        REQUIRE(raw->exec("INSERT OR REPLACE INTO _meta(key, value) VALUES ('cursor', '1234')").ok());
    }
    Database db = open_db(file, &*v2);
    CHECK(raw_text(file, "SELECT value FROM _meta WHERE key = 'schema_version'") == "2");
    // The cursor restarts so that values of the new fields already on the server are pulled.
    CHECK(raw_text(file, "SELECT count(*) FROM _meta WHERE key = 'cursor'") == "0");
    auto rows = db.query("visit");
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 5);
    for (const json& row : *rows) CHECK(row["visitors"].is_null());
    CHECK(*db.pending_changes() == 5);
    REQUIRE(db.update("visit", ids[0], json{{"visitors", 3}}).ok());
    CHECK((**db.get("visit", ids[0]))["visitors"] == 3);
    CHECK((**db.get("visit", ids[0]))["facility_id"] == "fac-0");
    CHECK(db.insert("equipment", json{{"label", "oxygen concentrator"}}).ok());
}

TEST_CASE("a database is usable from several threads", "[client]") {
    TempFile file;
    Database db = open_db(file);
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i)
                if (!db.insert("need", need_fields()).ok()) ++failures;
        });
    for (auto& t : threads) t.join();
    CHECK(failures == 0);
    CHECK(db.query("need")->size() == 100);
    CHECK(*db.pending_changes() == 100);
}

TEST_CASE("the app's fields object is checked in place and never changed", "[client]") {
    TempFile file;
    Database db = open_db(file);
    const json fields = need_fields();
    auto id = db.insert("need", fields);
    REQUIRE(id.ok());
    CHECK(fields == need_fields());

    // What get() returned can be written back: its "id" is the row's own and is not a field.
    json back = **db.get("need", *id);
    back["title"] = "Edited";
    REQUIRE(db.update("need", *id, back).ok());
    CHECK((**db.get("need", *id))["title"] == "Edited");
    json other_id = back;
    other_id["id"] = "someone-else";
    CHECK(db.update("need", *id, other_id).code() == ErrorCode::InvalidArgument);
    json with_id = need_fields();
    with_id["id"] = "chosen";
    CHECK(db.insert("need", with_id).status().code() == ErrorCode::InvalidArgument);
    json deleting = need_fields();
    deleting["_deleted"] = true;
    CHECK(db.put("need", *id, deleting).code() == ErrorCode::InvalidArgument);
    CHECK(db.update("need", *id, json::object()).code() == ErrorCode::InvalidArgument);
    CHECK(db.update("need", *id, json::array()).code() == ErrorCode::InvalidArgument);
    json only_id{{"id", *id}};
    CHECK(db.update("need", *id, only_id).code() == ErrorCode::InvalidArgument);  // nothing left to write

    // A put over a tombstone writes _deleted = false too, without adding it to the app's object.
    REQUIRE(db.remove("need", *id).ok());
    const json revive = need_fields();
    REQUIRE(db.put("need", *id, revive).ok());
    CHECK(revive == need_fields());
    CHECK(db.get("need", *id)->has_value());
}
