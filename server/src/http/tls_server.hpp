// Ubuzima Sync — MIT licence.
// The server side of TLS, in plain OpenSSL (no Asio, no cpprestsdk): the certificate chain and
// key read and checked once, the protocol policy, session tickets that survive across SSL_CTX
// objects, and reload on SIGHUP.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "ubuzima/sync/status.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace ubuzima::server {

/// Parsed PEM material: a leaf certificate, its chain and the private key. Immutable.
class TlsCredentials;

/// What the listeners install into their SSL_CTX. cpprestsdk builds a new SSL_CTX for every
/// accepted connection: configure() installs pre-parsed objects (no file I/O per connection) and
/// a process-wide ticket key, so a client resumes its session on a new connection even though
/// each connection had its own context. Thread-safe.
class TlsServerContext {
public:
    /// Reads and checks the PEM files: the certificate file holds the leaf first and then any
    /// intermediates; the key must be unencrypted and match the leaf; an expired or not yet valid
    /// leaf is refused. Errors (InvalidArgument) name the file and what is wrong.
    static Result<std::shared_ptr<TlsServerContext>> load(const std::string& cert_path, const std::string& key_path);
    ~TlsServerContext();

    /// Re-reads the same files. On any error the current certificate stays in use and the error
    /// is returned; on success new connections get the new one (open ones keep theirs).
    Status reload();

    /// Applies the policy (TLS 1.2 minimum; ECDHE with AES-GCM or ChaCha20-Poly1305; no
    /// compression, no renegotiation; server cipher order; shared ticket keys) and installs the
    /// current certificate, chain and key into `ctx`.
    Status configure(SSL_CTX* ctx) const;

    /// Increases with every successful reload (a listener that shares one SSL_CTX across
    /// connections rebuilds it when this changes).
    std::uint64_t generation() const;
    /// "subject CN=…, issuer CN=…, valid until 2027-03-01 12:00:00 UTC" of the current leaf.
    std::string summary() const;

private:
    TlsServerContext(std::string cert_path, std::string key_path, std::shared_ptr<const TlsCredentials> creds);
    std::shared_ptr<const TlsCredentials> current() const;

    const std::string m_cert_path;
    const std::string m_key_path;
    mutable std::mutex m_mutex;
    std::shared_ptr<const TlsCredentials> m_creds;
    std::uint64_t m_generation = 1;
};

}  // namespace ubuzima::server
