// Ubuzima Sync — MIT licence.
// The embedded SQLite implementation of ServerStore: one connection, serialised by a mutex.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "storage/server_store.hpp"
#include "storage/sqlite_txn.hpp"
#include "ubuzima/schema/sqlite.hpp"

namespace ubuzima::server {

/// SQLite store in WAL mode with synchronous=FULL: an acknowledged push survives power loss.
/// Thread-safe: every call takes the connection mutex (one writer at a time is what SQLite
/// allows anyway; readers queue behind it, which is fine at the scale of one ministry).
/// Several processes must not share one file (the mutex is per process): that is what the
/// PostgreSQL backend is for.
class SqliteStore final : public ServerStore {
public:
    /// Opens (creating if needed) the database file and its tables, upgrading an older store in
    /// place. A new store gets node id `new_node` (0 = random; deterministic simulations inject
    /// one); an existing one keeps its own. `vfs`: a registered SQLite VFS name, empty = the
    /// default (tests simulate power loss with one). `schema`: the domain schema, null = the
    /// built-in one; it must outlive the store.
    static Result<std::unique_ptr<SqliteStore>> open(const std::string& path, sync::NodeId new_node = 0,
                                                     const std::string& vfs = "", const schema::Schema* schema = nullptr);

    Status read(const std::function<Status(ReadTxn&)>& fn) override;
    Status write(const std::function<Status(WriteTxn&)>& fn) override;
    sync::NodeId node_id() const override { return m_node; }
    sync::Hlc saved_clock() const override;
    const std::string& feed_epoch() const override { return m_feed_epoch; }
    StoreStats stats() const override;

private:
    SqliteStore() = default;
    Status init(sync::NodeId new_node);

    mutable std::mutex m_mutex;
    sql::Database m_db;
    const schema::Schema* m_schema = nullptr;
    std::unordered_map<std::string, TableSql> m_tables;
    sync::NodeId m_node = 0;
    sync::Hlc m_saved_clock = 0;
    std::string m_feed_epoch;  // set in init, never changed after
    std::atomic<int> m_in_use{0};
    std::atomic<std::int64_t> m_writes{0};
    std::atomic<std::int64_t> m_writer_wait_ns{0};
};

}  // namespace ubuzima::server
