// Ubuzima Sync — MIT licence.
// Black holes, resets, slow closes and slow links between the real client and the real server.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "net_fixture.hpp"

using namespace ubuzima;
using namespace ubuzima::test;

TEST_CASE("A black-holed request times out; the retries back off with jitter up to the cap", "[faults]") {
    Net net;
    Database dev = net.device("dev.db", "alice");
    REQUIRE(dev.insert("need", need("fac-gisenyi", "black-hole")).ok());

    Toxics hole;
    hole.black_hole = true;
    net.proxy->set_default(hole);
    SyncOptions o = net.via_proxy(1, 300);
    dev.set_sync_options(o);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = dev.sync();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    CHECK(r.status().code() == ErrorCode::Timeout);
    CHECK(ms >= 250);    // curl waited for the answer (its clock rounds)...
    CHECK(ms < 10'000);  // ...and gave up at its timeout, not the 60 s default (generous bound)

    o = net.via_proxy(6, 300);
    o.retry.initial_backoff_ms = 100;
    o.retry.max_backoff_ms = 400;
    o.retry.jitter = 0.5;
    dev.set_sync_options(o);
    net.sleeps.clear();
    r = dev.sync();
    CHECK(r.status().code() == ErrorCode::Timeout);
    const std::vector<std::int64_t> base = {100, 200, 400, 400, 400};
    REQUIRE(net.sleeps.size() == base.size());
    for (std::size_t i = 0; i < base.size(); ++i) {
        INFO("retry " << i + 1 << " waited " << net.sleeps[i] << " ms");
        CHECK(net.sleeps[i] >= base[i] / 2);
        CHECK(net.sleeps[i] <= base[i]);
    }
    CHECK(*dev.pending_changes() == 1);

    net.proxy->set_default(Toxics{});
    dev.set_sync_options(net.via_proxy());
    REQUIRE(dev.sync().ok());
    CHECK(*dev.pending_changes() == 0);
}

TEST_CASE("Resets and slow closes fail one attempt; the retry completes it", "[faults]") {
    Net net;
    Database dev = net.device("dev.db", "alice");
    std::vector<Toxics> faults(4);
    faults[0].cut_request_after = 0;  // RST right after accept
    faults[0].reset = true;
    faults[1].cut_request_after = 100;  // RST in the middle of the request headers
    faults[1].reset = true;
    faults[2].cut_response_after = 60;  // RST in the middle of the answer
    faults[2].reset = true;
    faults[3].cut_response_after = 60;  // half an answer, then a FIN 300 ms later
    faults[3].slow_close_ms = 300;
    int n = 0;
    for (const Toxics& t : faults) {
        REQUIRE(dev.insert("need", need("fac-gisenyi", "reset-" + std::to_string(n++))).ok());
        net.proxy->arm_once(t);
        dev.set_sync_options(net.via_proxy());
        auto r = dev.sync();
        INFO("fault " << n << ": " << (r.ok() ? "ok" : r.status().to_string()));
        REQUIRE(r.ok());
        CHECK(r->retries == 1);
        CHECK(*dev.pending_changes() == 0);
    }
    const auto on_server = net.server_needs("coord.db");
    CHECK(on_server.size() == faults.size());
}

TEST_CASE("A connection closed inside the response headers is a Network error, not a 200", "[faults]") {
    // Regression: curl reported "HTTP/1.1 200 OK" followed by EOF as a complete answer, so the
    // session got an empty 200 body and failed with a non-retryable invalid_json.
    Net net;
    Database dev = net.device("dev.db", "alice");
    for (std::int64_t k : {9, 17, 40}) {  // inside the status line, after it, inside a header
        Toxics t;
        t.cut_response_after = k;
        net.proxy->arm_once(t);
        dev.set_sync_options(net.via_proxy(1));
        auto r = dev.sync();
        INFO("cut at " << k << ": " << (r.ok() ? "ok" : r.status().to_string()));
        CHECK(r.status().code() == ErrorCode::Network);
        CHECK(r.status().is_transient());
    }
    dev.set_sync_options(net.via_proxy(1));
    CHECK(dev.sync().ok());
}

TEST_CASE("Latency with jitter, a thin pipe and 1-byte slices just work", "[faults]") {
    Net net;
    Database a = net.device("a.db", "alice");
    Database b = net.device("b.db", "alice");
    std::vector<Toxics> links(3);
    links[0].latency_ms = 30;
    links[0].jitter_ms = 40;
    links[1].bandwidth_bps = 16 * 1024;
    links[2].one_byte_slices = true;
    int round = 0;
    for (const Toxics& t : links) {
        net.proxy->set_default(t);
        for (int i = 0; i < 5; ++i)
            REQUIRE(a.insert("need", need("fac-gisenyi", "slow-" + std::to_string(round) + "-" + std::to_string(i))).ok());
        a.set_sync_options(net.via_proxy(1));
        b.set_sync_options(net.via_proxy(1));
        auto pushed = a.sync();
        INFO("link " << round << ": " << (pushed.ok() ? "ok" : pushed.status().to_string()));
        REQUIRE(pushed.ok());
        auto pulled = b.sync();
        REQUIRE(pulled.ok());
        CHECK(b.query("need").value().size() == static_cast<std::size_t>(5 * (round + 1)));
        ++round;
    }
    net.proxy->set_default(Toxics{});
}

TEST_CASE("CurlTransport exposes Retry-After, which the retry policy honours", "[faults]") {
    // A one-shot canned HTTP server: 429 with Retry-After: 2 for every request.
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener.valid());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 8) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    std::atomic<bool> stop{false};
    std::thread server([&] {
        auto reply = [](const std::string& status, const std::string& extra, const std::string& body) {
            return "HTTP/1.1 " + status + "\r\n" + extra + "Content-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body;
        };
        const std::string login = reply("200 OK", "", R"({"access_token":"a","refresh_token":"r"})");
        const std::string limited =
            reply("429 Too Many Requests", "Retry-After: 2\r\n", R"({"error":{"code":"rate_limited","message":"slow down"}})");
        while (!stop) {
            pollfd p{listener.get(), POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            Fd c(::accept(listener.get(), nullptr, nullptr));
            std::string in;
            char buf[4096];
            for (;;) {  // one request per connection is enough for curl; answer each as it completes
                pollfd q{c.get(), POLLIN, 0};
                if (::poll(&q, 1, 2000) <= 0) break;
                const ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
                if (message_ends(in).empty()) continue;
                const std::string& answer = in.find("/v1/auth/login") != std::string::npos ? login : limited;
                ::send(c.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
                in.clear();
            }
        }
    });

    CurlTransport transport;
    auto r = transport.post(url + "/v1/sync", "{}", {{"Content-Type", "application/json"}});
    REQUIRE(r.ok());
    CHECK(r->status == 429);
    CHECK(r->retry_after_ms == 2000);

    TempDir dir;
    DatabaseOptions options;
    options.path = dir.file("dev.db");
    auto db = Database::open(options);
    REQUIRE(db.ok());
    std::vector<std::int64_t> sleeps;
    SyncOptions o;
    o.server_url = url;
    o.retry.max_attempts = 3;
    o.retry.initial_backoff_ms = 100;
    o.retry.sleep = [&](std::int64_t ms) { sleeps.push_back(ms); };
    db->set_sync_options(o);
    REQUIRE(db->login(url, "ana", "pw").ok());
    auto synced = db->sync();
    CHECK(synced.status().code() == ErrorCode::RateLimited);
    CHECK(sleeps == std::vector<std::int64_t>{2000, 2000});  // Retry-After beat the 100/200 ms backoff
    stop = true;
    server.join();
}
