// Ubuzima Sync — MIT licence.
// libFuzzer target: a hostile /v1/sync response fed through a fake transport into a real Database.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "ubuzima/database.hpp"
#include "ubuzima/sync/protocol.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ubuzima::ErrorCode;
using ubuzima::Result;
using ubuzima::Status;

// Serves the login, then the current input as every /v1/sync answer. "@batch@" in the input
// becomes the id of the batch the client sent, so a corpus file can acknowledge or reject it.
class FakeServer final : public ubuzima::HttpTransport {
public:
    std::string response;

    Result<ubuzima::HttpResponse> post(const std::string& url, const std::string& body,
                                       const ubuzima::HttpHeaders&) override {
        if (url.find("/v1/auth/") != std::string::npos)
            return ubuzima::HttpResponse{200, R"({"access_token":"fuzz-a","refresh_token":"fuzz-r"})"};
        const json request = json::parse(body, nullptr, false);
        std::string batch_id;
        if (request.is_object() && request.contains("batch") && request["batch"].is_object() &&
            request["batch"].contains("id") && request["batch"]["id"].is_string())
            batch_id = request["batch"]["id"].get<std::string>();
        std::string out = response;
        const std::string marker = "@batch@";
        for (std::size_t at = out.find(marker); at != std::string::npos; at = out.find(marker, at + batch_id.size()))
            out.replace(at, marker.size(), batch_id);
        return ubuzima::HttpResponse{200, out};
    }
};

struct State {
    fs::path dir;
    std::shared_ptr<FakeServer> server = std::make_shared<FakeServer>();
    std::unique_ptr<ubuzima::Database> db;
    unsigned writes = 0;
};
State* g_state = nullptr;

void clean_up() {
    if (!g_state) return;
    g_state->db.reset();
    std::error_code ec;
    fs::remove_all(g_state->dir, ec);
    delete g_state;
    g_state = nullptr;
}

[[noreturn]] void fail(const char* what, const Status& status) {
    std::fprintf(stderr, "fuzz_client_response: %s: %s\n", what, status.to_string().c_str());
    std::abort();
}

// Keeps a few local changes pending, on rows the corpus also names, so that push results and
// pulled pages meet real outbox entries and local versions.
void local_write() {
    if (auto pending = g_state->db->pending_changes(); pending.ok() && *pending >= 3) return;
    const unsigned n = g_state->writes++;
    const std::string id = "need-" + std::to_string(n % 4);
    const json fields{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"},
                      {"title", "Need " + std::to_string(n)}, {"description", "fuzz"},
                      {"priority", n % 2 ? "high" : "low"}, {"status", "identified"}};
    (void)g_state->db->put("need", id, fields);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_state = new State;
    std::random_device rd;
    g_state->dir = fs::temp_directory_path() / ("ubuzima-fuzz-client-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(g_state->dir);
    ubuzima::DatabaseOptions options;
    options.path = (g_state->dir / "device.db").string();
    options.durability = ubuzima::Durability::Normal;  // no fsync per input: speed, not power loss
    options.node_id = 0x0123456789abcdefULL;
    options.sync.transport = g_state->server;
    options.sync.max_round_trips = 2;
    options.sync.batch_size = 4;
    auto db = ubuzima::Database::open(options);
    if (!db.ok()) fail("open", db.status());
    g_state->db = std::make_unique<ubuzima::Database>(std::move(*db));
    if (Status s = g_state->db->login("http://fuzz.invalid", "alice", "pw"); !s.ok()) fail("login", s);
    std::atexit(clean_up);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    if (!ubuzima::sync::decode_sync_response(body).ok()) return 0;
    g_state->server->response.assign(body);
    local_write();
    auto report = g_state->db->sync();
    // Hostile answers may be refused with any error, but never by an escaped exception or a
    // broken local file.
    if (!report.ok() && (report.status().code() == ErrorCode::Internal || report.status().code() == ErrorCode::Corrupt))
        fail("sync", report.status());
    if (auto rows = g_state->db->query("need", nullptr, 20); !rows.ok()) fail("query after sync", rows.status());
    if (auto journal = g_state->db->conflicts(); !journal.ok()) fail("conflicts after sync", journal.status());
    return 0;
}
