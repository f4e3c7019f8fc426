// Ubuzima Sync — MIT licence.
// The test PKI and TLS probe checked against OpenSSL and libcurl themselves, so TLS tests can trust them.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "test_pki.hpp"
#include "tls_probe.hpp"

using namespace ubuzima::test;

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
struct CertStackFree {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_pop_free(s, X509_free); }
};
using CertStackPtr = std::unique_ptr<STACK_OF(X509), CertStackFree>;

/// A fresh directory under the system temp dir, removed with its contents at scope exit.
struct ScratchDir {
    std::string path;
    ScratchDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "ubuzima_pki_XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Every certificate in a PEM file, in file order.
std::vector<CertPtr> load_certs(const std::string& path) {
    BioPtr bio(BIO_new_file(path.c_str(), "r"));
    REQUIRE(bio != nullptr);
    std::vector<CertPtr> certs;
    while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(c);
    return certs;
}

int refuse_passphrase(char*, int, int, void*) { return -1; }

/// The private key in `path`, or null; `passphrase` null means none is offered (no terminal prompt).
KeyPtr load_key(const std::string& path, const char* passphrase = nullptr) {
    BioPtr bio(BIO_new_file(path.c_str(), "r"));
    REQUIRE(bio != nullptr);
    EVP_PKEY* key = passphrase != nullptr
                        ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>(passphrase))
                        : PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr);
    return KeyPtr(key);
}

/// X509_verify_cert of the file's first certificate, trusting only `root_file`, the rest untrusted.
int verify_chain(const std::string& root_file, const std::string& chain_file) {
    StorePtr store(X509_STORE_new());
    REQUIRE(X509_STORE_load_file(store.get(), root_file.c_str()) == 1);
    std::vector<CertPtr> chain = load_certs(chain_file);
    REQUIRE(!chain.empty());
    CertStackPtr untrusted(sk_X509_new_null());
    for (std::size_t i = 1; i < chain.size(); ++i) {
        REQUIRE(X509_up_ref(chain[i].get()) == 1);
        REQUIRE(sk_X509_push(untrusted.get(), chain[i].get()) > 0);
    }
    StoreCtxPtr ctx(X509_STORE_CTX_new());
    REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) == 1);
    REQUIRE(X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) == 1);
    X509_verify_cert(ctx.get());
    return X509_STORE_CTX_get_error(ctx.get());
}

std::string common_name(X509* cert) {
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

/// Whole days from now to `t` (negative in the past).
int days_from_now(const ASN1_TIME* t) {
    int days = 0;
    int secs = 0;
    REQUIRE(ASN1_TIME_diff(&days, &secs, nullptr, t) == 1);
    return days;
}

std::string run_command(const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[256];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const std::string kHealthRequest = "GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

}  // namespace

TEST_CASE("the root and intermediate are CAs and a server leaf chains to the root", "[pki]") {
    ScratchDir dir;
    TestPki pki(dir.path);

    std::vector<CertPtr> root = load_certs(pki.root_ca_file());
    REQUIRE(root.size() == 1);
    CHECK(common_name(root[0].get()) == "Ubuzima Test Root CA");
    CHECK(X509_check_ca(root[0].get()) >= 1);
    CHECK(X509_check_issued(root[0].get(), root[0].get()) == X509_V_OK);
    CHECK(pki.root_ca_pem() == slurp(pki.root_ca_file()));
    std::vector<CertPtr> intermediate = load_certs(pki.intermediate_ca_file());
    REQUIRE(intermediate.size() == 1);
    CHECK(X509_check_ca(intermediate[0].get()) >= 1);
    CHECK(X509_check_issued(root[0].get(), intermediate[0].get()) == X509_V_OK);

    const PemFiles files = pki.server("api");
    CHECK(files.cert == dir.path + "/api.crt");
    CHECK(files.key == dir.path + "/api.key");
    std::vector<CertPtr> chain = load_certs(files.cert);
    REQUIRE(chain.size() == 2);
    X509* leaf = chain[0].get();
    CHECK(common_name(leaf) == "api");
    CHECK(X509_check_ca(leaf) == 0);
    CHECK(X509_cmp(chain[1].get(), intermediate[0].get()) == 0);
    CHECK((X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER) != 0);
    CHECK(verify_chain(pki.root_ca_file(), files.cert) == X509_V_OK);
    CHECK(X509_check_host(leaf, "localhost", 0, 0, nullptr) == 1);
    CHECK(X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1);
    // Valid from an hour ago, so clock skew between processes cannot make it "not yet valid".
    CHECK(X509_cmp_time(X509_get0_notBefore(leaf), nullptr) < 0);
    CHECK(days_from_now(X509_get0_notAfter(leaf)) == 29);

    KeyPtr key = load_key(files.key);
    REQUIRE(key != nullptr);
    CHECK(EVP_PKEY_is_a(key.get(), "EC") == 1);
    CHECK(EVP_PKEY_get_bits(key.get()) == 256);
    CHECK(X509_check_private_key(leaf, key.get()) == 1);
}

TEST_CASE("server() takes extra names and a lifetime", "[pki]") {
    ScratchDir dir;
    TestPki pki(dir.path);
    const PemFiles files = pki.server("multi", {"localhost", "sync.ubuzima.test"}, {"127.0.0.1", "::1"}, 400);
    std::vector<CertPtr> chain = load_certs(files.cert);
    REQUIRE(!chain.empty());
    CHECK(X509_check_host(chain[0].get(), "sync.ubuzima.test", 0, 0, nullptr) == 1);
    CHECK(X509_check_ip_asc(chain[0].get(), "::1", 0) == 1);
    CHECK(days_from_now(X509_get0_notAfter(chain[0].get())) == 399);
    CHECK(verify_chain(pki.root_ca_file(), files.cert) == X509_V_OK);
}

TEST_CASE("the expired, wrong-host and self-signed leaves fail as their names say", "[pki]") {
    ScratchDir dir;
    TestPki pki(dir.path);

    SECTION("expired") {
        const PemFiles files = pki.expired_server("expired");
        CHECK(verify_chain(pki.root_ca_file(), files.cert) == X509_V_ERR_CERT_HAS_EXPIRED);
        std::vector<CertPtr> chain = load_certs(files.cert);
        CHECK(days_from_now(X509_get0_notBefore(chain[0].get())) == -10);
        CHECK(X509_cmp_time(X509_get0_notAfter(chain[0].get()), nullptr) < 0);
    }
    SECTION("wrong host: the chain is fine, the names are not") {
        const PemFiles files = pki.wrong_host_server("wrong");
        CHECK(verify_chain(pki.root_ca_file(), files.cert) == X509_V_OK);
        std::vector<CertPtr> chain = load_certs(files.cert);
        CHECK(X509_check_host(chain[0].get(), "localhost", 0, 0, nullptr) != 1);
        CHECK(X509_check_ip_asc(chain[0].get(), "127.0.0.1", 0) != 1);
        CHECK(X509_check_host(chain[0].get(), "wrong.example", 0, 0, nullptr) == 1);
    }
    SECTION("self-signed") {
        const PemFiles files = pki.self_signed_server("self");
        std::vector<CertPtr> chain = load_certs(files.cert);
        REQUIRE(chain.size() == 1);
        CHECK(X509_check_host(chain[0].get(), "localhost", 0, 0, nullptr) == 1);
        CHECK(verify_chain(pki.root_ca_file(), files.cert) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    }
    SECTION("another TestPki's root does not vouch for this one's leaves") {
        ScratchDir other_dir;
        TestPki other(other_dir.path);
        const PemFiles files = pki.server("api");
        CHECK(verify_chain(other.root_ca_file(), files.cert) != X509_V_OK);
    }
}

TEST_CASE("pin_of matches the openssl command line and random_pin is fresh", "[pki]") {
    ScratchDir dir;
    TestPki pki(dir.path);
    const PemFiles files = pki.server("api");

    // The recipe from curl's CURLOPT_PINNEDPUBLICKEY documentation; it reads the file's first cert.
    const std::string cli = run_command("openssl x509 -in '" + files.cert +
                                        "' -pubkey -noout | openssl pkey -pubin -outform der"
                                        " | openssl dgst -sha256 -binary | openssl enc -base64");
    REQUIRE(cli.size() == 44);
    CHECK(TestPki::pin_of(files.cert) == "sha256//" + cli);
    CHECK(TestPki::pin_of(files.cert) != TestPki::pin_of(pki.intermediate_ca_file()));

    const std::string a = TestPki::random_pin();
    const std::string b = TestPki::random_pin();
    CHECK(a.rfind("sha256//", 0) == 0);
    CHECK(a.size() == 8 + 44);
    CHECK(a != b);
    CHECK(a != TestPki::pin_of(files.cert));
    CHECK_THROWS(TestPki::pin_of(dir.path + "/missing.crt"));
}

TEST_CASE("an encrypted key needs its passphrase and a mismatched pair does not match", "[pki]") {
    ScratchDir dir;
    TestPki pki(dir.path);

    SECTION("encrypted key") {
        const PemFiles files = pki.encrypted_key_server("locked", "correct horse");
        CHECK(contains(slurp(files.key), "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        CHECK(load_key(files.key) == nullptr);
        CHECK(load_key(files.key, "wrong horse") == nullptr);
        KeyPtr key = load_key(files.key, "correct horse");
        REQUIRE(key != nullptr);
        std::vector<CertPtr> chain = load_certs(files.cert);
        CHECK(X509_check_private_key(chain[0].get(), key.get()) == 1);
        CHECK(verify_chain(pki.root_ca_file(), files.cert) == X509_V_OK);
        CHECK_THROWS(RecordingTlsServer(files));  // and it must not prompt on a terminal
    }
    SECTION("mismatched pair") {
        const PemFiles files = pki.mismatched_pair("mismatch");
        KeyPtr key = load_key(files.key);
        REQUIRE(key != nullptr);
        std::vector<CertPtr> chain = load_certs(files.cert);
        CHECK(X509_check_private_key(chain[0].get(), key.get()) == 0);
        CHECK(verify_chain(pki.root_ca_file(), files.cert) == X509_V_OK);
        CHECK_THROWS(RecordingTlsServer(files));
    }
}

TEST_CASE("tls probe: a TLS 1.2+ server refuses a TLS 1.1-only probe and speaks TLS 1.3 by default",
          "[tls_probe]") {
    ScratchDir dir;
    TestPki pki(dir.path);
    RecordingTlsServer server(pki.server("api"));

    TlsProbeOptions old_only;
    old_only.min_version = TLS1_1_VERSION;
    old_only.max_version = TLS1_1_VERSION;
    const TlsHandshakeResult old = tls_handshake("127.0.0.1", server.port(), old_only);
    CHECK_FALSE(old.ok);
    CHECK_FALSE(old.error.empty());

    TlsProbeOptions modern;
    modern.ca_file = pki.root_ca_file();
    modern.request = kHealthRequest;
    const TlsHandshakeResult fresh = tls_handshake("localhost", server.port(), modern);
    INFO(fresh.error);
    REQUIRE(fresh.ok);
    CHECK(fresh.error.empty());
    CHECK(fresh.protocol == "TLSv1.3");
    CHECK_FALSE(fresh.session_reused);
    CHECK(fresh.response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(contains(fresh.response, "{\"status\":\"ok\",\"server\":\"recording\"}"));

    TlsProbeOptions tls12 = modern;
    tls12.max_version = TLS1_2_VERSION;
    const TlsHandshakeResult twelve = tls_handshake("127.0.0.1", server.port(), tls12);
    INFO(twelve.error);
    CHECK(twelve.ok);
    CHECK(twelve.protocol == "TLSv1.2");

    REQUIRE(server.wait_for_finished(3));
    CHECK(server.connections_accepted() == 3);
    CHECK(server.handshakes_completed() == 2);
    CHECK(server.requests_answered() == 2);
    CHECK(server.app_bytes_received() == 2 * kHealthRequest.size());
}

TEST_CASE("tls probe: a legacy server accepts a TLS 1.1-only probe, so the probe can speak TLS 1.1",
          "[tls_probe]") {
    ScratchDir dir;
    TestPki pki(dir.path);
    RecordingTlsServerOptions legacy;
    legacy.allow_legacy = true;
    RecordingTlsServer server(pki.server("legacy"), legacy);

    TlsProbeOptions old_only;
    old_only.min_version = TLS1_1_VERSION;
    old_only.max_version = TLS1_1_VERSION;
    old_only.ca_file = pki.root_ca_file();
    old_only.request = kHealthRequest;
    const TlsHandshakeResult old = tls_handshake("127.0.0.1", server.port(), old_only);
    INFO(old.error);
    REQUIRE(old.ok);
    CHECK(old.protocol == "TLSv1.1");
    CHECK(old.response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);

    // Allowing old clients must not lower what a modern client gets.
    const TlsHandshakeResult modern = tls_handshake("127.0.0.1", server.port());
    CHECK(modern.ok);
    CHECK(modern.protocol == "TLSv1.3");
}

TEST_CASE("tls probe: verification rejects expired, wrong-host and self-signed servers", "[tls_probe]") {
    ScratchDir dir;
    TestPki pki(dir.path);
    TlsProbeOptions verify;
    verify.ca_file = pki.root_ca_file();

    struct Case {
        PemFiles files;
        const char* reason;
    };
    const std::vector<Case> cases = {
        {pki.expired_server("expired"), "certificate has expired"},
        {pki.wrong_host_server("wrong"), "hostname mismatch"},
        {pki.self_signed_server("self"), "self-signed certificate"},
    };
    for (const Case& c : cases) {
        RecordingTlsServer server(c.files);
        const TlsHandshakeResult checked = tls_handshake("localhost", server.port(), verify);
        INFO(c.files.cert << ": " << checked.error);
        CHECK_FALSE(checked.ok);
        CHECK(contains(checked.error, c.reason));
        // Without a CA file the probe does not verify: these servers are otherwise healthy.
        const TlsHandshakeResult unchecked = tls_handshake("localhost", server.port());
        CHECK(unchecked.ok);
    }
}

TEST_CASE("tls probe: sessions resume against the recording server", "[tls_probe]") {
    ScratchDir dir;
    TestPki pki(dir.path);
    RecordingTlsServer server(pki.server("api"));
    const int version = GENERATE(TLS1_3_VERSION, TLS1_2_VERSION);
    INFO("max version " << version);

    TlsProbeOptions options;
    options.ca_file = pki.root_ca_file();
    options.max_version = version;
    options.request = kHealthRequest;
    const TlsHandshakeResult first = tls_handshake("localhost", server.port(), options);
    INFO(first.error);
    REQUIRE(first.ok);
    CHECK_FALSE(first.session_reused);
    REQUIRE(first.session != nullptr);
    CHECK(SSL_SESSION_is_resumable(first.session.get()) == 1);

    options.session = first.session;
    const TlsHandshakeResult second = tls_handshake("localhost", server.port(), options);
    INFO(second.error);
    REQUIRE(second.ok);
    CHECK(second.session_reused);
    CHECK(second.protocol == first.protocol);
    CHECK(second.response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

namespace {

struct CurlResult {
    CURLcode code = CURLE_OK;
    long status = 0;
    std::string body;
};

std::size_t append_body(char* data, std::size_t size, std::size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
}

CurlResult curl_get(const std::string& url, const std::string& ca_file, const std::string& pin) {
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    REQUIRE(init == CURLE_OK);
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    REQUIRE(curl != nullptr);
    CurlResult result;
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_CAINFO, ca_file.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PINNEDPUBLICKEY, pin.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_IPRESOLVE, CURL_IPRESOLVE_V4);  // the server is on 127.0.0.1 only
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &result.body);
    result.code = curl_easy_perform(curl.get());
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &result.status);
    return result;
}

}  // namespace

TEST_CASE("tls probe: libcurl with a wrong pin aborts before sending any request", "[tls_probe][curl]") {
    ScratchDir dir;
    TestPki pki(dir.path);
    const PemFiles files = pki.server("api");
    RecordingTlsServer server(files);
    const std::string url = "https://localhost:" + std::to_string(server.port()) + "/v1/health";

    const CurlResult wrong = curl_get(url, pki.root_ca_file(), TestPki::random_pin());
    CHECK(wrong.code == CURLE_SSL_PINNEDPUBKEYNOTMATCH);
    REQUIRE(server.wait_for_finished(1));
    CHECK(server.connections_accepted() == 1);
    CHECK(server.handshakes_completed() <= 1);
    CHECK(server.app_bytes_received() == 0);
    CHECK(server.requests_answered() == 0);

    const CurlResult right = curl_get(url, pki.root_ca_file(), TestPki::pin_of(files.cert));
    CHECK(right.code == CURLE_OK);
    CHECK(right.status == 200);
    CHECK(right.body == "{\"status\":\"ok\",\"server\":\"recording\"}");
    // A backup pin list (unknown;right) is accepted as well.
    const CurlResult backup =
        curl_get(url, pki.root_ca_file(), TestPki::random_pin() + ";" + TestPki::pin_of(files.cert));
    CHECK(backup.code == CURLE_OK);
    REQUIRE(server.wait_for_finished(3));
    CHECK(server.requests_answered() == 2);
    CHECK(server.app_bytes_received() > 0);
}
