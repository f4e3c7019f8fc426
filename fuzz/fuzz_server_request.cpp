// Ubuzima Sync — MIT licence.
// libFuzzer target: the whole server request path in-process (routing, auth, gzip, push, pull).
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server_test_support.hpp"

namespace {

using ubuzima::server::http::Request;
using ubuzima::server::http::Response;
using ubuzima::server::test::TestServer;
using nlohmann::json;

// One server for the whole run: creating a store per input would measure SQLite, not our code.
struct State {
    std::unique_ptr<TestServer> server;
    std::string assessor_token;
    std::string coordinator_token;
};
State* g_state = nullptr;

void clean_up() {
    delete g_state;  // removes the temp dir
    g_state = nullptr;
}

[[noreturn]] void fail(const char* what, const Request& request, const Response& response) {
    std::fprintf(stderr, "fuzz_server_request: %s: %s %s -> %d %s\n", what, request.method.c_str(),
                 request.raw_path.c_str(), response.status, response.body.c_str());
    std::abort();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

// "METHOD\nPATH[?k=v]\nheader: value\n...\n\nBODY"; "@token@" stands for a coordinator token.
Request parse_structured(std::string_view text) {
    Request r;
    auto next_line = [&text]() {
        const std::size_t nl = text.find('\n');
        std::string line(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        return line;
    };
    r.method = next_line();
    std::string path = next_line();
    const std::size_t q = path.find('?');
    if (q != std::string::npos) {
        r.query = ubuzima::server::http::parse_query(path.substr(q + 1));
        path.resize(q);
    }
    r.raw_path = path;
    for (std::string line = next_line(); !line.empty(); line = next_line()) {
        const std::size_t colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[name] = replace_all(value, "@token@", g_state->coordinator_token);
    }
    r.body = std::string(text);
    return r;
}

constexpr std::uint64_t kCoordinatorNode = 0xfedcba9876543210ULL;

/// The corpus names the assessor's node; a coordinator's request names the coordinator's.
std::string as_coordinator(std::string body) {
    for (std::size_t at = body.find("0123456789abcdef"); at != std::string::npos; at = body.find("0123456789abcdef", at))
        body.replace(at, 16, "fedcba9876543210");
    return body;
}

Request sync_request(std::string body, const std::string& token) {
    Request r;
    r.method = "POST";
    r.raw_path = "/v1/sync";
    r.headers["content-type"] = "application/json";
    r.headers["authorization"] = "Bearer " + token;
    r.body = std::move(body);
    return r;
}

void check(const Request& request, const Response& response) {
    if (response.status < 200 || response.status > 599) fail("invalid status", request, response);
    // Bad input is the client's fault: a 500 means our code failed on it.
    if (response.status == 500) fail("internal error", request, response);
    std::string text = response.body;
    auto enc = response.headers.find("Content-Encoding");
    if (enc != response.headers.end()) {
        auto plain = ubuzima::server::gzip_decompress(text, 1u << 30);
        if (!plain.ok()) fail("undecodable gzip body", request, response);
        text = std::move(*plain);
    }
    const json body = json::parse(text, nullptr, false);
    if (!body.is_object()) fail("body is not a JSON object", request, response);
    if (response.status >= 400) {
        const json* error = body.contains("error") ? &body["error"] : nullptr;
        if (!error || !error->is_object() || !error->contains("code") || !(*error)["code"].is_string() ||
            !error->contains("message") || !(*error)["message"].is_string())
            fail("error without {error:{code,message}}", request, response);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_state = new State;
    g_state->server = std::make_unique<TestServer>();
    // Tokens of the device the corpus's sync bodies name (node 0123456789abcdef). A device id
    // belongs to one account, so the coordinator's device is another one: its bodies name it.
    g_state->assessor_token =
        g_state->server->token_for_node(g_state->server->user_token("alice", "assessor", {"fac-gisenyi"}), 0x0123456789abcdefULL);
    g_state->coordinator_token =
        g_state->server->token_for_node(g_state->server->user_token("coord", "coordinator", {}), kCoordinatorNode);
    std::atexit(clean_up);
    return 0;
}

// The first byte picks the shape: 0/1 a /v1/sync body (assessor/coordinator), 2/3 the same
// gzip'd, 4 a raw (maybe corrupt) gzip stream, 5 a whole structured request.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const int mode = data[0] % 6;
    std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (mode == 1 || mode == 3) rest = as_coordinator(std::move(rest));
    const std::string& token = mode % 2 == 0 ? g_state->assessor_token : g_state->coordinator_token;
    Request request;
    switch (mode) {
        case 0:
        case 1: request = sync_request(rest, token); break;
        case 2:
        case 3: {
            auto packed = ubuzima::server::gzip_compress(rest);
            if (!packed.ok()) return 0;
            request = sync_request(std::move(*packed), token);
            request.headers["content-encoding"] = "gzip";
            break;
        }
        case 4:
            request = sync_request(rest, g_state->coordinator_token);
            request.headers["content-encoding"] = "gzip";
            break;
        default: request = parse_structured(rest); break;
    }
    if (mode != 5) request.headers["accept-encoding"] = "gzip";
    check(request, g_state->server->api->handle(request));
    return 0;
}
