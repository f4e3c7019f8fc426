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
#include "cli/read_secret.hpp"
#include "cli/server_args.hpp"
#include "http/listener.hpp"
#include "http/tls_server.hpp"
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

int serve(const std::vector<std::string>& args) {
    ServerOptions options;
    bool help = false;
    Status parsed = parse_serve_args(args, options, help);
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

    if (!options.db_url) {
        std::error_code ec;
        std::filesystem::create_directories(options.data_dir, ec);
        if (ec) return fail(Status(ErrorCode::IoError, "cannot create " + options.data_dir + ": " + ec.message()));
    }

    if (options.listener == ListenerKind::Cpprest) init_http_threads(options.limits.handler_threads);
    auto store = open_server_store(options.data_dir, options.db_url, options.pool_size, options.schema, false);
    if (!store.ok()) return fail(store.status());
    auto api = Api::create(**store, options);
    if (!api.ok()) return fail(api.status());

    ListenOptions listen;
    listen.host = options.host;
    listen.port = options.port;
    listen.tls = tls;
    listen.limits = options.limits;
    Api* handler = api->get();
    auto listener = open_listener(options.listener, listen, [handler](const http::Request& r) { return handler->handle(r); });
    if (!listener.ok()) return fail(listener.status());
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
    (*listener)->close();  // in-flight requests finish before close() returns
    listener->reset();
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
    if (!args.empty() && args[0] == "serve") args.erase(args.begin());
    return serve(args);
}
