// Ubuzima Sync — MIT licence.
// A counting TCP proxy on 127.0.0.1: measures bytes on the wire and HTTP exchanges of a client.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ubuzima::bench {

/// What crossed the proxy since the last reset().
struct WireCounts {
    std::int64_t up = 0;         ///< client → server bytes (headers + bodies as sent)
    std::int64_t down = 0;       ///< server → client bytes
    std::int64_t exchanges = 0;  ///< HTTP request/response pairs (client turns on a connection)
    std::int64_t connections = 0;
};

/// Forwards every accepted connection to host:port, counting bytes per direction. An HTTP/1.1
/// client does not pipeline, so each time a connection's client speaks after the server did (or
/// first) is one request: that counts round trips without parsing HTTP.
class CountingProxy {
public:
    CountingProxy(std::string target_host, int target_port);
    ~CountingProxy();
    CountingProxy(const CountingProxy&) = delete;
    CountingProxy& operator=(const CountingProxy&) = delete;

    int port() const { return m_port; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    WireCounts counts() const;
    void reset();

private:
    void accept_loop();
    void pump(int client_fd);

    std::string m_host;
    int m_target_port;
    int m_listen_fd = -1;
    int m_port = 0;
    std::atomic<bool> m_stop{false};
    std::atomic<std::int64_t> m_up{0}, m_down{0}, m_exchanges{0}, m_connections{0};
    std::mutex m_mutex;
    std::vector<int> m_fds;
    std::vector<std::thread> m_threads;
    std::thread m_acceptor;
};

}  // namespace ubuzima::bench
