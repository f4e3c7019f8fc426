// Ubuzima Sync — MIT licence.
// Test support: the raw TLS probe and the recording TLS server (OpenSSL 3, blocking POSIX sockets).
#include "tls_probe.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace ubuzima::test {
namespace {

using SslCtxPtr = std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)>;
using SslPtr = std::unique_ptr<SSL, void (*)(SSL*)>;

constexpr std::size_t kMaxRecordedHead = 64 * 1024;

/// Closes a file descriptor on scope exit.
class Fd {
public:
    explicit Fd(int fd = -1) : m_fd(fd) {}
    ~Fd() {
        if (m_fd >= 0) ::close(m_fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return m_fd; }

private:
    int m_fd;
};

/// OpenSSL writes with write(2), so a peer that hung up would kill the process with SIGPIPE. The
/// probe runs in the caller's thread, so it blocks SIGPIPE only for the call and swallows any that
/// became pending, leaving the caller's signal setup as it was.
class ScopedSigpipeBlock {
public:
    ScopedSigpipeBlock() {
        sigemptyset(&m_pipe);
        sigaddset(&m_pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &m_pipe, &m_old);
    }
    ~ScopedSigpipeBlock() {
        sigset_t pending;
        sigemptyset(&pending);
        if (!sigismember(&m_old, SIGPIPE) && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
            const timespec zero{0, 0};
            while (sigtimedwait(&m_pipe, nullptr, &zero) == -1 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
    }
    ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
    ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

private:
    sigset_t m_pipe;
    sigset_t m_old;
};

/// The OpenSSL error queue as text (and empties it).
std::string openssl_errors() {
    std::string text;
    char buf[256];
    while (unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!text.empty()) text += "; ";
        text += buf;
    }
    return text;
}

/// Why an SSL_* call returned `ret`, including the certificate verdict when that is the cause.
std::string describe_ssl_failure(const SSL* ssl, int ret, const char* what, int saved_errno) {
    const int code = SSL_get_error(ssl, ret);  // before the queue is drained: it reads the queue
    std::string text = std::string(what) + " failed (SSL_get_error " + std::to_string(code) + ")";
    const std::string queue = openssl_errors();
    if (!queue.empty()) text += ": " + queue;
    // OpenSSL records a verdict even when not asked to verify; only report it when it mattered.
    const long verify = SSL_get_verify_result(ssl);
    if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 && verify != X509_V_OK)
        text += "; verify: " + std::string(X509_verify_cert_error_string(verify));
    if (saved_errno != 0) text += "; errno: " + std::string(std::strerror(saved_errno));
    return text;
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

void set_socket_timeouts(int fd, std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // on Linux this bounds connect() too
}

/// A connected TCP socket to host:port (each resolved address in turn), or -1 with `error` set.
int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0) {
        error = "getaddrinfo " + host + ": " + gai_strerror(rc);
        return -1;
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, freeaddrinfo);
    error = "no address for " + host;
    for (const addrinfo* a = list.get(); a != nullptr; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            error = std::string("socket: ") + std::strerror(errno);
            continue;
        }
        set_socket_timeouts(fd, timeout);
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) return fd;
        error = "connect " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
        ::close(fd);
    }
    return -1;
}

/// Client and server alike: below TLS 1.2 OpenSSL 3 needs security level 0 (SHA-1/MD5 handshake
/// signatures), and the cipher string is where Debian's system config pins a higher level.
bool allow_legacy_protocols(SSL_CTX* ctx) {
    SSL_CTX_set_security_level(ctx, 0);
    return SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") == 1;
}

bool is_legacy(int version) { return version != 0 && version < TLS1_2_VERSION; }

/// The client context for one probe, or null with `error` set.
SslCtxPtr make_client_ctx(const TlsProbeOptions& options, std::string& error) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) {
        error = "SSL_CTX_new: " + openssl_errors();
        return ctx;
    }
    bool ok = true;
    if (is_legacy(options.min_version) || is_legacy(options.max_version)) ok = allow_legacy_protocols(ctx.get());
    if (ok && options.min_version != 0) ok = SSL_CTX_set_min_proto_version(ctx.get(), options.min_version) == 1;
    if (ok && options.max_version != 0) ok = SSL_CTX_set_max_proto_version(ctx.get(), options.max_version) == 1;
    // A server that closes without close_notify ends the response; that is not a test failure.
    SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (ok && !options.ca_file.empty()) {
        ok = SSL_CTX_load_verify_file(ctx.get(), options.ca_file.c_str()) == 1;
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    }
    if (!ok) {
        error = "client context setup: " + openssl_errors();
        ctx.reset();
    }
    return ctx;
}

bool configure_client_ssl(SSL* ssl, const std::string& host, const TlsProbeOptions& options) {
    const std::string sni = !options.sni.empty() ? options.sni : (is_ip_literal(host) ? "" : host);
    if (!sni.empty() && SSL_set_tlsext_host_name(ssl, sni.c_str()) != 1) return false;
    if (!options.ca_file.empty()) {
        const std::string name = options.verify_name.empty() ? host : options.verify_name;
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        const int set = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                            : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
        if (set != 1) return false;
    }
    if (options.session && SSL_set_session(ssl, options.session.get()) != 1) return false;
    return true;
}

/// Writes all of `data`; blocking sockets and SSL_MODE_AUTO_RETRY make one call enough normally.
bool ssl_write_all(SSL* ssl, const std::string& data, std::string& error) {
    std::size_t done = 0;
    while (done < data.size()) {
        const int n = SSL_write(ssl, data.data() + done, static_cast<int>(data.size() - done));
        if (n <= 0) {
            error = describe_ssl_failure(ssl, n, "SSL_write", errno);
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

/// Reads until the peer closes; false with `error` on a timeout or a TLS error.
bool ssl_read_to_end(SSL* ssl, std::string& out, std::string& error) {
    char buf[16 * 1024];
    for (;;) {
        errno = 0;
        const int n = SSL_read(ssl, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        const int saved_errno = errno;
        if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN) return true;
        error = describe_ssl_failure(ssl, n, "SSL_read", saved_errno);
        return false;
    }
}

std::shared_ptr<SSL_SESSION> take_session(SSL* ssl) {
    SSL_SESSION* session = SSL_get1_session(ssl);
    if (session == nullptr) return nullptr;
    return std::shared_ptr<SSL_SESSION>(session, SSL_SESSION_free);
}

/// Waits until `fd` is readable, the wake pipe is, or the timeout passes. True only for `fd`.
bool wait_readable(int fd, int wake_fd, std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    for (;;) {
        const int rc = ::poll(fds, 2, static_cast<int>(timeout.count()));
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) return false;
        if (fds[1].revents != 0) return false;
        return fds[0].revents != 0;
    }
}

/// The fixed reply to any HTTP request, with a Content-Length that cannot drift from the body.
const std::string& http_reply() {
    static const std::string body = "{\"status\":\"ok\",\"server\":\"recording\"}";
    static const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    return reply;
}

}  // namespace

TlsHandshakeResult tls_handshake(const std::string& host, int port, const TlsProbeOptions& options) {
    ScopedSigpipeBlock no_sigpipe;
    ERR_clear_error();  // so any error text below is ours
    TlsHandshakeResult result;

    SslCtxPtr ctx = make_client_ctx(options, result.error);
    if (!ctx) return result;
    SslPtr ssl(SSL_new(ctx.get()), SSL_free);
    if (!ssl || !configure_client_ssl(ssl.get(), host, options)) {
        result.error = "client SSL setup: " + openssl_errors();
        return result;
    }
    Fd fd(connect_tcp(host, port, options.io_timeout, result.error));
    if (fd.get() < 0) return result;
    result.error.clear();
    if (SSL_set_fd(ssl.get(), fd.get()) != 1) {
        result.error = "SSL_set_fd: " + openssl_errors();
        return result;
    }

    errno = 0;
    const int rc = SSL_connect(ssl.get());
    if (rc != 1) {
        result.error = describe_ssl_failure(ssl.get(), rc, "SSL_connect", errno);
        return result;
    }
    result.ok = true;
    result.protocol = SSL_get_version(ssl.get());
    result.session_reused = SSL_session_reused(ssl.get()) == 1;

    bool clean = true;
    if (!options.request.empty()) {
        clean = ssl_write_all(ssl.get(), options.request, result.error) &&
                ssl_read_to_end(ssl.get(), result.response, result.error);
    }
    // Taken only now: TLS 1.3 tickets arrive with the first records read after the handshake.
    result.session = take_session(ssl.get());
    if (clean) SSL_shutdown(ssl.get());
    ERR_clear_error();
    return result;
}

RecordingTlsServer::RecordingTlsServer(const PemFiles& files, const RecordingTlsServerOptions& options)
    : m_ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free), m_options(options) {
    // `sys_errno` is passed by system-call failures only; OpenSSL ones explain themselves in the queue.
    const auto fail = [this](const std::string& what, int sys_errno = 0) {
        const std::string queue = openssl_errors();
        const std::string err = sys_errno != 0 ? std::string(" (") + std::strerror(sys_errno) + ")" : "";
        for (int fd : {m_listen_fd, m_wake_read, m_wake_write})
            if (fd >= 0) ::close(fd);
        throw std::runtime_error("RecordingTlsServer: " + what + err + (queue.empty() ? "" : ": " + queue));
    };
    if (!m_ctx) fail("SSL_CTX_new");
    SSL_CTX* ctx = m_ctx.get();
    // An encrypted key must fail to load rather than prompt on the terminal.
    SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) fail("load " + files.cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1) fail("load " + files.key);
    if (SSL_CTX_check_private_key(ctx) != 1) fail("key does not match certificate");
    if (options.allow_legacy &&
        (!allow_legacy_protocols(ctx) || SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION) != 1))
        fail("legacy protocol setup");
    if (options.max_version != 0 && SSL_CTX_set_max_proto_version(ctx, options.max_version) != 1)
        fail("max protocol version");
    static const unsigned char kSessionContext[] = "ubuzima-recording-tls-server";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail("pipe2", errno);
    m_wake_read = pipe_fds[0];
    m_wake_write = pipe_fds[1];
    m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_listen_fd < 0) fail("socket", errno);
    const int one = 1;
    setsockopt(m_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(options.port));
    if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind", errno);
    if (::listen(m_listen_fd, 16) != 0) fail("listen", errno);
    socklen_t len = sizeof addr;
    if (::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) fail("getsockname", errno);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { run(); });
}

RecordingTlsServer::~RecordingTlsServer() {
    stop();
    for (int fd : {m_wake_read, m_wake_write})
        if (fd >= 0) ::close(fd);
}

void RecordingTlsServer::stop() {
    std::lock_guard<std::mutex> lock(m_stop_mutex);
    if (!m_thread.joinable()) return;
    const char byte = 'x';
    while (::write(m_wake_write, &byte, 1) < 0 && errno == EINTR) {
    }
    m_thread.join();
    ::close(m_listen_fd);
    m_listen_fd = -1;
}

bool RecordingTlsServer::wait_for_finished(int n, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(m_mutex);
    return m_finished_cv.wait_for(lock, timeout, [&] { return m_finished.load() >= n; });
}

void RecordingTlsServer::run() {
    // This thread is ours: block SIGPIPE for good, so a client hanging up only yields EPIPE.
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);

    const std::chrono::milliseconds forever{-1};
    while (wait_readable(m_listen_fd, m_wake_read, forever)) {
        const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;  // the client gave up before accept; nothing to count
        m_accepted.fetch_add(1);
        serve(fd);
        ::close(fd);
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_finished.fetch_add(1);
        }
        m_finished_cv.notify_all();
    }
}

void RecordingTlsServer::serve(int fd) {
    ERR_clear_error();
    set_socket_timeouts(fd, std::chrono::seconds(10));
    SslPtr ssl(SSL_new(m_ctx.get()), SSL_free);
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1 || SSL_accept(ssl.get()) != 1) {
        ERR_clear_error();
        return;
    }
    m_handshakes.fetch_add(1);

    std::string head;
    bool answered = false;
    bool clean = false;
    char buf[16 * 1024];
    for (;;) {
        if (SSL_has_pending(ssl.get()) == 0 && !wait_readable(fd, m_wake_read, m_options.idle_timeout)) break;
        const int n = SSL_read(ssl.get(), buf, sizeof buf);
        if (n <= 0) {
            clean = SSL_get_error(ssl.get(), n) == SSL_ERROR_ZERO_RETURN;
            break;
        }
        m_app_bytes.fetch_add(static_cast<std::size_t>(n));
        if (head.size() < kMaxRecordedHead) head.append(buf, static_cast<std::size_t>(n));
        if (head.find("\r\n\r\n") != std::string::npos) {
            m_requests.fetch_add(1);
            answered = SSL_write(ssl.get(), http_reply().data(), static_cast<int>(http_reply().size())) > 0;
            break;
        }
    }
    if (answered || clean) SSL_shutdown(ssl.get());
    if (answered) {
        // Lingering close: if unread client bytes were still queued, close() would send a reset that
        // can destroy the reply before the client reads it. Wait (bounded) for the client's EOF.
        ::shutdown(fd, SHUT_WR);
        while (wait_readable(fd, m_wake_read, std::chrono::seconds(2)) && ::recv(fd, buf, sizeof buf, 0) > 0) {
        }
    }
    ERR_clear_error();
}

}  // namespace ubuzima::test
