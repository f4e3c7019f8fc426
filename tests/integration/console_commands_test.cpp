// Ubuzima Sync — MIT licence.
// Integration: `ubuzima-server user|device|audit ...` on a data directory, as an operator at the
// console does it (also while the server runs); passwords never on the command line.
#include "integration/fixture.hpp"
#include "ubuzima/schema/sqlite.hpp"

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {

ExitResult console(const std::string& data, std::vector<std::string> args,
                   const std::vector<std::pair<std::string, std::string>>& env = {}, const std::string& input = "") {
    // The fixture's store: a data directory, or a PostgreSQL database (UBUZIMA_TEST_PG).
    args.push_back(data.rfind("postgresql://", 0) == 0 ? "--db" : "--data");
    args.push_back(data);
    return run_server_to_exit(args, 20'000, env, input);
}

}  // namespace

TEST_CASE_METHOD(ServerFixture, "Users and devices are administered at the console", "[integration][console]") {
    const std::string data = store.where();
    // A password from the environment (scripts), never an argument.
    ExitResult added = console(data, {"user", "add", "eric", "--role", "focal_point", "--facility", "fac-gisenyi"},
                               {{"UBUZIMA_PASSWORD", kPassword}});
    INFO(added.output);
    CHECK(added.status == 0);
    CHECK(login_token(server.url(), "eric", kPassword).size() == 64);  // the running server sees him
    // ... or from standard input.
    ExitResult piped = console(data, {"user", "add", "fran", "--role", "assessor", "--facility", "fac-butaro"}, {},
                               "fran-from-a-pipe\n");
    INFO(piped.output);
    CHECK(piped.status == 0);
    CHECK(console(data, {"user", "add", "weak", "--role", "assessor"}, {{"UBUZIMA_PASSWORD", "short"}}).status == 1);
    ExitResult no_password = console(data, {"user", "add", "nopw", "--role", "assessor"});
    CHECK(no_password.status == 1);
    CHECK(no_password.output.find("no password") != std::string::npos);

    ExitResult listed = console(data, {"user", "list"});
    CHECK(listed.status == 0);
    CHECK(listed.output.find("eric") != std::string::npos);
    CHECK(listed.output.find("pbkdf2") == std::string::npos);

    Database tablet = device("eric-tablet", "eric");
    must_sync(tablet);
    ExitResult devices = console(data, {"device", "list"});
    CHECK(devices.status == 0);
    CHECK(devices.output.find(tablet.node_id()) != std::string::npos);
    ExitResult revoked = console(data, {"device", "revoke", tablet.node_id()});
    INFO(revoked.output);
    CHECK(revoked.status == 0);
    SyncOptions once;
    once.retry.max_attempts = 1;
    tablet.set_sync_options(once);
    auto after = tablet.sync();
    CHECK(after.status().code() == ErrorCode::Revoked);

    ExitResult disabled = console(data, {"user", "set", "fran", "--disable"});
    CHECK(disabled.status == 0);
    HttpResult refused = http_request("POST", server.url() + "/v1/auth/login",
                                      json{{"username", "fran"}, {"password", "fran-from-a-pipe"}, {"device_id", "d"}}.dump());
    CHECK(refused.status == 401);
    CHECK(refused.json()["error"]["code"] == "revoked");
    CHECK(console(data, {"user", "set", "nobody", "--disable"}).status == 1);
    CHECK(console(data, {"user", "frobnicate"}).status == 2);
    CHECK(console(dir.file("no-such-dir"), {"user", "list"}).status == 1);
}

TEST_CASE_METHOD(ServerFixture, "audit verify checks the chain and a saved head; a cut tail fails it", "[integration][console]") {
    const std::string data = store.where();
    Database a = device("alice", "alice");
    REQUIRE(a.insert("need", need_fields("fac-gisenyi", "Audited")).ok());
    must_sync(a);
    ExitResult head = console(data, {"audit", "head"});
    REQUIRE(head.status == 0);
    const std::string saved = head.output.substr(0, head.output.find('\n'));
    REQUIRE(saved.rfind("ubuzima-audit-head ", 0) == 0);
    ExitResult intact = console(data, {"audit", "verify", "--head", saved});
    INFO(intact.output);
    CHECK(intact.status == 0);
    CHECK(intact.output.find("intact") != std::string::npos);

    // More activity, then an insider cuts the log back to before the saved head.
    must_sync(a);
    REQUIRE(server.stop() == 0);
    {
        const std::string seq = saved.substr(std::string("ubuzima-audit-head ").size());
        const std::string cut_back = "DELETE FROM srv_audit WHERE seq >= " + seq.substr(0, seq.find(' '));
#ifdef UBUZIMA_WITH_POSTGRESQL
        if (integration_on_postgres()) {
            PGconn* c = PQconnectdb(data.c_str());
            REQUIRE(PQstatus(c) == CONNECTION_OK);
            PGresult* r = PQexec(c, ("DROP TRIGGER srv_audit_no_delete ON srv_audit; " + cut_back).c_str());
            const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            INFO(PQresultErrorMessage(r));
            PQclear(r);
            PQfinish(c);
            REQUIRE(ok);
        } else
#endif
        {
            auto db = sql::Database::open(data + "/ubuzima.db", {});
            REQUIRE(db.ok());
            REQUIRE(db->exec("DROP TRIGGER srv_audit_no_delete; " + cut_back).ok());
        }
    }
    ExitResult chain_only = console(data, {"audit", "verify"});
    CHECK(chain_only.status == 0);  // what is left still chains: only the saved head can tell
    const std::string head_file = dir.file("audit.head");
    std::FILE* f = std::fopen(head_file.c_str(), "w");
    REQUIRE(f);
    std::fputs((saved + "\n").c_str(), f);
    std::fclose(f);
    ExitResult cut = console(data, {"audit", "verify", "--head-file", head_file});
    INFO(cut.output);
    CHECK(cut.status == 1);
    CHECK(cut.output.find("deleted from the end") != std::string::npos);
    CHECK(cut.output.find("first bad record") != std::string::npos);
}
