// Ubuzima Sync — MIT licence.
// The embedded SQLite implementation of Store: one connection, serialised by a mutex.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "storage/store.hpp"
#include "ubuzima/schema/sqlite.hpp"

namespace ubuzima::server {

/// SQL text prepared once per domain table (the statements themselves live in the cache of the
/// connection).
struct TableSql {
    std::string select_row;
    std::string upsert_row;
};

/// SQLite store in WAL mode with synchronous=FULL: an acknowledged push survives power loss.
/// Thread-safe: every call takes the connection mutex (one writer at a time is what SQLite
/// allows anyway; readers queue behind it, which is fine at the scale of one ministry).
class SqliteStore final : public Store {
public:
    /// Opens (creating if needed) the database file and its tables. A new store gets node id
    /// `new_node` (0 = random; deterministic simulations inject one); an existing one keeps its own.
    /// `vfs`: a registered SQLite VFS name, empty = the default (tests simulate power loss with one).
    static Result<std::unique_ptr<SqliteStore>> open(const std::string& path, sync::NodeId new_node = 0,
                                                     const std::string& vfs = "");

    Status read(const std::function<Status(ReadTxn&)>& fn) override;
    Status write(const std::function<Status(WriteTxn&)>& fn) override;
    sync::NodeId node_id() const override { return m_node; }
    sync::Hlc saved_clock() const override;

    Result<std::int64_t> count_users() override;
    Status create_user(const UserRecord& user) override;
    Result<std::optional<UserRecord>> find_user_by_name(const std::string& username) override;
    Result<std::optional<UserRecord>> find_user_by_id(const std::string& id) override;

    Status put_token(const std::string& token_hash, const TokenRecord& token) override;
    Result<std::optional<TokenRecord>> find_token(const std::string& token_hash) override;
    Status set_token_kind(const std::string& token_hash, const std::string& kind) override;
    Status delete_token(const std::string& token_hash) override;
    Status delete_token_children(const std::string& parent_hash) override;
    Status purge_expired_tokens(std::int64_t now_ms) override;

    Result<std::vector<ConflictRecord>> list_conflicts(const std::string& status) override;

private:
    SqliteStore() = default;
    Status init(sync::NodeId new_node);
    Result<std::optional<UserRecord>> find_user(const char* where, const std::string& key);

    mutable std::mutex m_mutex;
    sql::Database m_db;
    std::unordered_map<std::string, TableSql> m_tables;
    sync::NodeId m_node = 0;
    sync::Hlc m_saved_clock = 0;
};

/// The hidden bookkeeping columns of every domain table (see docs: server storage).
const std::vector<std::string>& server_extra_columns();
/// Builds the per-table SQL from the schema.
TableSql make_table_sql(const schema::TableDef& table);
/// SELECT list of srv_conflicts read by conflict_from_row().
inline constexpr const char* kConflictSelect =
    "SELECT id, tbl, row_id, field, kept_value, kept_version, lost_value, lost_version, status, created_at, "
    "resolved_by, resolved_version FROM srv_conflicts";
ConflictRecord conflict_from_row(const sql::Statement& statement);
/// The transaction object handed to Store::read/write callbacks.
std::unique_ptr<WriteTxn> make_sqlite_txn(sql::Database& db, const std::unordered_map<std::string, TableSql>& tables,
                                          sync::Hlc* saved_clock);

}  // namespace ubuzima::server
