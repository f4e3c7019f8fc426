// Ubuzima Sync — MIT licence.
// Test support: a raw OpenSSL TLS client probe and a small recording TLS server, to test TLS policy.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <openssl/ssl.h>

#include "test_pki.hpp"

namespace ubuzima::test {

/// What a tls_handshake() offers and checks. The defaults are the library's (and Debian's) defaults.
struct TlsProbeOptions {
    /// Protocol bounds (TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION, ...); 0 = library default.
    /// A minimum below TLS 1.2 also drops the client to security level 0, without which OpenSSL 3
    /// (and Debian's openssl.cnf) refuses to offer TLS 1.0/1.1 at all and a "server refused TLS 1.1"
    /// test would prove nothing.
    int min_version = 0;
    int max_version = 0;
    /// PEM trust anchors to verify the server against (chain and host name); empty = no verification.
    std::string ca_file;
    /// Name checked against the certificate when verifying; empty = the host passed to tls_handshake.
    /// An IP address is checked against IP SANs.
    std::string verify_name;
    /// SNI to send; empty = the host passed to tls_handshake unless it is an IP address (RFC 6066).
    std::string sni;
    /// A session from an earlier result to offer for resumption (null = full handshake).
    std::shared_ptr<SSL_SESSION> session;
    /// Bytes sent after the handshake (e.g. a whole HTTP/1.1 request with "Connection: close"); the
    /// response is then read until the server closes. Reading is also what receives TLS 1.3 session
    /// tickets, which arrive after the handshake: without a request the returned session is usually
    /// not resumable under TLS 1.3.
    std::string request;
    /// Socket send/receive timeout per operation; a generous ceiling, not a measurement.
    std::chrono::milliseconds io_timeout{10000};
};

struct TlsHandshakeResult {
    bool ok = false;              ///< TCP connect and TLS handshake (and verification, if asked) succeeded
    std::string error;            ///< why not, or a failure while sending the request / reading the reply
    std::string protocol;         ///< SSL_get_version(): "TLSv1.3", "TLSv1.2", "TLSv1.1", ...
    bool session_reused = false;  ///< SSL_session_reused()
    std::string response;         ///< everything read after sending `request`
    std::shared_ptr<SSL_SESSION> session;  ///< for a later resumption (taken after the response is read)
};

/// Connects to host:port over TCP and runs one TLS handshake as `options` say. Never throws for
/// network or TLS failures (they are reported in the result). Safe to call from several threads at
/// once; SIGPIPE is blocked in the calling thread for the duration of the call.
TlsHandshakeResult tls_handshake(const std::string& host, int port, const TlsProbeOptions& options = {});

struct RecordingTlsServerOptions {
    /// Accept TLS 1.1 (and 1.2/1.3) at security level 0: a control peer proving that a client
    /// really can speak TLS 1.1. Default: the library's minimum (TLS 1.2 on OpenSSL 3).
    bool allow_legacy = false;
    /// Highest protocol offered (0 = library maximum, TLS 1.3).
    int max_version = 0;
    /// Port on 127.0.0.1; 0 = an ephemeral one (see port()).
    int port = 0;
    /// How long a connection may stay silent after the handshake before the server gives up on it.
    std::chrono::milliseconds idle_timeout{5000};
};

/// A tiny blocking TLS server on 127.0.0.1, one thread, one connection at a time, one SSL_CTX for all
/// connections (so TLS 1.2 session-id and TLS 1.3 ticket resumption work across connections).
/// Per connection: handshake, read application bytes until EOF, idle timeout or the end of an HTTP
/// request head; then any HTTP request (head ending "\r\n\r\n") gets a fixed
/// `HTTP/1.1 200 OK` JSON reply with "Connection: close" and the connection is closed. Request bodies
/// are not waited for. Counters are updated before the reply is written, so a client that has read
/// the reply sees them. All public members are thread-safe. The constructor binds and listens
/// (throwing std::runtime_error on failure) before starting the thread; stop() and the destructor
/// wake and join it (a connection in mid-handshake may delay that by up to the socket timeout).
class RecordingTlsServer {
public:
    explicit RecordingTlsServer(const PemFiles& files, const RecordingTlsServerOptions& options = {});
    ~RecordingTlsServer();
    RecordingTlsServer(const RecordingTlsServer&) = delete;
    RecordingTlsServer& operator=(const RecordingTlsServer&) = delete;

    int port() const { return m_port; }
    void stop();

    int connections_accepted() const { return m_accepted.load(); }
    int handshakes_completed() const { return m_handshakes.load(); }
    /// Connections fully handled and closed (handshake failures included).
    int connections_finished() const { return m_finished.load(); }
    std::size_t app_bytes_received() const { return m_app_bytes.load(); }
    int requests_answered() const { return m_requests.load(); }

    /// Waits until at least `n` connections are finished, so a test can read settled counters after a
    /// client that gave up early (the server may still be reading its EOF). False on timeout.
    bool wait_for_finished(int n, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

private:
    void run();
    void serve(int fd);

    std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> m_ctx;
    RecordingTlsServerOptions m_options;
    int m_listen_fd = -1;
    int m_wake_read = -1;   // a byte written to the wake pipe tells the thread to stop
    int m_wake_write = -1;
    int m_port = 0;
    std::atomic<int> m_accepted{0};
    std::atomic<int> m_handshakes{0};
    std::atomic<int> m_finished{0};
    std::atomic<std::size_t> m_app_bytes{0};
    std::atomic<int> m_requests{0};
    mutable std::mutex m_mutex;
    mutable std::condition_variable m_finished_cv;
    std::mutex m_stop_mutex;
    std::thread m_thread;
};

}  // namespace ubuzima::test
