// Ubuzima Sync — MIT licence.
// The PostgreSQL implementation of ServerStore: several server processes share one database.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "storage/pg/pg_connection.hpp"
#include "storage/server_store.hpp"

namespace ubuzima::server {

struct PgStoreOptions {
    int pool_size = 8;
    /// How long a request waits for a free connection before it is answered 503 busy.
    int checkout_timeout_ms = 5000;
    pg::ConnectOptions connect;
};

/// PostgreSQL store (docs/ARCHITECTURE.md, "PostgreSQL backend"). Thread-safe: each read or
/// write runs on its own pooled connection. Every write transaction first takes one
/// cluster-wide advisory lock, so writers (of every process) are serialised as on SQLite and
/// feed seqs become visible in the order they are handed out; reads run in parallel, each in one
/// REPEATABLE READ snapshot. Each open is a new node (its own node id), so that two processes
/// never stamp versions with the same one.
class PgStore final : public ServerStore {
public:
    /// Connects to `url` (a libpq connection URI or "key=value" string; "postgresql://" takes
    /// the PG* environment), creates or upgrades the tables under an advisory lock, and registers
    /// a new node. `schema`: the domain schema, null = the built-in one; it must outlive the store.
    static Result<std::unique_ptr<PgStore>> open(const std::string& url, const PgStoreOptions& options = {},
                                                 const schema::Schema* schema = nullptr);

    Status read(const std::function<Status(ReadTxn&)>& fn) override;
    Status write(const std::function<Status(WriteTxn&)>& fn) override;
    sync::NodeId node_id() const override { return m_node; }
    sync::Hlc saved_clock() const override { return m_saved_clock.load(); }
    const std::string& feed_epoch() const override { return m_feed_epoch; }
    StoreStats stats() const override;
    SharedRateBuckets* shared_rate_buckets() override { return m_buckets.get(); }

private:
    PgStore() = default;
    Status init();

    std::unique_ptr<pg::Pool> m_pool;
    std::unique_ptr<SharedRateBuckets> m_buckets;  // on m_pool (pg_rate_buckets.cpp)
    const schema::Schema* m_schema = nullptr;
    sync::NodeId m_node = 0;
    std::atomic<sync::Hlc> m_saved_clock{0};
    std::string m_feed_epoch;  // set in init, never changed after
    std::atomic<std::int64_t> m_writes{0};
    std::atomic<std::int64_t> m_writer_wait_ns{0};
};

}  // namespace ubuzima::server
