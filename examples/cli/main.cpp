// Ubuzima Sync — MIT licence.
// `ubuzima`: a command-line assessor app built on the C++ client API.
#include <cstdlib>
#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) {
    std::string db_path = std::getenv("UBUZIMA_DB") ? std::getenv("UBUZIMA_DB") : "ubuzima.db";
    ubuzima::cli::Args args;
    ubuzima::TransportOptions trust;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--db" && i + 1 < argc) {
            db_path = argv[++i];
        } else if (a == "--ca-file" && i + 1 < argc) {
            trust.ca_file = argv[++i];
        } else if (a == "--pin" && i + 1 < argc) {
            trust.pinned_public_keys += (trust.pinned_public_keys.empty() ? "" : ";") + std::string(argv[++i]);
        } else if (a == "-h" || a == "--help") {
            ubuzima::cli::print_usage();
            return 0;
        } else {
            args.push_back(a);
        }
    }
    if (args.empty()) {
        ubuzima::cli::print_usage();
        return 2;
    }
    ubuzima::DatabaseOptions options;
    options.path = db_path;
    options.sync.timeouts.ca_file = trust.ca_file;
    options.sync.timeouts.pinned_public_keys = trust.pinned_public_keys;
    auto db = ubuzima::Database::open(options);
    if (!db.ok()) return ubuzima::cli::fail(db.status());
    const std::string command = args.front();
    args.erase(args.begin());
    return ubuzima::cli::run_command(*db, command, args);
}
