// Ubuzima Sync — MIT licence.
// The power-loss VFS: shims around the default VFS's files (see power_loss_vfs.hpp).
#include "power_loss_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace ubuzima::test {

namespace {

struct ShimFile {
    sqlite3_file base;  // must stay first: SQLite sees a ShimFile as a sqlite3_file
    sqlite3_file* real;
    PowerLossVfs* owner;
    const char* path;   // owned by SQLite for as long as the file is open
};

struct VfsData {
    sqlite3_vfs* real;
    PowerLossVfs* owner;
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }
ShimFile* shim_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }

int shim_close(sqlite3_file* f) {
    sqlite3_file* real = real_of(f);
    return real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
}

int shim_read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
    return real_of(f)->pMethods->xRead(real_of(f), buf, amt, off);
}

/// Records what the operation about to change [offset, offset + length) will overwrite: the
/// bytes there now (those past the end of the file do not exist yet) and the file's size.
int remember(ShimFile* s, bool truncate, sqlite3_int64 offset, sqlite3_int64 length) {
    PowerLossVfs::Undo undo;
    undo.truncate = truncate;
    undo.offset = offset;
    sqlite3_int64 size = 0;
    if (int rc = s->real->pMethods->xFileSize(s->real, &size); rc != SQLITE_OK) return rc;
    undo.old_size = size;
    if (offset < size) {
        const sqlite3_int64 n = std::min<sqlite3_int64>(length, size - offset);
        undo.old_bytes.resize(static_cast<std::size_t>(n));
        const int rc = s->real->pMethods->xRead(s->real, undo.old_bytes.data(), static_cast<int>(n), offset);
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
    }
    if (s->path) s->owner->record(s->path, std::move(undo));
    return SQLITE_OK;
}

int shim_write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
    ShimFile* s = shim_of(f);
    if (!s->owner->power_on()) return SQLITE_IOERR_WRITE;
    if (int rc = remember(s, false, off, amt); rc != SQLITE_OK) return rc;
    return s->real->pMethods->xWrite(s->real, buf, amt, off);
}

int shim_truncate(sqlite3_file* f, sqlite3_int64 size) {
    ShimFile* s = shim_of(f);
    if (!s->owner->power_on()) return SQLITE_IOERR_TRUNCATE;
    if (int rc = remember(s, true, size, INT32_MAX); rc != SQLITE_OK) return rc;
    return s->real->pMethods->xTruncate(s->real, size);
}

int shim_sync(sqlite3_file* f, int flags) {
    ShimFile* s = shim_of(f);
    if (!s->owner->power_on()) return SQLITE_IOERR_FSYNC;
    const int rc = s->real->pMethods->xSync(s->real, flags);
    if (rc == SQLITE_OK && s->path) s->owner->synced(s->path);
    return rc;
}

int shim_file_size(sqlite3_file* f, sqlite3_int64* size) { return real_of(f)->pMethods->xFileSize(real_of(f), size); }
int shim_lock(sqlite3_file* f, int level) { return real_of(f)->pMethods->xLock(real_of(f), level); }
int shim_unlock(sqlite3_file* f, int level) { return real_of(f)->pMethods->xUnlock(real_of(f), level); }
int shim_check_reserved(sqlite3_file* f, int* out) { return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out); }
int shim_file_control(sqlite3_file* f, int op, void* arg) {
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int shim_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int shim_device_characteristics(sqlite3_file* f) {
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int shim_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return real_of(f)->pMethods->xShmMap(real_of(f), page, size, extend, out);
}
int shim_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void shim_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int shim_shm_unmap(sqlite3_file* f, int del) { return real_of(f)->pMethods->xShmUnmap(real_of(f), del); }

// Version 2 (shared memory, no mmap fetch): SQLite then never maps the database file, so every
// change goes through xWrite and is recorded.
const sqlite3_io_methods kShimMethods = {
    2,           shim_close,      shim_read,          shim_write,          shim_truncate,
    shim_sync,   shim_file_size,  shim_lock,          shim_unlock,         shim_check_reserved,
    shim_file_control, shim_sector_size, shim_device_characteristics, shim_shm_map, shim_shm_lock,
    shim_shm_barrier, shim_shm_unmap, nullptr, nullptr};

VfsData* data_of(sqlite3_vfs* vfs) { return static_cast<VfsData*>(vfs->pAppData); }

int vfs_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    VfsData* d = data_of(vfs);
    ShimFile* s = shim_of(file);
    s->base.pMethods = nullptr;
    s->real = reinterpret_cast<sqlite3_file*>(s + 1);
    s->owner = d->owner;
    s->path = name;
    const int rc = d->real->xOpen(d->real, name, s->real, flags, out_flags);
    if (rc == SQLITE_OK) s->base.pMethods = &kShimMethods;
    return rc;
}

int vfs_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    VfsData* d = data_of(vfs);
    if (!d->owner->power_on()) return SQLITE_IOERR_DELETE;
    d->owner->synced(name);  // nothing of it is left to rewind
    return d->real->xDelete(d->real, name, sync_dir);
}
int vfs_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
    return data_of(vfs)->real->xAccess(data_of(vfs)->real, name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
    return data_of(vfs)->real->xFullPathname(data_of(vfs)->real, name, n, out);
}
int vfs_randomness(sqlite3_vfs* vfs, int n, char* out) { return data_of(vfs)->real->xRandomness(data_of(vfs)->real, n, out); }
int vfs_sleep(sqlite3_vfs* vfs, int us) { return data_of(vfs)->real->xSleep(data_of(vfs)->real, us); }
int vfs_current_time(sqlite3_vfs* vfs, double* out) { return data_of(vfs)->real->xCurrentTime(data_of(vfs)->real, out); }
int vfs_last_error(sqlite3_vfs* vfs, int n, char* out) {
    return data_of(vfs)->real->xGetLastError(data_of(vfs)->real, n, out);
}
int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    return data_of(vfs)->real->xCurrentTimeInt64(data_of(vfs)->real, out);
}

void write_back(const std::string& path, std::int64_t offset, const std::string& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY);
    if (fd < 0) throw std::runtime_error("power-loss restore: cannot open " + path);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (done != bytes.size()) throw std::runtime_error("power-loss restore: short write to " + path);
}

void resize(const std::string& path, std::int64_t size) {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0)
        throw std::runtime_error("power-loss restore: cannot resize " + path);
}

}  // namespace

PowerLossVfs::PowerLossVfs(std::string name) : m_name(std::move(name)) {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (!real) throw std::runtime_error("no default SQLite VFS");
    auto* vfs = new sqlite3_vfs{};
    vfs->iVersion = 2;
    vfs->szOsFile = static_cast<int>(sizeof(ShimFile)) + real->szOsFile;
    vfs->mxPathname = real->mxPathname;
    vfs->zName = m_name.c_str();
    vfs->pAppData = new VfsData{real, this};
    vfs->xOpen = vfs_open;
    vfs->xDelete = vfs_delete;
    vfs->xAccess = vfs_access;
    vfs->xFullPathname = vfs_full_pathname;
    vfs->xRandomness = vfs_randomness;
    vfs->xSleep = vfs_sleep;
    vfs->xCurrentTime = vfs_current_time;
    vfs->xGetLastError = vfs_last_error;
    vfs->xCurrentTimeInt64 = vfs_current_time_int64;
    if (sqlite3_vfs_register(vfs, 0) != SQLITE_OK) {
        delete static_cast<VfsData*>(vfs->pAppData);
        delete vfs;
        throw std::runtime_error("cannot register the power-loss VFS");
    }
    m_vfs = vfs;
}

PowerLossVfs::~PowerLossVfs() {
    sqlite3_vfs_unregister(m_vfs);
    delete static_cast<VfsData*>(m_vfs->pAppData);
    delete m_vfs;
}

void PowerLossVfs::cut_after(std::int64_t n) { m_cut_at = m_ops + n; }

bool PowerLossVfs::power_on() {
    if (m_cut) return false;
    ++m_ops;
    if (m_cut_at >= 0 && m_ops >= m_cut_at) m_cut = true;
    return !m_cut;
}

std::int64_t PowerLossVfs::restore_after_cut(std::mt19937_64& rng, bool keep_none) {
    std::int64_t undone = 0;
    for (auto& [path, log] : m_unsynced) {
        if (::access(path.c_str(), F_OK) != 0) continue;  // never reached the disk's directory
        // The disk flushed the first `kept` writes (in order) and lost the rest.
        const std::size_t kept = keep_none ? 0 : std::uniform_int_distribution<std::size_t>(0, log.size())(rng);
        for (std::size_t i = log.size(); i-- > kept;) {
            const Undo& u = log[i];
            if (u.truncate) {
                resize(path, u.old_size);
                write_back(path, u.offset, u.old_bytes);
            } else {
                // Later operations are undone already: the file is as this write left it.
                write_back(path, u.offset, u.old_bytes);
                resize(path, u.old_size);
            }
            ++undone;
        }
    }
    m_unsynced.clear();
    m_cut = false;
    m_cut_at = -1;
    return undone;
}

}  // namespace ubuzima::test
