// Ubuzima Sync — MIT licence.
// The narrow storage interface of the server; SQLite implements it now, PostgreSQL can later.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ubuzima/schema/schema.hpp"
#include "ubuzima/sync/protocol.hpp"
#include "ubuzima/sync/status.hpp"
#include "ubuzima/sync/version.hpp"

namespace ubuzima::server {

/// One domain row with its per-field bookkeeping. Only fields that were ever written appear in
/// `values`/`versions`/`seqs`; the tombstone is the field "_deleted" (a bool).
struct StoredRow {
    std::string id;
    std::map<std::string, sync::Value> values;
    std::map<std::string, sync::Version> versions;
    std::map<std::string, std::int64_t> seqs;  ///< server seq of each field's last change
    std::int64_t seq = 0;                      ///< seq of the row's last change
    /// field → the concurrent version its current value overwrote (and journalled); sent with
    /// pulls so that the device whose write lost can keep it in its own journal.
    std::map<std::string, sync::Version> overwrote;
    std::optional<std::string> scope;          ///< facility id, or none for unscoped tables
};

/// One entry of the change feed. A live entry (one per row) says "this row changed at seq"; an
/// exit entry (one per row and facility it left) says "this row left `scope` at seq", so that
/// devices which see only that facility drop their copy instead of keeping it stale forever.
struct FeedEntry {
    std::int64_t seq = 0;
    std::string table;
    std::string row_id;
    bool gone = false;  ///< an exit entry
};

struct UserRecord {
    std::string id;
    std::string username;
    std::string password_hash;  ///< crypto.hpp format; never the password
    std::string role;
    std::vector<std::string> facilities;
    std::int64_t created_at_ms = 0;
};

struct TokenRecord {
    /// "access", "refresh", or "rotated": a refresh token already exchanged, kept until the
    /// device shows it received the exchange (see AuthService::refresh).
    std::string kind;
    std::string user_id;
    std::string device_id;
    std::int64_t expires_at_ms = 0;
    std::string parent;  ///< hash of the refresh token this grant was exchanged for; "" after a login
};

struct ConflictRecord {
    std::int64_t id = 0;
    std::string table;
    std::string row_id;
    std::string field;
    sync::VersionedValue kept;
    sync::VersionedValue lost;
    std::string status = "open";  ///< "open" | "resolved"
    std::int64_t created_at_ms = 0;
    std::string resolved_by;
    std::string resolved_version;
};

/// Reads inside one consistent snapshot.
class ReadTxn {
public:
    virtual ~ReadTxn() = default;
    /// The row, or nullopt when it was never written (tombstoned rows are returned).
    virtual Result<std::optional<StoredRow>> read_row(const schema::TableDef& table, const std::string& id) = 0;
    /// Feed entries with seq > after, ordered by seq, at most `limit`. `facilities` null = every
    /// entry; otherwise only unscoped entries and entries scoped to one of them (an exit entry is
    /// scoped to the facility the row left).
    virtual Result<std::vector<FeedEntry>> feed_after(std::int64_t after, const std::vector<std::string>* facilities,
                                                      int limit) = 0;
};

/// Writes inside one transaction; everything commits together or not at all.
class WriteTxn : public ReadTxn {
public:
    /// Hands out the next seq and moves the row's feed entry to it. Seqs must become visible in
    /// the order they are handed out (a reader advancing its cursor past an uncommitted seq would
    /// lose it forever): SQLite gets that from its single writer; a PostgreSQL backend must
    /// serialise seq allocation with commit (e.g. a table lock) rather than use a bare SEQUENCE.
    virtual Result<std::int64_t> append_feed(const std::string& table, const std::string& row_id,
                                             const std::optional<std::string>& scope) = 0;
    /// The row moved from facility `from` to `to` (either may be none): records, at the next seq,
    /// that it left `from` (replacing an older exit from there) and drops its exit from `to`,
    /// where it is back. Called only for moves, so ordinary writes pay nothing for exits.
    virtual Status record_move(const std::string& table, const std::string& row_id,
                               const std::optional<std::string>& from, const std::optional<std::string>& to) = 0;
    /// Inserts or replaces the whole row (one statement per row write).
    virtual Status write_row(const schema::TableDef& table, const StoredRow& row) = 0;
    /// The stored push result (JSON) of a batch this user already sent.
    virtual Result<std::optional<std::string>> find_batch(const std::string& user_id, const std::string& batch_id) = 0;
    virtual Status save_batch(const std::string& user_id, const std::string& batch_id, const std::string& result_json) = 0;
    virtual Result<std::int64_t> insert_conflict(const ConflictRecord& conflict) = 0;
    virtual Result<std::optional<ConflictRecord>> find_conflict(std::int64_t id) = 0;
    virtual Status mark_conflict_resolved(std::int64_t id, const std::string& by, const std::string& version) = 0;
    /// Persists the server HLC so it stays monotonic across restarts.
    virtual Status save_clock(sync::Hlc last) = 0;
};

class Store {
public:
    virtual ~Store() = default;

    /// Runs `fn` in a read snapshot.
    virtual Status read(const std::function<Status(ReadTxn&)>& fn) = 0;
    /// Runs `fn` in a write transaction that commits when it returns OK and rolls back otherwise.
    virtual Status write(const std::function<Status(WriteTxn&)>& fn) = 0;

    /// The server's node id (random, created with the store).
    virtual sync::NodeId node_id() const = 0;
    /// The last persisted server HLC.
    virtual sync::Hlc saved_clock() const = 0;

    virtual Result<std::int64_t> count_users() = 0;
    /// Conflict when the username is taken.
    virtual Status create_user(const UserRecord& user) = 0;
    virtual Result<std::optional<UserRecord>> find_user_by_name(const std::string& username) = 0;
    virtual Result<std::optional<UserRecord>> find_user_by_id(const std::string& id) = 0;

    /// Tokens are keyed by their SHA-256 (hex); the store never sees a token itself.
    virtual Status put_token(const std::string& token_hash, const TokenRecord& token) = 0;
    virtual Result<std::optional<TokenRecord>> find_token(const std::string& token_hash) = 0;
    virtual Status set_token_kind(const std::string& token_hash, const std::string& kind) = 0;
    virtual Status delete_token(const std::string& token_hash) = 0;
    /// Deletes every token whose parent is `parent_hash` (one grant).
    virtual Status delete_token_children(const std::string& parent_hash) = 0;
    virtual Status purge_expired_tokens(std::int64_t now_ms) = 0;

    /// status: "open", "resolved" or "" for all; oldest first.
    virtual Result<std::vector<ConflictRecord>> list_conflicts(const std::string& status) = 0;
};

}  // namespace ubuzima::server
