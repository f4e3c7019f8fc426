// Ubuzima Sync — MIT licence.
// TLS on the hot path: new connections per second (full handshakes, and resumed ones), keep-alive
// request rate, and the library's push and pull throughput, each against one server URL; run.sh
// runs it against the same server build over http and https and reports the ratios.
#include <curl/curl.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "common.hpp"
#include "ubuzima/database.hpp"
#include "ubuzima/sync/ids.hpp"

using nlohmann::json;
using namespace ubuzima;

namespace {

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct ShareDeleter {
    void operator()(CURLSH* s) const { curl_share_cleanup(s); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

extern "C" size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

struct Options {
    std::string url, ca_file, admin_password, label, dir;
    int connections = 200;
    int requests = 1000;
    int records = 2000;
};

/// One GET /v1/health on a fresh handle: a new TCP (and TLS) connection every time.
void one_connection(const Options& o, CURLSH* share) {
    std::unique_ptr<CURL, EasyDeleter> h(curl_easy_init());
    curl_easy_setopt(h.get(), CURLOPT_URL, (o.url + "/v1/health").c_str());
    curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h.get(), CURLOPT_FORBID_REUSE, 1L);
    if (!o.ca_file.empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, o.ca_file.c_str());
    if (share) curl_easy_setopt(h.get(), CURLOPT_SHARE, share);
    const CURLcode rc = curl_easy_perform(h.get());
    long status = 0;
    curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) throw std::runtime_error(std::string("GET /v1/health: ") + curl_easy_strerror(rc));
}

double connections_per_s(const Options& o, bool resume) {
    std::unique_ptr<CURLSH, ShareDeleter> share(resume ? curl_share_init() : nullptr);
    if (share) curl_share_setopt(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    one_connection(o, share.get());  // warm-up (and the session to resume)
    const double start = bench::now_s();
    for (int i = 0; i < o.connections; ++i) one_connection(o, share.get());
    return o.connections / (bench::now_s() - start);
}

double keepalive_requests_per_s(const Options& o, const std::string& token, const std::string& node) {
    std::unique_ptr<CURL, EasyDeleter> h(curl_easy_init());
    std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, "Content-Type: application/json"));
    headers.reset(curl_slist_append(headers.release(), ("Authorization: Bearer " + token).c_str()));
    const std::string body = json{{"protocol", 1}, {"schema_version", 1}, {"node", node}, {"cursor", "999999999"}}.dump();
    curl_easy_setopt(h.get(), CURLOPT_URL, (o.url + "/v1/sync").c_str());
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
    if (!o.ca_file.empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, o.ca_file.c_str());
    const double start = bench::now_s();
    for (int i = 0; i < o.requests; ++i) {
        const CURLcode rc = curl_easy_perform(h.get());
        long status = 0;
        curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200) throw std::runtime_error("POST /v1/sync failed");
    }
    return o.requests / (bench::now_s() - start);
}

Database open_device(const Options& o, const std::string& name) {
    DatabaseOptions d;
    d.path = o.dir + "/" + o.label + "-" + name + ".db";
    d.durability = Durability::Normal;
    d.sync.timeouts.ca_file = o.ca_file;
    auto db = Database::open(d);
    if (!db.ok()) throw std::runtime_error(db.status().to_string());
    return std::move(*db);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--url") o.url = v;
        else if (a == "--ca-file") o.ca_file = v;
        else if (a == "--admin-password") o.admin_password = v;
        else if (a == "--label") o.label = v;
        else if (a == "--dir") o.dir = v;
        else if (a == "--connections") o.connections = std::stoi(v);
        else if (a == "--requests") o.requests = std::stoi(v);
        else if (a == "--records") o.records = std::stoi(v);
    }
    try {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        bench::set_ca_file(o.ca_file);
        std::filesystem::create_directories(o.dir);
        const std::string password = "bench-tls-user-1";
        const std::string admin = bench::admin_token(o.url, o.admin_password);
        bench::ensure_user(o.url, admin, "bench-tls-a", password, "assessor", {"fac-gisenyi"});
        bench::ensure_user(o.url, admin, "bench-tls-b", password, "assessor", {"fac-gisenyi"});
        const std::string node = sync::to_hex16(sync::new_node_id());
        const bench::SimpleResponse login = bench::http_post(
            o.url + "/v1/auth/login", json{{"username", "bench-tls-a"}, {"password", password}, {"device_id", node}}.dump());
        if (login.status != 200) throw std::runtime_error("login: " + login.body);
        const std::string token = json::parse(login.body).at("access_token");

        const double full = connections_per_s(o, false);
        const double resumed = connections_per_s(o, true);
        const double keepalive = keepalive_requests_per_s(o, token, node);

        Database a = open_device(o, "a");
        Database b = open_device(o, "b");
        if (!a.login(o.url, "bench-tls-a", password).ok() || !b.login(o.url, "bench-tls-b", password).ok())
            throw std::runtime_error("device login failed");
        std::vector<BatchWrite> writes;
        for (int i = 0; i < o.records; ++i) {
            bench::Record r = bench::make_record(i, "fac-gisenyi", "tls-" + o.label);
            writes.push_back(BatchWrite{BatchWrite::Op::Put, r.table, r.id, r.fields});
        }
        if (!a.write_batch(writes).ok()) throw std::runtime_error("local writes failed");
        double start = bench::now_s();
        auto pushed = a.sync();
        const double push_s = bench::now_s() - start;
        start = bench::now_s();
        auto pulled = b.sync();
        const double pull_s = bench::now_s() - start;
        if (!pushed.ok() || !pulled.ok()) throw std::runtime_error("sync failed");
        bench::emit({{"bench", "tls"},
                     {"label", o.label},
                     {"new_conns_per_s", full},
                     {"resumed_conns_per_s", resumed},
                     {"keepalive_req_per_s", keepalive},
                     {"records", o.records},
                     {"push_rec_per_s", pushed->pushed / push_s},
                     {"pull_rec_per_s", pulled->pulled / pull_s}});
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_tls: %s\n", e.what());
        return 1;
    }
}
