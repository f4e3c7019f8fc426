// Ubuzima Sync — MIT licence.
// Online backup through SQLite's backup API, restore with a new feed epoch, and the epoch bump
// on its own (after an operator restored the files or a PostgreSQL database by other means).
#include "cli/store_commands.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "audit/audit_log.hpp"
#include "cli/console_exit.hpp"
#include "ubuzima/sync/hlc.hpp"
#include "storage/open_store.hpp"
#include "storage/sqlite_store.hpp"

namespace ubuzima::server {

namespace fs = std::filesystem;

namespace {

struct SqliteCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

int usage(const std::string& why) { return console_usage(why); }
int fail(const Status& s) { return console_fail(s); }

Result<SqliteHandle> open_file(const std::string& path, int flags) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    SqliteHandle db(raw);
    if (rc != SQLITE_OK) return Status(ErrorCode::IoError, "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
    sqlite3_busy_timeout(raw, 10'000);
    return db;
}

Status exec(sqlite3* db, const std::string& sql, const std::string& what) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return {};
    const std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    return Status(ErrorCode::IoError, what + ": " + message);
}

/// The first column of the first row of `sql` as text ("" when no row).
Result<std::string> scalar(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
        return Status(ErrorCode::Corrupt, std::string("not a ubuzima server store: ") + sqlite3_errmsg(db));
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(raw, sqlite3_finalize);
    const int rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(raw, 0);
        return std::string(text ? reinterpret_cast<const char*>(text) : "");
    }
    if (rc == SQLITE_DONE) return std::string();
    return Status(ErrorCode::IoError, sqlite3_errmsg(db));
}

/// A store file is sound (quick_check) and is a server store (it has a node id).
Status check_store_file(sqlite3* db, const std::string& path) {
    auto check = scalar(db, "PRAGMA quick_check");
    if (!check.ok()) return check.status();
    if (*check != "ok") return Status(ErrorCode::Corrupt, path + " fails its integrity check: " + *check);
    auto node = scalar(db, "SELECT value FROM srv_meta WHERE key = 'node_id'");
    if (!node.ok()) return Status(ErrorCode::Corrupt, path + " is not a ubuzima server store");
    if (node->empty()) return Status(ErrorCode::Corrupt, path + " is not a ubuzima server store (no node id)");
    return {};
}

Status fsync_path(const std::string& path, bool directory) {
    const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return Status(ErrorCode::IoError, "cannot open " + path + " to flush it");
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return Status(ErrorCode::IoError, "cannot flush " + path + " to disk");
    return {};
}

std::string parent_of(const std::string& path) {
    const fs::path p = fs::absolute(path).parent_path();
    return p.empty() ? "." : p.string();
}

std::string store_path(const std::string& data_dir) { return (fs::path(data_dir) / "ubuzima.db").string(); }

struct Args {
    std::map<std::string, std::string> values;
    std::vector<std::string> positional;
};

bool parse(const std::vector<std::string>& args, Args& out, std::string& error) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i].rfind("--", 0) != 0) {
            out.positional.push_back(args[i]);
            continue;
        }
        if (i + 1 >= args.size()) {
            error = args[i] + " needs a value";
            return false;
        }
        out.values[args[i]] = args[i + 1];
        ++i;
    }
    return true;
}

// The copy is made in one backup step: in WAL mode that holds only a read transaction, so the
// server keeps accepting pushes meanwhile (a stepwise copy restarts whenever another process
// writes, and might never finish under load). It goes to a temporary name and becomes FILE only
// once complete, checked and on disk.
int backup(const std::string& data_dir, const std::string& to) {
    const std::string source_path = store_path(data_dir);
    std::error_code ec;
    if (!fs::exists(source_path, ec)) return fail(Status(ErrorCode::NotFound, "no server store in " + data_dir));
    if (fs::exists(to, ec)) return fail(Status(ErrorCode::Conflict, to + " exists: give a new file name"));
    const std::string partial = to + ".partial-" + std::to_string(::getpid());
    auto cleanup = [&](const Status& s) {
        fs::remove(partial, ec);
        fs::remove(partial + "-journal", ec);
        return fail(s);
    };
    auto source = open_file(source_path, SQLITE_OPEN_READWRITE);
    if (!source.ok()) return fail(source.status());
    {
        auto target = open_file(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        if (!target.ok()) return cleanup(target.status());
        sqlite3_backup* b = sqlite3_backup_init(target->get(), "main", source->get(), "main");
        if (!b) return cleanup(Status(ErrorCode::IoError, std::string("backup: ") + sqlite3_errmsg(target->get())));
        int rc = SQLITE_OK;
        for (int attempt = 0; attempt < 100; ++attempt) {
            rc = sqlite3_backup_step(b, -1);
            if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
            sqlite3_sleep(100);
        }
        sqlite3_backup_finish(b);
        if (rc != SQLITE_DONE)
            return cleanup(Status(ErrorCode::IoError, std::string("backup of ") + source_path + ": " + sqlite3_errstr(rc)));
        // One self-contained file: no -wal beside it to forget when it is copied off the machine.
        if (Status s = exec(target->get(), "PRAGMA journal_mode=DELETE", "backup"); !s.ok()) return cleanup(s);
        if (Status s = check_store_file(target->get(), partial); !s.ok()) return cleanup(s);
    }
    if (Status s = fsync_path(partial, false); !s.ok()) return cleanup(s);
    fs::rename(partial, to, ec);
    if (ec) return cleanup(Status(ErrorCode::IoError, "cannot rename the backup to " + to + ": " + ec.message()));
    if (Status s = fsync_path(parent_of(to), true); !s.ok()) return fail(s);

    // The audit head of the copy, for the operator to keep with it.
    auto store = SqliteStore::open(to);
    if (!store.ok()) return fail(store.status());
    auto verdict = verify_audit(**store, std::nullopt);
    if (!verdict.ok()) return fail(verdict.status());
    std::printf("backup of %s written to %s (%lld bytes)\n%s\n", data_dir.c_str(), to.c_str(),
                static_cast<long long>(fs::file_size(to, ec)), verdict->head.to_string().c_str());
    return 0;
}

std::string utc_stamp() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

Status move_if_exists(const std::string& from, const std::string& to) {
    std::error_code ec;
    if (!fs::exists(from, ec)) return {};
    fs::rename(from, to, ec);
    if (ec) return Status(ErrorCode::IoError, "cannot move " + from + " aside: " + ec.message());
    return {};
}

/// Starts a new feed epoch in `store` (and audits it); returns the epoch.
Result<std::string> bump_epoch(ServerStore& store, const std::string& reason) {
    std::string epoch;
    const Status s = store.write([&](WriteTxn& tx) -> Status {
        auto bumped = tx.bump_feed_epoch();
        if (!bumped.ok()) return bumped.status();
        epoch = *bumped;
        AuditEvent e{"feed_epoch_bumped", "", "console", epoch, {{"reason", reason}}, ""};
        return append_audit(tx, e, sync::system_wall_ms());
    });
    if (!s.ok()) return s;
    return epoch;
}

Result<std::string> bump_epoch_at(const std::string& sqlite_path, const std::string& reason) {
    auto store = SqliteStore::open(sqlite_path);
    if (!store.ok()) return store.status();
    return bump_epoch(**store, reason);
}

// The store being replaced is moved aside, never deleted: whatever it held after the backup was
// taken is still there for an operator to look at.
int restore(const std::string& data_dir, const std::string& from) {
    {
        auto source = open_file(from, SQLITE_OPEN_READONLY);
        if (!source.ok()) return fail(source.status());
        if (Status s = check_store_file(source->get(), from); !s.ok()) return fail(s);
    }
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    auto lock = DataDirLock::acquire(data_dir);
    if (!lock.ok()) return fail(lock.status());

    const std::string target = store_path(data_dir);
    const std::string incoming = target + ".restoring";
    fs::remove(incoming, ec);
    fs::copy_file(from, incoming, ec);
    if (ec) return fail(Status(ErrorCode::IoError, "cannot copy " + from + ": " + ec.message()));
    if (Status s = fsync_path(incoming, false); !s.ok()) return fail(s);
    std::string kept;
    if (fs::exists(target, ec)) {
        kept = (fs::path(data_dir) / ("ubuzima-before-restore-" + utc_stamp() + ".db")).string();
        for (const char* suffix : {"", "-wal", "-shm"})
            if (Status s = move_if_exists(target + suffix, kept + suffix); !s.ok()) return fail(s);
    }
    fs::rename(incoming, target, ec);
    if (ec) return fail(Status(ErrorCode::IoError, "cannot put the restored store in place: " + ec.message()));
    if (Status s = fsync_path(data_dir, true); !s.ok()) return fail(s);

    auto epoch = bump_epoch_at(target, "restore");
    if (!epoch.ok()) return fail(epoch.status());
    std::printf("restored %s into %s\n", from.c_str(), data_dir.c_str());
    if (!kept.empty()) std::printf("the store it replaced is kept as %s\n", kept.c_str());
    std::printf("feed epoch now %s: every device pulls everything again at its next sync\n", epoch->c_str());
    return 0;
}

}  // namespace

Result<DataDirLock> DataDirLock::acquire(const std::string& data_dir) {
    const std::string path = (fs::path(data_dir) / "server.lock").string();
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Status(ErrorCode::IoError, "cannot open " + path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return Status(ErrorCode::Busy, "a server is running on " + data_dir + " (" + path + " is locked): stop it first");
    }
    return DataDirLock(fd);
}

DataDirLock::~DataDirLock() {
    if (m_fd >= 0) ::close(m_fd);  // closing the descriptor releases the flock
}

bool is_store_command(const std::string& command) {
    return command == "backup" || command == "restore" || command == "epoch";
}

int run_store_command(const std::string& command, const std::vector<std::string>& args) {
    Args a;
    std::string error;
    if (!parse(args, a, error)) return usage(error);
    const auto value = [&](const std::string& name) {
        auto it = a.values.find(name);
        return it == a.values.end() ? std::string() : it->second;
    };
    const std::string data = value("--data");
    if (command == "epoch") {
        // After a PostgreSQL restore (pg_restore, point-in-time recovery) as well as a SQLite one.
        if (a.positional != std::vector<std::string>{"bump"} || data.empty() == value("--db").empty())
            return usage("epoch takes: bump (--data DIR | --db URL)");
        std::optional<DataDirLock> lock;
        if (!data.empty()) {
            std::error_code ec;
            if (!fs::exists(store_path(data), ec)) return fail(Status(ErrorCode::NotFound, "no server store in " + data));
            auto acquired = DataDirLock::acquire(data);
            if (!acquired.ok()) return fail(acquired.status());
            lock.emplace(std::move(*acquired));
        }
        const std::optional<std::string> db = value("--db").empty() ? std::nullopt : std::optional(value("--db"));
        auto store = open_server_store(data, db, 1, nullptr, true);
        if (!store.ok()) return fail(store.status());
        auto epoch = bump_epoch(**store, "operator");
        if (!epoch.ok()) return fail(epoch.status());
        std::printf("feed epoch now %s: every device pulls everything again at its next sync%s\n", epoch->c_str(),
                    db ? " (restart every server process on this database)" : "");
        return 0;
    }
    if (data.empty()) return usage(command + " needs --data DIR (on PostgreSQL: pg_dump and pg_restore, docs/OPERATIONS.md)");
    if (command == "backup") {
        if (value("--to").empty() || !a.positional.empty()) return usage("backup takes --data DIR --to FILE");
        return backup(data, value("--to"));
    }
    if (value("--from").empty() || !a.positional.empty()) return usage("restore takes --from FILE --data DIR");
    return restore(data, value("--from"));
}

}  // namespace ubuzima::server
