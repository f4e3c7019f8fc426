// Ubuzima Sync — MIT licence.
// The counting TCP proxy: one thread per connection, poll() over both sockets.
#include "proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace ubuzima::bench {

CountingProxy::CountingProxy(std::string target_host, int target_port)
    : m_host(std::move(target_host)), m_target_port(target_port) {
    m_listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (m_listen_fd < 0) throw std::runtime_error("proxy: socket failed");
    const int one = 1;
    setsockopt(m_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_listen_fd, 512) != 0 ||
        getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(m_listen_fd);
        throw std::runtime_error("proxy: cannot listen on 127.0.0.1");
    }
    m_port = ntohs(addr.sin_port);
    m_acceptor = std::thread([this] { accept_loop(); });
}

CountingProxy::~CountingProxy() {
    m_stop = true;
    ::shutdown(m_listen_fd, SHUT_RDWR);
    m_acceptor.join();
    ::close(m_listen_fd);
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        for (int fd : m_fds) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : m_threads) t.join();
}

WireCounts CountingProxy::counts() const { return {m_up.load(), m_down.load(), m_exchanges.load(), m_connections.load()}; }

void CountingProxy::reset() {
    m_up = 0;
    m_down = 0;
    m_exchanges = 0;
    m_connections = 0;
}

void CountingProxy::accept_loop() {
    while (!m_stop) {
        const int fd = ::accept(m_listen_fd, nullptr, nullptr);
        if (fd < 0) {
            if (m_stop) return;
            continue;
        }
        ++m_connections;
        std::lock_guard<std::mutex> lock(m_mutex);
        m_fds.push_back(fd);
        m_threads.emplace_back([this, fd] { pump(fd); });
    }
}

void CountingProxy::pump(int client_fd) {
    const int server_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(m_target_port));
    inet_pton(AF_INET, m_host.c_str(), &addr.sin_addr);
    if (server_fd < 0 || ::connect(server_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (server_fd >= 0) ::close(server_fd);
        ::close(client_fd);
        return;
    }
    const int one = 1;
    // Without NODELAY the proxy would add Nagle delays the direct connection does not have.
    setsockopt(server_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_fds.push_back(server_fd);
    }
    bool client_turn_open = false;  // true while the client is mid-request
    char buf[65536];
    pollfd fds[2] = {{client_fd, POLLIN, 0}, {server_fd, POLLIN, 0}};
    for (;;) {
        if (::poll(fds, 2, -1) < 0) break;
        bool closed = false;
        for (int i = 0; i < 2 && !closed; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                closed = true;
                break;
            }
            if (i == 0) {
                if (!client_turn_open) ++m_exchanges;
                client_turn_open = true;
                m_up += n;
            } else {
                client_turn_open = false;
                m_down += n;
            }
            const int out = fds[1 - i].fd;
            for (ssize_t off = 0; off < n;) {
                const ssize_t w = ::write(out, buf + off, static_cast<std::size_t>(n - off));
                if (w <= 0) {
                    closed = true;
                    break;
                }
                off += w;
            }
        }
        if (closed) break;
    }
    ::shutdown(client_fd, SHUT_RDWR);
    ::shutdown(server_fd, SHUT_RDWR);
    std::lock_guard<std::mutex> lock(m_mutex);
    for (int& fd : m_fds)
        if (fd == client_fd || fd == server_fd) fd = -1;
    ::close(client_fd);
    ::close(server_fd);
}

}  // namespace ubuzima::bench
