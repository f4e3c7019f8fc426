// Ubuzima Sync — MIT licence.
// ubuzima_sim: runs seeded convergence simulations and prints a replay command for each failure.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "sim.hpp"

using namespace ubuzima;
using namespace ubuzima::sim;

namespace {

void usage() {
    std::puts(
        "usage: ubuzima_sim [--seeds N] [--first-seed S] [--seed S] [--devices K] [--steps N] [--verbose] [--no-moves]\n"
        "                  [--postgres]\n"
        "  --seeds N       run seeds S .. S+N-1 (default 10)\n"
        "  --first-seed S  first seed (default 1)\n"
        "  --seed S        run exactly one seed (replay)\n"
        "  --devices K     devices per seed (default 5, at least 1)\n"
        "  --steps N       random steps per seed before healing (default 200)\n"
        "  --verbose       state hashes; on failure the history of the rows involved\n"
        "  --no-moves      never move rows between facilities inside the writer's scope\n"
        "  --postgres      the server on PostgreSQL (the cluster of the PG* environment; exits 77 without PGHOST)");
}

bool parse_number(const char* text, std::uint64_t& out) {
    char* end = nullptr;
    out = std::strtoull(text, &end, 10);
    return end != text && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t seeds = 10, first = 1, devices = 5, steps = 200;
    bool verbose = false;
    bool moves = true;
    bool postgres = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        std::uint64_t* target = arg == "--seeds" ? &seeds : arg == "--first-seed" || arg == "--seed" ? &first
                              : arg == "--devices" ? &devices : arg == "--steps" ? &steps : nullptr;
        if (arg == "--verbose") {
            verbose = true;
        } else if (arg == "--postgres") {
            postgres = true;
        } else if (arg == "--no-moves") {
            moves = false;
        } else if (target && i + 1 < argc && parse_number(argv[i + 1], *target)) {
            if (arg == "--seed") seeds = 1;
            ++i;
        } else {
            usage();
            return arg == "--help" ? 0 : 2;
        }
    }
    if (devices < 1 || devices > 64) {
        std::fprintf(stderr, "--devices must be 1..64\n");
        return 2;
    }
    namespace fs = std::filesystem;
    const fs::path root = (fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path()) /
                          ("ubuzima-sim-" + std::to_string(::getpid()));
    fs::create_directories(root);
    const std::string server_template = (root / "server-template.db").string();
    const std::string pg_template = postgres ? "ubz_sim_" + std::to_string(::getpid()) : "";
    if (postgres && !std::getenv("PGHOST")) {
        std::printf("SKIPPED: --postgres needs a cluster in the PG* environment (scripts/test-postgres.sh)\n");
        return 77;
    }
    sync::NodeId seed_node = 0;
    Status made = Simulation::make_server_template(server_template);
    if (postgres) {
        auto node = Simulation::make_pg_template(pg_template);
        made = node.status();
        if (node.ok()) seed_node = *node;
    }
    if (!made.ok()) {
        std::fprintf(stderr, "cannot build the server template: %s\n", made.to_string().c_str());
        return 2;
    }

    const auto started = std::chrono::steady_clock::now();
    SimStats total;
    for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
        SimOptions o;
        o.seed = seed;
        o.devices = static_cast<int>(devices);
        o.steps = static_cast<int>(steps);
        o.work_dir = (root / ("seed-" + std::to_string(seed))).string();
        o.server_template = server_template;
        o.pg_template = pg_template;
        o.seed_node = seed_node;
        o.verbose = verbose;
        o.moves = moves;
        Simulation sim(o);
        const std::vector<std::string> failures = sim.run();
        total += sim.stats();
        if (!failures.empty()) {
            if (verbose)
                for (const std::string& f : failures) std::printf("  seed %llu: %s\n", static_cast<unsigned long long>(seed), f.c_str());
            std::printf("FAIL seed %llu (%s) replay: %s --seed %llu --devices %llu --steps %llu%s\n",
                        static_cast<unsigned long long>(seed), failures.front().c_str(), argv[0],
                        static_cast<unsigned long long>(seed), static_cast<unsigned long long>(devices),
                        static_cast<unsigned long long>(steps), moves ? "" : " --no-moves");
            std::fflush(stdout);
        }
    }
    std::error_code ec;
    fs::remove_all(root, ec);
    if (postgres) (void)Simulation::drop_pg_database(pg_template);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    std::printf("ubuzima_sim: %lld seeds x %llu devices x %llu steps in %.1f s, %lld failed\n",
                static_cast<long long>(total.seeds), static_cast<unsigned long long>(devices),
                static_cast<unsigned long long>(steps), secs, static_cast<long long>(total.failures));
    std::printf("  local writes accepted %lld, refused locally %lld\n", static_cast<long long>(total.writes),
                static_cast<long long>(total.refused_locally));
    std::printf("  syncs %lld (%lld cut by faults), re-logins %lld, clock-skew re-stamps %lld\n",
                static_cast<long long>(total.syncs), static_cast<long long>(total.failed_syncs),
                static_cast<long long>(total.relogins), static_cast<long long>(total.restamped));
    const FaultCounts& f = total.faults;
    std::printf("  requests delivered %lld; faults: offline %lld, lost requests %lld, lost responses %lld, "
                "duplicates %lld, stale replays %lld\n",
                static_cast<long long>(f.delivered), static_cast<long long>(f.offline),
                static_cast<long long>(f.lost_requests), static_cast<long long>(f.lost_responses),
                static_cast<long long>(f.duplicates), static_cast<long long>(f.stale_replays));
    std::printf("  server conflicts journalled %lld; rejections %lld", static_cast<long long>(total.server_conflicts),
                static_cast<long long>(total.rejections));
    for (const auto& [code, n] : total.rejections_by_code) std::printf(" %s=%lld", code.c_str(), static_cast<long long>(n));
    std::printf("\n  checks passed (of %lld seeds):", static_cast<long long>(total.seeds));
    for (const auto& [name, n] : total.checks_passed) std::printf(" %s=%lld", name.c_str(), static_cast<long long>(n));
    std::printf("\n");
    return total.failures == 0 ? 0 : 1;
}
