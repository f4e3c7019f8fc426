// Ubuzima Sync — MIT licence.
// TLS material and policy for the listeners (OpenSSL 3).
#include "http/tls_server.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

namespace ubuzima::server {

namespace {

struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Mozilla's "intermediate" TLS 1.2 suites without DHE: forward secret, AEAD only. TLS 1.3
// suites are OpenSSL's defaults (all three are AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

Status bad(const std::string& what) { return Status(ErrorCode::InvalidArgument, what); }

// Refuses to prompt for a passphrase on the terminal: an encrypted key is an error at start.
extern "C" int no_passphrase(char*, int, int, void*) { return 0; }

std::string name_of(const X509_NAME* name) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio) return "?";
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string("?");
}

std::string time_text(const ASN1_TIME* t) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return "?";
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string("?");
}

// ---- session tickets shared by every SSL_CTX of the process ----
// A ticket is the session state encrypted under a key the server holds. OpenSSL keeps that key
// per SSL_CTX, and cpprestsdk makes an SSL_CTX per connection, so without this no ticket would
// ever decrypt and every connection would pay a full handshake. The key is random per process
// and rotated every 12 hours (the previous one still decrypts), so a stolen key reveals at most a
// day of sessions.
struct TicketKey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    std::int64_t born_s = 0;
};

struct TicketKeys {
    std::mutex mutex;
    TicketKey current{};
    TicketKey previous{};
    bool have_previous = false;
};

TicketKeys& ticket_keys() {
    static TicketKeys keys;
    return keys;
}

constexpr std::int64_t kTicketKeyLifetimeS = 12 * 3600;

bool fresh_key(TicketKey& k) {
    k.born_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    return RAND_bytes(k.name, sizeof k.name) == 1 && RAND_bytes(k.aes, sizeof k.aes) == 1 &&
           RAND_bytes(k.hmac, sizeof k.hmac) == 1;
}

bool set_mac_key(EVP_MAC_CTX* hctx, unsigned char* key) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
                           OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

// OpenSSL's ticket key callback: 1 = use this key, 2 = decrypted with an old key (renew the
// ticket), 0 = no such key (full handshake), -1 = error.
extern "C" int ticket_key_cb(SSL*, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                             EVP_MAC_CTX* hctx, int enc) {
    TicketKeys& keys = ticket_keys();
    std::lock_guard<std::mutex> lock(keys.mutex);
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (keys.current.born_s == 0 || now - keys.current.born_s > kTicketKeyLifetimeS) {
        TicketKey next{};
        if (!fresh_key(next)) return -1;
        if (keys.current.born_s != 0) {
            keys.previous = keys.current;
            keys.have_previous = true;
        }
        keys.current = next;
    }
    if (enc) {
        std::memcpy(key_name, keys.current.name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, keys.current.aes, iv) != 1) return -1;
        return set_mac_key(hctx, keys.current.hmac) ? 1 : -1;
    }
    TicketKey* k = nullptr;
    int verdict = 1;
    if (std::memcmp(key_name, keys.current.name, 16) == 0) {
        k = &keys.current;
    } else if (keys.have_previous && std::memcmp(key_name, keys.previous.name, 16) == 0) {
        k = &keys.previous;
        verdict = 2;
    }
    if (!k) return 0;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k->aes, iv) != 1) return -1;
    return set_mac_key(hctx, k->hmac) ? verdict : -1;
}

}  // namespace

class TlsCredentials {
public:
    static Result<std::shared_ptr<const TlsCredentials>> read(const std::string& cert_path, const std::string& key_path);

    X509* leaf() const { return m_leaf.get(); }
    const std::vector<X509Ptr>& chain() const { return m_chain; }
    EVP_PKEY* key() const { return m_key.get(); }
    std::string summary() const {
        return "subject " + name_of(X509_get_subject_name(m_leaf.get())) + ", issuer " +
               name_of(X509_get_issuer_name(m_leaf.get())) + ", valid until " +
               time_text(X509_get0_notAfter(m_leaf.get()));
    }

private:
    X509Ptr m_leaf;
    std::vector<X509Ptr> m_chain;
    PkeyPtr m_key;
};

Result<std::shared_ptr<const TlsCredentials>> TlsCredentials::read(const std::string& cert_path,
                                                                    const std::string& key_path) {
    ERR_clear_error();
    auto creds = std::make_shared<TlsCredentials>();
    {
        BioPtr bio(BIO_new_file(cert_path.c_str(), "r"));
        if (!bio) return bad("--tls-cert " + cert_path + ": cannot read: " + std::strerror(errno));
        creds->m_leaf.reset(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
        if (!creds->m_leaf) return bad("--tls-cert " + cert_path + ": no PEM certificate in it (" + openssl_error() + ")");
        for (;;) {
            X509Ptr next(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
            if (!next) break;
            creds->m_chain.push_back(std::move(next));
        }
        ERR_clear_error();  // the end of the file reads as "no start line"
    }
    {
        struct stat st {};
        if (stat(key_path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
            std::fprintf(stderr, "ubuzima-server: warning: --tls-key %s is readable by other users (chmod 600 it)\n",
                         key_path.c_str());
        BioPtr bio(BIO_new_file(key_path.c_str(), "r"));
        if (!bio) return bad("--tls-key " + key_path + ": cannot read: " + std::strerror(errno));
        creds->m_key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
        if (!creds->m_key)
            return bad("--tls-key " + key_path + ": no unencrypted PEM private key in it (" + openssl_error() + ")");
    }
    if (X509_check_private_key(creds->m_leaf.get(), creds->m_key.get()) != 1)
        return bad("--tls-key " + key_path + " does not match the certificate in --tls-cert " + cert_path);
    if (X509_cmp_current_time(X509_get0_notAfter(creds->m_leaf.get())) <= 0)
        return bad("--tls-cert " + cert_path + ": the certificate expired on " +
                   time_text(X509_get0_notAfter(creds->m_leaf.get())));
    if (X509_cmp_current_time(X509_get0_notBefore(creds->m_leaf.get())) >= 0)
        return bad("--tls-cert " + cert_path + ": the certificate is not valid before " +
                   time_text(X509_get0_notBefore(creds->m_leaf.get())));
    return std::shared_ptr<const TlsCredentials>(std::move(creds));
}

TlsServerContext::TlsServerContext(std::string cert_path, std::string key_path,
                                   std::shared_ptr<const TlsCredentials> creds)
    : m_cert_path(std::move(cert_path)), m_key_path(std::move(key_path)), m_creds(std::move(creds)) {}

TlsServerContext::~TlsServerContext() = default;

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::load(const std::string& cert_path,
                                                                 const std::string& key_path) {
    auto creds = TlsCredentials::read(cert_path, key_path);
    if (!creds.ok()) return creds.status();
    std::shared_ptr<TlsServerContext> ctx(new TlsServerContext(cert_path, key_path, std::move(*creds)));
    // Prove the policy and material install cleanly now, not at the first connection.
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> probe(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!probe) return Status(ErrorCode::Internal, "SSL_CTX_new failed: " + openssl_error());
    UBUZIMA_TRY(ctx->configure(probe.get()));
    return ctx;
}

Status TlsServerContext::reload() {
    auto creds = TlsCredentials::read(m_cert_path, m_key_path);
    if (!creds.ok()) return creds.status();
    std::lock_guard<std::mutex> lock(m_mutex);
    m_creds = std::move(*creds);
    ++m_generation;
    return {};
}

std::shared_ptr<const TlsCredentials> TlsServerContext::current() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_creds;
}

std::uint64_t TlsServerContext::generation() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_generation;
}

std::string TlsServerContext::summary() const { return current()->summary(); }

Status TlsServerContext::configure(SSL_CTX* ctx) const {
    const std::shared_ptr<const TlsCredentials> creds = current();
    auto fail = [](const char* what) { return Status(ErrorCode::Internal, std::string(what) + ": " + openssl_error()); };
    // Set the floor explicitly: a system openssl.cnf can lower OpenSSL's default one.
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return fail("TLS minimum version");
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return fail("TLS 1.2 cipher list");
    if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) return fail("key exchange groups");
    if (SSL_CTX_use_certificate(ctx, creds->leaf()) != 1) return fail("installing the certificate");
    SSL_CTX_clear_chain_certs(ctx);
    for (const X509Ptr& c : creds->chain())
        if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) return fail("installing the certificate chain");
    if (SSL_CTX_use_PrivateKey(ctx, creds->key()) != 1) return fail("installing the private key");
    if (SSL_CTX_check_private_key(ctx) != 1) return fail("certificate and key");
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) != 1) return fail("session ticket keys");
    return {};
}

}  // namespace ubuzima::server
