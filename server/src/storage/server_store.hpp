// Ubuzima Sync — MIT licence.
// The narrow storage interface of the server. Everything that must hold together (a push and its
// audit record, a refresh and the token it retires, a failed login and its throttle counter)
// happens inside one transaction of it, so correctness never rests on a process-local mutex:
// SQLite (sqlite_store.hpp) and PostgreSQL (pg_store.hpp) implement it.
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
    /// seq of the row's last move to another facility (0: never moved). Devices that saw the
    /// move away dropped their copy, so a pull after it sends them every field, their own too.
    std::int64_t moved_seq = 0;
    /// field → the concurrent version its current value overwrote (and journalled); sent with
    /// pulls so that the device whose write lost can keep it in its own journal.
    std::map<std::string, sync::Version> overwrote;
    std::optional<std::string> scope;          ///< facility id, or none for unscoped tables
    std::string author;                        ///< user id of the last accepted write ("" = the server)
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
    std::string password_hash;  ///< passwords.hpp format; never the password
    std::string role;
    std::vector<std::string> facilities;
    std::int64_t created_at_ms = 0;
    std::int64_t updated_at_ms = 0;
    bool disabled = false;
};

/// A token, stored by the SHA-256 of its value (the store never sees a token itself).
struct TokenRecord {
    enum class Kind { Access, Refresh };
    std::string hash;
    Kind kind = Kind::Access;
    std::string family;       ///< the login it descends from
    std::string user_id;
    std::string device_id;
    /// Refresh: the refresh token it was exchanged for ("" for the login's). Access: the refresh
    /// token issued with it (its sibling).
    std::string parent;
    std::int64_t issued_at_ms = 0;
    std::int64_t expires_at_ms = 0;
    std::optional<std::int64_t> used_at_ms;  ///< refresh: when it was exchanged
    bool regranted = false;                  ///< refresh: its one repeat after a lost answer is spent
    std::optional<std::int64_t> revoked_at_ms;
};

/// One device login: every token rotated from it. Revoking it ends all of them at once.
struct FamilyRecord {
    std::string id;
    std::string user_id;
    std::string device_id;
    std::int64_t created_at_ms = 0;
    std::int64_t expires_at_ms = 0;  ///< absolute end: then only a password login helps
    std::optional<std::int64_t> revoked_at_ms;
    std::string revoke_reason;
};

struct DeviceRecord {
    std::string id;       ///< the device id given at login (the library sends its node id)
    std::string user_id;  ///< the user of its latest login
    std::int64_t first_seen_ms = 0;
    std::int64_t last_seen_ms = 0;
    std::int64_t last_sync_ms = 0;  ///< 0 = never synced
    std::optional<std::int64_t> revoked_at_ms;
    std::string revoked_by;          ///< user id of the admin
    std::int64_t reported_pending = -1;   ///< what the device last said of itself; -1 = unknown
    std::int64_t reported_rejected = -1;
    std::int64_t rejected_total = 0;      ///< changes the server refused to it, ever
};

/// Failed-login counter of one key ("user:<name>" or "addr:<ip>").
struct ThrottleRecord {
    std::string key;
    std::int64_t failures = 0;
    std::int64_t last_failure_ms = 0;
    std::int64_t blocked_until_ms = 0;
};

/// One record of the hash-chained audit log (audit/audit_log.hpp computes the hashes).
struct AuditRecord {
    std::int64_t seq = 0;  ///< 1, 2, 3, ... without gaps
    std::int64_t ts_ms = 0;
    std::string actor_user;    ///< user id, "" when unknown (a failed login of no such user)
    std::string actor_device;
    std::string action;        ///< "login", "login_failed", "push", ...
    std::string object;        ///< what it acted on (a user id, a device id, a batch id)
    std::string outcome;       ///< a flat JSON object of counts and codes, never field values
    std::string address;       ///< client IP address
    std::string prev_hash;     ///< hex; 64 zeros for the first record
    std::string hash;          ///< hex SHA-256
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
    std::optional<std::string> scope;  ///< the row's facility when journalled (for scoped review)
};

/// Reads inside one consistent snapshot.
class ReadTxn {
public:
    virtual ~ReadTxn() = default;

    // ---- domain rows and the feed ----
    /// The row, or nullopt when it was never written (tombstoned rows are returned).
    virtual Result<std::optional<StoredRow>> read_row(const schema::TableDef& table, const std::string& id) = 0;
    /// The rows of `ids` that were ever written, by id (a page of a pull, a batch of a push).
    /// A backend whose reads are round trips answers with one statement; the default asks
    /// read_row for each.
    virtual Result<std::map<std::string, StoredRow>> read_rows(const schema::TableDef& table,
                                                               const std::vector<std::string>& ids) {
        std::map<std::string, StoredRow> out;
        for (const std::string& id : ids) {
            auto row = read_row(table, id);
            if (!row.ok()) return row.status();
            if (*row) out.emplace(id, std::move(**row));
        }
        return out;
    }
    /// Feed entries with seq > after, ordered by seq, at most `limit`. `facilities` null = every
    /// entry; otherwise only unscoped entries and entries scoped to one of them (an exit entry is
    /// scoped to the facility the row left).
    virtual Result<std::vector<FeedEntry>> feed_after(std::int64_t after, const std::vector<std::string>* facilities,
                                                      int limit) = 0;
    /// The highest seq the feed has handed out and this snapshot sees (0 for an empty feed).
    virtual Result<std::int64_t> feed_head() = 0;
    /// Conflicts with id > after_id, oldest first; status "" = all.
    virtual Result<std::vector<ConflictRecord>> list_conflicts(const std::string& status, std::int64_t after_id,
                                                               int limit) = 0;

    // ---- users, tokens, devices ----
    virtual Result<std::int64_t> count_users() = 0;
    virtual Result<std::optional<UserRecord>> find_user_by_name(const std::string& username) = 0;
    virtual Result<std::optional<UserRecord>> find_user_by_id(const std::string& id) = 0;
    /// Ordered by username.
    virtual Result<std::vector<UserRecord>> list_users() = 0;
    virtual Result<std::optional<TokenRecord>> find_token(const std::string& hash) = 0;
    virtual Result<std::optional<FamilyRecord>> find_family(const std::string& id) = 0;
    /// The newest unrevoked refresh token of a family, if any.
    virtual Result<std::optional<TokenRecord>> newest_refresh(const std::string& family) = 0;
    virtual Result<std::optional<DeviceRecord>> find_device(const std::string& id) = 0;
    /// Ordered by last_seen, newest first.
    virtual Result<std::vector<DeviceRecord>> list_devices() = 0;
    virtual Result<std::optional<ThrottleRecord>> find_throttle(const std::string& key) = 0;

    // ---- audit ----
    virtual Result<std::optional<AuditRecord>> last_audit() = 0;
    /// Records with seq > after, in seq order, at most `limit`.
    virtual Result<std::vector<AuditRecord>> audit_after(std::int64_t after, int limit) = 0;
};

/// Writes inside one transaction; everything commits together or not at all.
class WriteTxn : public ReadTxn {
public:
    /// Hands out the next seq and moves the row's feed entry to it. Seqs must become visible in
    /// the order they are handed out (a reader advancing its cursor past an uncommitted seq would
    /// lose it forever): SQLite gets that from its single writer; a PostgreSQL backend must
    /// serialise seq allocation with commit rather than use a bare SEQUENCE.
    virtual Result<std::int64_t> append_feed(const std::string& table, const std::string& row_id,
                                             const std::optional<std::string>& scope) = 0;
    /// The row moved from facility `from` to `to` (either may be none): records, at the next seq,
    /// that it left `from` (replacing an older exit from there) and drops its exit from `to`,
    /// where it is back. Called only for moves, so ordinary writes pay nothing for exits.
    virtual Status record_move(const std::string& table, const std::string& row_id,
                               const std::optional<std::string>& from, const std::optional<std::string>& to) = 0;
    /// Inserts or replaces the whole row. A backend may hold the write until the commit (or the
    /// next feed read); read_row and read_rows in the same transaction see it either way.
    virtual Status write_row(const schema::TableDef& table, const StoredRow& row) = 0;
    /// The stored push result (JSON) of a batch this user already sent.
    virtual Result<std::optional<std::string>> find_batch(const std::string& user_id, const std::string& batch_id) = 0;
    /// Keeps a batch's push result so a replay is answered without applying anything (until
    /// prune_batches removes it; a replay after that merges again, which versions make a no-op).
    virtual Status save_batch(const std::string& user_id, const std::string& batch_id, const std::string& result_json,
                              std::int64_t now_ms) = 0;
    virtual Result<std::int64_t> insert_conflict(const ConflictRecord& conflict) = 0;
    virtual Result<std::optional<ConflictRecord>> find_conflict(std::int64_t id) = 0;
    virtual Status mark_conflict_resolved(std::int64_t id, const std::string& by, const std::string& version,
                                          std::int64_t now_ms) = 0;
    /// Retention (docs/OPERATIONS.md): deletes batch results saved before `before_ms`; returns
    /// how many. Batches saved by a release that kept no time count as saved at the upgrade.
    virtual Result<std::int64_t> prune_batches(std::int64_t before_ms) = 0;
    /// Deletes conflicts resolved before `before_ms` (open ones always stay); returns how many.
    virtual Result<std::int64_t> prune_resolved_conflicts(std::int64_t before_ms) = 0;
    /// Starts a new feed epoch (after a restore): from the store's next open, every device's
    /// cursor is stale and it pulls everything again (idempotent by version). Returns the epoch.
    virtual Result<std::string> bump_feed_epoch() = 0;
    /// Persists the server HLC so it stays monotonic across restarts.
    virtual Status save_clock(sync::Hlc last) = 0;

    /// Conflict when the username is taken.
    virtual Status insert_user(const UserRecord& user) = 0;
    /// Replaces every column but id and created_at.
    virtual Status update_user(const UserRecord& user) = 0;
    virtual Status insert_family(const FamilyRecord& family) = 0;
    virtual Status insert_token(const TokenRecord& token) = 0;
    /// Marks an unused, unrevoked refresh token used at `now`. False when another request already
    /// did (or it is revoked): the one statement is the race guard, across processes too.
    virtual Result<bool> claim_refresh(const std::string& hash, std::int64_t now_ms) = 0;
    virtual Status set_regranted(const std::string& hash) = 0;
    /// Revokes one token and everything issued from it (its children and their siblings).
    virtual Status revoke_descendants(const std::string& hash, std::int64_t now_ms) = 0;
    /// Revokes a family and every token in it.
    virtual Status revoke_family(const std::string& family, std::int64_t now_ms, const std::string& reason) = 0;
    /// Revokes every family of a device (device_id "" = of every device of the user, user_id "" =
    /// of every user of the device). Returns how many families were live.
    virtual Result<std::int64_t> revoke_families(const std::string& user_id, const std::string& device_id,
                                                 std::int64_t now_ms, const std::string& reason) = 0;
    /// Deletes tokens and families that expired before `before_ms` (kept a while after expiry so
    /// that a late request is answered "expired" or "revoked", not "unknown").
    virtual Status purge_expired_tokens(std::int64_t before_ms) = 0;
    virtual Status put_device(const DeviceRecord& device) = 0;
    virtual Status put_throttle(const ThrottleRecord& record) = 0;
    virtual Status delete_throttle(const std::string& key) = 0;
    /// Appends a record whose seq and hashes the caller computed from last_audit() in this
    /// same transaction.
    virtual Status insert_audit(const AuditRecord& record) = 0;
};

/// What a store can tell the metrics about itself (docs/OPERATIONS.md, "Metric families").
struct StoreStats {
    std::string backend;                 ///< "sqlite" or "postgresql"
    int pool_size = 0;                   ///< connections this process may open (SQLite: 1)
    int pool_open = 0;
    int pool_in_use = 0;                 ///< leased to requests right now
    std::int64_t pool_timeouts = 0;      ///< requests answered busy for want of a connection
    std::int64_t writes = 0;             ///< write transactions begun
    double writer_wait_seconds = 0;      ///< total time writes waited for the writer lock
};

/// Token buckets that every server process on one store shares (api/rate_limiter.hpp asks them
/// after its own in-memory bucket agreed). Thread-safe.
class SharedRateBuckets {
public:
    virtual ~SharedRateBuckets() = default;
    /// Takes one token from `key`'s bucket (`per_s` refill, `burst` capacity) at `now_ms`:
    /// 0 when taken, else the ms until one is available.
    virtual Result<std::int64_t> take(const std::string& key, double per_s, double burst, std::int64_t now_ms) = 0;
    /// Forgets buckets untouched since `before_ms` (they would be full again); returns how many.
    virtual Result<std::int64_t> prune(std::int64_t before_ms) = 0;
};

class ServerStore {
public:
    virtual ~ServerStore() = default;

    /// Runs `fn` in a read snapshot.
    virtual Status read(const std::function<Status(ReadTxn&)>& fn) = 0;
    /// Runs `fn` in a write transaction that commits when it returns OK and rolls back otherwise.
    virtual Status write(const std::function<Status(WriteTxn&)>& fn) = 0;

    /// The server's node id (random, created with the store).
    virtual sync::NodeId node_id() const = 0;
    /// The last persisted server HLC.
    virtual sync::Hlc saved_clock() const = 0;
    /// "" for a store made by this release. Another value when every device must pull
    /// everything again once (it goes into the pull cursor's scope fingerprint): a store upgraded
    /// past a fix that only a full pull repairs on the devices.
    virtual const std::string& feed_epoch() const = 0;
    /// Counters for the metrics; cheap, thread-safe.
    virtual StoreStats stats() const = 0;
    /// Rate-limit buckets shared with the other processes on this store, or null when the store
    /// has one process only (SQLite: the data directory is locked to it) and memory is enough.
    virtual SharedRateBuckets* shared_rate_buckets() { return nullptr; }
};

}  // namespace ubuzima::server
