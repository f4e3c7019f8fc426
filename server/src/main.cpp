// Ubuzima Sync — MIT licence.
// ubuzima-server: serves the API until SIGTERM/SIGINT (SIGHUP reloads the TLS certificate), or
// runs one console command (user, device, audit).
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "api/api.hpp"
#include "cli/admin_commands.hpp"
#include "cli/config_file.hpp"
#include "cli/read_secret.hpp"
#include "cli/server_args.hpp"
#include "cli/store_commands.hpp"
#include "http/listener.hpp"
#include "http/tls_server.hpp"
#include "ops/retention.hpp"
#include "storage/open_store.hpp"

using namespace ubuzima;
using namespace ubuzima::server;

namespace {

int fail(const Status& s) {
    std::fprintf(stderr, "ubuzima-server: %s\n", s.to_string().c_str());
    return 1;
}

// Each open connection is a file descriptor: the default soft limit of 1,024 let ~1,100 idle
// connections lock everyone out. Raise it to what the system allows this process.
void raise_file_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) std::fprintf(stderr, "ubuzima-server: cannot raise the open-file limit\n");
}

// The bootstrap password, read once and then wiped from the environment block, which
// /proc/<pid>/environ would otherwise show for the process's whole life.
std::optional<std::string> bootstrap_password() {
    if (const char* file = std::getenv("UBUZIMA_ADMIN_PASSWORD_FILE"); file && *file) {
        std::ifstream in(file);
        std::string line;
        if (in && std::getline(in, line) && !line.empty()) return line;
        std::fprintf(stderr, "ubuzima-server: cannot read UBUZIMA_ADMIN_PASSWORD_FILE %s\n", file);
        return std::nullopt;
    }
    if (const char* pw = std::getenv("UBUZIMA_ADMIN_PASSWORD"); pw && *pw) {
        std::string value = pw;
        scrub_environment_value("UBUZIMA_ADMIN_PASSWORD");
        return value;
    }
    return std::nullopt;
}

int serve(const std::vector<std::string>& command_line) {
    ServerOptions options;
    bool help = false;
    auto args = expand_config_file(command_line);
    if (!args.ok()) {
        std::fprintf(stderr, "ubuzima-server: %s\n", args.status().message().c_str());
        return 2;
    }
    Status parsed = parse_serve_args(*args, options, help);
    if (help) {
        std::fputs(kServeUsage, stdout);
        return 0;
    }
    if (!parsed.ok()) {
        std::fprintf(stderr, "ubuzima-server: %s\n%s", parsed.message().c_str(), kServeUsage);
        return 2;
    }
    std::vector<std::string> warnings;
    if (Status s = check_serve_options(options, warnings); !s.ok()) return fail(s);
    for (const std::string& w : warnings) std::fprintf(stderr, "ubuzima-server: warning: %s\n", w.c_str());
    options.bootstrap_admin_password = bootstrap_password();

    // Certificate and key are read and checked now: a bad pair fails the start, not the first
    // connection.
    std::shared_ptr<TlsServerContext> tls;
    if (!options.tls_cert.empty()) {
        auto loaded = TlsServerContext::load(options.tls_cert, options.tls_key);
        if (!loaded.ok()) return fail(loaded.status());
        tls = std::move(*loaded);
    }

    // Block the signals before any thread starts, so every thread inherits the mask and only
    // sigwait() below ever sees them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    raise_file_limit();

    // One process owns a SQLite data directory; PostgreSQL takes any number of them.
    std::optional<DataDirLock> dir_lock;
    if (!options.db_url) {
        std::error_code ec;
        std::filesystem::create_directories(options.data_dir, ec);
        if (ec) return fail(Status(ErrorCode::IoError, "cannot create " + options.data_dir + ": " + ec.message()));
        auto acquired = DataDirLock::acquire(options.data_dir);
        if (!acquired.ok()) return fail(acquired.status());
        dir_lock.emplace(std::move(*acquired));
    }

    if (options.listener == ListenerKind::Cpprest) init_http_threads(options.limits.handler_threads);
    auto store = open_server_store(options.data_dir, options.db_url, options.pool_size, options.schema, false);
    if (!store.ok()) return fail(store.status());
    auto api = Api::create(**store, options);
    if (!api.ok()) return fail(api.status());
    auto access_log = ops::AccessLog::open(options.access_log);
    if (!access_log.ok()) return fail(access_log.status());
    (*api)->set_access_log(std::move(*access_log));

    ListenOptions listen;
    listen.host = options.host;
    listen.port = options.port;
    listen.tls = tls;
    listen.limits = options.limits;
    Api* handler = api->get();
    auto listener = open_listener(options.listener, listen, [handler](const http::Request& r) { return handler->handle(r); });
    if (!listener.ok()) return fail(listener.status());
    // Hourly, and once now: a server that restarts often still prunes.
    auto retention = std::make_unique<RetentionTask>(**store, options, 3600 * 1000);
    // The internal metrics listener: plain HTTP, only /metrics and health (Api::handle_ops).
    std::unique_ptr<HttpListener> metrics_listener;
    if (!options.metrics_host.empty()) {
        ListenOptions ml;
        ml.host = options.metrics_host;
        ml.port = options.metrics_port;
        ml.limits = options.limits;
        auto opened = open_listener(options.listener, ml, [handler](const http::Request& r) { return handler->handle_ops(r); });
        if (!opened.ok()) return fail(opened.status());
        metrics_listener = std::move(*opened);
        // Printed before the "listening on" line, which tells a supervisor start-up is complete.
        std::printf("ubuzima-server metrics on %s/metrics\n", metrics_listener->url(options.metrics_host).c_str());
    }
    std::printf("ubuzima-server listening on %s\n", (*listener)->url(options.host).c_str());
    if (tls) std::printf("ubuzima-server: TLS certificate %s\n", tls->summary().c_str());
    std::fflush(stdout);

    for (;;) {
        int sig = 0;
        sigwait(&signals, &sig);
        if (sig != SIGHUP) {
            std::fprintf(stderr, "ubuzima-server: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (!tls) continue;
        const Status reloaded = tls->reload();
        if (reloaded.ok()) std::fprintf(stderr, "ubuzima-server: SIGHUP: TLS certificate reloaded: %s\n", tls->summary().c_str());
        else std::fprintf(stderr, "ubuzima-server: SIGHUP: keeping the old certificate: %s\n", reloaded.to_string().c_str());
    }
    if (metrics_listener) metrics_listener->close();  // before the Api its handler calls goes away
    (*listener)->close();  // in-flight requests finish before close() returns
    listener->reset();
    retention.reset();
    metrics_listener.reset();
    api->reset();
    store->reset();  // closes the database: WAL checkpointed, nothing pending
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && is_admin_command(args[0])) {
        const std::string command = args[0];
        return run_admin_command(command, std::vector<std::string>(args.begin() + 1, args.end()));
    }
    if (!args.empty() && is_store_command(args[0])) {
        const std::string command = args[0];
        return run_store_command(command, std::vector<std::string>(args.begin() + 1, args.end()));
    }
    if (!args.empty() && args[0] == "serve") args.erase(args.begin());
    return serve(args);
}
