// Ubuzima Sync — MIT licence.
// Internal to storage/: what a PostgreSQL write transaction has written to domain rows and to the
// live feed but not yet sent. A push of N rows would otherwise cost about four round trips per
// row (read, feed delete, feed insert, upsert); buffered, it costs a few statements per batch:
// one upsert per table from a JSON document and one feed upsert from arrays, sent just before
// COMMIT (docs/ARCHITECTURE.md, "PostgreSQL round trips").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "storage/pg/pg_connection.hpp"
#include "storage/server_store.hpp"

namespace ubuzima::server {

/// Owned by one PgTxn; not thread-safe (a transaction runs on one thread).
///
/// Seqs are drawn from srv_feed's sequence once per transaction and handed out locally after
/// that: every writer holds the cluster-wide writer lock for its whole transaction, so nobody
/// else draws from the sequence meanwhile, and flush() moves the sequence past the last seq
/// handed out before the transaction commits.
class PgWriteBuffer {
public:
    /// The next feed seq (one round trip for the first of a transaction, none after).
    Result<std::int64_t> next_seq(pg::Connection& db);
    /// The row's live feed entry moves to `seq` (the last call per row wins).
    void put_feed(const std::string& table, const std::string& row_id, std::int64_t seq,
                  const std::optional<std::string>& scope);
    void put_row(const schema::TableDef& table, const StoredRow& row);
    /// The row as this transaction last wrote it, or null.
    const StoredRow* find_row(const std::string& table, const std::string& id) const;
    bool empty() const { return m_rows.empty() && m_feed.empty() && m_high == m_drawn; }
    /// Sends everything buffered (then the buffer is empty). Called before COMMIT, and before any
    /// read of the feed inside the transaction.
    Status flush(pg::Connection& db);

private:
    struct PendingRow {
        const schema::TableDef* table = nullptr;
        StoredRow row;
    };
    struct PendingFeed {
        std::int64_t seq = 0;
        std::optional<std::string> scope;
    };
    using Key = std::pair<std::string, std::string>;  ///< (table, row id)

    Status flush_rows(pg::Connection& db);
    Status flush_feed(pg::Connection& db);

    std::map<Key, PendingRow> m_rows;
    std::map<Key, PendingFeed> m_feed;
    std::int64_t m_drawn = 0;  ///< the sequence's value as the database knows it (0: not drawn yet)
    std::int64_t m_high = 0;   ///< the last seq handed out
};

}  // namespace ubuzima::server
