// Ubuzima Sync — MIT licence.
// The Beast listener over real loopback sockets: framing, limits, deadlines, caps, streaming, close.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/listener.hpp"
#include "http/tls_server.hpp"

using namespace ubuzima::server;
using Clock = std::chrono::steady_clock;

namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

int elapsed_ms(Clock::time_point since) {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// A TCP connection to 127.0.0.1, or -1.
int try_connect(int port, const char* source_ip = nullptr) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (source_ip) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        ::inet_pton(AF_INET, source_ip, &local.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
            ::close(fd);
            return -1;
        }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

struct Reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    bool chunked = false;
    bool complete = false;  // the framing said where the body ends, and it got there
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

// A raw HTTP/1.1 client: exactly the bytes we choose, and a view of when the server hangs up.
class Client {
public:
    explicit Client(int port, const char* source_ip = nullptr) : m_fd(try_connect(port, source_ip)) {
        REQUIRE(m_fd >= 0);
    }
    explicit Client(int fd, bool) : m_fd(fd) {}
    ~Client() { close(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    Client(Client&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)), m_pending(std::move(other.m_pending)) {}

    void close() {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = -1;
    }

    bool send(const std::string& data) {
        std::size_t sent = 0;
        while (sent < data.size()) {
            const ssize_t n = ::send(m_fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    Reply request(const std::string& raw) {
        REQUIRE(send(raw));
        return read_reply();
    }

    /// One response, framed by Content-Length, chunked encoding or the end of the connection.
    Reply read_reply(int timeout_ms = 5000) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        Reply r;
        std::size_t end;
        while ((end = m_pending.find("\r\n\r\n")) == std::string::npos)
            if (!fill(deadline)) return r;
        const std::string head = m_pending.substr(0, end + 2);
        m_pending.erase(0, end + 4);
        std::sscanf(head.c_str(), "HTTP/%*d.%*d %d", &r.status);
        for (std::size_t pos = head.find("\r\n") + 2; pos < head.size();) {
            const std::size_t eol = head.find("\r\n", pos);
            const std::string line = head.substr(pos, eol - pos);
            const std::size_t colon = line.find(':');
            if (colon != std::string::npos) {
                std::string value = line.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                r.headers[lower(line.substr(0, colon))] = value;
            }
            pos = eol + 2;
        }
        if (r.status < 200 || r.status == 204 || r.status == 304) {
            r.complete = true;
        } else if (lower(r.header("transfer-encoding")) == "chunked") {
            r.chunked = true;
            read_chunked(r, deadline);
        } else if (!r.header("content-length").empty()) {
            const std::size_t length = std::stoul(r.header("content-length"));
            while (m_pending.size() < length)
                if (!fill(deadline)) break;
            r.complete = m_pending.size() >= length;
            r.body = m_pending.substr(0, length);
            m_pending.erase(0, r.body.size());
        } else {
            while (fill(deadline)) {
            }
            r.body = std::move(m_pending);
            m_pending.clear();
            r.complete = m_eof;
        }
        return r;
    }

    /// The status line and headers of a response, leaving its body unread.
    std::string read_head(int timeout_ms = 5000) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        std::size_t end;
        while ((end = m_pending.find("\r\n\r\n")) == std::string::npos)
            if (!fill(deadline)) return std::string();
        return m_pending.substr(0, end + 4);
    }

    /// True when the server closes the connection (end of stream or reset) within the time.
    bool closed_within(int timeout_ms) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        while (fill(deadline)) m_pending.clear();
        return m_eof;
    }

private:
    // Reads more into m_pending; false on end of stream, error or deadline.
    bool fill(Clock::time_point deadline) {
        if (m_eof) return false;
        for (;;) {
            const int left = static_cast<int>(
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
            pollfd p{m_fd, POLLIN, 0};
            const int ready = ::poll(&p, 1, left > 0 ? left : 0);
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) return false;
            char buf[64 * 1024];
            const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                m_eof = true;  // EOF or reset: either way the server is gone
                return false;
            }
            m_pending.append(buf, static_cast<std::size_t>(n));
            return true;
        }
    }

    bool need(std::size_t bytes, Clock::time_point deadline) {
        while (m_pending.size() < bytes)
            if (!fill(deadline)) return false;
        return true;
    }

    void read_chunked(Reply& r, Clock::time_point deadline) {
        for (;;) {
            std::size_t eol;
            while ((eol = m_pending.find("\r\n")) == std::string::npos)
                if (!fill(deadline)) return;
            const std::size_t size = std::stoul(m_pending.substr(0, eol), nullptr, 16);
            m_pending.erase(0, eol + 2);
            if (!need(size + 2, deadline)) return;
            r.body.append(m_pending, 0, size);
            m_pending.erase(0, size + 2);
            if (size == 0) {
                r.complete = true;
                return;
            }
        }
    }

    int m_fd = -1;
    std::string m_pending;
    bool m_eof = false;
};

ListenerLimits fast_limits() {
    ListenerLimits l;
    l.max_body_bytes = 64 * 1024;
    l.max_header_bytes = 2048;
    l.header_timeout_ms = 300;
    l.body_timeout_ms = 1000;
    l.idle_timeout_ms = 300;
    l.write_timeout_ms = 2000;
    l.max_connections = 64;
    l.max_connections_per_address = 64;
    l.handler_threads = 2;
    return l;
}

// Records every request; answers 411/413 from the headers like the real API does.
class Recorder {
public:
    explicit Recorder(std::size_t max_body = 64 * 1024) : m_max_body(max_body) {}

    RequestHandler handler() {
        return [this](const http::Request& req) {
            {
                std::lock_guard<std::mutex> lock(m_mutex);
                m_seen.push_back(req);
            }
            http::Response res;
            if (!req.header("transfer-encoding").empty()) {
                res.status = 411;
            } else if (!req.header("content-length").empty() && std::stoul(req.header("content-length")) > m_max_body) {
                res.status = 413;
            } else {
                res.headers["Content-Type"] = "text/plain";
                res.headers["X-Handler"] = "yes";
                res.body = req.method + " " + req.raw_path + " " + req.body;
            }
            return res;
        };
    }
    std::size_t count() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_seen.size();
    }
    http::Request at(std::size_t i) {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_seen.at(i);
    }

private:
    std::size_t m_max_body;
    std::mutex m_mutex;
    std::vector<http::Request> m_seen;
};

std::unique_ptr<HttpListener> open_server(const ListenerLimits& limits, RequestHandler handler,
                                   std::shared_ptr<TlsServerContext> tls = nullptr, const std::string& host = "127.0.0.1") {
    ListenOptions options;
    options.host = host;
    options.limits = limits;
    options.tls = std::move(tls);
    auto listener = open_beast_listener(options, std::move(handler));
    INFO(listener.status().to_string());
    REQUIRE(listener.ok());
    REQUIRE(listener.value()->port() > 0);
    return std::move(listener).value();
}

const std::string kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

// ---- libcurl, for what a real client makes of streamed and TLS responses ----

struct CurlReply {
    CURLcode code = CURLE_OK;
    long status = 0;
    std::string body;
    std::string headers;  // raw, lower-cased
    long connects = 0;    // new connections this transfer needed
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

class Curl {
public:
    Curl() {
        static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
        REQUIRE(initialised);
        m_handle = curl_easy_init();
        REQUIRE(m_handle);
    }
    ~Curl() { curl_easy_cleanup(m_handle); }
    Curl(const Curl&) = delete;
    Curl& operator=(const Curl&) = delete;

    CurlReply get(const std::string& url) {
        CurlReply r;
        curl_easy_setopt(m_handle, CURLOPT_URL, url.c_str());
        curl_easy_setopt(m_handle, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(m_handle, CURLOPT_WRITEDATA, &r.body);
        curl_easy_setopt(m_handle, CURLOPT_HEADERFUNCTION, collect);
        curl_easy_setopt(m_handle, CURLOPT_HEADERDATA, &r.headers);
        curl_easy_setopt(m_handle, CURLOPT_TIMEOUT_MS, 20000L);
        curl_easy_setopt(m_handle, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(m_handle, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(m_handle, CURLOPT_NOSIGNAL, 1L);
        r.code = curl_easy_perform(m_handle);
        curl_easy_getinfo(m_handle, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(m_handle, CURLINFO_NUM_CONNECTS, &r.connects);
        r.headers = lower(r.headers);
        return r;
    }

private:
    CURL* m_handle = nullptr;
};

char pattern_at(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 4096) % 26); }

std::string pattern(std::size_t from, std::size_t size) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i) out[i] = pattern_at(from + i);
    return out;
}

// GET /stream?size=N[&fail=M][&throw=M]: N bytes in 64 KiB chunks (and one empty chunk, which
// must not end the body); fail/throw after M bytes.
http::Response stream_handler(const http::Request& req) {
    http::Response res;
    res.headers["Content-Type"] = "application/octet-stream";
    const std::size_t size = std::stoul(req.query.at("size"));
    const std::size_t fail_at = req.query.count("fail") ? std::stoul(req.query.at("fail")) : SIZE_MAX;
    const std::size_t throw_at = req.query.count("throw") ? std::stoul(req.query.at("throw")) : SIZE_MAX;
    res.stream = [=](http::BodyWriter& out) {
        for (std::size_t sent = 0; sent < size;) {
            if (sent >= fail_at) return false;
            if (sent >= throw_at) throw std::runtime_error("producer failed");
            if (sent == 64 * 1024 && !out.write("")) return false;
            const std::size_t n = std::min<std::size_t>(64 * 1024, size - sent);
            if (!out.write(pattern(sent, n))) return false;
            sent += n;
        }
        return true;
    };
    return res;
}

}  // namespace

TEST_CASE("beast: requests round-trip with keep-alive, query, lower-case headers and the peer address",
          "[server][beast]") {
    Recorder rec;
    auto listener = open_server(fast_limits(), rec.handler());
    CHECK_FALSE(listener->secure());
    CHECK(listener->url("127.0.0.1") == "http://127.0.0.1:" + std::to_string(listener->port()));
    Client c(listener->port());

    Reply first = c.request(
        "GET /v1/echo%2Fx?a=1&b=x%20y&c HTTP/1.1\r\nHost: t\r\nX-Custom: Yes\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\n");
    CHECK(first.status == 200);
    CHECK(first.complete);
    CHECK(first.body == "GET /v1/echo%2Fx ");
    CHECK(first.header("content-length") == std::to_string(first.body.size()));
    CHECK(first.header("x-handler") == "yes");
    CHECK(first.header("connection").empty());

    Reply second = c.request("POST /v1/data HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(second.status == 200);
    CHECK(second.body == "POST /v1/data hello");

    // Pipelined: both requests in one write, answered in order on the same connection.
    REQUIRE(c.send(kGet + "GET /again HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK(c.read_reply().body == "GET / ");
    CHECK(c.read_reply().body == "GET /again ");

    REQUIRE(rec.count() == 4);
    const http::Request seen = rec.at(0);
    CHECK(seen.method == "GET");
    CHECK(seen.raw_path == "/v1/echo%2Fx");
    CHECK(seen.query == std::map<std::string, std::string>{{"a", "1"}, {"b", "x y"}, {"c", ""}});
    CHECK(seen.header("x-custom") == "Yes");
    CHECK(seen.header("x-twice") == "1, 2");
    CHECK(seen.header("host") == "t");
    CHECK(seen.remote_address == "127.0.0.1");
    CHECK_FALSE(seen.secure);
    CHECK(seen.body.empty());
    CHECK(rec.at(1).body == "hello");

    SECTION("Connection: close is honoured") {
        Reply last = c.request("GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        CHECK(last.status == 200);
        CHECK(lower(last.header("connection")) == "close");
        CHECK(c.closed_within(3000));
    }
    SECTION("HTTP/1.0 closes after the response unless asked to keep alive") {
        Reply old = c.request("GET /old HTTP/1.0\r\n\r\n");
        CHECK(old.status == 200);
        CHECK(old.body == "GET /old ");
        CHECK(c.closed_within(3000));
    }
}

TEST_CASE("beast: headers over the limit get 431 and the connection closes", "[server][beast]") {
    Recorder rec;
    auto listener = open_server(fast_limits(), rec.handler());
    Client c(listener->port());
    Reply r = c.request("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
    CHECK(r.status == 431);
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.body.find("\"code\":\"header_too_large\"") != std::string::npos);
    CHECK(lower(r.header("connection")) == "close");
    CHECK(c.closed_within(3000));
    CHECK(rec.count() == 0);
}

TEST_CASE("beast: a malformed request gets 400 and the connection closes", "[server][beast]") {
    Recorder rec;
    auto listener = open_server(fast_limits(), rec.handler());
    Client c(listener->port());
    Reply r = c.request("GET / HTTX/1.1\r\nHost: t\r\n\r\n");
    CHECK(r.status == 400);
    CHECK(r.body.find("\"code\":\"bad_request\"") != std::string::npos);
    CHECK(c.closed_within(3000));
    CHECK(rec.count() == 0);
}

TEST_CASE("beast: a client trickling its headers is cut off by the header timeout", "[server][beast]") {
    Recorder rec;
    auto listener = open_server(fast_limits(), rec.handler());  // header timeout 300 ms
    Client c(listener->port());
    const std::string request = "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(40, 'x') + "\r\n\r\n";
    const auto start = Clock::now();
    std::size_t sent = 0;
    bool closed = false;
    for (; sent < request.size(); ++sent) {
        if (!c.send(request.substr(sent, 1)) || c.closed_within(100)) {
            closed = true;
            break;
        }
    }
    CHECK(closed);
    CHECK(sent < request.size());
    CHECK(elapsed_ms(start) < 5000);
    CHECK(rec.count() == 0);
}

TEST_CASE("beast: an idle keep-alive connection is closed after the idle timeout", "[server][beast]") {
    Recorder rec;
    auto listener = open_server(fast_limits(), rec.handler());  // idle timeout 300 ms
    Client c(listener->port());
    CHECK(c.request(kGet).status == 200);
    CHECK_FALSE(c.closed_within(50));  // kept alive at first
    const auto start = Clock::now();
    CHECK(c.closed_within(5000));
    CHECK(elapsed_ms(start) < 5000);
}

TEST_CASE("beast: a new connection that sends nothing is closed by the header timeout", "[server][beast]") {
    Recorder rec;
    ListenerLimits limits = fast_limits();
    limits.idle_timeout_ms = 60'000;  // must not apply before the first request
    auto listener = open_server(limits, rec.handler());
    Client c(listener->port());
    CHECK(c.closed_within(5000));
}

TEST_CASE("beast: connections over max_connections are closed at accept", "[server][beast]") {
    Recorder rec;
    ListenerLimits limits = fast_limits();
    limits.header_timeout_ms = 10'000;
    limits.idle_timeout_ms = 10'000;
    limits.max_connections = 3;
    auto listener = open_server(limits, rec.handler());
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(listener->port());
        CHECK(clients.back().request(kGet).status == 200);
    }
    Client extra(listener->port());
    CHECK(extra.closed_within(3000));
    for (Client& c : clients) CHECK(c.request(kGet).status == 200);

    // A slot frees when a connection goes away (once the server has noticed).
    clients.front().close();
    bool served = false;
    for (int attempt = 0; attempt < 100 && !served; ++attempt) {
        Client next(listener->port());
        next.send(kGet);
        served = next.read_reply(2000).status == 200;
        if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(served);
}

TEST_CASE("beast: connections over max_connections_per_address are closed at accept", "[server][beast]") {
    Recorder rec;
    ListenerLimits limits = fast_limits();
    limits.header_timeout_ms = 10'000;
    limits.idle_timeout_ms = 10'000;
    limits.max_connections_per_address = 2;
    auto listener = open_server(limits, rec.handler());
    Client a(listener->port());
    Client b(listener->port());
    CHECK(a.request(kGet).status == 200);
    CHECK(b.request(kGet).status == 200);
    Client third(listener->port());
    CHECK(third.closed_within(3000));

    // Another peer address still gets in (127.0.0.2 is loopback too, where the kernel allows it).
    const int other_fd = try_connect(listener->port(), "127.0.0.2");
    if (other_fd >= 0) {
        Client other(other_fd, true);
        CHECK(other.request(kGet).status == 200);
        REQUIRE(rec.count() == 3);
        CHECK(rec.at(2).remote_address == "127.0.0.2");
    } else {
        WARN("cannot connect from 127.0.0.2 here; the other-address half is skipped");
    }

    b.close();
    bool served = false;
    for (int attempt = 0; attempt < 100 && !served; ++attempt) {
        Client next(listener->port());
        next.send(kGet);
        served = next.read_reply(2000).status == 200;
        if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(served);
}

TEST_CASE("beast: bodies the listener will not read reach the handler empty, and the connection closes",
          "[server][beast]") {
    Recorder rec(1024);
    ListenerLimits limits = fast_limits();
    limits.max_body_bytes = 1024;
    auto listener = open_server(limits, rec.handler());

    SECTION("announced Content-Length over the limit (some of the body already sent)") {
        Client c(listener->port());
        Reply r = c.request("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + std::string(2000, 'b'));
        CHECK(r.status == 413);
        CHECK(lower(r.header("connection")) == "close");
        CHECK(c.closed_within(3000));
        REQUIRE(rec.count() == 1);
        CHECK(rec.at(0).header("content-length") == "5000");
        CHECK(rec.at(0).body.empty());
    }
    SECTION("chunked request bodies are not read") {
        Client c(listener->port());
        Reply r = c.request("POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        CHECK(r.status == 411);
        CHECK(lower(r.header("connection")) == "close");
        CHECK(c.closed_within(3000));
        REQUIRE(rec.count() == 1);
        CHECK(rec.at(0).header("transfer-encoding") == "chunked");
        CHECK(rec.at(0).body.empty());
    }
    SECTION("a body exactly at the limit is read") {
        Client c(listener->port());
        Reply r = c.request("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'b'));
        CHECK(r.status == 200);
        CHECK(r.body == "POST /up " + std::string(1024, 'b'));
        CHECK(c.request(kGet).status == 200);  // still kept alive
    }
    SECTION("Expect: 100-continue gets 100 before the body is read") {
        Client c(listener->port());
        REQUIRE(c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
        CHECK(c.read_reply().status == 100);
        Reply r = c.request("abc");
        CHECK(r.status == 200);
        CHECK(r.body == "POST /up abc");
    }
    SECTION("a body that stops arriving is cut off by the body timeout") {
        Client c(listener->port());
        REQUIRE(c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789"));
        CHECK(c.closed_within(5000));
        CHECK(rec.count() == 0);
    }
}

TEST_CASE("beast: streamed responses arrive whole and chunked, or visibly truncated", "[server][beast]") {
    auto listener = open_server(fast_limits(), stream_handler);
    const std::string base = listener->url("127.0.0.1") + "/stream?size=";
    const std::size_t size = 5 * 1024 * 1024 + 123;
    Curl curl;

    SECTION("whole") {
        CurlReply r = curl.get(base + std::to_string(size));
        CHECK(r.code == CURLE_OK);
        CHECK(r.status == 200);
        CHECK(r.headers.find("transfer-encoding: chunked") != std::string::npos);
        CHECK(r.headers.find("content-length") == std::string::npos);
        REQUIRE(r.body.size() == size);
        CHECK(r.body == pattern(0, size));
        // Kept alive: the next stream reuses the connection.
        CurlReply again = curl.get(base + "1000");
        CHECK(again.code == CURLE_OK);
        CHECK(again.body == pattern(0, 1000));
        CHECK(again.connects == 0);
    }
    SECTION("the producer gives up: no last chunk") {
        CurlReply r = curl.get(base + std::to_string(size) + "&fail=1048576");
        CHECK(r.code != CURLE_OK);
        CHECK(r.status == 200);
        CHECK(r.body.size() == 1024 * 1024);
    }
    SECTION("the producer throws: no last chunk") {
        Client c(listener->port());
        Reply r = c.request("GET /stream?size=1000000&throw=65536 HTTP/1.1\r\nHost: t\r\n\r\n");
        CHECK(r.status == 200);
        CHECK(r.chunked);
        CHECK_FALSE(r.complete);
        CHECK(r.body == pattern(0, 65536));
    }
    SECTION("HTTP/1.0 gets the body unchunked, ended by the close") {
        Client c(listener->port());
        Reply r = c.request("GET /stream?size=200000 HTTP/1.0\r\n\r\n");
        CHECK(r.status == 200);
        CHECK_FALSE(r.chunked);
        CHECK(r.complete);
        CHECK(r.body == pattern(0, 200000));
    }
}

TEST_CASE("beast: a streaming producer stops when the client goes away or stops reading", "[server][beast]") {
    std::promise<std::size_t> produced;
    auto listener = open_server(fast_limits(), [&produced](const http::Request&) {
        http::Response res;
        res.stream = [&produced](http::BodyWriter& out) {
            std::size_t total = 0;
            const std::string chunk(64 * 1024, 'z');
            while (total < (std::size_t(4) << 30) && out.write(chunk)) total += chunk.size();
            produced.set_value(total);
            return true;
        };
        return res;
    });
    std::future<std::size_t> done = produced.get_future();
    Client c(listener->port());
    REQUIRE(c.send(kGet));

    SECTION("the client disconnects") {
        CHECK(c.read_head().rfind("HTTP/1.1 200", 0) == 0);
        c.close();
        CHECK(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    }
    SECTION("the client never reads: the write timeout fires, memory stays bounded") {
        REQUIRE(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
        const std::size_t total = done.get();
        INFO("produced " << total);
        CHECK(total < std::size_t(64) << 20);  // socket buffers + the queue, not gigabytes
    }
}

TEST_CASE("beast: close() waits for a running handler and closes idle connections", "[server][beast]") {
    std::promise<void> started;
    std::atomic<bool> finished{false};
    ListenerLimits limits = fast_limits();
    limits.idle_timeout_ms = 10'000;
    auto listener = open_server(limits, [&](const http::Request& req) {
        http::Response res;
        if (req.raw_path == "/slow") {
            started.set_value();
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            finished = true;
        }
        res.body = "done";
        return res;
    });
    const int port = listener->port();
    Client idle(port);
    CHECK(idle.request(kGet).status == 200);

    std::future<Reply> slow = std::async(std::launch::async, [port] {  // no Catch2 macros off the main thread
        Client c(try_connect(port), true);
        c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
        return c.read_reply();
    });
    REQUIRE(started.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    listener->close();
    CHECK(finished);
    const Reply r = slow.get();
    CHECK(r.status == 200);  // the answer still went out, as the last on its connection
    CHECK(r.body == "done");
    CHECK(lower(r.header("connection")) == "close");
    CHECK(idle.closed_within(3000));
    CHECK(try_connect(port) < 0);
    listener->close();  // idempotent
}

TEST_CASE("beast: port 0, bind failures and localhost", "[server][beast]") {
    Recorder rec;
    auto listener = open_server(fast_limits(), rec.handler());
    ListenOptions taken;
    taken.port = listener->port();
    auto clash = open_beast_listener(taken, rec.handler());
    REQUIRE_FALSE(clash.ok());
    CHECK(clash.status().code() == ubuzima::ErrorCode::IoError);
    CHECK(clash.status().message().rfind("cannot listen on 127.0.0.1:" + std::to_string(listener->port()) + ": ", 0) ==
          0);

    ListenOptions bad_host;
    bad_host.host = "no-such-host.invalid";
    CHECK(open_beast_listener(bad_host, rec.handler()).status().code() == ubuzima::ErrorCode::IoError);

    auto local = open_server(fast_limits(), rec.handler(), nullptr, "localhost");
    Curl curl;
    CurlReply r = curl.get(local->url("localhost") + "/hi");
    CHECK(r.code == CURLE_OK);
    CHECK(r.body == "GET /hi ");
}

TEST_CASE("beast: running out of file descriptors does not make the accept loop spin", "[server][beast]") {
    Recorder rec;
    auto listener = open_server(fast_limits(), rec.handler());
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);

    // Lower the descriptor limit to what is open now and fill any holes below it.
    int highest = 0;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(dir)) highest = std::max(highest, std::atoi(e->d_name));
        ::closedir(dir);
    }
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(highest + 1);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::vector<int> fillers;
    for (int f; (f = ::open("/dev/null", O_RDONLY)) >= 0;) fillers.push_back(f);

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(listener->port()));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;

    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the server cannot accept meanwhile
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);

    for (int f : fillers) ::close(f);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    REQUIRE(connected);
    auto cpu_us = [](const rusage& u) {
        return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000L + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
    };
    CHECK(cpu_us(after) - cpu_us(before) < 500'000);  // a spinning accept loop burns the whole second

    Client c(fd, true);
    Reply r = c.request(kGet);  // accepted once descriptors are available again
    CHECK(r.status == 200);
}

// ---- TLS: a self-signed certificate made here with the OpenSSL API ----

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/beast-listener-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() {
        std::remove((path + "/cert.pem").c_str());
        std::remove((path + "/key.pem").c_str());
        ::rmdir(path.c_str());
    }
};

void write_self_signed(const std::string& cert_path, const std::string& key_path) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
    REQUIRE(cert);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

    FILE* c = std::fopen(cert_path.c_str(), "w");
    REQUIRE(c);
    const bool cert_ok = PEM_write_X509(c, cert.get()) == 1;
    std::fclose(c);
    FILE* k = std::fopen(key_path.c_str(), "w");
    REQUIRE(k);
    ::chmod(key_path.c_str(), 0600);
    const bool key_ok = PEM_write_PrivateKey(k, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
    std::fclose(k);
    REQUIRE(cert_ok);
    REQUIRE(key_ok);
}

}  // namespace

TEST_CASE("beast: HTTPS serves, keeps alive, streams, and survives a certificate reload", "[server][beast][tls]") {
    TempDir dir;
    write_self_signed(dir.path + "/cert.pem", dir.path + "/key.pem");
    auto tls = TlsServerContext::load(dir.path + "/cert.pem", dir.path + "/key.pem");
    INFO(tls.status().to_string());
    REQUIRE(tls.ok());
    Recorder rec;
    auto listener = open_server(fast_limits(), [&rec](const http::Request& req) {
        return req.raw_path == "/stream" ? stream_handler(req) : rec.handler()(req);
    }, *tls);
    CHECK(listener->secure());
    const std::string url = listener->url("127.0.0.1");

    Curl curl;
    CurlReply first = curl.get(url + "/a");
    CHECK(first.code == CURLE_OK);
    CHECK(first.body == "GET /a ");
    CurlReply second = curl.get(url + "/stream?size=1000000");
    CHECK(second.code == CURLE_OK);
    CHECK(second.body == pattern(0, 1000000));
    CHECK(second.connects == 0);
    REQUIRE(rec.count() == 1);
    CHECK(rec.at(0).secure);

    REQUIRE((*tls)->reload().ok());
    Curl fresh;
    CurlReply after = fresh.get(url + "/b");
    CHECK(after.code == CURLE_OK);
    CHECK(after.body == "GET /b ");

    // Plain HTTP on the TLS port is refused without a handler call.
    Client plain(listener->port());
    plain.send(kGet);
    CHECK(plain.closed_within(3000));
    CHECK(rec.count() == 2);
}
