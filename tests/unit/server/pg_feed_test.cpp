// Ubuzima Sync — MIT licence.
// The PostgreSQL store with several processes on one database: the change feed cannot skip
// (writers of two stores, one stalling inside its transaction after taking its seq, while
// readers poll like devices), each open is its own node, opening races nothing, the feed epoch
// follows the cluster, and a busy pool answers Busy. Hidden ("[.]") in the plain run: the
// ubuzima_server_tests_pg ctest entry runs them (scripts/test-postgres.sh).
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "server_test_support.hpp"

#ifdef UBUZIMA_WITH_POSTGRESQL
#include "storage/pg_txn.hpp"

using namespace ubuzima;
using namespace ubuzima::server;
using namespace ubuzima::server::test;

namespace {

std::unique_ptr<PgStore> open_store(const PgTestDatabase& db, int pool_size = 8, int checkout_timeout_ms = 5000) {
    PgStoreOptions o = db.options(pool_size);
    o.checkout_timeout_ms = checkout_timeout_ms;
    auto s = PgStore::open(pg_test_url(), o);
    if (!s.ok()) FAIL(s.status().to_string());
    return std::move(*s);
}

const schema::TableDef& any_table() { return schema::Schema::builtin().tables().front(); }

/// Appends one row to the feed and writes it, in one transaction; `stall` sleeps after the seq
/// is taken and before the commit. Returns the seq (0 when the write failed).
std::int64_t append_row(PgStore& store, const std::string& id, bool stall = false) {
    std::int64_t seq = 0;
    Status s = store.write([&](WriteTxn& tx) -> Status {
        auto taken = tx.append_feed(any_table().name, id, std::nullopt);
        if (!taken.ok()) return taken.status();
        if (stall) {
            auto slept = dynamic_cast<PgTxn&>(tx).connection().query("SELECT pg_sleep(1)");
            if (!slept.ok()) return slept.status();
        }
        StoredRow row;
        row.id = id;
        row.seq = *taken;
        UBUZIMA_TRY(tx.write_row(any_table(), row));
        seq = *taken;
        return {};
    });
    return s.ok() ? seq : 0;
}

}  // namespace

TEST_CASE("PostgreSQL: the change feed cannot skip with concurrent writers of two processes", "[.][postgres][feed]") {
    if (!on_postgres()) FAIL("needs UBUZIMA_TEST_PG (scripts/test-postgres.sh)");
    PgTestDatabase db;
    std::unique_ptr<PgStore> stores[2] = {open_store(db), open_store(db)};
    REQUIRE(stores[0]->node_id() != stores[1]->node_id());

    constexpr int kWriters = 8, kRowsPerWriter = 30, kReaders = 4;
    std::mutex committed_mutex;
    std::map<std::string, std::int64_t> committed;  // row id -> seq
    std::atomic<int> failed_writes{0};
    std::atomic<bool> writers_done{false};

    auto record = [&](const std::string& id, std::int64_t seq) {
        if (seq == 0) {
            ++failed_writes;
            return;
        }
        std::lock_guard<std::mutex> lock(committed_mutex);
        committed[id] = seq;
    };

    struct Seen {
        std::vector<std::int64_t> seqs;
        std::map<std::string, int> times;
        std::map<std::string, std::int64_t> seq_of;
        bool increasing = true;
        std::string error;
    };
    std::vector<Seen> seen(kReaders);
    std::vector<std::thread> readers;
    for (int r = 0; r < kReaders; ++r) {
        readers.emplace_back([&, r] {
            PgStore& store = *stores[r % 2];
            Seen& mine = seen[static_cast<std::size_t>(r)];
            std::int64_t cursor = 0;
            for (;;) {
                const bool last_round = writers_done.load();
                std::vector<FeedEntry> page;
                Status s = store.read([&](ReadTxn& tx) -> Status {
                    auto got = tx.feed_after(cursor, nullptr, 7);  // small pages: many polls
                    if (!got.ok()) return got.status();
                    page = std::move(*got);
                    return {};
                });
                if (!s.ok()) {
                    mine.error = s.to_string();
                    return;
                }
                for (const FeedEntry& e : page) {
                    if (e.seq <= cursor) mine.increasing = false;
                    cursor = e.seq;  // a device moves its cursor past what it was served
                    mine.seqs.push_back(e.seq);
                    ++mine.times[e.row_id];
                    mine.seq_of[e.row_id] = e.seq;
                }
                if (page.empty() && last_round) return;  // drained after the last commit
                if (page.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        });
    }

    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
        writers.emplace_back([&, w] {
            PgStore& store = *stores[w % 2];
            for (int i = 0; i < kRowsPerWriter; ++i) {
                const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
                record(id, append_row(store, id));
            }
        });
    }
    // The staller: takes its seq, then sleeps a second inside the transaction, three times
    // while the others write. A feed that let readers pass an uncommitted seq loses these rows.
    std::thread staller([&] {
        for (int i = 0; i < 3; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(150));
            const std::string id = "stalled-" + std::to_string(i);
            record(id, append_row(*stores[i % 2], id, true));
        }
    });
    for (std::thread& t : writers) t.join();
    staller.join();
    writers_done = true;
    for (std::thread& t : readers) t.join();

    CHECK(failed_writes == 0);
    REQUIRE(committed.size() == static_cast<std::size_t>(kWriters * kRowsPerWriter + 3));
    for (int r = 0; r < kReaders; ++r) {
        const Seen& mine = seen[static_cast<std::size_t>(r)];
        INFO("reader " << r << " " << mine.error);
        CHECK(mine.error.empty());
        CHECK(mine.increasing);
        std::size_t lost = 0, duplicated = 0, wrong_seq = 0;
        for (const auto& [id, seq] : committed) {
            auto it = mine.times.find(id);
            if (it == mine.times.end()) ++lost;
            else if (it->second != 1) ++duplicated;
            else if (mine.seq_of.at(id) != seq) ++wrong_seq;
        }
        CHECK(lost == 0);
        CHECK(duplicated == 0);
        CHECK(wrong_seq == 0);
        CHECK(mine.times.size() == committed.size());  // nothing seen that was not committed
    }
}

TEST_CASE("PostgreSQL: stores opening together share the tables; each is its own node; the clock never goes back",
          "[.][postgres][store]") {
    if (!on_postgres()) FAIL("needs UBUZIMA_TEST_PG (scripts/test-postgres.sh)");
    PgTestDatabase db;
    // Four processes start at once on an empty database: the DDL lock lets one create the
    // tables; the others find them.
    constexpr int kOpeners = 4;
    std::vector<std::unique_ptr<PgStore>> stores(kOpeners);
    std::vector<std::string> errors(kOpeners);
    {
        std::vector<std::thread> openers;
        for (int i = 0; i < kOpeners; ++i)
            openers.emplace_back([&, i] {
                PgStoreOptions o = db.options(2);
                auto s = PgStore::open(pg_test_url(), o);
                if (s.ok()) stores[static_cast<std::size_t>(i)] = std::move(*s);
                else errors[static_cast<std::size_t>(i)] = s.status().to_string();
            });
        for (std::thread& t : openers) t.join();
    }
    std::set<sync::NodeId> nodes;
    for (int i = 0; i < kOpeners; ++i) {
        INFO(errors[static_cast<std::size_t>(i)]);
        REQUIRE(stores[static_cast<std::size_t>(i)]);
        nodes.insert(stores[static_cast<std::size_t>(i)]->node_id());
    }
    CHECK(nodes.size() == static_cast<std::size_t>(kOpeners));

    // Data written through one store; a later open neither fails nor re-creates anything.
    REQUIRE(append_row(*stores[0], "kept") != 0);
    const sync::Hlc clock = sync::make_hlc(1'900'000'000'000, 7);
    REQUIRE(stores[1]->write([&](WriteTxn& tx) { return tx.save_clock(clock); }).ok());
    CHECK(stores[1]->saved_clock() == clock);
    REQUIRE(stores[2]->write([&](WriteTxn& tx) { return tx.save_clock(sync::make_hlc(1'800'000'000'000, 0)); }).ok());
    auto later = open_store(db);
    CHECK(nodes.count(later->node_id()) == 0);
    CHECK(later->saved_clock() == clock);  // the newest clock any node saved
    REQUIRE(later->read([&](ReadTxn& tx) -> Status {
                    auto row = tx.read_row(any_table(), "kept");
                    if (!row.ok()) return row.status();
                    CHECK(row->has_value());
                    auto feed = tx.feed_after(0, nullptr, 100);
                    if (!feed.ok()) return feed.status();
                    CHECK(feed->size() == 1);
                    return {};
                }).ok());
    auto nodes_table = db.connect()->query_once("SELECT count(*) FROM srv_nodes");
    REQUIRE(nodes_table.ok());
    CHECK(nodes_table->integer(0, 0) == kOpeners + 1);
}

TEST_CASE("PostgreSQL: a read callback sees one snapshot; a restore into another cluster starts a new feed epoch",
          "[.][postgres][store]") {
    if (!on_postgres()) FAIL("needs UBUZIMA_TEST_PG (scripts/test-postgres.sh)");
    PgTestDatabase db;
    auto store = open_store(db);
    REQUIRE(append_row(*store, "a") != 0);
    REQUIRE(store->read([&](ReadTxn& tx) -> Status {
                    auto before = tx.feed_after(0, nullptr, 100);
                    if (!before.ok()) return before.status();
                    // Another request commits meanwhile (writes never wait for readers).
                    std::thread other([&] { CHECK(append_row(*store, "b") != 0); });
                    other.join();
                    auto after = tx.feed_after(0, nullptr, 100);
                    if (!after.ok()) return after.status();
                    CHECK(before->size() == 1);
                    CHECK(after->size() == 1);
                    return {};
                }).ok());
    CHECK(store->read([&](ReadTxn& tx) -> Status {
                   auto now = tx.feed_after(0, nullptr, 100);
                   if (!now.ok()) return now.status();
                   CHECK(now->size() == 2);
                   return {};
               }).ok());

    CHECK(store->feed_epoch().empty());
    store.reset();
    CHECK(open_store(db)->feed_epoch().empty());  // the same cluster: the epoch stays
    auto insider = db.connect();
    auto recorded = insider->query_once("SELECT value FROM srv_meta WHERE key = 'system_identifier'");
    REQUIRE(recorded.ok());
    if (recorded->rows() == 0) {
        WARN("pg_control_system() not permitted for this role: the cluster check is off");
        return;
    }
    // What a dump restored into another cluster looks like: another system identifier.
    REQUIRE(insider->exec("UPDATE srv_meta SET value = '1' WHERE key = 'system_identifier'").ok());
    CHECK(open_store(db)->feed_epoch() == "1");
    CHECK(open_store(db)->feed_epoch() == "1");  // once
    auto bumping = open_store(db);
    std::string bumped;
    REQUIRE(bumping->write([&](WriteTxn& tx) -> Status {
                       auto e = tx.bump_feed_epoch();
                       if (!e.ok()) return e.status();
                       bumped = *e;
                       return {};
                   }).ok());
    CHECK(bumped == "2");
    CHECK(bumping->feed_epoch() == "1");  // from the next open
    CHECK(open_store(db)->feed_epoch() == "2");
}

TEST_CASE("PostgreSQL: a request that finds every pooled connection busy is answered Busy", "[.][postgres][store]") {
    if (!on_postgres()) FAIL("needs UBUZIMA_TEST_PG (scripts/test-postgres.sh)");
    PgTestDatabase db;
    auto store = open_store(db, 1, 200);
    std::atomic<bool> holding{false}, release{false};
    std::thread holder([&] {
        CHECK(store->read([&](ReadTxn&) -> Status {
                       holding = true;
                       while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
                       return {};
                   }).ok());
    });
    while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    Status busy = store->read([](ReadTxn&) { return Status(); });
    CHECK(busy.code() == ErrorCode::Busy);
    CHECK(http_status(busy.code()) == 503);
    release = true;
    holder.join();
    CHECK(store->read([](ReadTxn&) { return Status(); }).ok());  // the connection came back
    // A broken connection is replaced: kill the store's backend, then use the store again.
    REQUIRE(db.connect()->exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND application_name = 'ubuzima-server' AND pid <> pg_backend_pid()").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Status after_kill = store->read([](ReadTxn& tx) -> Status { return tx.count_users().status(); });
    if (!after_kill.ok()) CHECK(after_kill.code() == ErrorCode::Unavailable);  // the request that found it dead
    CHECK(store->read([](ReadTxn& tx) -> Status { return tx.count_users().status(); }).ok());
}

#endif  // UBUZIMA_WITH_POSTGRESQL
