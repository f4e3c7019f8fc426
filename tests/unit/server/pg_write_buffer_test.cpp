// Ubuzima Sync — MIT licence.
// The PostgreSQL store's write buffer (storage/pg_write_buffer.hpp): rows and live feed entries
// sent as one statement per table and one for the feed at commit. Values of every field type
// survive the JSON and array encodings; a transaction reads its own buffered writes; a row
// written twice in one transaction has one live entry at its later seq; seqs of later
// transactions stay above everything committed; a NUL refuses the whole transaction. Hidden
// ("[.]") in the plain run: ubuzima_server_tests_pg runs it (scripts/test-postgres.sh).
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

#ifdef UBUZIMA_WITH_POSTGRESQL
#include "storage/pg_txn.hpp"

using namespace ubuzima;
using namespace ubuzima::server;
using namespace ubuzima::server::test;
using nlohmann::json;

namespace {

const schema::Schema& typed_schema() {
    static const schema::Schema s = [] {
        auto parsed = schema::Schema::parse(R"({"schema_version":1,"tables":[
            {"name":"every_type","class":"editable","scope":"facility_id","fields":[
                {"name":"facility_id","type":"text","required":true},
                {"name":"t","type":"text"},{"name":"i","type":"int"},{"name":"r","type":"real"},
                {"name":"b","type":"bool"},{"name":"d","type":"date"},{"name":"ts","type":"ts"},
                {"name":"j","type":"json"},{"name":"e","type":"enum","values":["x","y"]}]}]})");
        if (!parsed.ok()) throw std::runtime_error(parsed.status().to_string());
        return std::move(*parsed);
    }();
    return s;
}

std::unique_ptr<PgStore> open_store(const PgTestDatabase& db) {
    auto s = PgStore::open(pg_test_url(), db.options(2), &typed_schema());
    if (!s.ok()) FAIL(s.status().to_string());
    return std::move(*s);
}

StoredRow make_row(const std::string& id, std::map<std::string, sync::Value> values, std::int64_t seq) {
    StoredRow row;
    row.id = id;
    for (auto& [field, value] : values) {
        row.versions[field] = sync::Version{static_cast<sync::Hlc>(1000 + seq), 0x42};
        row.seqs[field] = seq;
        row.values[field] = std::move(value);
    }
    row.seq = seq;
    row.author = "user-1";
    return row;
}

/// Writes `rows` of every_type in one transaction, each with a feed entry (their scope and seq
/// are set as the store keeps them).
Status write_rows(PgStore& store, std::vector<StoredRow>& rows) {
    return store.write([&](WriteTxn& tx) -> Status {
        const schema::TableDef& t = *typed_schema().table("every_type");
        for (StoredRow& row : rows) {
            row.scope = row.values.count("facility_id") ? std::optional<std::string>(row.values["facility_id"].get<std::string>())
                                                        : std::nullopt;
            auto seq = tx.append_feed(t.name, row.id, row.scope);
            if (!seq.ok()) return seq.status();
            row.seq = *seq;
            UBUZIMA_TRY(tx.write_row(t, row));
        }
        return {};
    });
}

}  // namespace

TEST_CASE("PostgreSQL write buffer: every field type and awkward text survive one statement per table",
          "[.][postgres][store]") {
    PgTestDatabase db;
    auto store = open_store(db);
    const schema::TableDef& t = *typed_schema().table("every_type");
    // Text that the array and JSON encodings must carry as is.
    const std::vector<std::string> awkward = {"plain", "with \"quotes\"", "back\\slash\\", "{braces,comma}", "NULL",
                                              "", "line\nbreak\ttab", "Ubuzima — ubuzima bwiza ✓", " padded "};
    std::vector<StoredRow> rows;
    for (std::size_t k = 0; k < awkward.size(); ++k) {
        rows.push_back(make_row("row " + awkward[k] + " #" + std::to_string(k),
                                {{"facility_id", "fac-" + awkward[k]},
                                 {"t", awkward[k]},
                                 {"i", std::int64_t{9007199254740993} * (k % 2 ? -1 : 1)},  // beyond a double's 2^53
                                 {"r", 0.1 + static_cast<double>(k) * 1e-300},
                                 {"b", k % 2 == 0},
                                 {"d", "2026-12-0" + std::to_string(1 + k % 9)},
                                 {"ts", std::int64_t{1780000000000} + static_cast<std::int64_t>(k)},
                                 {"j", json{{"k", awkward[k]}, {"n", {1, 2.5, nullptr}}}},
                                 {"e", k % 2 ? "x" : "y"}},
                                0));
    }
    rows.push_back(make_row("nulls and a tombstone", {{"facility_id", "fac-1"}, {"t", nullptr}, {"i", nullptr}}, 0));
    rows.back().values["_deleted"] = true;
    rows.back().versions["_deleted"] = sync::Version{5000, 0x42};
    rows.back().overwrote["t"] = sync::Version{999, 0x43};
    REQUIRE(write_rows(*store, rows).ok());

    std::vector<std::string> ids;
    for (const StoredRow& r : rows) ids.push_back(r.id);
    ids.push_back("never written");
    REQUIRE(store->read([&](ReadTxn& tx) -> Status {
                   auto all = tx.read_rows(t, ids);
                   REQUIRE(all.ok());
                   CHECK(all->size() == rows.size());
                   CHECK_FALSE(all->count("never written"));
                   for (const StoredRow& want : rows) {
                       auto one = tx.read_row(t, want.id);
                       REQUIRE(one.ok());
                       REQUIRE(one->has_value());
                       const StoredRow& got = **one;
                       INFO(want.id);
                       CHECK(got.values == want.values);
                       CHECK(got.versions == want.versions);
                       CHECK(got.seqs == want.seqs);
                       CHECK(got.overwrote == want.overwrote);
                       CHECK(got.scope == want.scope);
                       CHECK(got.author == want.author);
                       CHECK(got.seq == want.seq);
                       REQUIRE(all->count(want.id));
                       CHECK(all->at(want.id).values == got.values);
                       CHECK(all->at(want.id).seq == got.seq);
                   }
                   auto feed = tx.feed_after(0, nullptr, 100);
                   REQUIRE(feed.ok());
                   CHECK(feed->size() == rows.size());
                   return {};
               })
                .ok());
}

TEST_CASE("PostgreSQL write buffer: a transaction reads its own writes; a row written twice has one entry at the later seq",
          "[.][postgres][store][feed]") {
    PgTestDatabase db;
    auto store = open_store(db);
    const schema::TableDef& t = *typed_schema().table("every_type");
    std::int64_t first = 0, second = 0;
    REQUIRE(store->write([&](WriteTxn& tx) -> Status {
                     auto a = tx.append_feed(t.name, "r1", std::string("fac-1"));
                     REQUIRE(a.ok());
                     first = *a;
                     StoredRow row = make_row("r1", {{"facility_id", "fac-1"}, {"t", "one"}}, first);
                     row.scope = "fac-1";
                     UBUZIMA_TRY(tx.write_row(t, row));
                     // Buffered, not sent: this transaction still sees it.
                     auto seen = tx.read_row(t, "r1");
                     REQUIRE(seen.ok());
                     REQUIRE(seen->has_value());
                     CHECK((*seen)->values.at("t") == "one");
                     auto b = tx.append_feed(t.name, "r1", std::string("fac-1"));
                     REQUIRE(b.ok());
                     second = *b;
                     CHECK(second > first);
                     row.values["t"] = "two";
                     row.seq = second;
                     UBUZIMA_TRY(tx.write_row(t, row));
                     auto both = tx.read_rows(t, {"r1", "r2"});
                     REQUIRE(both.ok());
                     CHECK(both->size() == 1);
                     CHECK(both->at("r1").values.at("t") == "two");
                     // A feed read inside the transaction sends the buffer first.
                     auto feed = tx.feed_after(0, nullptr, 10);
                     REQUIRE(feed.ok());
                     REQUIRE(feed->size() == 1);
                     CHECK(feed->front().seq == second);
                     auto head = tx.feed_head();
                     REQUIRE(head.ok());
                     CHECK(*head == second);
                     return {};
                 })
                .ok());
    // A rolled-back transaction leaves nothing; the next committed seq is above every committed one.
    REQUIRE_FALSE(store->write([&](WriteTxn& tx) -> Status {
                           auto a = tx.append_feed(t.name, "r9", std::nullopt);
                           REQUIRE(a.ok());
                           UBUZIMA_TRY(tx.write_row(t, make_row("r9", {{"t", "gone"}}, *a)));
                           return Status(ErrorCode::Conflict, "changed my mind");
                       })
                      .ok());
    std::vector<StoredRow> later = {make_row("r2", {{"facility_id", "fac-2"}, {"t", "later"}}, 0)};
    REQUIRE(write_rows(*store, later).ok());
    REQUIRE(store->read([&](ReadTxn& tx) -> Status {
                   auto gone = tx.read_row(t, "r9");
                   REQUIRE(gone.ok());
                   CHECK_FALSE(gone->has_value());
                   auto feed = tx.feed_after(0, nullptr, 10);
                   REQUIRE(feed.ok());
                   REQUIRE(feed->size() == 2);
                   CHECK(feed->at(0).row_id == "r1");
                   CHECK(feed->at(0).seq == second);
                   CHECK(feed->at(1).row_id == "r2");
                   CHECK(feed->at(1).seq > second);
                   auto r1 = tx.read_row(t, "r1");
                   REQUIRE(r1.ok());
                   CHECK((**r1).values.at("t") == "two");
                   return {};
               })
                .ok());
}

TEST_CASE("PostgreSQL write buffer: a NUL in any text refuses the whole transaction and writes nothing",
          "[.][postgres][store]") {
    PgTestDatabase db;
    auto store = open_store(db);
    const schema::TableDef& t = *typed_schema().table("every_type");
    for (const char* field : {"t", "d"}) {
        std::vector<StoredRow> rows = {make_row("fine", {{"facility_id", "fac-1"}, {"t", "ok"}}, 0),
                                       make_row("bad", {{"facility_id", "fac-1"}}, 0)};
        rows[1].values[field] = std::string("a\0b", 3);
        rows[1].versions[field] = sync::Version{77, 0x42};
        const Status s = write_rows(*store, rows);
        INFO(field);
        CHECK(s.code() == ErrorCode::InvalidValue);
    }
    REQUIRE(store->read([&](ReadTxn& tx) -> Status {
                   auto any = tx.read_rows(t, {"fine", "bad"});
                   REQUIRE(any.ok());
                   CHECK(any->empty());
                   auto feed = tx.feed_after(0, nullptr, 10);
                   REQUIRE(feed.ok());
                   CHECK(feed->empty());
                   return {};
               })
                .ok());
}

#endif  // UBUZIMA_WITH_POSTGRESQL
