// Ubuzima Sync — MIT licence.
// Test support: runs the real ubuzima-server binary on 127.0.0.1 in a temporary data folder.
#pragma once

#include <string>
#include <vector>
#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace ubuzima::test {

/// A unique empty folder under the system temp dir, removed on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return m_path; }
    std::string file(const std::string& name) const { return m_path + "/" + name; }

private:
    std::string m_path;
};

/// The server as a child process. start() blocks until it prints its listening line.
class ServerProcess {
public:
    /// `data_dir`: the --data directory, or a "postgresql://..." URI given as --db.
    explicit ServerProcess(std::string data_dir, std::string admin_password = "admin-secret-1");
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    /// Starts the server; port 0 picks a free one (kept across restarts). Throws on failure.
    void start(int port = 0);
    /// SIGTERM and wait; returns the exit status (0 on a clean shutdown).
    int stop();
    /// SIGKILL and wait: a crash.
    void kill_hard();
    bool running() const { return m_pid > 0; }

    const std::string& url() const { return m_url; }
    /// "http://127.0.0.1:PORT/metrics" when started with --metrics-listen, else "".
    const std::string& metrics_url() const { return m_metrics_url; }
    int port() const { return m_port; }
    const std::string& admin_password() const { return m_admin_password; }
    /// Extra command-line flags for the next start() ("--access-ttl", "1", ...). The access log
    /// is off unless they give --access-log (a line per request would bury the test output).
    void set_extra_args(std::vector<std::string> args) { m_extra_args = std::move(args); }
    /// Serve the PostgreSQL store at `url` (--db) instead of the data folder, from the next start().
    void set_db_url(std::string url) { m_db_url = std::move(url); }
    /// Sends a signal to the running server (SIGHUP reloads its TLS certificate).
    void signal(int sig);

private:
    std::string m_data_dir;
    std::string m_admin_password;
    pid_t m_pid = -1;
    int m_port = 0;
    std::string m_url;
    std::string m_metrics_url;
    std::vector<std::string> m_extra_args;
    std::string m_db_url;
};

/// Runs `ubuzima-server args...` to its exit (killed after `timeout_ms`): for starts that must
/// fail. Returns the exit status (-1 when killed) and everything it printed (stdout + stderr).
struct ExitResult {
    int status = -1;
    std::string output;
};
/// `env`: NAME=value pairs set for it; `input`: what it reads on standard input.
ExitResult run_server_to_exit(const std::vector<std::string>& args, int timeout_ms = 10'000,
                              const std::vector<std::pair<std::string, std::string>>& env = {},
                              const std::string& input = "");

/// Minimal HTTP for tests (libcurl): the status and the body of one request.
struct HttpResult {
    long status = 0;
    std::string body;
    nlohmann::json json() const;
};
/// `ca_file`: the authorities to verify an https:// server with (empty: the system's).
HttpResult http_request(const std::string& method, const std::string& url, const std::string& body = "",
                        const std::string& bearer = "", const std::string& extra_header = "",
                        const std::string& ca_file = "");

/// Logs in with username/password (as device `device_id`, by default "harness-<username>": a
/// device id stays with the account that first used it) and returns the access token (REQUIREs success).
std::string login_token(const std::string& server_url, const std::string& username, const std::string& password,
                        const std::string& device_id = "", const std::string& ca_file = "");
/// Creates a user through the admin API (REQUIREs 201).
void create_user(const std::string& server_url, const std::string& admin_token, const std::string& username,
                 const std::string& password, const std::string& role, const std::vector<std::string>& facilities,
                 const std::string& ca_file = "");

}  // namespace ubuzima::test
