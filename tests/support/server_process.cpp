// Ubuzima Sync — MIT licence.
// Test support: child-process server, temp folders and a tiny libcurl HTTP helper.
#include "support/server_process.hpp"

#include <curl/curl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

#ifndef UBUZIMA_SERVER_BIN
#error "UBUZIMA_SERVER_BIN must name the server binary"
#endif

namespace ubuzima::test {

TempDir::TempDir() {
    std::random_device rd;
    const auto base = std::filesystem::temp_directory_path();
    for (;;) {
        auto candidate = base / ("ubuzima-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        if (std::filesystem::create_directory(candidate)) {
            m_path = candidate.string();
            break;
        }
    }
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
}

ServerProcess::ServerProcess(std::string data_dir, std::string admin_password)
    : m_data_dir(std::move(data_dir)), m_admin_password(std::move(admin_password)) {}

ServerProcess::~ServerProcess() {
    if (running()) stop();
}

void ServerProcess::start(int port) {
    if (port == 0) port = m_port;
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    const std::string listen = "127.0.0.1:" + std::to_string(port);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        setenv("UBUZIMA_ADMIN_PASSWORD", m_admin_password.c_str(), 1);
        // Fast hashing, no request limits and no access log unless a test asks (later flags win).
        // A libpq URI (set_db_url, or given as the directory) instead of a directory: PostgreSQL.
        const std::string& where = m_db_url.empty() ? m_data_dir : m_db_url;
        const bool database_url = where.rfind("postgresql://", 0) == 0;
        std::vector<std::string> args = {UBUZIMA_SERVER_BIN, database_url ? "--db" : "--data", where, "--listen", listen,
                                         "--pbkdf2-iterations", "1000", "--rate-per-device", "0",
                                         "--access-log", "off"};
        args.insert(args.end(), m_extra_args.begin(), m_extra_args.end());
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(UBUZIMA_SERVER_BIN, argv.data());
        _exit(127);
    }
    close(out[1]);
    m_pid = pid;
    FILE* child_out = fdopen(out[0], "r");
    char line[512];
    const std::string marker = "listening on ";
    const std::string metrics_marker = "metrics on ";  // printed before the listening line
    m_metrics_url.clear();
    while (fgets(line, sizeof line, child_out)) {
        std::string s(line);
        if (auto m = s.find(metrics_marker); m != std::string::npos) {
            m_metrics_url = s.substr(m + metrics_marker.size());
            while (!m_metrics_url.empty() && (m_metrics_url.back() == '\n' || m_metrics_url.back() == '\r'))
                m_metrics_url.pop_back();
            continue;
        }
        auto at = s.find(marker);
        if (at == std::string::npos) continue;
        std::string url = s.substr(at + marker.size());
        while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) url.pop_back();
        m_url = url;
        m_port = std::stoi(url.substr(url.rfind(':') + 1));
        // Keep draining the child's stdout in the background so it never blocks on a full pipe.
        std::thread([child_out] {
            char buf[512];
            while (fgets(buf, sizeof buf, child_out)) {
            }
            fclose(child_out);
        }).detach();
        return;
    }
    fclose(child_out);
    int status = 0;
    waitpid(pid, &status, 0);
    m_pid = -1;
    throw std::runtime_error("ubuzima-server exited before listening");
}

int ServerProcess::stop() {
    if (m_pid <= 0) return -1;
    ::kill(m_pid, SIGTERM);
    int status = 0;
    waitpid(m_pid, &status, 0);
    m_pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void ServerProcess::signal(int sig) {
    if (m_pid > 0) ::kill(m_pid, sig);
}

ExitResult run_server_to_exit(const std::vector<std::string>& args, int timeout_ms,
                              const std::vector<std::pair<std::string, std::string>>& env, const std::string& input) {
    int out[2], in[2];
    if (pipe(out) != 0 || pipe(in) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(out[1], STDERR_FILENO);
        dup2(in[0], STDIN_FILENO);
        close(out[0]);
        close(out[1]);
        close(in[0]);
        close(in[1]);
        for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
        std::vector<std::string> all = {UBUZIMA_SERVER_BIN};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (std::string& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(UBUZIMA_SERVER_BIN, argv.data());
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    ::signal(SIGPIPE, SIG_IGN);  // a child that exits before reading must not kill the test
    if (!input.empty() && write(in[1], input.data(), input.size()) < 0) {
        // the child closed its stdin early: it will say why on its output
    }
    close(in[1]);
    ExitResult result;
    std::thread reader([&] {
        char buf[512];
        for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) result.output.append(buf, static_cast<std::size_t>(n));
    });
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            reader.join();
            close(out[0]);
            return result;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    reader.join();
    close(out[0]);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

void ServerProcess::kill_hard() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGKILL);
    int status = 0;
    waitpid(m_pid, &status, 0);
    m_pid = -1;
}

nlohmann::json HttpResult::json() const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j;
}

namespace {
size_t collect(char* data, size_t size, size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
}
}  // namespace

HttpResult http_request(const std::string& method, const std::string& url, const std::string& body,
                        const std::string& bearer, const std::string& extra_header, const std::string& ca_file) {
    HttpResult result;
    CURL* curl = curl_easy_init();
    if (!curl) return result;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (!bearer.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + bearer).c_str());
    if (!extra_header.empty()) headers = curl_slist_append(headers, extra_header.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    if (!ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
    if (method != "GET" && method != "HEAD") {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
    if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return result;
}

std::string login_token(const std::string& server_url, const std::string& username, const std::string& password,
                        const std::string& device_id, const std::string& ca_file) {
    nlohmann::json body{{"username", username},
                        {"password", password},
                        {"device_id", device_id.empty() ? "harness-" + username : device_id}};
    HttpResult r = http_request("POST", server_url + "/v1/auth/login", body.dump(), "", "", ca_file);
    INFO(r.body);
    REQUIRE(r.status == 200);
    return r.json().at("access_token").get<std::string>();
}

void create_user(const std::string& server_url, const std::string& admin_token, const std::string& username,
                 const std::string& password, const std::string& role, const std::vector<std::string>& facilities,
                 const std::string& ca_file) {
    nlohmann::json body{{"username", username}, {"password", password}, {"role", role}, {"facilities", facilities}};
    HttpResult r = http_request("POST", server_url + "/v1/admin/users", body.dump(), admin_token, "", ca_file);
    INFO(r.body);
    REQUIRE(r.status == 201);
}

}  // namespace ubuzima::test
