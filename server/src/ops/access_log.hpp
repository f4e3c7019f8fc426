// Ubuzima Sync — MIT licence.
// One JSON line per request (docs/OPERATIONS.md, "Metrics and logs"). The record holds only
// what an operator needs to trace a request: never tokens, passwords, query strings or field
// values, so the log can be kept and shipped without becoming a second copy of health data.
// Thread-safe: each line goes out in one write() under a mutex, so lines never interleave.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server::ops {

struct AccessRecord {
    std::int64_t ts_ms = 0;        ///< when the request arrived, Unix ms (UTC)
    std::string method;            ///< normalised (GET, POST, ..., or OTHER)
    std::string route;             ///< the route pattern, or "unmatched"; never the raw path
    int status = 0;
    double duration_ms = 0;
    std::optional<std::string> user;    ///< user id when the request authenticated (or logged in)
    std::optional<std::string> device;  ///< the device id of that token or login
    std::int64_t rows_in = -1;     ///< sync: changes received; -1 = not a sync (written as null)
    std::int64_t rows_out = -1;    ///< sync: changes sent
    std::int64_t bytes_in = 0;     ///< request body as received (maybe gzipped)
    std::int64_t bytes_out = -1;   ///< response body as sent; -1 = streamed, unknown
    std::string address;           ///< peer address; "" = in-process (written as null)
};

/// The record as one JSON object without a newline (invalid UTF-8 is replaced, never thrown).
std::string access_line(const AccessRecord& record);
/// "2026-12-01T16:30:48.123Z"
std::string iso8601_utc_ms(std::int64_t unix_ms);

class AccessLog {
public:
    /// `target`: "-" or "stderr" = standard error, "off" = nothing, else a file opened for append
    /// (created 0640). IoError when the file cannot be opened.
    static Result<std::unique_ptr<AccessLog>> open(const std::string& target);
    ~AccessLog();
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    bool enabled() const { return m_fd >= 0; }
    /// Writes one line. Never throws; a failed write is dropped (a full disk must not fail requests).
    void write(const AccessRecord& record) noexcept;

private:
    AccessLog(int fd, bool owned) : m_fd(fd), m_owned(owned) {}
    int m_fd;
    bool m_owned;
    std::mutex m_mutex;
};

}  // namespace ubuzima::server::ops
