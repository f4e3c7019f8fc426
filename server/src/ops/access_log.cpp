// Ubuzima Sync — MIT licence.
// The JSON access log.
#include "ops/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

namespace ubuzima::server::ops {

std::string iso8601_utc_ms(std::int64_t unix_ms) {
    std::int64_t secs = unix_ms / 1000;
    std::int64_t ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];  // room for any int the compiler can imagine in each field
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

std::string access_line(const AccessRecord& r) {
    using nlohmann::ordered_json;  // fields in a fixed, readable order
    auto opt = [](const std::optional<std::string>& s) { return s ? ordered_json(*s) : ordered_json(); };
    auto count = [](std::int64_t n) { return n < 0 ? ordered_json() : ordered_json(n); };
    ordered_json j;
    j["ts"] = iso8601_utc_ms(r.ts_ms);
    j["method"] = r.method;
    j["route"] = r.route;
    j["status"] = r.status;
    j["duration_ms"] = std::round(r.duration_ms * 1000) / 1000;  // microsecond resolution is plenty
    j["user"] = opt(r.user);
    j["device"] = opt(r.device);
    j["rows_in"] = count(r.rows_in);
    j["rows_out"] = count(r.rows_out);
    j["bytes_in"] = r.bytes_in;
    j["bytes_out"] = count(r.bytes_out);
    j["address"] = r.address.empty() ? ordered_json() : ordered_json(r.address);
    // Device ids come from clients: bad UTF-8 is replaced rather than thrown at the edge.
    return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& target) {
    if (target == "off") return std::unique_ptr<AccessLog>(new AccessLog(-1, false));
    if (target == "-" || target == "stderr") return std::unique_ptr<AccessLog>(new AccessLog(STDERR_FILENO, false));
    const int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return Status(ErrorCode::IoError, "cannot open the access log " + target + ": " + std::strerror(errno));
    return std::unique_ptr<AccessLog>(new AccessLog(fd, true));
}

AccessLog::~AccessLog() {
    if (m_owned && m_fd >= 0) ::close(m_fd);
}

void AccessLog::write(const AccessRecord& record) noexcept {
    if (m_fd < 0) return;
    try {
        std::string line = access_line(record);
        line += '\n';
        std::lock_guard<std::mutex> lock(m_mutex);
        // One write() per line: with O_APPEND (and on a pipe, under PIPE_BUF) no other writer's
        // bytes land inside it; the mutex keeps this process's threads from splitting it on a
        // short write.
        std::size_t done = 0;
        while (done < line.size()) {
            const ssize_t n = ::write(m_fd, line.data() + done, line.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            done += static_cast<std::size_t>(n);
        }
    } catch (...) {
        // out of memory building the line: drop it
    }
}

}  // namespace ubuzima::server::ops
