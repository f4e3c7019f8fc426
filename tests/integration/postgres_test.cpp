// Ubuzima Sync — MIT licence.
// Integration on PostgreSQL: two real `ubuzima-server --db` processes share one database (a
// fresh one per test), devices sync through either, and everything converges. Hidden ("[.]")
// in the plain run; the ctest entry ubuzima_integration_tests_pg runs it in the cluster that
// scripts/test-postgres.sh starts.
#include "integration/fixture.hpp"

#ifdef UBUZIMA_WITH_POSTGRESQL
using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {

Database device_on(TempDir& dir, const std::string& name, const std::string& url, const std::string& user) {
    DatabaseOptions options;
    options.path = dir.file(name + ".db");
    options.durability = Durability::Normal;
    auto db = Database::open(options);
    REQUIRE(db.ok());
    Status s = db->login(url, user, kPassword);
    INFO(s.to_string());
    REQUIRE(s.ok());
    return std::move(*db);
}

}  // namespace

TEST_CASE("Devices sync through two server processes on one PostgreSQL database", "[.][postgres][integration]") {
    REQUIRE(std::getenv("PGHOST"));
    FreshDatabase pgdb;
    TempDir dir;
    ServerProcess first(dir.file("unused-a")), second(dir.file("unused-b"));
    first.set_db_url(pgdb.url());
    second.set_db_url(pgdb.url());
    first.start();   // creates the tables and the bootstrap admin
    second.start();  // finds both
    const std::string admin = login_token(first.url(), "admin", first.admin_password());
    create_user(first.url(), admin, "alice", kPassword, "assessor", {"fac-gisenyi"});
    create_user(first.url(), admin, "bob", kPassword, "assessor", {"fac-gisenyi"});
    // A user made through one process logs in through the other: one database.
    Database a = device_on(dir, "alice", first.url(), "alice");
    Database b = device_on(dir, "bob", second.url(), "bob");

    auto need = a.insert("need", need_fields("fac-gisenyi", "Anaesthesia cover"));
    REQUIRE(need.ok());
    CHECK(must_sync(a).pushed == 1);
    must_sync(b);
    auto seen = b.get("need", *need);
    REQUIRE(seen.ok());
    REQUIRE(seen->has_value());
    CHECK((**seen)["title"] == "Anaesthesia cover");

    // Concurrent edits of one field through the two processes: one value wins on both.
    REQUIRE(a.update("need", *need, {{"title", "From Alice"}}).ok());
    REQUIRE(b.update("need", *need, {{"title", "From Bob"}}).ok());
    must_sync(a);
    must_sync(b);
    must_sync(a);
    CHECK(a.pending_changes().value() == 0);
    CHECK(b.pending_changes().value() == 0);
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(b, "fac-gisenyi"));

    // A restart of one process changes nothing the devices see.
    CHECK(first.stop() == 0);
    first.start();
    auto again = must_sync(a);
    CHECK(again.pushed == 0);
    CHECK(facility_state(a, "fac-gisenyi") == facility_state(b, "fac-gisenyi"));
    CHECK(second.stop() == 0);
    CHECK(first.stop() == 0);

    // The console commands work on the database too.
    ExitResult users = run_server_to_exit({"user", "list", "--db", pgdb.url()});
    INFO(users.output);
    CHECK(users.status == 0);
    CHECK(users.output.find("alice") != std::string::npos);
    CHECK(users.output.find("bob") != std::string::npos);
    ExitResult head = run_server_to_exit({"audit", "head", "--db", pgdb.url()});
    INFO(head.output);
    CHECK(head.status == 0);
    CHECK(head.output.find("ubuzima-audit-head ") != std::string::npos);
    ExitResult verify = run_server_to_exit({"audit", "verify", "--db", pgdb.url()});
    INFO(verify.output);
    CHECK(verify.status == 0);
    // Exactly one of --data and --db.
    CHECK(run_server_to_exit({"user", "list", "--db", pgdb.url(), "--data", dir.path()}).status == 2);
    CHECK(run_server_to_exit({"serve", "--db", pgdb.url(), "--data", dir.path(), "--listen", "127.0.0.1:0"}).status == 2);
}

#endif  // UBUZIMA_WITH_POSTGRESQL
