// Ubuzima Sync — MIT licence.
// Sync round trips, seeds, conflict resolution and the device's health record.
#include "replication/sync_service.hpp"

#include <algorithm>

#include "audit/audit_log.hpp"
#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

using sync::Value;

namespace {

// A device's record is written at most this often by syncs that push nothing (a write per pull
// would cost an fsync per request).
constexpr std::int64_t kTouchIntervalMs = 60'000;

}  // namespace

SyncService::SyncService(ServerStore& store, const ServerOptions& options, ServerClock& clock)
    : m_store(store),
      m_options(options),
      m_clock(clock),
      m_schema(options.schema ? *options.schema : schema::Schema::builtin()) {}

Status SyncService::apply_seeds() {
    const sync::NodeId node = m_store.node_id();
    return m_store.write([&](WriteTxn& tx) -> Status {
        for (const schema::SeedTable& seed : schema::builtin_seed()) {
            const schema::TableDef* t = m_schema.table(seed.table);
            if (!t) continue;
            for (const Value& r : seed.rows) {
                if (!r.is_object() || !r.contains("id") || !r["id"].is_string()) continue;
                const std::string id = r["id"].get<std::string>();
                auto row = tx.read_row(*t, id);
                if (!row.ok()) return row.status();
                if (*row) continue;  // already there (maybe edited since): never overwrite
                sync::Change ch;
                ch.table = t->name;
                ch.row_id = id;
                ch.version = sync::Version{m_clock.now(), node};
                for (auto it = r.begin(); it != r.end(); ++it)
                    if (it.key() != "id" && t->field(it.key())) ch.fields.emplace(it.key(), it.value());
                if (ch.fields.empty()) continue;
                auto applied = apply_change(tx, *t, std::nullopt, ch, m_options.wall(), "");
                if (!applied.ok()) return applied.status();
            }
        }
        return tx.save_clock(m_clock.last());
    });
}

void SyncService::remember_touch(const AuthUser& user, const sync::SyncRequest& request) {
    std::lock_guard<std::mutex> lock(m_touch_mutex);
    m_touched[user.device_id] = DeviceTouch{m_options.wall(), request.pending, request.rejected};
}

bool SyncService::device_touch_due(const AuthUser& user, const sync::SyncRequest& request) {
    // Remembered per process: the record is for operators, so a second process writing it once
    // more costs nothing that matters.
    const std::int64_t now = m_options.wall();
    std::lock_guard<std::mutex> lock(m_touch_mutex);
    DeviceTouch& last = m_touched[user.device_id];
    if (now - last.at_ms < kTouchIntervalMs && last.pending == request.pending && last.rejected == request.rejected)
        return false;
    last = DeviceTouch{now, request.pending, request.rejected};
    return true;
}

Status SyncService::touch_device(WriteTxn& tx, const AuthUser& user, const sync::SyncRequest& request,
                                 std::int64_t rejected) {
    auto found = tx.find_device(user.device_id);
    if (!found.ok()) return found.status();
    const std::int64_t now = m_options.wall();
    DeviceRecord d = found->value_or(DeviceRecord{user.device_id, user.id, now, now, 0, std::nullopt, "", -1, -1, 0});
    if (*found && rejected == 0 && now - d.last_sync_ms < kTouchIntervalMs && request.pending == d.reported_pending &&
        request.rejected == d.reported_rejected)
        return {};
    d.user_id = user.id;
    d.last_seen_ms = now;
    d.last_sync_ms = now;
    if (request.pending >= 0) d.reported_pending = request.pending;
    if (request.rejected >= 0) d.reported_rejected = request.rejected;
    d.rejected_total += rejected;
    return tx.put_device(d);
}

Result<sync::SyncResponse> SyncService::sync(const AuthUser& user, const sync::SyncRequest& request,
                                             const std::string& address) {
    // The node a device writes and pulls as is the one it logged in with: another device's node
    // would hide this device's writes from that device, and its own from itself.
    if (sync::to_hex16(request.node) != user.device_id)
        return Status(ErrorCode::WrongNode, "node " + sync::to_hex16(request.node) +
                                                " is not the device this login belongs to; log in from this device");
    auto cursor = PullCursor::parse(request.cursor);
    if (!cursor.ok()) return cursor.status();
    // A clock too far ahead is not absorbed: one bad device must not drag the server's time along.
    if (request.clock) m_clock.observe(request.clock, m_options.clock_skew_ms);

    sync::SyncResponse response;
    WrittenRows written;
    if (request.batch) {
        sync::PushResult result;
        const Status pushed_ok = m_store.write([&](WriteTxn& tx) -> Status {
            written.clear();  // a retried transaction starts over
            auto seen = tx.find_batch(user.id, request.batch->id);
            if (!seen.ok()) return seen.status();
            auto pushed = push(tx, user, request, &written);
            if (!pushed.ok()) return pushed.status();
            result = std::move(*pushed);
            const std::int64_t rejected = *seen ? 0 : static_cast<std::int64_t>(result.rejected.size());
            if (!*seen) {
                // Counts and ids only: never the values written.
                AuditEvent e{"push",
                             user.id,
                             user.device_id,
                             request.batch->id,
                             {{"changes", static_cast<std::int64_t>(request.batch->changes.size())},
                              {"applied", result.applied},
                              {"rejected", rejected},
                              {"conflicts", static_cast<std::int64_t>(result.conflicts.size())}},
                             address};
                UBUZIMA_TRY(append_audit(tx, e, m_options.wall()));
            }
            UBUZIMA_TRY(touch_device(tx, user, request, rejected));
            remember_touch(user, request);
            return tx.save_clock(m_clock.last());
        });
        if (!pushed_ok.ok()) return pushed_ok;
        response.push = std::move(result);
    } else if (device_touch_due(user, request)) {
        UBUZIMA_TRY(m_store.write([&](WriteTxn& tx) { return touch_device(tx, user, request, 0); }));
    }
    UBUZIMA_TRY(pull(user, request, response, &written));
    response.server_clock = m_clock.now();
    return response;
}

Result<sync::Version> SyncService::resolve_conflict(const AuthUser& user, std::int64_t conflict_id, const Value& value,
                                                    const std::string& address) {
    sync::Version written;
    const Status done = m_store.write([&](WriteTxn& tx) -> Status {
        auto conflict = tx.find_conflict(conflict_id);
        if (!conflict.ok()) return conflict.status();
        if (!*conflict) return Status(ErrorCode::NotFound, "no conflict " + std::to_string(conflict_id));
        const ConflictRecord& c = **conflict;
        if (c.status != "open") return Status(ErrorCode::Conflict, "conflict " + std::to_string(conflict_id) + " is already resolved");
        const schema::TableDef* t = m_schema.table(c.table);
        if (!t) return Status(ErrorCode::Internal, "conflict names unknown table " + c.table);
        std::map<std::string, Value> fields{{c.field, value}};
        UBUZIMA_TRY(schema::validate_fields(*t, fields, /*creating=*/false));
        auto row = tx.read_row(*t, c.row_id);
        if (!row.ok()) return row.status();
        sync::Version stored;
        if (*row && (*row)->versions.count(c.field)) stored = (*row)->versions.at(c.field);
        // The decision must win over whatever is stored, even a version from a device whose clock
        // runs (within tolerance) ahead of ours.
        m_clock.observe(stored.hlc, INT64_MAX / 2);
        sync::Change ch;
        ch.table = c.table;
        ch.row_id = c.row_id;
        ch.version = sync::Version{m_clock.now(), m_store.node_id()};
        ch.fields = std::move(fields);
        ch.base[c.field] = stored;  // the reviewer saw the stored value: not a new conflict
        auto applied = apply_change(tx, *t, std::move(*row), ch, m_options.wall(), user.id);
        if (!applied.ok()) return applied.status();
        UBUZIMA_TRY(tx.mark_conflict_resolved(conflict_id, user.username, ch.version.to_string(), m_options.wall()));
        written = ch.version;
        AuditEvent e{"conflict_resolved",
                     user.id,
                     user.device_id,
                     std::to_string(conflict_id),
                     {{"table", c.table}, {"row_id", c.row_id}, {"field", c.field}},
                     address};
        UBUZIMA_TRY(append_audit(tx, e, m_options.wall()));
        return tx.save_clock(m_clock.last());
    });
    if (!done.ok()) return done;
    return written;
}

Result<RowsByTable> read_rows_by_table(ReadTxn& tx, const schema::Schema& schema,
                                       std::map<std::string, std::vector<std::string>> wanted) {
    RowsByTable out;
    for (auto& [name, ids] : wanted) {
        const schema::TableDef* table = schema.table(name);
        if (!table) continue;
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        auto rows = tx.read_rows(*table, ids);
        if (!rows.ok()) return rows.status();
        out[name] = std::move(*rows);
    }
    return out;
}

}  // namespace ubuzima::server
