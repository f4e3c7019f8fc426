// Ubuzima Sync — MIT licence.
// Internal to storage/: the PostgreSQL transaction object, split over pg_rows.cpp (domain rows,
// feed, batches, conflicts), pg_auth.cpp (users, tokens, devices, throttling) and pg_audit.cpp
// (the audit log), as the SQLite one is.
#pragma once

#include <optional>
#include <string>

#include "storage/pg/pg_connection.hpp"
#include "storage/pg_write_buffer.hpp"
#include "storage/server_store.hpp"

namespace ubuzima::server {

/// The hidden bookkeeping columns of every domain table in PostgreSQL DDL (the same names as
/// server_extra_columns() on SQLite).
const std::vector<std::string>& pg_extra_columns();
/// Their names alone, in the same order (the SELECT and upsert column lists).
const std::vector<std::string>& pg_extra_column_names();
/// The PostgreSQL column type of a schema field type.
const char* pg_type(schema::FieldType type);

/// Lives inside one PgStore::read/write call, on the connection leased for it.
class PgTxn final : public WriteTxn {
public:
    PgTxn(pg::Connection& db, const schema::Schema& schema, sync::NodeId node) : m_db(db), m_schema(schema), m_node(node) {}

    /// The clock save_clock() recorded in this transaction, if any (the store applies it after
    /// the commit).
    std::optional<sync::Hlc> saved_clock() const { return m_clock; }
    /// The transaction's connection (tests stall a transaction with it).
    pg::Connection& connection() { return m_db; }
    /// Sends the buffered row and feed writes; PgStore::write calls it before COMMIT.
    Status flush() { return m_buffer.flush(m_db); }

    // pg_rows.cpp
    Result<std::optional<StoredRow>> read_row(const schema::TableDef& table, const std::string& id) override;
    Result<std::map<std::string, StoredRow>> read_rows(const schema::TableDef& table,
                                                       const std::vector<std::string>& ids) override;
    Result<std::int64_t> feed_head() override;
    Result<std::vector<FeedEntry>> feed_after(std::int64_t after, const std::vector<std::string>* facilities,
                                              int limit) override;
    Result<std::vector<ConflictRecord>> list_conflicts(const std::string& status, std::int64_t after_id,
                                                       int limit) override;
    Result<std::int64_t> append_feed(const std::string& table, const std::string& row_id,
                                     const std::optional<std::string>& scope) override;
    Status record_move(const std::string& table, const std::string& row_id, const std::optional<std::string>& from,
                       const std::optional<std::string>& to) override;
    Status write_row(const schema::TableDef& table, const StoredRow& row) override;
    Result<std::optional<std::string>> find_batch(const std::string& user_id, const std::string& batch_id) override;
    Status save_batch(const std::string& user_id, const std::string& batch_id, const std::string& result_json,
                      std::int64_t now_ms) override;
    Result<std::int64_t> insert_conflict(const ConflictRecord& conflict) override;
    Result<std::optional<ConflictRecord>> find_conflict(std::int64_t id) override;
    Status mark_conflict_resolved(std::int64_t id, const std::string& by, const std::string& version,
                                  std::int64_t now_ms) override;
    Result<std::int64_t> prune_batches(std::int64_t before_ms) override;
    Result<std::int64_t> prune_resolved_conflicts(std::int64_t before_ms) override;
    Result<std::string> bump_feed_epoch() override;
    Status save_clock(sync::Hlc last) override;

    // pg_auth.cpp
    Result<std::int64_t> count_users() override;
    Result<std::optional<UserRecord>> find_user_by_name(const std::string& username) override;
    Result<std::optional<UserRecord>> find_user_by_id(const std::string& id) override;
    Result<std::vector<UserRecord>> list_users() override;
    Result<std::optional<TokenRecord>> find_token(const std::string& hash) override;
    Result<std::optional<FamilyRecord>> find_family(const std::string& id) override;
    Result<std::optional<TokenRecord>> newest_refresh(const std::string& family) override;
    Result<std::optional<DeviceRecord>> find_device(const std::string& id) override;
    Result<std::vector<DeviceRecord>> list_devices() override;
    Result<std::optional<ThrottleRecord>> find_throttle(const std::string& key) override;
    Status insert_user(const UserRecord& user) override;
    Status update_user(const UserRecord& user) override;
    Status insert_family(const FamilyRecord& family) override;
    Status insert_token(const TokenRecord& token) override;
    Result<bool> claim_refresh(const std::string& hash, std::int64_t now_ms) override;
    Status set_regranted(const std::string& hash) override;
    Status revoke_descendants(const std::string& hash, std::int64_t now_ms) override;
    Status revoke_family(const std::string& family, std::int64_t now_ms, const std::string& reason) override;
    Result<std::int64_t> revoke_families(const std::string& user_id, const std::string& device_id, std::int64_t now_ms,
                                         const std::string& reason) override;
    Status purge_expired_tokens(std::int64_t before_ms) override;
    Status put_device(const DeviceRecord& device) override;
    Status put_throttle(const ThrottleRecord& record) override;
    Status delete_throttle(const std::string& key) override;

    // pg_audit.cpp
    Result<std::optional<AuditRecord>> last_audit() override;
    Result<std::vector<AuditRecord>> audit_after(std::int64_t after, int limit) override;
    Status insert_audit(const AuditRecord& record) override;

private:
    Status run(const std::string& sql, const pg::Params& params = {});
    Result<std::optional<UserRecord>> find_user(const char* where, const std::string& key);
    Result<std::optional<TokenRecord>> token_where(const char* where, const std::string& key);

    pg::Connection& m_db;
    const schema::Schema& m_schema;
    sync::NodeId m_node;
    std::optional<sync::Hlc> m_clock;
    PgWriteBuffer m_buffer;
};

/// Rate-limit buckets in srv_rate, shared by every process on the database (pg_rate_buckets.cpp).
std::unique_ptr<SharedRateBuckets> make_pg_rate_buckets(pg::Pool& pool);

/// The DDL of the bookkeeping tables (idempotent).
Status pg_create_bookkeeping(pg::Connection& db);
/// Creates the schema's domain tables that are missing and adds the columns existing ones lack.
Status pg_ensure_tables(pg::Connection& db, const schema::Schema& schema);

}  // namespace ubuzima::server
