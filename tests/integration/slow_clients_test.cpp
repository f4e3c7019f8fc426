// Ubuzima Sync — MIT licence.
// Integration: the real server with the Beast listener against slow and idle clients: headers one
// byte at a time, oversized headers, idle keep-alive connections and a flood of connections must
// not lock out a well-behaved device.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "integration/fixture.hpp"

using namespace ubuzima;
using namespace ubuzima::test;

namespace {

/// A raw TCP connection to 127.0.0.1:port (closed on destruction).
class RawClient {
public:
    explicit RawClient(int port, const char* source = nullptr) : m_fd(::socket(AF_INET, SOCK_STREAM, 0)) {
        if (source && m_fd >= 0) {
            sockaddr_in from{};
            from.sin_family = AF_INET;
            inet_pton(AF_INET, source, &from.sin_addr);
            (void)::bind(m_fd, reinterpret_cast<sockaddr*>(&from), sizeof from);
        }
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        m_connected = m_fd >= 0 && ::connect(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~RawClient() {
        if (m_fd >= 0) ::close(m_fd);
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;
    bool connected() const { return m_connected; }
    bool send(const std::string& bytes) { return ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()); }
    /// True when the server has closed the connection (EOF or reset) within `ms`.
    bool closed_within(int ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        char buf[4096];
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{m_fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n <= 0) return true;
            m_received.append(buf, static_cast<std::size_t>(n));
        }
        return false;
    }
    const std::string& received() const { return m_received; }

private:
    int m_fd;
    bool m_connected = false;
    std::string m_received;
};

bool healthy(const std::string& url) { return http_request("GET", url + "/v1/health").status == 200; }

}  // namespace

TEST_CASE("With the Beast listener slow and idle clients are cut off and do not lock others out",
          "[integration][slow_clients]") {
    TempDir dir;
    ServerProcess server(dir.file("server"));
    server.set_extra_args({"--listener", "beast", "--header-timeout-ms", "800", "--idle-timeout-ms", "800",
                           "--max-connections", "40", "--max-connections-per-address", "30"});
    server.start();

    SECTION("headers one byte at a time are cut off at the header timeout") {
        RawClient slow(server.port());
        REQUIRE(slow.connected());
        const std::string request = "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
        bool cut = false;
        for (std::size_t i = 0; i < request.size() && !cut; ++i) {
            if (!slow.send(request.substr(i, 1))) cut = true;
            if (slow.closed_within(100)) cut = true;
        }
        CHECK(cut);  // ~4 s of trickling; the limit is 0.8 s
        CHECK(healthy(server.url()));
    }
    SECTION("a 1 MB header line is refused, not buffered") {
        RawClient big(server.port());
        REQUIRE(big.connected());
        big.send("GET /v1/health HTTP/1.1\r\nX-Padding: " + std::string(1 << 20, 'a'));
        CHECK(big.closed_within(5000));
        if (!big.received().empty()) CHECK(big.received().find("431") != std::string::npos);
        CHECK(healthy(server.url()));
    }
    SECTION("idle keep-alive connections are closed") {
        RawClient idle(server.port());
        REQUIRE(idle.connected());
        REQUIRE(idle.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"));
        CHECK(idle.closed_within(5000));
        CHECK(idle.received().find("200 OK") != std::string::npos);
    }
    SECTION("a flood of connections that say nothing: the cap holds, they time out, service continues") {
        std::vector<std::unique_ptr<RawClient>> flood;
        for (int i = 0; i < 60; ++i) flood.push_back(std::make_unique<RawClient>(server.port()));
        // Over the per-address cap, connections are closed at once; the rest time out.
        int closed_at_once = 0;
        for (auto& c : flood) closed_at_once += c->closed_within(50) ? 1 : 0;
        CHECK(closed_at_once >= 30);
        // Meanwhile another address is served.
        RawClient other(server.port(), "127.0.0.2");
        REQUIRE(other.connected());
        REQUIRE(other.send("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        CHECK(other.closed_within(5000));
        CHECK(other.received().find("200 OK") != std::string::npos);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        int still_open = 0;
        for (auto& c : flood) still_open += c->closed_within(10) ? 0 : 1;
        CHECK(still_open == 0);
        CHECK(healthy(server.url()));
    }
    CHECK(server.stop() == 0);
}
