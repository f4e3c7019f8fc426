// Ubuzima Sync — MIT licence.
// Test support: generates the test PKI with the OpenSSL 3 C API and writes it as PEM files.
#include "test_pki.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace ubuzima::test {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using KeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

constexpr long kHour = 3600;
constexpr long kDay = 24 * kHour;

/// Throws with the OpenSSL error queue appended, so a failing test says what OpenSSL disliked.
[[noreturn]] void fail(const std::string& what) {
    std::string message = "TestPki: " + what;
    char buf[256];
    while (unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        message += "; ";
        message += buf;
    }
    throw std::runtime_error(message);
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

KeyPtr make_ec_key() {
    KeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    check(ctx != nullptr, "EVP_PKEY_CTX_new_from_name(EC)");
    check(EVP_PKEY_keygen_init(ctx.get()) == 1, "EVP_PKEY_keygen_init");
    check(EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") == 1, "EVP_PKEY_CTX_set_group_name(P-256)");
    EVP_PKEY* raw = nullptr;
    check(EVP_PKEY_keygen(ctx.get(), &raw) == 1, "EVP_PKEY_keygen");
    return KeyPtr(raw);
}

/// What differs between the certificates this PKI issues.
struct CertSpec {
    std::string common_name;
    enum class Kind { root_ca, intermediate_ca, server } kind = Kind::server;
    std::vector<std::string> dns;
    std::vector<std::string> ips;
    long not_before = -kHour;  // seconds from now
    long not_after = 30 * kDay - kHour;
};

void set_random_serial(X509* cert) {
    // Random serials keep certificates from separate TestPki instances distinct for any cache.
    BnPtr bn(BN_new());
    check(bn != nullptr, "BN_new");
    check(BN_rand(bn.get(), 63, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1, "BN_rand");
    check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr, "BN_to_ASN1_INTEGER");
}

void set_subject(X509* cert, const std::string& common_name) {
    NamePtr name(X509_NAME_new());
    check(name != nullptr, "X509_NAME_new");
    const auto add = [&](const char* field, const std::string& value) {
        check(X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) == 1,
              "X509_NAME_add_entry_by_txt");
    };
    add("O", "Ubuzima Sync Tests");
    add("CN", common_name);
    check(X509_set_subject_name(cert, name.get()) == 1, "X509_set_subject_name");
}

void add_extension(X509* cert, X509V3_CTX* ctx, const char* name, const std::string& value) {
    ExtPtr ext(X509V3_EXT_nconf(nullptr, ctx, name, value.c_str()));
    if (!ext) fail(std::string("X509V3_EXT_nconf ") + name + "=" + value);
    check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

std::string san_value(const CertSpec& spec) {
    std::string san;
    for (const auto& d : spec.dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
    for (const auto& ip : spec.ips) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    return san;
}

void add_extensions(X509* cert, X509* issuer, const CertSpec& spec) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    switch (spec.kind) {
        case CertSpec::Kind::root_ca:
            add_extension(cert, &ctx, "basicConstraints", "critical,CA:TRUE");
            add_extension(cert, &ctx, "keyUsage", "critical,keyCertSign,cRLSign");
            break;
        case CertSpec::Kind::intermediate_ca:
            add_extension(cert, &ctx, "basicConstraints", "critical,CA:TRUE,pathlen:0");
            add_extension(cert, &ctx, "keyUsage", "critical,keyCertSign,cRLSign");
            break;
        case CertSpec::Kind::server: {
            add_extension(cert, &ctx, "basicConstraints", "critical,CA:FALSE");
            add_extension(cert, &ctx, "keyUsage", "critical,digitalSignature");
            add_extension(cert, &ctx, "extendedKeyUsage", "serverAuth");
            const std::string san = san_value(spec);
            if (!san.empty()) add_extension(cert, &ctx, "subjectAltName", san);
            break;
        }
    }
    // The subject key id must exist before the authority key id: for a self-signed certificate
    // OpenSSL takes the AKI from the certificate's own SKI.
    add_extension(cert, &ctx, "subjectKeyIdentifier", "hash");
    add_extension(cert, &ctx, "authorityKeyIdentifier", "keyid:always");
}

/// Issues a certificate for `subject_key`; a null `issuer` means self-signed with `signing_key`.
CertPtr make_cert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* signing_key) {
    CertPtr cert(X509_new());
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
    set_random_serial(cert.get());
    check(X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, spec.not_before, nullptr) != nullptr,
          "X509_time_adj_ex(notBefore)");
    check(X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, spec.not_after, nullptr) != nullptr,
          "X509_time_adj_ex(notAfter)");
    set_subject(cert.get(), spec.common_name);
    X509* const issuer_cert = issuer != nullptr ? issuer : cert.get();
    check(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) == 1, "X509_set_issuer_name");
    check(X509_set_pubkey(cert.get(), subject_key) == 1, "X509_set_pubkey");
    add_extensions(cert.get(), issuer_cert, spec);
    check(X509_sign(cert.get(), signing_key, EVP_sha256()) > 0, "X509_sign");
    return cert;
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string cert_pem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr, "BIO_new");
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
    return bio_text(bio.get());
}

/// PKCS#8 PEM; encrypted with AES-256-CBC when `passphrase` is given.
std::string key_pem(EVP_PKEY* key, const std::string* passphrase = nullptr) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr, "BIO_new");
    const EVP_CIPHER* cipher = passphrase != nullptr ? EVP_aes_256_cbc() : nullptr;
    const auto* kstr =
        passphrase != nullptr ? reinterpret_cast<const unsigned char*>(passphrase->data()) : nullptr;
    const int klen = passphrase != nullptr ? static_cast<int>(passphrase->size()) : 0;
    check(PEM_write_bio_PrivateKey(bio.get(), key, cipher, kstr, klen, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
    return bio_text(bio.get());
}

void write_file(const std::string& path, const std::string& content, bool secret = false) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << content;
        out.close();
        if (!out) throw std::runtime_error("TestPki: cannot write " + path);
    }
    // Keys get owner-only permissions, as a real deployment would; some servers insist on it.
    if (secret) {
        std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::replace);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("TestPki: cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The curl pin form of a DER SubjectPublicKeyInfo.
std::string pin_of_spki(const std::vector<unsigned char>& der) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    check(EVP_Digest(der.data(), der.size(), digest, &digest_len, EVP_sha256(), nullptr) == 1, "EVP_Digest");
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(b64, digest, static_cast<int>(digest_len));
    return "sha256//" + std::string(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
}

std::vector<unsigned char> spki_der_of_key(const EVP_PKEY* key) {
    const int len = i2d_PUBKEY(key, nullptr);
    check(len > 0, "i2d_PUBKEY");
    std::vector<unsigned char> der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();  // i2d advances the pointer it is given
    check(i2d_PUBKEY(key, &p) == len, "i2d_PUBKEY");
    return der;
}

std::vector<unsigned char> spki_der_of_cert(X509* cert) {
    const X509_PUBKEY* spki = X509_get_X509_PUBKEY(cert);
    check(spki != nullptr, "X509_get_X509_PUBKEY");
    const int len = i2d_X509_PUBKEY(spki, nullptr);
    check(len > 0, "i2d_X509_PUBKEY");
    std::vector<unsigned char> der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();
    check(i2d_X509_PUBKEY(spki, &p) == len, "i2d_X509_PUBKEY");
    return der;
}

CertSpec server_spec(const std::string& name, std::vector<std::string> dns, std::vector<std::string> ips,
                     int days) {
    CertSpec spec;
    spec.common_name = name;
    spec.kind = CertSpec::Kind::server;
    spec.dns = std::move(dns);
    spec.ips = std::move(ips);
    spec.not_before = -kHour;
    spec.not_after = static_cast<long>(days) * kDay - kHour;
    return spec;
}

}  // namespace

struct TestPki::Impl {
    std::string dir;
    KeyPtr root_key;
    CertPtr root;
    std::string root_pem;
    KeyPtr intermediate_key;
    CertPtr intermediate;
    std::string intermediate_pem;

    std::string path(const std::string& file) const { return dir + "/" + file; }

    /// Signs `spec` with the intermediate (or self-signs) and writes `<name>.crt` / `<name>.key`.
    PemFiles issue(const std::string& name, const CertSpec& spec, bool self_signed = false,
                   const std::string* passphrase = nullptr, bool mismatched_key = false) {
        KeyPtr key = make_ec_key();
        CertPtr cert = self_signed ? make_cert(spec, key.get(), nullptr, key.get())
                                   : make_cert(spec, key.get(), intermediate.get(), intermediate_key.get());
        std::string chain = cert_pem(cert.get());
        if (!self_signed) chain += intermediate_pem;
        KeyPtr other = mismatched_key ? make_ec_key() : nullptr;
        PemFiles files{path(name + ".crt"), path(name + ".key")};
        write_file(files.cert, chain);
        write_file(files.key, key_pem(other ? other.get() : key.get(), passphrase), true);
        return files;
    }
};

TestPki::TestPki(std::string dir) : m_impl(std::make_unique<Impl>()) {
    std::filesystem::create_directories(dir);
    m_impl->dir = std::move(dir);

    CertSpec root_spec;
    root_spec.common_name = "Ubuzima Test Root CA";
    root_spec.kind = CertSpec::Kind::root_ca;
    root_spec.not_before = -kDay;
    root_spec.not_after = 3650 * kDay;
    m_impl->root_key = make_ec_key();
    m_impl->root = make_cert(root_spec, m_impl->root_key.get(), nullptr, m_impl->root_key.get());
    m_impl->root_pem = cert_pem(m_impl->root.get());

    CertSpec inter_spec;
    inter_spec.common_name = "Ubuzima Test Intermediate CA";
    inter_spec.kind = CertSpec::Kind::intermediate_ca;
    // Wider than any leaf (expired ones included) so only the leaf's own dates decide a test.
    inter_spec.not_before = -30 * kDay;
    inter_spec.not_after = 3650 * kDay;
    m_impl->intermediate_key = make_ec_key();
    m_impl->intermediate =
        make_cert(inter_spec, m_impl->intermediate_key.get(), m_impl->root.get(), m_impl->root_key.get());
    m_impl->intermediate_pem = cert_pem(m_impl->intermediate.get());

    write_file(root_ca_file(), m_impl->root_pem);
    write_file(intermediate_ca_file(), m_impl->intermediate_pem);
}

TestPki::~TestPki() = default;

const std::string& TestPki::dir() const { return m_impl->dir; }
std::string TestPki::root_ca_file() const { return m_impl->path("root-ca.crt"); }
std::string TestPki::root_ca_pem() const { return m_impl->root_pem; }
std::string TestPki::intermediate_ca_file() const { return m_impl->path("intermediate-ca.crt"); }

PemFiles TestPki::server(const std::string& name, const std::vector<std::string>& dns,
                         const std::vector<std::string>& ips, int days) {
    return m_impl->issue(name, server_spec(name, dns, ips, days));
}

PemFiles TestPki::expired_server(const std::string& name) {
    CertSpec spec = server_spec(name, {"localhost"}, {"127.0.0.1"}, 30);
    spec.not_before = -10 * kDay;
    spec.not_after = -1 * kDay;
    return m_impl->issue(name, spec);
}

PemFiles TestPki::wrong_host_server(const std::string& name) {
    return m_impl->issue(name, server_spec(name, {"wrong.example"}, {}, 30));
}

PemFiles TestPki::self_signed_server(const std::string& name) {
    return m_impl->issue(name, server_spec(name, {"localhost"}, {"127.0.0.1"}, 30), true);
}

PemFiles TestPki::encrypted_key_server(const std::string& name, const std::string& passphrase) {
    return m_impl->issue(name, server_spec(name, {"localhost"}, {"127.0.0.1"}, 30), false, &passphrase);
}

PemFiles TestPki::mismatched_pair(const std::string& name) {
    return m_impl->issue(name, server_spec(name, {"localhost"}, {"127.0.0.1"}, 30), false, nullptr, true);
}

std::string TestPki::pin_of(const std::string& cert_file) {
    const std::string pem = read_file(cert_file);
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    check(bio != nullptr, "BIO_new_mem_buf");
    CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) fail("no PEM certificate in " + cert_file);
    return pin_of_spki(spki_der_of_cert(cert.get()));
}

std::string TestPki::random_pin() {
    KeyPtr key = make_ec_key();
    return pin_of_spki(spki_der_of_key(key.get()));
}

}  // namespace ubuzima::test
