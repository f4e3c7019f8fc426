// Ubuzima Sync — MIT licence.
// One device in its own process (so its peak RSS is its own): generates the records, pushes them
// to the real server, or pulls them into a fresh database, through a counting proxy.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "common.hpp"
#include "proxy.hpp"
#include "ubuzima/database.hpp"

using namespace ubuzima;
using nlohmann::json;

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "bench_sync_client: %s\n", what.c_str());
    std::exit(1);
}

void check(const Status& s, const std::string& what) {
    if (!s.ok()) die(what + ": " + s.to_string());
}

struct Args {
    std::map<std::string, std::string> values;
    std::string get(const std::string& key, const std::string& fallback = "") const {
        auto it = values.find(key);
        return it == values.end() ? fallback : it->second;
    }
};

// "http://127.0.0.1:PORT" → PORT.
int port_of(const std::string& url) { return std::atoi(url.substr(url.rfind(':') + 1).c_str()); }

Database open_device(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
    DatabaseOptions options;
    options.path = path;  // Durability::Full: what a phone uses by default
    auto db = Database::open(options);
    check(db.status(), "open " + path);
    return std::move(*db);
}

json wire_json(const bench::WireCounts& c, std::int64_t records) {
    const double n = records > 0 ? static_cast<double>(records) : 1.0;
    return {{"up_bytes", c.up},           {"down_bytes", c.down},
            {"up_bytes_per_record", static_cast<double>(c.up) / n},
            {"down_bytes_per_record", static_cast<double>(c.down) / n},
            {"http_requests", c.exchanges}, {"connections", c.connections}};
}

int generate(const Args& a) {
    const std::int64_t n = std::atoll(a.get("n", "1000").c_str());
    std::ofstream out(a.get("out"));
    if (!out) die("cannot write " + a.get("out"));
    std::int64_t bytes = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        bench::Record r = bench::make_record(i, a.get("facility", "fac-gisenyi"), a.get("prefix", "rec"));
        const std::string line = json{{"t", r.table}, {"id", r.id}, {"f", r.fields}}.dump();
        bytes += static_cast<std::int64_t>(r.fields.dump().size());
        out << line << '\n';
    }
    bench::emit({{"bench", "generate"}, {"records", n}, {"avg_record_json_bytes", static_cast<double>(bytes) / static_cast<double>(n)}});
    return 0;
}

int push(const Args& a, bench::CountingProxy& proxy) {
    Database db = open_device(a.get("db"));
    // Capture is not what is measured here: load the records in big transactions, then sync.
    std::ifstream in(a.get("records"));
    if (!in) die("cannot read " + a.get("records"));
    std::vector<BatchWrite> batch;
    std::int64_t n = 0;
    std::string line;
    while (std::getline(in, line)) {
        json r = json::parse(line);
        batch.push_back({BatchWrite::Op::Insert, r["t"].get<std::string>(), r["id"].get<std::string>(), std::move(r["f"])});
        ++n;
        if (batch.size() == 1000) {
            check(db.write_batch(batch).status(), "write_batch");
            batch.clear();
        }
    }
    if (!batch.empty()) check(db.write_batch(batch).status(), "write_batch");
    check(db.login(proxy.url(), a.get("user"), a.get("password")), "login");
    proxy.reset();
    const double start = bench::now_s();
    auto report = db.sync();
    const double seconds = bench::now_s() - start;
    check(report.status(), "sync");
    if (report->pushed != n) die("pushed " + std::to_string(report->pushed) + " of " + std::to_string(n));
    json out = {{"bench", "sync"},   {"direction", "push"},  {"records", n},
                {"seconds", seconds}, {"records_per_s", static_cast<double>(n) / seconds},
                {"sync_round_trips", report->round_trips}, {"client_peak_rss_kb", bench::peak_rss_kb()}};
    out.update(wire_json(proxy.counts(), n));
    bench::emit(out);
    return 0;
}

int pull(const Args& a, bench::CountingProxy& proxy) {
    Database db = open_device(a.get("db"));
    check(db.login(proxy.url(), a.get("user"), a.get("password")), "login");
    const std::int64_t expect = std::atoll(a.get("expect", "0").c_str());
    proxy.reset();
    double start = bench::now_s();
    auto report = db.sync();
    double seconds = bench::now_s() - start;
    check(report.status(), "sync");
    if (report->pulled < expect) die("pulled " + std::to_string(report->pulled) + ", expected at least " + std::to_string(expect));
    json out = {{"bench", "sync"},   {"direction", "pull"},  {"records", report->pulled},
                {"seconds", seconds}, {"records_per_s", static_cast<double>(report->pulled) / seconds},
                {"sync_round_trips", report->round_trips}, {"client_peak_rss_kb", bench::peak_rss_kb()}};
    out.update(wire_json(proxy.counts(), report->pulled));
    bench::emit(out);

    // Nothing changed since: the daily "anything new?" sync.
    proxy.reset();
    start = bench::now_s();
    report = db.sync();
    seconds = bench::now_s() - start;
    check(report.status(), "no-op sync");
    const bench::WireCounts c = proxy.counts();
    bench::emit({{"bench", "noop_sync"}, {"seconds", seconds}, {"http_requests", c.exchanges},
                 {"sync_round_trips", report->round_trips}, {"up_bytes", c.up}, {"down_bytes", c.down},
                 {"pulled", report->pulled}});
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) die("usage: bench_sync_client gen|setup|push|pull --key value ...");
    const std::string mode = argv[1];
    Args a;
    for (int i = 2; i + 1 < argc; i += 2) a.values[std::string(argv[i]).substr(2)] = argv[i + 1];
    try {
        if (mode == "gen") return generate(a);
        const std::string url = a.get("url");
        if (mode == "setup") {
            const std::string token = bench::admin_token(url, a.get("admin-password"));
            for (const char* user : {"bench-alice", "bench-bob"})
                bench::ensure_user(url, token, user, a.get("password"), "assessor", {"fac-gisenyi"});
            return 0;
        }
        bench::CountingProxy proxy("127.0.0.1", port_of(url));
        if (mode == "push") return push(a, proxy);
        if (mode == "pull") return pull(a, proxy);
    } catch (const std::exception& e) {
        die(e.what());
    }
    die("unknown mode " + mode);
}
