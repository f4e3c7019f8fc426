// Ubuzima Sync — MIT licence.
// Retention: batch results and resolved conflicts go after their periods; rows, open conflicts
// and the audit log stay, and a batch replayed after its result went changes nothing.
#include <catch2/catch.hpp>

#include "ops/retention.hpp"
#include "server_test_support.hpp"

using namespace ubuzima;
using namespace ubuzima::server;
using namespace ubuzima::server::test;

namespace {
constexpr std::uint64_t kNodeA = 0xa1a1a1a1a1a1a1a1ull;
constexpr std::uint64_t kNodeB = 0xb2b2b2b2b2b2b2b2ull;
constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

std::string token_at(TestServer& s, const std::string& user, std::uint64_t node) {
    return s.login(user, TestServer::password_of(user), sync::to_hex16(node));
}

/// Count of audit records with `action`.
int audit_count(TestServer& s, const std::string& action) {
    int n = 0;
    REQUIRE(s.store->read([&](ReadTxn& tx) -> Status {
                 auto records = tx.audit_after(0, 100000);
                 if (!records.ok()) return records.status();
                 for (const AuditRecord& r : *records) n += r.action == action;
                 return {};
             }).ok());
    return n;
}

/// Open conflict on need n1.title between two assessors, resolved when `resolve`.
std::int64_t conflict_on(TestServer& s, const std::string& row, bool resolve) {
    const std::string a = token_at(s, "alice", kNodeA);
    const std::string b = token_at(s, "bob", kNodeB);
    const std::string v0 = s.version(kNodeA);
    REQUIRE(s.sync(a, kNodeA, json::array({change("need", row, v0, need_fields("fac-kabgayi"))})).status == 200);
    s.sync(a, kNodeA, json::array({change("need", row, s.version(kNodeA), {{"title", "A"}}, {{"title", v0}})}));
    Reply r = s.sync(b, kNodeB, json::array({change("need", row, s.version(kNodeB), {{"title", "B"}}, {{"title", v0}})}));
    REQUIRE(r.body["push"]["conflicts"].size() == 1);
    Reply open = s.call("GET", "/v1/conflicts?status=open", "", s.admin_token());
    std::int64_t id = 0;
    for (const json& c : open.body["conflicts"])
        if (c["row_id"] == row) id = c["id"].get<std::int64_t>();
    REQUIRE(id != 0);
    if (resolve)
        REQUIRE(s.post("/v1/conflicts/" + std::to_string(id) + "/resolve", {{"value", "decided"}}, s.admin_token()).status ==
                200);
    return id;
}
}  // namespace

TEST_CASE("retention prunes batch results and resolved conflicts after their periods", "[server][retention]") {
    TestServer s;
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    s.user_token("bob", "assessor", {"fac-kabgayi"});
    ServerOptions policy = s.options;
    policy.batch_retention_s = 90 * 24 * 3600;
    policy.conflict_retention_s = 365 * 24 * 3600;

    const std::string a = token_at(s, "alice", kNodeA);
    const json kept_change = change("need", "n-kept", s.version(kNodeA), need_fields("fac-kabgayi", "Kept"));
    Reply first = s.sync(a, kNodeA, json::array({kept_change}), "batch-kept");
    REQUIRE(first.status == 200);
    REQUIRE(first.body["push"]["applied"] == 1);
    const std::int64_t resolved = conflict_on(s, "n-resolved", true);
    const std::int64_t open = conflict_on(s, "n-open", false);

    auto nothing_due = prune_history(*s.store, policy);
    REQUIRE(nothing_due.ok());
    CHECK(nothing_due->batches == 0);
    CHECK(nothing_due->conflicts == 0);
    CHECK(audit_count(s, "retention_pruned") == 0);

    SECTION("a batch result goes after 90 days; its replay then changes nothing") {
        s.advance_ms(91 * kDayMs);
        auto pruned = prune_history(*s.store, policy);
        REQUIRE(pruned.ok());
        CHECK(pruned->batches == 7);   // every push above was a batch
        CHECK(pruned->conflicts == 0);  // resolved 91 days ago: kept for a year
        CHECK(audit_count(s, "retention_pruned") == 1);

        // Read by another device: the writer's own pulls leave out the fields it wrote.
        constexpr std::uint64_t kReader = 0xadadadadadadadadull;
        json cursor = nullptr;
        const std::string again = token_at(s, "alice", kNodeA);
        const json before = find_row(s.pull_all(s.admin_token(), kReader, cursor), "need", "n-kept");
        REQUIRE(!before.is_null());
        Reply replay = s.sync(again, kNodeA, json::array({kept_change}), "batch-kept");
        REQUIRE(replay.status == 200);
        CHECK(replay.body["push"]["conflicts"].empty());
        json from_zero = nullptr;
        const json after = find_row(s.pull_all(s.admin_token(), kReader, from_zero), "need", "n-kept");
        REQUIRE(!after.is_null());
        CHECK(after["f"] == before["f"]);
        Reply conflicts = s.call("GET", "/v1/conflicts?status=all", "", s.admin_token());
        CHECK(conflicts.body["conflicts"].size() == 2);

        // The replay's result was saved anew: it starts a period of its own.
        auto twice = prune_history(*s.store, policy);
        REQUIRE(twice.ok());
        CHECK(twice->batches == 0);
        s.advance_ms(91 * kDayMs);
        auto later = prune_history(*s.store, policy);
        REQUIRE(later.ok());
        CHECK(later->batches == 1);
    }
    SECTION("a resolved conflict goes after a year; an open one stays") {
        s.advance_ms(366 * kDayMs);
        auto pruned = prune_history(*s.store, policy);
        REQUIRE(pruned.ok());
        CHECK(pruned->conflicts == 1);
        Reply all = s.call("GET", "/v1/conflicts?status=all", "", s.admin_token());
        REQUIRE(all.body["conflicts"].size() == 1);
        CHECK(all.body["conflicts"][0]["id"] == open);
        CHECK(all.body["conflicts"][0]["id"] != resolved);
        // The rows themselves are data, not history: all three are still there.
        json cursor = nullptr;
        const json rows = s.pull_all(s.admin_token(), 0xadadadadadadadadull, cursor);
        CHECK(!find_row(rows, "need", "n-kept").is_null());
        CHECK(!find_row(rows, "need", "n-resolved").is_null());
        CHECK(!find_row(rows, "need", "n-open").is_null());
    }
}

TEST_CASE("the retention task prunes on its own thread and stops when destroyed", "[server][retention]") {
    TestServer s;
    s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string a = token_at(s, "alice", kNodeA);
    REQUIRE(s.sync(a, kNodeA, json::array({change("need", "n1", s.version(kNodeA), need_fields("fac-kabgayi"))})).status ==
            200);
    s.advance_ms(91 * kDayMs);
    ServerOptions policy = s.options;
    {
        RetentionTask task(*s.store, policy, 10);
        for (int i = 0; i < 500 && audit_count(s, "retention_pruned") == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(audit_count(s, "retention_pruned") == 1);
}
