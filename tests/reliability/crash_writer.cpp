// Ubuzima Sync — MIT licence.
// Crash-test helper: writes rows with Durability::Full and reports each one that returned OK.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ubuzima/database.hpp"

// usage: ubuzima_crash_writer DB_PATH FIRST COUNT
// Prints "committed <n> <id>" (flushed) after write n returned OK; the parent SIGKILLs it at
// random moments and then checks that every reported write survived.
int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s DB_PATH FIRST COUNT\n", argv[0]);
        return 2;
    }
    ubuzima::DatabaseOptions options;
    options.path = argv[1];
    options.durability = ubuzima::Durability::Full;
    auto db = ubuzima::Database::open(options);
    if (!db.ok()) {
        std::fprintf(stderr, "open: %s\n", db.status().to_string().c_str());
        return 1;
    }
    const long first = std::strtol(argv[2], nullptr, 10);
    const long count = std::strtol(argv[3], nullptr, 10);
    std::printf("ready\n");
    std::fflush(stdout);
    for (long n = first; n < first + count; ++n) {
        const nlohmann::json fields{{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"specialty_code", "anaesthesiology"}, {"description", "x"},
                                    {"title", "crash-" + std::to_string(n)}, {"priority", "high"},
                                    {"status", "identified"}};
        auto id = db->insert("need", fields);
        if (!id.ok()) {
            std::fprintf(stderr, "insert %ld: %s\n", n, id.status().to_string().c_str());
            return 1;
        }
        std::printf("committed %ld %s\n", n, id->c_str());
        std::fflush(stdout);
    }
    return 0;
}
