// Ubuzima Sync — MIT licence.
// Tests of the declarative schema, value validation and in-place table upgrade.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include "ubuzima/schema/schema.hpp"
#include "ubuzima/schema/sqlite.hpp"

using namespace ubuzima;
using namespace ubuzima::schema;

TEST_CASE("The embedded schema covers the domain tables", "[schema]") {
    const Schema& s = Schema::builtin();
    CHECK(s.version() >= 1);
    for (const char* name : {"facility", "department", "specialty", "instrument", "instrument_item", "item_option",
                             "needs_assessment", "assessment_finding", "need", "practitioner", "deployment",
                             "skill_transfer_session", "trainee", "session_attendance", "service_tally",
                             "opportunity"}) {
        CAPTURE(name);
        CHECK(s.table(name) != nullptr);
    }
    CHECK(s.table("facility")->cls == TableClass::Reference);
    CHECK(s.table("need")->cls == TableClass::Editable);
    CHECK(s.table("needs_assessment")->cls == TableClass::Sealed);
    CHECK(s.table("service_tally")->cls == TableClass::AppendOnly);
    CHECK(s.table("need")->scope_field == std::optional<std::string>("facility_id"));
    CHECK(s.table("needs_assessment")->is_sealing_value("submitted"));
    CHECK_FALSE(s.table("needs_assessment")->is_sealing_value("draft"));
    REQUIRE(s.table("assessment_finding")->sealed_with);
    CHECK(s.table("assessment_finding")->sealed_with->table == "needs_assessment");
}

TEST_CASE("Seed data holds the 10 project hospitals and the SARA tracer items", "[schema]") {
    size_t facilities = 0, items = 0;
    for (const SeedTable& t : builtin_seed()) {
        const TableDef* def = Schema::builtin().table(t.table);
        REQUIRE(def != nullptr);
        for (const Value& row : t.rows) {
            std::map<std::string, Value> fields;
            for (auto it = row.begin(); it != row.end(); ++it)
                if (it.key() != "id") fields.emplace(it.key(), it.value());
            CAPTURE(t.table, row.dump());
            CHECK(validate_fields(*def, fields, true).ok());
        }
        if (t.table == "facility") facilities = t.rows.size();
        if (t.table == "instrument_item") items = t.rows.size();
    }
    CHECK(facilities == 10);
    CHECK(items >= 45);
}

TEST_CASE("Values are validated by field type", "[schema]") {
    const TableDef& session = *Schema::builtin().table("skill_transfer_session");
    const FieldDef& duration = *session.field("duration_minutes");
    CHECK(validate_value(duration, 90).ok());
    CHECK(validate_value(duration, 0).code() == ErrorCode::InvalidValue);
    CHECK(validate_value(duration, 721).code() == ErrorCode::InvalidValue);
    CHECK(validate_value(duration, "90").code() == ErrorCode::InvalidValue);
    CHECK(validate_value(duration, nullptr).code() == ErrorCode::InvalidValue);  // required

    const TableDef& assessment = *Schema::builtin().table("needs_assessment");
    CHECK(validate_value(*assessment.field("visit_date"), "2026-02-29").code() == ErrorCode::InvalidValue);
    CHECK(validate_value(*assessment.field("visit_date"), "2028-02-29").ok());
    CHECK(validate_value(*assessment.field("visit_date"), "20-11-2026").code() == ErrorCode::InvalidValue);
    CHECK(validate_value(*assessment.field("status"), "submitted").ok());
    CHECK(validate_value(*assessment.field("status"), "finished").code() == ErrorCode::InvalidValue);

    CHECK(validate_fields(assessment, {{"no_such_field", 1}}, false).code() == ErrorCode::UnknownField);
    CHECK(validate_fields(assessment, {{"_deleted", "yes"}}, false).code() == ErrorCode::InvalidValue);
    CHECK(validate_fields(assessment, {{"status", "draft"}}, true).code() == ErrorCode::InvalidValue);  // required
    CHECK(validate_fields(assessment, {{"_deleted", true}}, true).ok());
}

TEST_CASE("Schema documents with mistakes are refused", "[schema]") {
    CHECK_FALSE(Schema::parse("not json").ok());
    CHECK_FALSE(Schema::parse(R"({"schema_version":1,"tables":[{"name":"t","class":"weird","fields":[]}]})").ok());
    CHECK_FALSE(Schema::parse(R"({"schema_version":1,"tables":[{"name":"t","class":"editable","fields":[{"name":"id","type":"text"}]}]})").ok());
    CHECK_FALSE(Schema::parse(R"({"schema_version":1,"tables":[{"name":"t","class":"sealed","fields":[]}]})").ok());
    CHECK(Schema::parse(R"({"schema_version":1,"tables":[{"name":"t","class":"editable","fields":[{"name":"a","type":"int"}]}]})").ok());
}

TEST_CASE("A newer schema upgrades an existing database in place without losing a row", "[schema][sqlite]") {
    const auto path = std::filesystem::temp_directory_path() / ("ubuzima_upgrade_" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path);
    auto v1 = Schema::parse(R"({"schema_version":1,"tables":[
        {"name":"need","class":"editable","scope":"facility_id","fields":[
            {"name":"facility_id","type":"text","required":true},{"name":"title","type":"text"}]}]})");
    auto v2 = Schema::parse(R"({"schema_version":2,"tables":[
        {"name":"need","class":"editable","scope":"facility_id","fields":[
            {"name":"facility_id","type":"text","required":true},{"name":"title","type":"text"},
            {"name":"priority","type":"enum","values":["high","low"]}]},
        {"name":"trainee","class":"editable","scope":"facility_id","fields":[
            {"name":"facility_id","type":"text","required":true}]}]})");
    REQUIRE(v1.ok());
    REQUIRE(v2.ok());
    {
        auto db = sql::Database::open(path.string());
        REQUIRE(db.ok());
        REQUIRE(sql::ensure_tables(*db, *v1, {"_v TEXT NOT NULL DEFAULT '{}'"}).ok());
        REQUIRE(db->exec("INSERT INTO need(id, facility_id, title) VALUES ('n1','fac-butaro','Anaesthesia cover')").ok());
    }
    {
        auto db = sql::Database::open(path.string());
        REQUIRE(db.ok());
        REQUIRE(sql::ensure_tables(*db, *v2, {"_v TEXT NOT NULL DEFAULT '{}'"}).ok());
        auto stmt = db->prepare("SELECT title, priority, _v FROM need WHERE id='n1'");
        REQUIRE(stmt.ok());
        auto row = stmt->step();
        REQUIRE(row.ok());
        REQUIRE(*row);
        CHECK(stmt->column_text(0) == "Anaesthesia cover");
        CHECK(stmt->is_null(1));
        CHECK(stmt->column_text(2) == "{}");
        REQUIRE(db->exec("INSERT INTO trainee(id, facility_id) VALUES ('t1','fac-butaro')").ok());
    }
    std::filesystem::remove(path);
    std::filesystem::remove(path.string() + "-wal");
    std::filesystem::remove(path.string() + "-shm");
}
