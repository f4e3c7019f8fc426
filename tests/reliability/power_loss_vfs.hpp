// Ubuzima Sync — MIT licence.
// A SQLite VFS that simulates power loss: it passes I/O to the default VFS, remembers what every
// write since the file's last xSync overwrote, and at a chosen I/O operation "cuts the power":
// that operation and every later one fails. restore_after_cut() then rewinds each file to its
// last synced state plus a random prefix of its later writes (the disk may have flushed some of
// them, in order), which is what the file holds after the machine comes back. The shared-memory
// WAL index is volatile and is deleted. Not thread-safe: one connection, one thread.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

struct sqlite3_vfs;

namespace ubuzima::test {

class PowerLossVfs {
public:
    /// Registers the VFS under `name` (not as the default).
    explicit PowerLossVfs(std::string name);
    ~PowerLossVfs();
    PowerLossVfs(const PowerLossVfs&) = delete;
    PowerLossVfs& operator=(const PowerLossVfs&) = delete;

    const std::string& name() const { return m_name; }

    /// The power goes out at the `n`-th write, truncate or sync from now (1 = the next one).
    void cut_after(std::int64_t n);
    bool cut() const { return m_cut; }
    /// Writes, truncates and syncs performed since the VFS was created.
    std::int64_t operations() const { return m_ops; }

    /// After every connection is closed: rewinds the files as described above. `keep_none`
    /// drops every unsynced write (the harshest case) instead of a random prefix. Returns the
    /// number of writes undone. Then the VFS works again, with nothing pending.
    std::int64_t restore_after_cut(std::mt19937_64& rng, bool keep_none);

    // ---- called by the VFS shims ----
    struct Undo {
        bool truncate = false;
        std::int64_t offset = 0;
        std::string old_bytes;       ///< what the write overwrote (within the old size)
        std::int64_t old_size = 0;   ///< file size before the operation
    };
    /// Counts an operation; false when the power is (now) out.
    bool power_on();
    void record(const std::string& path, Undo undo) { m_unsynced[path].push_back(std::move(undo)); }
    void synced(const std::string& path) { m_unsynced.erase(path); }

private:
    std::string m_name;
    sqlite3_vfs* m_vfs = nullptr;
    std::int64_t m_ops = 0;
    std::int64_t m_cut_at = -1;
    bool m_cut = false;
    std::map<std::string, std::vector<Undo>> m_unsynced;
};

}  // namespace ubuzima::test
