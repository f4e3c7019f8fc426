// Ubuzima Sync — MIT licence.
// Parsing and checking the serve command line.
#include "cli/server_args.hpp"

#include <cerrno>
#include <cstdlib>

namespace ubuzima::server {

const char* const kServeUsage =
    "usage: ubuzima-server [serve] (--data DIR | --db URL) --listen HOST:PORT [options]\n"
    "  --data DIR                      the SQLite store in DIR/ubuzima.db (one server process)\n"
    "  --db URL                        the PostgreSQL store (libpq URI; 'postgresql://' = the PG* environment);\n"
    "                                  any number of server processes may share it\n"
    "  --pool-size N                   PostgreSQL connections of this process (default 8)\n"
    "  --config FILE                   options as 'key = value' lines (keys: these flags without --); flags override\n"
    "  --tls-cert FILE --tls-key FILE  serve HTTPS (PEM; the cert file may hold the chain); SIGHUP reloads them\n"
    "  --insecure-http                 allow plain HTTP on an address other than loopback (not for production)\n"
    "  --listener cpprest|beast        the HTTP listener (default cpprest; beast enforces the timeouts and caps)\n"
    "  --max-body-bytes N              sync request bodies, before and after gunzip (default 33554432)\n"
    "  --access-ttl SECONDS            access token lifetime (default 900)\n"
    "  --refresh-ttl SECONDS           refresh token idle lifetime (default 7776000 = 90 days)\n"
    "  --session-max-age SECONDS       a login's absolute lifetime (default 15552000 = 180 days)\n"
    "  --clock-skew-ms N               versions further ahead are refused (default 300000)\n"
    "  --pbkdf2-iterations N           password hashing cost (default 600000)\n"
    "  --max-page N                    rows per pull page at most (default 1000)\n"
    "  --batch-retention-days N        keep push results for replays this long (default 90)\n"
    "  --conflict-retention-days N     keep resolved conflicts this long (default 365; open ones stay)\n"
    "  --rate-per-device N             requests per second per device, 0 = no limit (default 10, burst 6x)\n"
    "  --rate-per-address N            requests per second per client address (default 100, burst 6x)\n"
    "  --max-connections N             open connections at once (beast; default 1024)\n"
    "  --max-connections-per-address N (beast; default 128)\n"
    "  --header-timeout-ms N           to receive a request's headers (beast; default 10000)\n"
    "  --body-timeout-ms N             to receive a request's body (beast; default 60000)\n"
    "  --idle-timeout-ms N             keep-alive connections idle longer are closed (beast; default 30000)\n"
    "  --metrics-listen HOST:PORT      plain-HTTP listener with only GET /metrics (no token) and /v1/health*;\n"
    "                                  for a Prometheus scraper: bind it to loopback or an INTERNAL interface's\n"
    "                                  address (wildcards 0.0.0.0 and :: are refused); the URL is printed on start\n"
    "  --access-log -|off|FILE         one JSON line per request to stderr (default), nowhere, or appended to FILE\n"
    "  PORT 0 picks a free port. UBUZIMA_ADMIN_PASSWORD (or the file UBUZIMA_ADMIN_PASSWORD_FILE names)\n"
    "  creates user 'admin' in an empty store.\n"
    "other commands (on the data directory, or the database with --db URL, for an operator at the console):\n"
    "  ubuzima-server user add USERNAME --role ROLE [--facility ID]... --data DIR\n"
    "  ubuzima-server user set USERNAME [--role ROLE] [--facilities ID,ID] [--disable|--enable] [--password] --data DIR\n"
    "  ubuzima-server user list --data DIR\n"
    "  ubuzima-server device list --data DIR\n"
    "  ubuzima-server device revoke DEVICE_ID --data DIR\n"
    "  ubuzima-server audit head --data DIR\n"
    "  ubuzima-server audit verify --data DIR [--head 'ubuzima-audit-head N HASH' | --head-file FILE]\n"
    "  ubuzima-server backup --data DIR --to FILE     online copy of the store (the server may run)\n"
    "  ubuzima-server restore --from FILE --data DIR  the server stopped; the old store is kept aside, devices re-pull\n"
    "  ubuzima-server epoch bump (--data DIR | --db URL)  devices re-pull everything (after any other restore)\n"
    "  passwords are typed at the terminal, or read from UBUZIMA_PASSWORD or standard input; never arguments.\n";

namespace {

bool parse_int(const std::string& text, long long min, long long max, long long& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtoll(text.c_str(), &end, 10);
    return errno == 0 && end != text.c_str() && *end == '\0' && out >= min && out <= max;
}

// "HOST:PORT", "[v6]:PORT" or ":PORT" (loopback).
bool parse_host_port(const std::string& value, std::string& host, int& port) {
    const std::size_t colon = value.rfind(':');
    long long n = 0;
    if (colon == std::string::npos || !parse_int(value.substr(colon + 1), 0, 65535, n)) return false;
    host = colon == 0 ? "127.0.0.1" : value.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    port = static_cast<int>(n);
    return !host.empty();
}

Status bad(const std::string& arg, const std::string& value) {
    return Status(ErrorCode::InvalidArgument, "bad option " + arg + (value.empty() ? "" : " " + value));
}

}  // namespace

Status parse_serve_args(const std::vector<std::string>& args, ServerOptions& o, bool& help) {
    bool have_data = false, have_listen = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--help" || arg == "-h") {
            help = true;
            return {};
        }
        if (arg == "--insecure-http") {
            o.insecure_http = true;
            continue;
        }
        if (i + 1 >= args.size()) return Status(ErrorCode::InvalidArgument, arg + " needs a value");
        const std::string& value = args[++i];
        long long n = 0;
        constexpr long long kDay = 86400;
        if (arg == "--data") {
            o.data_dir = value;
            have_data = true;
        } else if (arg == "--db") {
            o.db_url = value.empty() ? "postgresql://" : value;
        } else if (arg == "--pool-size" && parse_int(value, 1, 1000, n)) {
            o.pool_size = static_cast<int>(n);
        } else if (arg == "--listen") {
            const std::size_t colon = value.rfind(':');
            if (colon == std::string::npos || colon == 0 || !parse_int(value.substr(colon + 1), 0, 65535, n))
                return Status(ErrorCode::InvalidArgument, "--listen wants HOST:PORT, got " + value);
            o.host = value.substr(0, colon);
            if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']') o.host = o.host.substr(1, o.host.size() - 2);
            o.port = static_cast<int>(n);
            have_listen = true;
        } else if (arg == "--metrics-listen") {
            if (!parse_host_port(value, o.metrics_host, o.metrics_port))
                return Status(ErrorCode::InvalidArgument, "--metrics-listen wants HOST:PORT, got " + value);
        } else if (arg == "--access-log") {
            if (value.empty()) return bad(arg, value);
            o.access_log = value;
        } else if (arg == "--tls-cert") {
            o.tls_cert = value;
        } else if (arg == "--tls-key") {
            o.tls_key = value;
        } else if (arg == "--listener") {
            if (value == "cpprest") o.listener = ListenerKind::Cpprest;
            else if (value == "beast") o.listener = ListenerKind::Beast;
            else return bad(arg, value);
        } else if (arg == "--max-body-bytes" && parse_int(value, 1024, 1LL << 32, n)) {
            o.max_body_bytes = static_cast<std::size_t>(n);
            o.limits.max_body_bytes = o.max_body_bytes;
        } else if (arg == "--access-ttl" && parse_int(value, 0, kDay, n)) {
            o.access_ttl_s = n;
        } else if (arg == "--refresh-ttl" && parse_int(value, 60, 3650 * kDay, n)) {
            o.refresh_ttl_s = n;
        } else if (arg == "--session-max-age" && parse_int(value, 60, 3650 * kDay, n)) {
            o.session_max_s = n;
        } else if (arg == "--clock-skew-ms" && parse_int(value, 0, 30 * kDay * 1000, n)) {
            o.clock_skew_ms = n;
        } else if (arg == "--pbkdf2-iterations" && parse_int(value, 1, 10'000'000, n)) {
            o.pbkdf2_iterations = static_cast<int>(n);
        } else if (arg == "--max-page" && parse_int(value, 1, 5000, n)) {
            o.max_page = static_cast<int>(n);
        } else if (arg == "--batch-retention-days" && parse_int(value, 1, 36500, n)) {
            o.batch_retention_s = n * kDay;
        } else if (arg == "--conflict-retention-days" && parse_int(value, 1, 36500, n)) {
            o.conflict_retention_s = n * kDay;
        } else if (arg == "--rate-per-device" && parse_int(value, 0, 1'000'000, n)) {
            o.rate.per_device_per_s = static_cast<double>(n);
            o.rate.per_device_burst = static_cast<double>(n) * 6;
        } else if (arg == "--rate-per-address" && parse_int(value, 0, 1'000'000, n)) {
            o.rate.per_address_per_s = static_cast<double>(n);
            o.rate.per_address_burst = static_cast<double>(n) * 6;
        } else if (arg == "--max-connections" && parse_int(value, 1, 1'000'000, n)) {
            o.limits.max_connections = static_cast<int>(n);
        } else if (arg == "--max-connections-per-address" && parse_int(value, 1, 1'000'000, n)) {
            o.limits.max_connections_per_address = static_cast<int>(n);
        } else if (arg == "--header-timeout-ms" && parse_int(value, 100, 3'600'000, n)) {
            o.limits.header_timeout_ms = static_cast<int>(n);
        } else if (arg == "--body-timeout-ms" && parse_int(value, 100, 3'600'000, n)) {
            o.limits.body_timeout_ms = static_cast<int>(n);
        } else if (arg == "--idle-timeout-ms" && parse_int(value, 100, 3'600'000, n)) {
            o.limits.idle_timeout_ms = static_cast<int>(n);
        } else {
            return bad(arg, value);
        }
    }
    if (have_data && o.db_url) return Status(ErrorCode::InvalidArgument, "give --data DIR or --db URL, not both");
    if ((!have_data && !o.db_url) || !have_listen)
        return Status(ErrorCode::InvalidArgument, "--data DIR (or --db URL) and --listen are required");
    o.limits.max_body_bytes = o.max_body_bytes;
    return {};
}

Status check_serve_options(const ServerOptions& o, std::vector<std::string>& warnings) {
    if (o.tls_cert.empty() != o.tls_key.empty())
        return Status(ErrorCode::InvalidArgument, "--tls-cert and --tls-key go together");
    const bool tls = !o.tls_cert.empty();
    const bool loopback = is_loopback_host(o.host);
    if (!tls && !loopback && !o.insecure_http)
        return Status(ErrorCode::InvalidArgument,
                      "refusing plain HTTP on " + o.host +
                          ": tokens and health data would cross the network in clear. Give --tls-cert and --tls-key "
                          "(or --insecure-http behind a TLS-terminating proxy)");
    if (!tls && !loopback)
        warnings.push_back("serving plain HTTP on " + o.host +
                           " (--insecure-http): only behind a proxy that terminates TLS on this machine");
    // /metrics answers anyone who reaches that listener: it must be an address only the
    // monitoring network reaches, never "every interface".
    if (!o.metrics_host.empty() && !is_loopback_host(o.metrics_host)) {
        if (o.metrics_host == "0.0.0.0" || o.metrics_host == "::" || o.metrics_host == "*")
            return Status(ErrorCode::InvalidArgument,
                          "refusing --metrics-listen on every interface (" + o.metrics_host +
                              "): /metrics has no authentication; give loopback or an internal interface's address");
        warnings.push_back("unauthenticated /metrics on " + o.metrics_host +
                           ": that address must be reachable only from the internal (monitoring) network");
    }
    if (!loopback && o.listener == ListenerKind::Cpprest)
        warnings.push_back("the cpprest listener has no header/idle timeouts and no connection cap (docs/SECURITY.md): "
                           "on the open internet use --listener beast or a front proxy");
    return {};
}

}  // namespace ubuzima::server
