// Ubuzima Sync — MIT licence.
// The fault proxy: plain POSIX sockets, one bounded thread per connection, poll() with a stop flag.
#include "fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <random>
#include <stdexcept>

namespace ubuzima::test {

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        reset(other.m_fd);
        other.m_fd = -1;
    }
    return *this;
}

void Fd::reset(int fd) {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = fd;
}

struct FaultProxy::Conn {
    Fd client;
    Toxics toxics;
    std::shared_ptr<ConnectionLog> log;  // null unless armed
    std::atomic<bool> done{false};
    std::thread thread;
};

namespace {

constexpr int kPollMs = 20;  // how often blocked threads look at the stop flag

sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

bool send_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        data += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

}  // namespace

FaultProxy::FaultProxy(int upstream_port) : m_upstream_port(upstream_port) {
    m_listen.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!m_listen.valid()) throw std::runtime_error("proxy: socket failed");
    const int one = 1;
    ::setsockopt(m_listen.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = loopback(0);
    if (::bind(m_listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(m_listen.get(), 64) != 0)
        throw std::runtime_error("proxy: bind/listen failed");
    socklen_t len = sizeof addr;
    ::getsockname(m_listen.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    m_acceptor = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() {
    m_stop = true;
    if (m_acceptor.joinable()) m_acceptor.join();
    for (auto& c : m_conns)
        if (c->thread.joinable()) c->thread.join();
}

void FaultProxy::set_default(const Toxics& toxics) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_default = toxics;
}

void FaultProxy::arm_once(const Toxics& toxics) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_armed = toxics;
    m_armed_log.reset();
    m_armed_closed = false;
}

std::optional<ConnectionLog> FaultProxy::wait_armed_closed(int timeout_ms) {
    std::unique_lock<std::mutex> lock(m_mutex);
    if (!m_armed_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return m_armed_closed; }))
        return std::nullopt;
    return m_armed_log ? std::optional<ConnectionLog>(*m_armed_log) : std::nullopt;
}

bool FaultProxy::pause_ms(int ms) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        if (m_stop) return false;
        std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(std::chrono::milliseconds(kPollMs),
                                                                       until - std::chrono::steady_clock::now()));
    }
    return !m_stop;
}

void FaultProxy::accept_loop() {
    while (!m_stop) {
        pollfd p{m_listen.get(), POLLIN, 0};
        if (::poll(&p, 1, kPollMs) <= 0) continue;
        Fd client(::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client.valid()) continue;
        // Reap finished connections so thousands of attempts do not pile up threads.
        for (auto it = m_conns.begin(); it != m_conns.end();) {
            if ((*it)->done) {
                (*it)->thread.join();
                it = m_conns.erase(it);
            } else {
                ++it;
            }
        }
        auto conn = std::make_unique<Conn>();
        conn->client = std::move(client);
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (m_armed) {
                conn->toxics = *m_armed;
                conn->log = std::make_shared<ConnectionLog>();
                m_armed_log = conn->log;
                m_armed.reset();
            } else {
                conn->toxics = m_default;
            }
        }
        ++m_connections;
        Conn* raw = conn.get();
        m_conns.push_back(std::move(conn));
        raw->thread = std::thread([this, raw] {
            serve(*raw);
            if (raw->log) {
                std::lock_guard<std::mutex> lock(m_mutex);
                if (m_armed_log == raw->log) m_armed_closed = true;
                m_armed_cv.notify_all();
            }
            raw->done = true;
        });
    }
}

void FaultProxy::serve(Conn& conn) {
    const Toxics& t = conn.toxics;
    std::minstd_rand rng(static_cast<unsigned>(m_connections.load()));
    char buf[16384];
    auto finish = [&](bool cut) {
        if (t.slow_close_ms > 0) pause_ms(t.slow_close_ms);
        if (cut && t.reset) {
            const linger hard{1, 0};  // RST instead of FIN: the peer sees ECONNRESET
            ::setsockopt(conn.client.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        }
        conn.client.reset();
    };

    if (t.black_hole) {
        while (!m_stop) {
            pollfd p{conn.client.get(), POLLIN, 0};
            if (::poll(&p, 1, kPollMs) <= 0) continue;
            const ssize_t n = ::recv(conn.client.get(), buf, sizeof buf, 0);
            if (n <= 0) break;  // the client gave up
        }
        return finish(false);
    }

    Fd up(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback(m_upstream_port.load());
    if (!up.valid() || ::connect(up.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const linger hard{1, 0};  // upstream down: refuse like a dead server would
        ::setsockopt(conn.client.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        return;
    }
    const int one = 1;
    ::setsockopt(conn.client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(up.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    std::int64_t forwarded[2] = {0, 0};  // [0] request (client→up), [1] response (up→client)
    const std::int64_t limit[2] = {t.cut_request_after, t.cut_response_after};
    if (limit[0] == 0) return finish(true);
    while (!m_stop) {
        pollfd p[2] = {{conn.client.get(), POLLIN, 0}, {up.get(), POLLIN, 0}};
        if (::poll(p, 2, kPollMs) <= 0) continue;
        for (int d = 0; d < 2; ++d) {
            if (!(p[d].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const int from = d == 0 ? conn.client.get() : up.get();
            const int to = d == 0 ? up.get() : conn.client.get();
            const ssize_t n = ::recv(from, buf, sizeof buf, 0);
            if (n <= 0) return finish(false);
            std::int64_t allowed = n;
            if (limit[d] >= 0) allowed = std::min<std::int64_t>(n, limit[d] - forwarded[d]);
            if (t.latency_ms > 0 || t.jitter_ms > 0) {
                const int extra = t.jitter_ms > 0 ? static_cast<int>(rng() % static_cast<unsigned>(t.jitter_ms + 1)) : 0;
                if (!pause_ms(t.latency_ms + extra)) return finish(false);
            }
            std::int64_t sent = 0;
            while (sent < allowed) {
                std::int64_t step = allowed - sent;
                if (t.one_byte_slices) step = 1;
                if (t.bandwidth_bps > 0) step = std::min<std::int64_t>(step, std::max<std::int64_t>(1, t.bandwidth_bps / 100));
                if (!send_all(to, buf + sent, static_cast<std::size_t>(step))) return finish(false);
                if (conn.log) (d == 0 ? conn.log->up : conn.log->down).append(buf + sent, static_cast<std::size_t>(step));
                sent += step;
                if (t.bandwidth_bps > 0 && !pause_ms(static_cast<int>(step * 1000 / t.bandwidth_bps))) return finish(false);
                if (t.one_byte_slices) std::this_thread::sleep_for(std::chrono::microseconds(100));
            }
            forwarded[d] += allowed;
            if (limit[d] >= 0 && forwarded[d] >= limit[d]) return finish(true);
        }
    }
    finish(false);
}

}  // namespace ubuzima::test
