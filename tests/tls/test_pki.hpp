// Ubuzima Sync — MIT licence.
// Test support: a throw-away PKI (root CA, intermediate CA, server leaves) generated at test time.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace ubuzima::test {

/// Paths of a PEM certificate file and its PEM private-key file.
struct PemFiles {
    std::string cert;
    std::string key;
};

/// A root CA ("Ubuzima Test Root CA") and an intermediate CA signed by it, made in memory with fresh
/// EC P-256 keys when constructed; every issued certificate is written as PEM files into `dir`
/// (created if missing). Files are named after the `name` given to each call (`<name>.crt`,
/// `<name>.key`), so reusing a name overwrites; the CAs are `root-ca.crt` and `intermediate-ca.crt`.
/// The object owns its CA keys (never written out); the files are left for the caller to remove.
///
/// Thread-safety: none — use one TestPki from one thread (tests create it in their setup). The
/// static helpers are safe to call from any thread.
/// Errors (OpenSSL failures, unwritable files) throw std::runtime_error.
class TestPki {
public:
    explicit TestPki(std::string dir);
    ~TestPki();
    TestPki(const TestPki&) = delete;
    TestPki& operator=(const TestPki&) = delete;

    const std::string& dir() const;
    /// PEM path of the root certificate (the only trust anchor of this PKI).
    std::string root_ca_file() const;
    /// PEM text of the root certificate (for CURLOPT_CAINFO_BLOB).
    std::string root_ca_pem() const;
    /// PEM path of the intermediate CA certificate alone.
    std::string intermediate_ca_file() const;

    /// A server leaf signed by the intermediate, with SAN DNS names `dns` and IP addresses `ips`,
    /// valid from now-1h for `days` days. The cert file holds the leaf then the intermediate (a chain,
    /// as SSL_CTX_use_certificate_chain_file wants); the key file is an unencrypted PKCS#8 PEM.
    PemFiles server(const std::string& name, const std::vector<std::string>& dns = {"localhost"},
                    const std::vector<std::string>& ips = {"127.0.0.1"}, int days = 30);
    /// Like server() but notBefore is now-10d and notAfter now-1d.
    PemFiles expired_server(const std::string& name);
    /// Like server() but the only SAN is DNS:wrong.example (no IP SAN).
    PemFiles wrong_host_server(const std::string& name);
    /// A self-signed leaf (SAN localhost/127.0.0.1) that no CA of this PKI vouches for.
    PemFiles self_signed_server(const std::string& name);
    /// Like server() but the key PEM is PKCS#8 encrypted with AES-256-CBC under `passphrase`.
    PemFiles encrypted_key_server(const std::string& name, const std::string& passphrase);
    /// A valid chain (as server()) whose key file holds a different, unrelated key.
    PemFiles mismatched_pair(const std::string& name);

    /// curl-style public-key pin of the first certificate in a PEM file:
    /// "sha256//" + base64(SHA-256(DER SubjectPublicKeyInfo)).
    static std::string pin_of(const std::string& cert_file);
    /// The pin of a fresh unrelated key (for "backup pin" and "wrong pin" tests).
    static std::string random_pin();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace ubuzima::test
