// Ubuzima Sync — MIT licence.
// Shared bench helpers: the realistic record generator, timing, peak RSS and JSON-line output.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ubuzima::bench {

/// One generated record: what an assessor or a focal point captures at one facility.
struct Record {
    std::string table;
    std::string id;
    nlohmann::json fields;
};

/// Record `index` of a deterministic mix (1 assessment per 50 records, findings, needs, need
/// status events), 0.5–1 KB of JSON each, at `facility`. Text is drawn from a vocabulary so that
/// compression sees realistic, not trivially repetitive, content.
Record make_record(std::int64_t index, const std::string& facility, const std::string& id_prefix);

/// Peak resident set of this process in KB (VmHWM), or of `pid` when given.
long peak_rss_kb(int pid = 0);

/// Seconds since an arbitrary epoch (steady clock).
inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Prints one result as a JSON line on stdout (run.sh collects them) and flushes.
void emit(const nlohmann::json& result);

/// Minimal blocking HTTP POST/GET with libcurl for setup steps (users, tokens): status + body.
struct SimpleResponse {
    long status = 0;
    std::string body;
};
SimpleResponse http_post(const std::string& url, const std::string& body, const std::string& bearer = "");
/// The CA file http_post() verifies https:// servers with (empty: the system's). Call before
/// any thread starts.
void set_ca_file(const std::string& path);

/// Admin login + user creation (idempotent: an existing user is fine). Throws std::runtime_error.
std::string admin_token(const std::string& url, const std::string& admin_password);
void ensure_user(const std::string& url, const std::string& admin_token, const std::string& username,
                 const std::string& password, const std::string& role, const std::vector<std::string>& facilities);

}  // namespace ubuzima::bench
