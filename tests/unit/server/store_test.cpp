// Ubuzima Sync — MIT licence.
// The SQLite store survives a restart: rows, versions, users, node id, feed; seeds stay single.
#include <catch2/catch.hpp>

#include "server_test_support.hpp"

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
    CHECK(s.store->node_id() == node_id);
    CHECK(s.store->saved_clock() >= clock_before);
    // Seeds were not inserted again and nothing else moved: the feed is where it was.
    const std::string coord2 = s.login("cora", "pw-cora");
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
