// Ubuzima Sync — MIT licence.
// ubuzima-server: parses the command line, opens the store, serves HTTP until SIGTERM/SIGINT.
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "api/api.hpp"
#include "http/listener.hpp"
#include "storage/sqlite_store.hpp"

using namespace ubuzima;
using namespace ubuzima::server;

namespace {

constexpr const char* kUsage =
    "usage: ubuzima-server --data DIR --listen HOST:PORT [--max-body-bytes N] [--access-ttl SECONDS]\n"
    "                      [--clock-skew-ms N] [--pbkdf2-iterations N]\n"
    "  PORT 0 picks a free port. UBUZIMA_ADMIN_PASSWORD creates user 'admin' in an empty store.\n";

bool parse_int(const char* text, long long min, long long& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtoll(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && out >= min;
}

/// Fills `options`; returns false (after printing why) on bad arguments.
bool parse_args(int argc, char** argv, ServerOptions& options) {
    bool have_data = false, have_listen = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "ubuzima-server: %s needs a value\n%s", arg.c_str(), kUsage);
            return false;
        }
        const char* value = argv[++i];
        long long n = 0;
        if (arg == "--data") {
            options.data_dir = value;
            have_data = true;
        } else if (arg == "--listen") {
            const std::string hp = value;
            const std::size_t colon = hp.rfind(':');
            if (colon == std::string::npos || colon == 0 || !parse_int(hp.c_str() + colon + 1, 0, n) || n > 65535) {
                std::fprintf(stderr, "ubuzima-server: --listen wants HOST:PORT, got %s\n", value);
                return false;
            }
            options.host = hp.substr(0, colon);
            options.port = static_cast<int>(n);
            have_listen = true;
        } else if (arg == "--max-body-bytes" && parse_int(value, 1, n)) {
            options.max_body_bytes = static_cast<std::size_t>(n);
        } else if (arg == "--access-ttl" && parse_int(value, 0, n)) {
            options.access_ttl_s = n;
        } else if (arg == "--clock-skew-ms" && parse_int(value, 0, n)) {
            options.clock_skew_ms = n;
        } else if (arg == "--pbkdf2-iterations" && parse_int(value, 1, n) && n <= 10'000'000) {
            options.pbkdf2_iterations = static_cast<int>(n);
        } else {
            std::fprintf(stderr, "ubuzima-server: bad option %s %s\n%s", arg.c_str(), value, kUsage);
            return false;
        }
    }
    if (!have_data || !have_listen) {
        std::fputs(kUsage, stderr);
        return false;
    }
    return true;
}

int fail(const Status& s) {
    std::fprintf(stderr, "ubuzima-server: %s\n", s.to_string().c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    ServerOptions options;
    if (!parse_args(argc, argv, options)) return 2;
    if (const char* pw = std::getenv("UBUZIMA_ADMIN_PASSWORD"); pw && *pw) options.bootstrap_admin_password = pw;

    // Block the stop signals before any thread starts, so every thread inherits the mask and
    // only sigwait() below ever sees them.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) return fail(Status(ErrorCode::IoError, "cannot create " + options.data_dir + ": " + ec.message()));

    init_http_threads(4);
    auto store = SqliteStore::open((std::filesystem::path(options.data_dir) / "ubuzima.db").string());
    if (!store.ok()) return fail(store.status());
    auto api = Api::create(**store, options);
    if (!api.ok()) return fail(api.status());

    if (options.port == 0) {
        auto port = pick_free_port(options.host);
        if (!port.ok()) return fail(port.status());
        options.port = *port;
    }
    Api* handler = api->get();
    auto listener = HttpListener::open(options.host, options.port, options.max_body_bytes,
                                       [handler](const HttpRequest& r) { return handler->handle(r); });
    if (!listener.ok()) return fail(listener.status());
    std::printf("ubuzima-server listening on http://%s:%d\n", options.host.c_str(), options.port);
    std::fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    std::fprintf(stderr, "ubuzima-server: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*listener)->close();  // in-flight requests finish before close() returns
    listener->reset();
    api->reset();
    store->reset();  // closes the database: WAL checkpointed, nothing pending
    return 0;
}
