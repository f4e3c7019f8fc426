// Ubuzima Sync — MIT licence.
// TLS end to end, with a CA generated at test time: the real server (both listeners) and the real
// client library (libcurl), plus raw OpenSSL probes for what a client library would never offer.
#include <catch2/catch.hpp>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/server_process.hpp"
#include "test_pki.hpp"
#include "tls_probe.hpp"
#include "ubuzima.h"
#include "ubuzima/client.hpp"

using namespace ubuzima;
using namespace ubuzima::test;

namespace {

constexpr const char* kPassword = "tls-field-work-1";
const std::string kHealth = "GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Starts the real server over HTTPS with `files` and the given listener.
void start_https(ServerProcess& server, const PemFiles& files, const std::string& listener = "cpprest") {
    server.set_extra_args({"--tls-cert", files.cert, "--tls-key", files.key, "--listener", listener});
    server.start();
}

/// A device database trusting `trust` (CA file, PEM or pins).
Database device(TempDir& dir, const std::string& name, const TransportOptions& trust) {
    DatabaseOptions o;
    o.path = dir.file(name + ".db");
    o.durability = Durability::Normal;
    o.sync.timeouts = trust;
    o.sync.timeouts.connect_timeout_ms = 5000;
    o.sync.timeouts.timeout_ms = 10000;
    o.sync.retry.max_attempts = 1;
    auto db = Database::open(o);
    REQUIRE(db.ok());
    return std::move(*db);
}

TransportOptions trusting_file(const TestPki& pki) {
    TransportOptions t;
    t.ca_file = pki.root_ca_file();
    return t;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Creates alice over HTTPS (the test harness's curl verifies with the test root).
void add_alice(const std::string& url, const std::string& ca_file) {
    const std::string admin = login_token(url, "admin", "admin-secret-1", "admin-console", ca_file);
    create_user(url, admin, "alice", kPassword, "assessor", {"fac-gisenyi"}, ca_file);
}

}  // namespace

TEST_CASE("The server refuses to start with a bad certificate or key, saying why", "[tls]") {
    TempDir dir;
    TestPki pki(dir.file("pki"));
    const PemFiles good = pki.server("good");
    struct Case {
        std::string what;
        std::vector<std::string> args;
        std::string says;
    };
    const PemFiles expired = pki.expired_server("expired");
    const PemFiles mismatched = pki.mismatched_pair("mismatched");
    const PemFiles encrypted = pki.encrypted_key_server("encrypted", "secret-passphrase");
    const std::vector<Case> cases = {
        {"missing certificate", {"--tls-cert", dir.file("nope.crt"), "--tls-key", good.key}, "cannot read"},
        {"missing key", {"--tls-cert", good.cert, "--tls-key", dir.file("nope.key")}, "cannot read"},
        {"key of another certificate", {"--tls-cert", mismatched.cert, "--tls-key", mismatched.key}, "does not match"},
        {"expired certificate", {"--tls-cert", expired.cert, "--tls-key", expired.key}, "expired"},
        {"encrypted key", {"--tls-cert", encrypted.cert, "--tls-key", encrypted.key}, "unencrypted"},
        {"a key file that is a certificate", {"--tls-cert", good.cert, "--tls-key", good.cert}, "private key"},
        {"certificate without key", {"--tls-cert", good.cert}, "go together"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> args = {"--data", dir.file("data"), "--listen", "127.0.0.1:0"};
        args.insert(args.end(), c.args.begin(), c.args.end());
        const ExitResult r = run_server_to_exit(args);
        INFO(c.what << ": " << r.output);
        CHECK(r.status == 1);  // at start, not at the first connection
        CHECK(r.output.find(c.says) != std::string::npos);
        CHECK(r.output.find("listening") == std::string::npos);
    }
}

TEST_CASE("Plain HTTP on an address other than loopback needs --insecure-http", "[tls]") {
    TempDir dir;
    const ExitResult refused = run_server_to_exit({"--data", dir.file("a"), "--listen", "0.0.0.0:0"});
    INFO(refused.output);
    CHECK(refused.status == 1);
    CHECK(refused.output.find("refusing plain HTTP") != std::string::npos);
    // With the switch it serves, and says what it risks (killed after a moment: it would run on).
    const ExitResult allowed =
        run_server_to_exit({"--data", dir.file("b"), "--listen", "0.0.0.0:0", "--insecure-http"}, 3000);
    INFO(allowed.output);
    CHECK(allowed.status == -1);
    CHECK(allowed.output.find("listening on http://0.0.0.0:") != std::string::npos);
    CHECK(allowed.output.find("warning: serving plain HTTP") != std::string::npos);
}

TEST_CASE("A good chain works; the client verifies it against a CA file or PEM text", "[tls]") {
    const std::string listener = GENERATE(std::string("cpprest"), std::string("beast"));
    INFO("listener " << listener);
    TempDir dir;
    TestPki pki(dir.file("pki"));
    ServerProcess server(dir.file("server"));
    const PemFiles files = pki.server("server");
    start_https(server, files, listener);
    REQUIRE(server.url().rfind("https://127.0.0.1:", 0) == 0);
    add_alice(server.url(), pki.root_ca_file());

    Database by_file = device(dir, "by-file", trusting_file(pki));
    REQUIRE(by_file.login(server.url(), "alice", kPassword).ok());
    REQUIRE(by_file.insert("need", {{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"},
                                    {"title", "Over TLS"}, {"description", "d"}, {"priority", "high"},
                                    {"status", "identified"}})
                .ok());
    auto synced = by_file.sync();
    INFO((synced.ok() ? std::string() : synced.status().to_string()));
    REQUIRE(synced.ok());
    CHECK(synced->pushed == 1);

    TransportOptions in_memory;
    in_memory.ca_pem = pki.root_ca_pem();
    Database by_pem = device(dir, "by-pem", in_memory);
    REQUIRE(by_pem.login(server.url(), "alice", kPassword).ok());
    REQUIRE(by_pem.sync().ok());
    CHECK(by_pem.query("need").value().size() == 1);

    // Without the test root (the system bundle) the same server is not trusted.
    Database untrusting = device(dir, "system-ca", TransportOptions{});
    const Status refused = untrusting.login(server.url(), "alice", kPassword);
    CHECK(refused.code() == ErrorCode::Network);
    CHECK(server.stop() == 0);
}

TEST_CASE("Expired, wrong-host and self-signed certificates are refused by the client", "[tls]") {
    TempDir dir;
    TestPki pki(dir.file("pki"));
    const TransportOptions trust = trusting_file(pki);
    SECTION("wrong host and self-signed, served by the real server") {
        for (const PemFiles& files : {pki.wrong_host_server("wrong-host"), pki.self_signed_server("self-signed")}) {
            ServerProcess server(dir.file("server-" + std::filesystem::path(files.cert).stem().string()));
            start_https(server, files);
            Database db = device(dir, std::filesystem::path(files.cert).stem().string(), trust);
            const Status s = db.login(server.url(), "admin", "admin-secret-1");
            INFO(files.cert << ": " << s.to_string());
            CHECK(s.code() == ErrorCode::Network);
            CHECK(s.message().find("certificate") != std::string::npos);
        }
    }
    SECTION("expired (our server will not even start with it: a recording peer serves it)") {
        RecordingTlsServer peer(pki.expired_server("expired"));
        Database db = device(dir, "expired", trust);
        const Status s = db.login("https://127.0.0.1:" + std::to_string(peer.port()), "admin", "admin-secret-1");
        INFO(s.to_string());
        CHECK(s.code() == ErrorCode::Network);
        CHECK(s.message().find("expired") != std::string::npos);
        peer.wait_for_finished(1);
        CHECK(peer.app_bytes_received() == 0);
    }
}

TEST_CASE("A wrong public-key pin is refused before any request is sent; a backup pin works", "[tls][pin]") {
    TempDir dir;
    TestPki pki(dir.file("pki"));
    const PemFiles files = pki.server("server");
    {
        RecordingTlsServer peer(files);
        TransportOptions wrong = trusting_file(pki);
        wrong.pinned_public_keys = TestPki::random_pin();
        Database db = device(dir, "wrong-pin", wrong);
        const Status s = db.login("https://127.0.0.1:" + std::to_string(peer.port()), "admin", "admin-secret-1");
        INFO(s.to_string());
        CHECK(s.code() == ErrorCode::Network);
        REQUIRE(peer.wait_for_finished(1));
        CHECK(peer.connections_accepted() == 1);
        CHECK(peer.app_bytes_received() == 0);  // not one byte of the request (nor the password)
        CHECK(peer.requests_answered() == 0);
    }
    ServerProcess server(dir.file("server"));
    start_https(server, files);
    TransportOptions pinned = trusting_file(pki);
    pinned.pinned_public_keys = TestPki::random_pin() + ";" + TestPki::pin_of(files.cert);  // backup first
    Database db = device(dir, "pinned", pinned);
    CHECK(db.login(server.url(), "admin", "admin-secret-1").ok());
}

TEST_CASE("The server refuses TLS 1.1 and serves TLS 1.2 and 1.3", "[tls]") {
    const std::string listener = GENERATE(std::string("cpprest"), std::string("beast"));
    INFO("listener " << listener);
    TempDir dir;
    TestPki pki(dir.file("pki"));
    const PemFiles files = pki.server("server");
    ServerProcess server(dir.file("server"));
    start_https(server, files, listener);

    TlsProbeOptions tls11;
    tls11.min_version = TLS1_1_VERSION;
    tls11.max_version = TLS1_1_VERSION;
    const TlsHandshakeResult old = tls_handshake("127.0.0.1", server.port(), tls11);
    CHECK_FALSE(old.ok);
    // The probe can speak TLS 1.1: a peer that allows it completes the handshake.
    RecordingTlsServerOptions legacy;
    legacy.allow_legacy = true;
    RecordingTlsServer control(files, legacy);
    const TlsHandshakeResult to_control = tls_handshake("127.0.0.1", control.port(), tls11);
    INFO(to_control.error);
    CHECK(to_control.ok);
    CHECK(to_control.protocol == "TLSv1.1");

    TlsProbeOptions tls12;
    tls12.max_version = TLS1_2_VERSION;
    tls12.ca_file = pki.root_ca_file();
    tls12.request = kHealth;
    const TlsHandshakeResult v12 = tls_handshake("127.0.0.1", server.port(), tls12);
    INFO(v12.error);
    CHECK(v12.ok);
    CHECK(v12.protocol == "TLSv1.2");
    CHECK(v12.response.find("200 OK") != std::string::npos);
    TlsProbeOptions latest;
    latest.ca_file = pki.root_ca_file();
    const TlsHandshakeResult v13 = tls_handshake("127.0.0.1", server.port(), latest);
    CHECK(v13.ok);
    CHECK(v13.protocol == "TLSv1.3");
}

TEST_CASE("TLS sessions resume on a new connection", "[tls][resumption]") {
    const std::string listener = GENERATE(std::string("cpprest"), std::string("beast"));
    const int version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
    INFO("listener " << listener << ", version " << version);
    TempDir dir;
    TestPki pki(dir.file("pki"));
    const PemFiles files = pki.server("server");
    ServerProcess server(dir.file("server"));
    start_https(server, files, listener);
    TlsProbeOptions o;
    o.min_version = version;
    o.max_version = version;
    o.ca_file = pki.root_ca_file();
    o.request = kHealth;  // TLS 1.3 tickets arrive after the handshake: read a reply
    const TlsHandshakeResult first = tls_handshake("127.0.0.1", server.port(), o);
    INFO(first.error);
    REQUIRE(first.ok);
    CHECK_FALSE(first.session_reused);
    REQUIRE(first.session);
    o.session = first.session;
    const TlsHandshakeResult second = tls_handshake("127.0.0.1", server.port(), o);
    INFO(second.error);
    REQUIRE(second.ok);
    CHECK(second.session_reused);
    CHECK(second.response.find("200 OK") != std::string::npos);
}

TEST_CASE("SIGHUP reloads the certificate; a broken replacement keeps the old one", "[tls][reload]") {
    const std::string listener = GENERATE(std::string("cpprest"), std::string("beast"));
    INFO("listener " << listener);
    TempDir dir;
    TestPki pki(dir.file("pki"));
    const PemFiles a = pki.server("a");
    const PemFiles b = pki.server("b");
    const std::string cert = dir.file("live.crt"), key = dir.file("live.key");
    write_file(cert, read_file(a.cert));
    write_file(key, read_file(a.key));
    std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    ServerProcess server(dir.file("server"));
    start_https(server, PemFiles{cert, key}, listener);
    auto logs_in_with_pin = [&](const std::string& pin, const std::string& name) {
        TransportOptions t = trusting_file(pki);
        t.pinned_public_keys = pin;
        Database db = device(dir, name, t);
        return db.login(server.url(), "admin", "admin-secret-1").ok();
    };
    CHECK(logs_in_with_pin(TestPki::pin_of(a.cert), "a1"));
    CHECK_FALSE(logs_in_with_pin(TestPki::pin_of(b.cert), "b1"));

    write_file(cert, read_file(b.cert));
    write_file(key, read_file(b.key));
    server.signal(SIGHUP);
    bool switched = false;
    for (int i = 0; i < 100 && !switched; ++i) {
        switched = logs_in_with_pin(TestPki::pin_of(b.cert), "b2-" + std::to_string(i));
        if (!switched) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(switched);
    CHECK_FALSE(logs_in_with_pin(TestPki::pin_of(a.cert), "a2"));

    write_file(key, "not a key at all");
    server.signal(SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(logs_in_with_pin(TestPki::pin_of(b.cert), "b3"));  // still served
    CHECK(server.stop() == 0);
}

TEST_CASE("The C API takes ca_pem and pins through ubuzima_db_configure_sync", "[tls][c_api]") {
    TempDir dir;
    TestPki pki(dir.file("pki"));
    const PemFiles files = pki.server("server");
    ServerProcess server(dir.file("server"));
    start_https(server, files);
    ubuzima_db* db = nullptr;
    ubuzima_error err{};
    REQUIRE(ubuzima_db_open(dir.file("c.db").c_str(), &db, &err) == UBUZIMA_OK);
    const nlohmann::json good{{"ca_pem", pki.root_ca_pem()}, {"pins", {TestPki::pin_of(files.cert)}},
                              {"retry", {{"max_attempts", 1}}}};
    REQUIRE(ubuzima_db_configure_sync(db, good.dump().c_str(), &err) == UBUZIMA_OK);
    CHECK(ubuzima_db_login(db, server.url().c_str(), "admin", "admin-secret-1", &err) == UBUZIMA_OK);
    const nlohmann::json wrong{{"ca_file", pki.root_ca_file()}, {"pins", TestPki::random_pin()},
                               {"retry", {{"max_attempts", 1}}}};
    REQUIRE(ubuzima_db_configure_sync(db, wrong.dump().c_str(), &err) == UBUZIMA_OK);
    CHECK(ubuzima_db_login(db, server.url().c_str(), "admin", "admin-secret-1", &err) == UBUZIMA_NETWORK);
    CHECK(ubuzima_db_configure_sync(db, R"({"pins": "md5//abc"})", &err) == UBUZIMA_INVALID_ARGUMENT);
    CHECK(std::string(err.message).find("pins") != std::string::npos);
    ubuzima_db_close(db);
}
