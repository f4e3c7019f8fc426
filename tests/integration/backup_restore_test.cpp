// Ubuzima Sync — MIT licence.
// Integration: `ubuzima-server backup|restore|epoch` on a real server's data directory, the
// data-directory lock, and `--config FILE`.
#include <fstream>

#include "integration/fixture.hpp"

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {

ExitResult command(std::vector<std::string> args) { return run_server_to_exit(args, 30'000); }

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE_METHOD(ServerFixture, "An online backup restores into a store whose devices pull everything again",
                 "[integration][backup]") {
    UBUZIMA_SQLITE_ONLY("backup and restore of the SQLite file (PostgreSQL: pg_dump, docs/OPERATIONS.md)");
    const std::string data = dir.file("server");
    const std::string copy = dir.file("backup.db");
    Database alice = device("alice", "alice");
    auto before = alice.insert("need", need_fields("fac-gisenyi", "Before the backup"));
    REQUIRE(before.ok());
    must_sync(alice);

    ExitResult backup = command({"backup", "--data", data, "--to", copy});  // while the server runs
    INFO(backup.output);
    REQUIRE(backup.status == 0);
    CHECK(has(backup.output, "ubuzima-audit-head "));
    CHECK(command({"backup", "--data", data, "--to", copy}).status == 1);  // never over an existing file

    auto after = alice.insert("need", need_fields("fac-gisenyi", "After the backup"));
    REQUIRE(after.ok());
    must_sync(alice);

    // Neither a restore nor a second server may work under the running one.
    ExitResult refused = command({"restore", "--from", copy, "--data", data});
    CHECK(refused.status == 1);
    CHECK(has(refused.output, "a server is running"));
    ExitResult second = command({"--data", data, "--listen", "127.0.0.1:0"});
    CHECK(second.status == 1);
    CHECK(has(second.output, "is locked"));

    // A file that is not a store is refused before anything is touched.
    {
        std::ofstream junk(dir.file("junk.db"));
        junk << "not a database";
    }
    CHECK(command({"restore", "--from", dir.file("junk.db"), "--data", data}).status == 1);

    REQUIRE(server.stop() == 0);
    ExitResult restored = command({"restore", "--from", copy, "--data", data});
    INFO(restored.output);
    REQUIRE(restored.status == 0);
    CHECK(has(restored.output, "feed epoch now 1"));
    CHECK(has(restored.output, "ubuzima-before-restore-"));  // the replaced store is kept
    ExitResult verified = command({"audit", "verify", "--data", data});
    INFO(verified.output);
    CHECK(verified.status == 0);
    server.start();

    // A new device sees what the backup held; alice's device keeps everything it has and, its
    // cursor being of the old epoch, pulls the whole store again instead of skipping.
    Database bob = device("bob", "bob");
    must_sync(bob);
    CHECK(bob.get("need", *before).value().has_value());
    SyncReport again = must_sync(alice);
    CHECK(again.pulled >= 1);
    CHECK(alice.get("need", *before).value().has_value());
    CHECK(alice.get("need", *after).value().has_value());

    REQUIRE(server.stop() == 0);
    ExitResult bumped = command({"epoch", "bump", "--data", data});
    INFO(bumped.output);
    CHECK(bumped.status == 0);
    CHECK(has(bumped.output, "feed epoch now 2"));
    server.start();
    CHECK(must_sync(alice).pulled >= 1);
}

TEST_CASE("The server reads its options from a config file and names the line of a bad one",
          "[integration][config]") {
    TempDir dir;
    const std::string config = dir.file("server.conf");
    auto write = [&](const std::string& text) {
        std::ofstream out(config);
        out << text;
    };
    write("# one machine\ndata = " + dir.file("data") + "\nlisten = 127.0.0.1:0\nmax-pages = 10\n");
    ExitResult unknown = command({"--config", config});
    CHECK(unknown.status == 2);
    CHECK(has(unknown.output, config + ":4: unknown key 'max-pages'"));

    write("data = " + dir.file("data") + "\nlisten = 127.0.0.1:0\nmax-page = 0\n");
    ExitResult bad_value = command({"--config", config});
    CHECK(bad_value.status == 2);
    CHECK(has(bad_value.output, "--max-page 0"));

    write("data = " + dir.file("data") + "\nlisten = 127.0.0.1:0\ndata = elsewhere\n");
    CHECK(has(command({"--config", config}).output, config + ":3: 'data' given twice"));

    // Accepted: the server starts from the file alone, and its access tokens last what it says.
    ServerProcess server(dir.file("data"));
    write("access-ttl = 77 # seconds\ninsecure-http = false\n");
    server.set_extra_args({"--config", config});
    server.start();
    const HttpResult login = http_request("POST", server.url() + "/v1/auth/login",
                                          json{{"username", "admin"}, {"password", server.admin_password()},
                                               {"device_id", "dev-admin"}}
                                              .dump());
    REQUIRE(login.status == 200);
    CHECK(login.json()["expires_in"] == 77);
}
