// Ubuzima Sync — MIT licence.
// The sync engine of the server: push (validate, merge, journal), pull (feed pages), seeds and
// conflict resolution, on top of the Store interface.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "auth/auth_service.hpp"
#include "config.hpp"
#include "storage/store.hpp"
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
/// pages (`more` true). Rows whose feed entry moved past `pos` while the device paged still
/// carry fields changed after `since`, so those are sent too: with a plain seq cursor a row
/// changed again during paging would lose its earlier fields.
struct PullCursor {
    std::int64_t since = 0;
    std::int64_t pos = 0;

    static Result<PullCursor> parse(const std::optional<std::string>& text);
    std::string to_string() const;
};

/// Thread-safe: the store serialises writes, the clock has its own lock.
class SyncService {
public:
    SyncService(Store& store, const ServerOptions& options, ServerClock& clock)
        : m_store(store), m_options(options), m_clock(clock) {}

    /// Inserts every built-in seed row missing from the store, as a server write.
    Status apply_seeds();
    /// One POST /v1/sync round trip: push (if any), then one pull page.
    Result<sync::SyncResponse> sync(const AuthUser& user, const sync::SyncRequest& request);
    /// Writes a reviewer's chosen value as a new server version and closes the conflict.
    /// Returns the new version. NotFound, Conflict (already resolved), InvalidValue.
    Result<sync::Version> resolve_conflict(const AuthUser& user, std::int64_t conflict_id, const sync::Value& value);

private:
    /// Field versions and seqs of the rows a push wrote, by (table, id): the pull that answers
    /// the same request skips those that hold nothing for the device, without reading them back.
    struct WrittenRow {
        std::int64_t seq = 0;
        std::map<std::string, sync::Version> versions;
        std::map<std::string, std::int64_t> seqs;
    };
    using WrittenRows = std::map<std::pair<std::string, std::string>, WrittenRow>;

    Result<sync::PushResult> push(WriteTxn& tx, const AuthUser& user, const sync::PushBatch& batch,
                                  WrittenRows* written = nullptr);
    Status pull(const AuthUser& user, const sync::SyncRequest& request, sync::SyncResponse& response,
                const WrittenRows* written = nullptr);

    Store& m_store;
    const ServerOptions& m_options;
    ServerClock& m_clock;
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
Result<ApplyOutcome> apply_change(WriteTxn& tx, const schema::TableDef& table, std::optional<StoredRow> row,
                                  const sync::Change& change, std::int64_t now_ms);

/// The facility a row belongs to (nullopt for tables without scope).
std::optional<std::string> row_scope(const schema::TableDef& table, const StoredRow& row);

}  // namespace ubuzima::server
