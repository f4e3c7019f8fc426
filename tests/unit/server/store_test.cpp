// Ubuzima Sync — MIT licence.
// The SQLite store survives a restart: rows, versions, users, node id, feed; seeds stay single;
// a store from before the feed's exit entries, or before login families, is upgraded in place.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"
#include "ubuzima/schema/sqlite.hpp"

using namespace ubuzima::server::test;

TEST_CASE("data, users and the feed survive reopening the store", "[server][store]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    const std::uint64_t node = 0xa1a1a1a1a1a1a1a1ull;
    const std::string v1 = s.version(node);
    s.sync(alice, node, json::array({change("need", "n1", v1, need_fields("fac-kabgayi"))}), "batch-1");
    json cursor = nullptr;
    s.pull_all(coord, 0xb2, cursor);
    const auto node_id = s.store->node_id();
    const auto clock_before = s.store->saved_clock();
    REQUIRE(clock_before != 0);

    s.reopen();
    // SQLite: the store's node id is its own for life. PostgreSQL: every open is a new node
    // (several processes share one database and must never stamp with the same id).
    if (on_postgres()) CHECK(s.store->node_id() != node_id);
    else CHECK(s.store->node_id() == node_id);
    CHECK(s.store->saved_clock() >= clock_before);
    // Seeds were not inserted again and nothing else moved: the feed is where it was.
    const std::string coord2 = s.login("cora", "pw-cora-secret");
    Reply nothing = s.sync(coord2, 0xb2, nullptr, "", cursor);
    CHECK(nothing.body["changes"].empty());
    CHECK(nothing.body["cursor"] == cursor);
    // Tokens survive too.
    CHECK(s.sync(alice, node).status == 200);

    json from_scratch = nullptr;
    json row = find_row(s.pull_all(coord2, 0xc3, from_scratch), "need", "n1");
    REQUIRE(row.is_object());
    CHECK(row["f"]["title"] == json::array({"Anaesthesia training", v1}));
    // The batch ledger survived: a replay still applies nothing.
    Reply replay = s.sync(alice, node, json::array({change("need", "n1", s.version(node), {{"title", "x"}})}), "batch-1");
    CHECK(replay.body["push"]["applied"] == 1);
    CHECK(s.sync(coord2, 0xb2, nullptr, "", cursor).body["changes"].empty());
    // New writes get seqs after every old one.
    s.sync(alice, node, json::array({change("need", "n2", s.version(node), need_fields("fac-kabgayi"))}));
    CHECK(find_row(s.pull_all(coord2, 0xb2, cursor), "need", "n2").is_object());
}

TEST_CASE("a store whose feed predates exit entries is upgraded in place", "[server][store][sqlite]") {
    UBUZIMA_SQLITE_ONLY("upgrade of an SQLite file from the first release");
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string dana = s.user_token("dana", "assessor", {"fac-kabgayi", "fac-butaro"});
    const std::uint64_t node = 0xd1;
    s.sync(dana, node, json::array({change("need", "n1", s.version(node), need_fields("fac-kabgayi"))}));
    json cursor = nullptr;
    REQUIRE(find_row(s.pull_all(alice, 0xa1, cursor), "need", "n1").is_object());

    s.reopen([](const std::string& path) {
        auto db = ubuzima::sql::Database::open(path, {});
        REQUIRE(db.ok());
        // srv_feed as the first release made it: no gone column, one unique entry per row.
        REQUIRE(db->exec(R"SQL(
            CREATE TABLE old_feed AS SELECT seq, tbl, row_id, scope FROM srv_feed;
            DROP TABLE srv_feed;
            CREATE TABLE srv_feed (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL,
                row_id TEXT NOT NULL, scope TEXT);
            CREATE UNIQUE INDEX srv_feed_row ON srv_feed (tbl, row_id);
            INSERT INTO srv_feed SELECT * FROM old_feed;
            DROP TABLE old_feed;)SQL").ok());
    });
    const std::string dana2 = s.login("dana", "pw-dana-secret");
    const std::string alice2 = s.login("alice", "pw-alice-secret");
    CHECK(s.pull_all(alice2, 0xa1, cursor).empty());  // nothing moved in the upgrade
    s.sync(dana2, node, json::array({change("need", "n1", s.version(node), {{"facility_id", "fac-butaro"}})}));
    json gone = find_row(s.pull_all(alice2, 0xa1, cursor), "need", "n1");
    CHECK(gone == json{{"t", "need"}, {"id", "n1"}, {"gone", true}});
    // Back in Kabgayi: the exit entry goes and the row comes back whole.
    s.sync(dana2, node, json::array({change("need", "n1", s.version(node), {{"facility_id", "fac-kabgayi"}})}));
    json back = find_row(s.pull_all(alice2, 0xa1, cursor), "need", "n1");
    REQUIRE(back.is_object());
    CHECK(back["f"].contains("title"));
    json from_scratch = nullptr;
    int entries = 0;
    for (const json& c : s.pull_all(alice2, 0xa2, from_scratch)) entries += c["id"] == "n1";
    CHECK(entries == 1);
}

TEST_CASE("tokens from before login families go in the upgrade; the accounts their devices belong to stay",
          "[server][store][auth][sqlite]") {
    UBUZIMA_SQLITE_ONLY("upgrade of an SQLite file from before login families");
    TestServer s;
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    s.user_token("bob", "assessor", {"fac-kabgayi"});
    const std::string tablet = "00000000000000a7";
    const std::string old_access = s.login("alice", "pw-alice-secret", tablet);
    const std::string alice_id = s.login_reply("alice", "pw-alice-secret", "dev-alice").body["user"]["id"];
    const std::string bob_id = s.login_reply("bob", "pw-bob-secret", "dev-bob").body["user"]["id"];

    s.reopen([&](const std::string& path) {
        auto db = ubuzima::sql::Database::open(path, {});
        REQUIRE(db.ok());
        // srv_tokens as the release before families made it, and none of the tables that came
        // with them. The tablet's id was Bob's once, then Alice's: the latest token decides.
        REQUIRE(db->exec(R"SQL(
            DROP TABLE srv_tokens; DROP TABLE srv_families; DROP TABLE srv_devices;
            CREATE TABLE srv_tokens (hash TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL,
                user_id TEXT NOT NULL, device_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
                parent TEXT NOT NULL DEFAULT '');)SQL")
                    .ok());
        auto insert = db->prepare("INSERT INTO srv_tokens (hash, kind, user_id, device_id, expires_at) VALUES (?,?,?,?,?)");
        REQUIRE(insert.ok());
        for (const auto& [hash, user, expires] : std::vector<std::tuple<std::string, std::string, std::int64_t>>{
                 {"h1", bob_id, 1000}, {"h2", alice_id, 2000}, {"h3", bob_id, 1500}}) {
            REQUIRE(insert->bind(1, hash).bind(2, "refresh").bind(3, user).bind(4, tablet).bind(5, expires).run().ok());
        }
    });

    CHECK(s.call("GET", "/v1/admin/devices", "", old_access).status == 401);  // the old tokens went
    Reply bob = s.login_reply("bob", "pw-bob-secret", tablet);
    CHECK(bob.status == 403);
    CHECK(bob.body["error"]["code"] == "wrong_node");
    CHECK(s.login_reply("alice", "pw-alice-secret", tablet).status == 200);
    auto db = ubuzima::sql::Database::open(s.db_path(), {});
    REQUIRE(db.ok());
    auto left = db->query_text("SELECT name FROM sqlite_master WHERE name = 'srv_tokens_before_families'");
    REQUIRE(left.ok());
    CHECK_FALSE(left->has_value());
}

TEST_CASE("a store from before rows knew their last move starts a new feed epoch: devices pull everything once more",
          "[server][store][move]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("coord", "coordinator", {});
    const std::uint64_t node = 0xa1;
    s.sync(alice, node, json::array({change("need", "n1", s.version(node), need_fields("fac-kabgayi"))}));
    json cursor = nullptr, coord_cursor = nullptr;
    s.pull_all(alice, node, cursor);
    s.pull_all(coord, 0xc1, coord_cursor);
    CHECK(s.store->feed_epoch().empty());
    s.reopen();
    CHECK(s.store->feed_epoch().empty());  // a store of this release keeps its epoch
    CHECK(s.pull_all(alice, node, cursor).empty());
    UBUZIMA_SQLITE_ONLY("upgrade of an SQLite file from before _moved");

    s.reopen([](const std::string& path) {
        auto db = ubuzima::sql::Database::open(path, {});
        REQUIRE(db.ok());
        REQUIRE(db->exec("ALTER TABLE need DROP COLUMN _moved").ok());
    });
    CHECK(s.store->feed_epoch() == "1");
    // Whatever a device lost to a move before the fix, the pull from its old cursor restarts
    // and brings every row whole, its own fields included; "see all" cursors restart too.
    const std::string alice2 = s.login("alice", "pw-alice-secret");
    Reply r = s.sync(alice2, node, nullptr, "", cursor);
    REQUIRE(r.status == 200);
    CHECK(r.body.contains("scope"));
    json n1 = find_row(s.pull_all(alice2, node, cursor), "need", "n1");
    REQUIRE(n1.is_object());
    CHECK(n1["f"].size() == need_fields("fac-kabgayi").size());
    CHECK(s.pull_all(alice2, node, cursor).empty());
    Reply c = s.sync(s.login("coord", "pw-coord-secret"), 0xc1, nullptr, "", coord_cursor);
    CHECK(c.body.contains("scope"));
    s.reopen();
    CHECK(s.store->feed_epoch() == "1");  // once
}
