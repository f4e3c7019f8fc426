// Ubuzima Sync — MIT licence.
// The audit log: what is recorded (and what never is), the hash chain, and verification that
// names the first edited, moved or deleted record, and a cut tail against a saved head.
#include <catch2/catch.hpp>

#include "audit/audit_log.hpp"
#include "auth/crypto.hpp"
#include "server_test_support.hpp"
#include "ubuzima/schema/sqlite.hpp"

using namespace ubuzima::server::test;
using ubuzima::server::AuditHead;
using ubuzima::server::AuditRecord;
using ubuzima::server::verify_audit;

namespace {

constexpr std::uint64_t kNode = 0xa1a1a1a1a1a1a1a1ull;

std::vector<AuditRecord> records(TestServer& s) {
    std::vector<AuditRecord> out;
    REQUIRE(s.store->read([&](ubuzima::server::ReadTxn& tx) -> ubuzima::Status {
                auto page = tx.audit_after(0, 100000);
                if (!page.ok()) return page.status();
                out = std::move(*page);
                return {};
            }).ok());
    return out;
}

/// The append-only triggers dropped on a second connection: what an insider with the database
/// can do (SQLite file or PostgreSQL database alike).
void insider(TestServer& s) { REQUIRE(s.drop_audit_guards().ok()); }

/// Some activity: logins (good and bad), a push, a logout, a user created.
void activity(TestServer& s) {
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    (void)s.login_reply("alice", "not-her-password");
    (void)s.login_reply("mallory-guess", "hunter2-hunter2", "dev-unknown-user");
    json need{{"facility_id", "fac-kabgayi"}, {"need_type", "skills_training"}, {"title", "Secret title"},
              {"description", "Patient-free description"}, {"priority", "high"}, {"status", "identified"}};
    s.sync(alice, kNode, json::array({change("need", "n1", s.version(kNode), need)}), "batch-audited");
    s.call("POST", "/v1/auth/logout", "", s.token_for_node(alice, kNode));
}

}  // namespace

TEST_CASE("who did what is recorded, with ids and counts only", "[server][audit]") {
    TestServer s;
    activity(s);
    const auto log = records(s);
    std::vector<std::string> actions;
    for (const AuditRecord& r : log) actions.push_back(r.action);
    for (const char* a : {"user_created", "login", "login_failed", "push", "logout"}) {
        INFO(a);
        CHECK(std::count(actions.begin(), actions.end(), a) >= 1);
    }
    for (const AuditRecord& r : log) {
        const std::string all = r.actor_user + r.actor_device + r.action + r.object + r.outcome + r.address;
        // No passwords, no attempted usernames (a password typed in the wrong field), no field values.
        for (const char* secret : {TestServer::kAdminPassword, "pw-alice-secret", "not-her-password", "hunter2",
                                   "mallory", "Secret title", "Patient-free"}) {
            INFO(r.action << " " << all);
            CHECK(all.find(secret) == std::string::npos);
        }
        if (r.action == "push") {
            CHECK(r.object == "batch-audited");
            const json outcome = json::parse(r.outcome);
            CHECK(outcome["applied"] == 1);
            CHECK(outcome["rejected"] == 0);
        }
    }
    // No token either, nor a token's stored hash.
    Reply grant = s.login_reply("alice", TestServer::password_of("alice"));
    REQUIRE(grant.status == 200);
    const std::vector<std::string> tokens = {grant.body["access_token"], grant.body["refresh_token"],
                                             ubuzima::server::sha256_hex(grant.body["access_token"].get<std::string>()),
                                             ubuzima::server::sha256_hex(grant.body["refresh_token"].get<std::string>())};
    for (const AuditRecord& r : records(s))
        for (const std::string& t : tokens) CHECK((r.object + r.outcome + r.actor_device).find(t) == std::string::npos);
}

TEST_CASE("the chain verifies; each record links to the one before", "[server][audit]") {
    TestServer s;
    activity(s);
    auto verdict = verify_audit(*s.store, std::nullopt);
    REQUIRE(verdict.ok());
    CHECK(verdict->intact);
    const auto log = records(s);
    CHECK(verdict->records == static_cast<std::int64_t>(log.size()));
    CHECK(verdict->head.seq == log.back().seq);
    CHECK(verdict->head.hash == log.back().hash);
    CHECK(log.front().prev_hash == std::string(64, '0'));
    for (std::size_t i = 1; i < log.size(); ++i) {
        CHECK(log[i].seq == log[i - 1].seq + 1);
        CHECK(log[i].prev_hash == log[i - 1].hash);
    }
    // The server's own code cannot change or drop a record.
    CHECK_FALSE(s.exec_raw("UPDATE srv_audit SET action = 'nothing' WHERE seq = 1").ok());
    CHECK_FALSE(s.exec_raw("DELETE FROM srv_audit WHERE seq = 1").ok());
    // The head round-trips through its printed form.
    auto parsed = AuditHead::parse(verdict->head.to_string() + "\n");
    REQUIRE(parsed);
    CHECK(parsed->seq == verdict->head.seq);
    CHECK(parsed->hash == verdict->head.hash);
    CHECK_FALSE(AuditHead::parse("ubuzima-audit-head 3 nothex"));
}

TEST_CASE("verify names the first edited, moved, inserted or deleted record", "[server][audit]") {
    TestServer s;
    activity(s);
    const auto log = records(s);
    REQUIRE(log.size() >= 8);
    const std::int64_t k = log[3].seq;
    insider(s);
    std::string expect;
    SECTION("an edited outcome") {
        REQUIRE(s.exec_raw("UPDATE srv_audit SET outcome = '{\"applied\":0}' WHERE seq = " + std::to_string(k)).ok());
        expect = "does not match its hash";
    }
    SECTION("an edited actor, hash recomputed by the editor") {
        AuditRecord r = log[3];
        r.actor_user = "someone-else";
        r.hash = ubuzima::server::audit_record_hash(r);
        REQUIRE(s.exec_raw("UPDATE srv_audit SET actor_user = '" + r.actor_user + "', hash = '" + r.hash +
                           "' WHERE seq = " + std::to_string(k))
                    .ok());
        expect = "does not link";
    }
    SECTION("a deleted record") {
        REQUIRE(s.exec_raw("DELETE FROM srv_audit WHERE seq = " + std::to_string(k)).ok());
        expect = "missing";
    }
    SECTION("two records swapped") {
        REQUIRE(s.exec_raw("UPDATE srv_audit SET seq = -1 WHERE seq = " + std::to_string(k) + ";"
                        "UPDATE srv_audit SET seq = " + std::to_string(k) + " WHERE seq = " + std::to_string(k + 1) + ";"
                        "UPDATE srv_audit SET seq = " + std::to_string(k + 1) + " WHERE seq = -1").ok());
        expect = "";
    }
    auto verdict = verify_audit(*s.store, std::nullopt);
    REQUIRE(verdict.ok());
    INFO(verdict->problem);
    CHECK_FALSE(verdict->intact);
    if (expect == "does not link") CHECK(verdict->first_bad == k + 1);
    else CHECK(verdict->first_bad == k);
    if (!expect.empty()) CHECK(verdict->problem.find(expect) != std::string::npos);
}

TEST_CASE("a cut tail is found against a saved head", "[server][audit]") {
    TestServer s;
    activity(s);
    auto before = verify_audit(*s.store, std::nullopt);
    REQUIRE(before.ok());
    const AuditHead saved = before->head;
    insider(s);
    REQUIRE(s.exec_raw("DELETE FROM srv_audit WHERE seq > " + std::to_string(saved.seq - 2)).ok());
    auto alone = verify_audit(*s.store, std::nullopt);
    REQUIRE(alone.ok());
    CHECK(alone->intact);  // what is left is a valid chain: only the saved head can tell
    auto against = verify_audit(*s.store, saved);
    REQUIRE(against.ok());
    CHECK_FALSE(against->intact);
    CHECK(against->first_bad == saved.seq - 1);
    CHECK(against->problem.find("deleted from the end") != std::string::npos);
    // A head that matches, and one that names a rewritten record.
    AuditHead older{saved.seq - 3, ""};
    for (const AuditRecord& r : records(s))
        if (r.seq == older.seq) older.hash = r.hash;
    auto matches = verify_audit(*s.store, older);
    REQUIRE(matches.ok());
    CHECK(matches->intact);
    older.hash = std::string(64, 'f');
    auto rewritten = verify_audit(*s.store, older);
    REQUIRE(rewritten.ok());
    CHECK_FALSE(rewritten->intact);
    CHECK(rewritten->problem.find("differs from the saved head") != std::string::npos);
}

TEST_CASE("GET /v1/admin/audit pages through the log; its head is served for safekeeping", "[server][audit]") {
    TestServer s;
    activity(s);
    const std::string admin = s.admin_token();
    const std::string coord = s.user_token("cora", "coordinator", {});
    CHECK(s.call("GET", "/v1/admin/audit", "", coord).status == 403);
    std::vector<std::int64_t> seqs;
    for (json after = 0; !after.is_null();) {
        Reply page = s.call("GET", "/v1/admin/audit?limit=3&after=" + after.dump(), "", admin);
        REQUIRE(page.status == 200);
        for (const json& r : page.body["records"]) seqs.push_back(r["seq"].get<std::int64_t>());
        after = page.body["next_after"];
    }
    const auto log = records(s);
    REQUIRE(seqs.size() >= log.size() - 1);  // reading the audit is not itself audited
    for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(seqs[i] == static_cast<std::int64_t>(i) + 1);
    Reply head = s.call("GET", "/v1/admin/audit/head", "", admin);
    REQUIRE(head.status == 200);
    CHECK(head.body["head"].get<std::string>().rfind("ubuzima-audit-head ", 0) == 0);
    CHECK(s.call("GET", "/v1/admin/audit?limit=0", "", admin).status == 400);
}
