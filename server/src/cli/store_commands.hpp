// Ubuzima Sync — MIT licence.
// `ubuzima-server backup|restore|epoch ...`: copies of the embedded store for an operator at the
// console (docs/OPERATIONS.md), and the data-directory lock that keeps a restore away from a
// running server.
#pragma once

#include <string>
#include <vector>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// An exclusive lock on DIR/server.lock (flock), held by a serving process for its whole life:
/// a second server on the same directory, or a restore under a running one, is refused instead
/// of sharing the file behind the first one's back. Released by the destructor (or the kernel,
/// when the process dies). Not copyable.
class DataDirLock {
public:
    /// Takes the lock without waiting; Busy when another process holds it.
    static Result<DataDirLock> acquire(const std::string& data_dir);
    DataDirLock(DataDirLock&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
    DataDirLock& operator=(DataDirLock&&) = delete;
    DataDirLock(const DataDirLock&) = delete;
    ~DataDirLock();

private:
    explicit DataDirLock(int fd) : m_fd(fd) {}
    int m_fd = -1;
};

bool is_store_command(const std::string& command);
/// Runs it; returns the process exit status (0 done, 1 failed, 2 usage).
int run_store_command(const std::string& command, const std::vector<std::string>& args);

}  // namespace ubuzima::server
