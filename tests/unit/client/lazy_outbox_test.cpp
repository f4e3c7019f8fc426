// Ubuzima Sync — MIT licence.
// A row's first write leaves its outbox `fields` empty (the entry refers to the row); whatever
// changes or removes the row first copies them in, so every entry still pushes what was written.
#include <catch2/catch.hpp>

#include "storage/store.hpp"
#include "support/temp_db.hpp"
#include "sync/session.hpp"
#include "ubuzima/sync/hlc.hpp"
#include "ubuzima/sync/version.hpp"

using nlohmann::json;
using ubuzima::DatabaseOptions;
using ubuzima::detail::Store;

namespace {

json need_fields() {
    return json{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"title", "Neonatal care"},
                {"description", "Train \"two\" nurses — é"}, {"priority", "high"}, {"status", "identified"}};
}

std::unique_ptr<Store> open_store(const ubuzima::test::TempDbFile& file) {
    DatabaseOptions options;
    options.path = file.path.string();
    auto store = Store::open(options);
    REQUIRE(store.ok());
    return std::move(*store);
}

std::vector<std::string> outbox_fields(Store& store) {
    std::vector<std::string> out;
    auto stmt = store.db().prepare("SELECT fields FROM _outbox ORDER BY seq");
    REQUIRE(stmt.ok());
    REQUIRE(stmt->each([&](const ubuzima::sql::Statement& q) { out.push_back(q.column_text(0)); }).ok());
    return out;
}

ubuzima::detail::OutgoingBatch batch_of(Store& store) {
    auto batch = ubuzima::detail::prepare_batch(store, 100);
    REQUIRE(batch.ok());
    REQUIRE(batch->has_value());
    return std::move(**batch);
}

json as_json(const std::map<std::string, json>& fields) { return json(fields); }

// A pulled page from a server whose clock is ahead of the device's writes.
ubuzima::sync::SyncResponse pulled(std::vector<ubuzima::sync::RowChange> changes) {
    ubuzima::sync::SyncResponse response;
    response.server_clock = ubuzima::sync::make_hlc(ubuzima::sync::system_wall_ms() + 60'000, 0);
    response.changes = std::move(changes);
    response.cursor = "c1";
    return response;
}

}  // namespace

TEST_CASE("a first write refers to its row and pushes exactly the written fields", "[client][outbox]") {
    ubuzima::test::TempDbFile file("ubuzima_lazy");
    auto store = open_store(file);
    std::lock_guard<std::mutex> lock(store->mutex());
    REQUIRE(store->write(Store::WriteMode::Insert, "need", "n1", need_fields()).ok());
    REQUIRE(store->write(Store::WriteMode::Put, "need", "n2", json{{"facility_id", "fac-gisenyi"},
                                                                   {"need_type", "equipment_procurement"},
                                                                   {"title", "Oxygen"},
                                                                   {"description", "Concentrators"},
                                                                   {"priority", "low"},
                                                                   {"status", "identified"},
                                                                   {"specialty_code", nullptr}})
                .ok());
    CHECK(outbox_fields(*store) == std::vector<std::string>{"", ""});

    const auto batch = batch_of(*store);
    REQUIRE(batch.changes.size() == 2);
    CHECK(as_json(batch.changes[0].fields) == need_fields());
    // An explicit null is a written field too: it keeps its version and is pushed.
    REQUIRE(batch.changes[1].fields.count("specialty_code") == 1);
    CHECK(batch.changes[1].fields.at("specialty_code").is_null());
    CHECK(batch.changes[1].fields.size() == 7);
}

TEST_CASE("an update before the push copies the first write's fields in first", "[client][outbox]") {
    ubuzima::test::TempDbFile file("ubuzima_lazy");
    auto store = open_store(file);
    std::lock_guard<std::mutex> lock(store->mutex());
    REQUIRE(store->write(Store::WriteMode::Insert, "need", "n1", need_fields()).ok());
    REQUIRE(store->write(Store::WriteMode::Update, "need", "n1", json{{"title", "Later title"}}).ok());
    const auto texts = outbox_fields(*store);
    REQUIRE(texts.size() == 2);
    CHECK(json::parse(texts[0]) == need_fields());
    CHECK(json::parse(texts[1]) == json{{"title", "Later title"}});

    const auto batch = batch_of(*store);
    REQUIRE(batch.changes.size() == 2);
    CHECK(as_json(batch.changes[0].fields) == need_fields());  // the inserted title, not the later one
    CHECK(as_json(batch.changes[1].fields) == json{{"title", "Later title"}});
}

TEST_CASE("a removal before the push keeps the inserted fields", "[client][outbox]") {
    ubuzima::test::TempDbFile file("ubuzima_lazy");
    auto store = open_store(file);
    std::lock_guard<std::mutex> lock(store->mutex());
    REQUIRE(store->write(Store::WriteMode::Insert, "need", "n1", need_fields()).ok());
    REQUIRE(store->write(Store::WriteMode::Remove, "need", "n1", nullptr).ok());
    const auto batch = batch_of(*store);
    REQUIRE(batch.changes.size() == 2);
    CHECK(as_json(batch.changes[0].fields) == need_fields());
    CHECK(as_json(batch.changes[1].fields) == json{{"_deleted", true}});
}

TEST_CASE("a pulled value or a purge does not change what a pending first write pushes", "[client][outbox]") {
    ubuzima::test::TempDbFile file("ubuzima_lazy");
    auto store = open_store(file);
    std::lock_guard<std::mutex> lock(store->mutex());
    REQUIRE(store->write(Store::WriteMode::Put, "need", "n1", need_fields()).ok());
    REQUIRE(store->write(Store::WriteMode::Put, "need", "n2", need_fields()).ok());

    // Another device wrote n1's title later (same id chosen by both); n2 moved out of scope.
    const auto remote = ubuzima::sync::Version{ubuzima::sync::make_hlc(ubuzima::sync::system_wall_ms() + 30'000, 0),
                                               0xabcdefULL};
    ubuzima::sync::RowChange title{"need", "n1", {{"title", {json("Remote title"), remote, {}}}}, false};
    ubuzima::sync::RowChange gone{"need", "n2", {}, true};
    auto applied = ubuzima::detail::apply_response(*store, std::nullopt, pulled({title, gone}));
    REQUIRE(applied.ok());
    CHECK((**store->get("need", "n1"))["title"] == "Remote title");
    CHECK_FALSE(store->get("need", "n2")->has_value());

    const auto batch = batch_of(*store);
    REQUIRE(batch.changes.size() == 2);
    CHECK(batch.changes[0].row_id == "n1");
    CHECK(as_json(batch.changes[0].fields) == need_fields());  // the local title: the server journals it
    CHECK(batch.changes[1].row_id == "n2");
    CHECK(as_json(batch.changes[1].fields) == need_fields());  // refused as out_of_scope into _rejected
}

TEST_CASE("reopening recovers the clock from the newest outbox entry", "[client][outbox]") {
    ubuzima::test::TempDbFile file("ubuzima_lazy");
    std::string first;
    {
        auto store = open_store(file);
        std::lock_guard<std::mutex> lock(store->mutex());
        REQUIRE(store->write(Store::WriteMode::Insert, "need", "n1", need_fields()).ok());
        auto meta = store->meta("hlc");
        REQUIRE(meta.ok());
        CHECK_FALSE(meta->has_value());  // a captured write no longer rewrites _meta
        auto v = store->db().prepare("SELECT version FROM _outbox");
        REQUIRE(v.ok());
        REQUIRE(*v->step());
        first = v->column_text(0);
    }
    DatabaseOptions options;
    options.path = file.path.string();
    options.wall_clock = [] { return ubuzima::sync::system_wall_ms() - 3'600'000; };  // an hour behind
    auto store = Store::open(options);
    REQUIRE(store.ok());
    std::lock_guard<std::mutex> lock((*store)->mutex());
    REQUIRE((*store)->write(Store::WriteMode::Update, "need", "n1", json{{"title", "Later"}}).ok());
    auto v = (*store)->db().prepare("SELECT version FROM _outbox ORDER BY seq DESC LIMIT 1");
    REQUIRE(v.ok());
    REQUIRE(*v->step());
    CHECK(v->column_text(0) > first);
}

TEST_CASE("an insert of an existing id is refused without a lookup first", "[client][outbox]") {
    ubuzima::test::TempDbFile file("ubuzima_lazy");
    auto store = open_store(file);
    std::lock_guard<std::mutex> lock(store->mutex());
    REQUIRE(store->write(Store::WriteMode::Insert, "need", "n1", need_fields()).ok());
    REQUIRE(store->write(Store::WriteMode::Remove, "need", "n1", nullptr).ok());
    const auto again = store->write(Store::WriteMode::Insert, "need", "n1", need_fields());
    CHECK(again.code() == ubuzima::ErrorCode::Conflict);
    CHECK(again.message().find("already exists") != std::string::npos);
    CHECK(outbox_fields(*store).size() == 2);  // nothing of the refused insert was kept
}
