// Ubuzima Sync — MIT licence.
// Many request threads at once (as the listener's pool calls the API): nothing lost or doubled.
#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "server_test_support.hpp"

using namespace ubuzima::server::test;

TEST_CASE("concurrent pushes and pulls keep every row exactly once", "[server][concurrency]") {
    TestServer s;
    const std::string alice = s.user_token("alice", "assessor", {"fac-kabgayi"});
    const std::string coord = s.user_token("cora", "coordinator", {});
    constexpr int kThreads = 4;
    constexpr int kBatches = 15;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    std::vector<std::string> tokens;  // a sync comes from the device its token was issued to
    for (int t = 0; t < kThreads; ++t) tokens.push_back(s.token_for_node(alice, 0x1000 + static_cast<std::uint64_t>(t)));
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            const std::uint64_t node = 0x1000 + static_cast<std::uint64_t>(t);
            for (int b = 0; b < kBatches; ++b) {
                const std::string id = "t" + std::to_string(t) + "-" + std::to_string(b);
                ubuzima::server::http::Request r;
                r.method = "POST";
                r.raw_path = "/v1/sync";
                r.headers["authorization"] = "Bearer " + tokens[static_cast<std::size_t>(t)];
                r.headers["content-type"] = "application/json";
                const std::string v = ubuzima::sync::Version{ubuzima::sync::make_hlc(s.now_ms(), static_cast<std::uint32_t>(b)), node}.to_string();
                r.body = json{{"protocol", 1}, {"schema_version", 1}, {"node", ubuzima::sync::to_hex16(node)},
                              {"batch", {{"id", id}, {"changes", json::array({change("need", id, v, need_fields("fac-kabgayi"))})}}},
                              {"limit", 50}}
                             .dump();
                if (s.raw(r).status != 200) ++failures;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    json cursor = nullptr;
    json all = s.pull_all(coord, 0xfeed, cursor, 37);
    std::set<std::string> needs;
    for (const json& c : all)
        if (c["t"] == "need") {
            CHECK(needs.insert(c["id"].get<std::string>()).second);
            CHECK(c["f"].size() == 6);
        }
    CHECK(needs.size() == kThreads * kBatches);
}
