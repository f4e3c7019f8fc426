// Ubuzima Sync — MIT licence.
// The sync engine of the server: push (authorize, validate, merge, journal), pull (feed pages,
// scoped), seeds and conflict review, on top of the ServerStore interface.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "auth/roles.hpp"
#include "config.hpp"
#include "storage/server_store.hpp"
#include "ubuzima/sync/hlc.hpp"
#include "ubuzima/sync/protocol.hpp"

namespace ubuzima::server {

/// The server's hybrid logical clock, shared by all request threads.
class ServerClock {
public:
    ServerClock(sync::WallClock wall, sync::Hlc last) : m_clock(std::move(wall), last) {}
    sync::Hlc now() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_clock.now();
    }
    bool observe(sync::Hlc remote, std::int64_t max_ahead_ms) {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_clock.observe(remote, max_ahead_ms);
    }
    sync::Hlc last() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_clock.last();
    }

private:
    std::mutex m_mutex;
    sync::HybridClock m_clock;
};

/// A pull position. On the wire: "<pos>" once a pull has caught up, "<since>:<pos>" while it
/// pages (`more` true), each followed by "/<scope>" (what the user could see when the cursor was
/// made) and "+" while a full pull pages. Rows whose feed entry moved past `pos` while the device paged still carry fields
/// changed after `since`, so those are sent too: with a plain seq cursor a row changed again
/// during paging would lose its earlier fields. When the user's scope has changed since, the
/// pull starts over (see sync::ScopeNotice): a cursor cannot know which old rows became visible.
struct PullCursor {
    std::int64_t since = 0;
    std::int64_t pos = 0;
    std::string scope;  ///< fingerprint; "" = none given (cursors from before scopes could change)
    bool full = false;  ///< a pull restarted by a scope change: send the device's own writes too

    static Result<PullCursor> parse(const std::optional<std::string>& text);
    std::string to_string() const;
};

/// What a pull cursor remembers of the scope it was made for: "all" for users who see every
/// facility, else a short hash of their sorted facilities; with a feed epoch (ServerStore::
/// feed_epoch), a hash of both, so a new epoch restarts every cursor once.
std::string scope_fingerprint(const AuthUser& user, const std::string& feed_epoch);

/// Thread-safe: the store serialises writes, the clock has its own lock.
class SyncService {
public:
    SyncService(ServerStore& store, const ServerOptions& options, ServerClock& clock);

    /// Inserts every built-in seed row missing from the store, as a server write.
    Status apply_seeds();
    /// One POST /v1/sync round trip: push (if any), then one pull page. The request's node must
    /// be the caller's device (WrongNode otherwise). `address` goes to the audit log.
    Result<sync::SyncResponse> sync(const AuthUser& user, const sync::SyncRequest& request, const std::string& address);
    /// Writes a reviewer's chosen value as a new server version and closes the conflict.
    /// Returns the new version. NotFound, Conflict (already resolved), InvalidValue.
    Result<sync::Version> resolve_conflict(const AuthUser& user, std::int64_t conflict_id, const sync::Value& value,
                                           const std::string& address);

    const schema::Schema& schema() const { return m_schema; }

private:
    /// Field versions and seqs of the rows a push wrote, by (table, id): the pull that answers
    /// the same request skips those that hold nothing for the device, without reading them back.
    struct WrittenRow {
        std::int64_t seq = 0;
        std::int64_t moved_seq = 0;
        std::map<std::string, sync::Version> versions;
        std::map<std::string, std::int64_t> seqs;
    };
    using WrittenRows = std::map<std::pair<std::string, std::string>, WrittenRow>;

    Result<sync::PushResult> push(WriteTxn& tx, const AuthUser& user, const sync::SyncRequest& request,
                                  WrittenRows* written);
    Status pull(const AuthUser& user, const sync::SyncRequest& request, sync::SyncResponse& response,
                const WrittenRows* written);
    /// Keeps the device's record current: last sync, what it reports of itself, rejections.
    Status touch_device(WriteTxn& tx, const AuthUser& user, const sync::SyncRequest& request, std::int64_t rejected);
    bool device_touch_due(const AuthUser& user, const sync::SyncRequest& request);
    void remember_touch(const AuthUser& user, const sync::SyncRequest& request);

    ServerStore& m_store;
    const ServerOptions& m_options;
    ServerClock& m_clock;
    const schema::Schema& m_schema;

    struct DeviceTouch {
        std::int64_t at_ms = INT64_MIN / 2;
        std::int64_t pending = -1;
        std::int64_t rejected = -1;
    };
    std::mutex m_touch_mutex;
    std::unordered_map<std::string, DeviceTouch> m_touched;  ///< device id -> last record write
};

// ---- shared by the push path, seeds and conflict resolution (push.cpp) ----

/// Conflicts found while merging one change.
struct ApplyOutcome {
    bool wrote = false;
    std::vector<sync::ConflictReport> conflicts;
    StoredRow row;  ///< the row as written (when `wrote`)
};

/// Merges `change` field by field into `row` (nullopt = new row) with sync::merge_field, writes
/// the row once with one new seq for everything applied, and journals every losing write.
/// `author`: the user id behind the change ("" for the server's own writes).
/// Rows by table, then by id.
using RowsByTable = std::map<std::string, std::map<std::string, StoredRow>>;
/// Reads the rows `wanted` names (table → ids; duplicates and unknown tables are ignored) with
/// one read_rows call per table: a push's batch, a pull's page.
Result<RowsByTable> read_rows_by_table(ReadTxn& tx, const schema::Schema& schema,
                                       std::map<std::string, std::vector<std::string>> wanted);

Result<ApplyOutcome> apply_change(WriteTxn& tx, const schema::TableDef& table, std::optional<StoredRow> row,
                                  const sync::Change& change, std::int64_t now_ms, const std::string& author);

/// The facility a row belongs to (nullopt for tables without scope).
std::optional<std::string> row_scope(const schema::TableDef& table, const StoredRow& row);

}  // namespace ubuzima::server
