// Ubuzima Sync — MIT licence.
// The load process: N concurrent devices (distinct users, one keep-alive connection each) each
// push 20 records in one sync request, then pull until caught up; latencies and errors.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "ubuzima/sync/hlc.hpp"
#include "ubuzima/sync/ids.hpp"
#include "ubuzima/sync/protocol.hpp"
#include "ubuzima/transport.hpp"

using namespace ubuzima;
using nlohmann::json;

namespace {

const char* const kFacilities[] = {"fac-kabgayi", "fac-kibuye",  "fac-bushenge", "fac-murunda",   "fac-gisenyi",
                                   "fac-ruhengeri", "fac-butaro", "fac-kibungo", "fac-nyagatare", "fac-kibagabaga"};

struct Device {
    int index = 0;
    std::string user;
    std::string token;
    sync::NodeId node = 0;
    std::optional<std::string> cursor;
    std::vector<double> latencies_ms;  // each timed request
    double sync_ms = 0;                // push + pull until caught up
    int errors = 0;
    std::string first_error;
    std::int64_t pulled = 0;
};

class StartGate {
public:
    void wait(int expected) {
        std::unique_lock<std::mutex> lock(m_mutex);
        if (++m_arrived == expected) m_cv.notify_all();
        else m_cv.wait(lock, [&] { return m_arrived >= expected; });
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    int m_arrived = 0;
};

// One POST /v1/sync; false (and the error noted) unless it is a 200 with a clean push result.
bool sync_once(HttpTransport& transport, const std::string& url, Device& d, const sync::SyncRequest& request,
               sync::SyncResponse& response, bool timed) {
    const HttpHeaders headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + d.token}};
    const double start = bench::now_s();
    auto resp = transport.post(url + "/v1/sync", sync::encode_sync_request(request), headers);
    if (timed) d.latencies_ms.push_back((bench::now_s() - start) * 1000.0);
    std::string error;
    if (!resp.ok()) error = resp.status().to_string();
    else if (resp->status != 200) error = "HTTP " + std::to_string(resp->status) + " " + resp->body.substr(0, 200);
    else {
        auto decoded = sync::decode_sync_response(resp->body);
        if (!decoded.ok()) error = decoded.status().to_string();
        else if (decoded->push && !decoded->push->rejected.empty()) error = "rejected: " + decoded->push->rejected[0].message;
        else response = std::move(*decoded);
    }
    if (error.empty()) return true;
    if (d.errors++ == 0) d.first_error = error;
    return false;
}

bool pull_until_done(HttpTransport& transport, const std::string& url, Device& d, sync::SyncRequest request, bool timed) {
    for (;;) {
        sync::SyncResponse response;
        if (!sync_once(transport, url, d, request, response, timed)) return false;
        d.pulled += static_cast<std::int64_t>(response.changes.size());
        d.cursor = response.cursor;
        if (!response.more) return true;
        request.batch.reset();
        request.cursor = d.cursor;
    }
}

void run_device(const std::string& url, Device& d, int records, StartGate& gate, int devices) {
    CurlTransport transport;
    sync::SyncRequest request;
    request.schema_version = 1;
    request.node = d.node;
    // Setup (untimed): this device synced yesterday, so it only pulls what is new since then.
    request.clock = sync::make_hlc(sync::system_wall_ms(), 0);
    pull_until_done(transport, url, d, request, false);
    d.pulled = 0;
    gate.wait(devices);

    const double start = bench::now_s();
    sync::PushBatch batch{sync::new_uuid_v7(), {}};
    const std::int64_t now = sync::system_wall_ms();
    for (int k = 0; k < records; ++k) {
        // Ids unique per device run, and references between the records (a finding's assessment)
        // built from the same prefix, so they resolve.
        bench::Record r = bench::make_record(k, kFacilities[d.index % 10],
                                             "ld" + std::to_string(d.index) + "-" + sync::to_hex16(d.node));
        sync::Change ch;
        ch.table = r.table;
        ch.row_id = r.id;
        ch.version = sync::Version{sync::make_hlc(now, static_cast<std::uint32_t>(k)), d.node};
        for (auto& [name, value] : r.fields.items()) ch.fields[name] = value;
        batch.changes.push_back(std::move(ch));
    }
    request.batch = std::move(batch);
    request.cursor = d.cursor;
    request.clock = sync::make_hlc(now, static_cast<std::uint32_t>(records));
    pull_until_done(transport, url, d, request, true);
    d.sync_ms = (bench::now_s() - start) * 1000.0;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
    return v[i];
}

}  // namespace

int main(int argc, char** argv) {
    // --url may repeat: several server processes on one database, device i syncing through
    // urls[i % n] (as a load balancer without sticky sessions would spread them).
    std::vector<std::string> urls;
    std::string admin_password, run = "r";
    int devices = 100, records = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--url") urls.push_back(argv[i + 1]);
        else if (arg == "--admin-password") admin_password = argv[i + 1];
        else if (arg == "--devices") devices = std::atoi(argv[i + 1]);
        else if (arg == "--records") records = std::atoi(argv[i + 1]);
        else if (arg == "--run") run = argv[i + 1];
    }
    if (urls.empty()) {
        std::fprintf(stderr, "bench_load: --url is required\n");
        return 1;
    }
    const std::string& url = urls.front();
    try {
        std::vector<Device> fleet(static_cast<std::size_t>(devices));
        const std::string token = bench::admin_token(url, admin_password);
        for (int i = 0; i < devices; ++i) {
            Device& d = fleet[static_cast<std::size_t>(i)];
            d.index = i;
            d.user = "load-" + run + "-" + std::to_string(i);
            d.node = sync::new_node_id();
            bench::ensure_user(url, token, d.user, "load-pass-1", "assessor", {kFacilities[i % 10]});
            const bench::SimpleResponse r =
                bench::http_post(urls[static_cast<std::size_t>(i) % urls.size()] + "/v1/auth/login", json{{"username", d.user}, {"password", "load-pass-1"},
                                                              {"device_id", sync::to_hex16(d.node)}}.dump());
            if (r.status != 200) throw std::runtime_error("login failed: " + r.body);
            d.token = json::parse(r.body).at("access_token").get<std::string>();
        }
        StartGate gate;
        std::vector<std::thread> threads;
        for (Device& d : fleet)
            threads.emplace_back([&] { run_device(urls[static_cast<std::size_t>(d.index) % urls.size()], d, records, gate, devices); });
        for (std::thread& t : threads) t.join();
        // Wall time of the timed phase: from the gate to the last device done (the slowest sync).
        std::vector<double> all, syncs;
        int errors = 0;
        std::string first_error;
        std::int64_t requests = 0;
        for (const Device& d : fleet) {
            all.insert(all.end(), d.latencies_ms.begin(), d.latencies_ms.end());
            syncs.push_back(d.sync_ms);
            requests += static_cast<std::int64_t>(d.latencies_ms.size());
            errors += d.errors;
            if (first_error.empty()) first_error = d.first_error;
        }
        const double wall_s = *std::max_element(syncs.begin(), syncs.end()) / 1000.0;
        bench::emit({{"bench", "load"},
                     {"devices", devices},
                     {"servers", urls.size()},
                     {"records_per_device", records},
                     {"requests", requests},
                     {"wall_s", wall_s},
                     {"requests_per_s", static_cast<double>(requests) / wall_s},
                     {"records_per_s", static_cast<double>(devices) * records / wall_s},
                     {"request_p50_ms", percentile(all, 0.50)},
                     {"request_p99_ms", percentile(all, 0.99)},
                     {"sync_p50_ms", percentile(syncs, 0.50)},
                     {"sync_p99_ms", percentile(syncs, 0.99)},
                     {"errors", errors},
                     {"first_error", first_error}});
        return errors == 0 ? 0 : 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_load: %s\n", e.what());
        return 1;
    }
}
