// Ubuzima Sync — MIT licence.
// A fault-injecting TCP proxy on 127.0.0.1 (our Toxiproxy): cuts, resets, latency, slices, black holes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace ubuzima::test {

/// An owned file descriptor, closed on destruction.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    void reset(int fd = -1);

private:
    int m_fd = -1;
};

/// What one proxied connection suffers. Defaults: a clean pass-through.
struct Toxics {
    /// Close both sides once this many client→server bytes were forwarded (-1: never).
    std::int64_t cut_request_after = -1;
    /// Close both sides once this many server→client bytes were forwarded (-1: never).
    std::int64_t cut_response_after = -1;
    bool reset = false;               ///< close the client side with RST (SO_LINGER 0), not FIN
    int slow_close_ms = 0;            ///< wait this long before closing after a cut or EOF
    int latency_ms = 0;               ///< added before forwarding each chunk, both directions
    int jitter_ms = 0;                ///< plus a uniform random 0..jitter_ms
    std::int64_t bandwidth_bps = 0;   ///< bytes per second per direction; 0 = unlimited
    bool one_byte_slices = false;     ///< forward one byte per send() (TCP_NODELAY)
    bool black_hole = false;          ///< accept and read, never forward, never answer
};

/// The bytes one armed connection carried (for measuring request/response sizes).
struct ConnectionLog {
    std::string up;    ///< client → server, as forwarded
    std::string down;  ///< server → client, as forwarded
};

/// Listens on 127.0.0.1:0 and forwards every connection to upstream_port on 127.0.0.1.
/// New connections get the default toxics, except the next one after arm_once(), which gets
/// the armed ones and is logged. One thread per connection; the destructor stops and joins all
/// of them (every wait inside is bounded and polls the stop flag). Thread-safe.
class FaultProxy {
public:
    explicit FaultProxy(int upstream_port);
    ~FaultProxy();
    FaultProxy(const FaultProxy&) = delete;
    FaultProxy& operator=(const FaultProxy&) = delete;

    int port() const { return m_port; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    /// Points new connections at another upstream (a restarted server).
    void set_upstream(int port) { m_upstream_port.store(port); }
    void set_default(const Toxics& toxics);
    /// The next accepted connection only gets `toxics`; its bytes are logged.
    void arm_once(const Toxics& toxics);
    /// Waits until the armed connection has closed; its log (nullopt on timeout).
    std::optional<ConnectionLog> wait_armed_closed(int timeout_ms);
    std::int64_t connections() const { return m_connections.load(); }

private:
    struct Conn;
    void accept_loop();
    void serve(Conn& conn);
    bool pause_ms(int ms) const;  // false when stopping

    Fd m_listen;
    int m_port = 0;
    std::atomic<int> m_upstream_port;
    std::atomic<bool> m_stop{false};
    std::atomic<std::int64_t> m_connections{0};
    std::mutex m_mutex;
    std::condition_variable m_armed_cv;
    Toxics m_default;
    std::optional<Toxics> m_armed;
    std::shared_ptr<ConnectionLog> m_armed_log;  // the log of the last armed connection
    bool m_armed_closed = false;
    std::list<std::unique_ptr<Conn>> m_conns;
    std::thread m_acceptor;
};

}  // namespace ubuzima::test
