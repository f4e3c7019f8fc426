// Ubuzima Sync — MIT licence.
// Building push batches from the outbox and applying a sync response (push result + pulled page).
#include "sync/session.hpp"

#include "ubuzima/sync/ids.hpp"
#include "ubuzima/sync/merge.hpp"

namespace ubuzima::detail {

namespace {

Result<std::optional<std::string>> pending_batch_id(sql::Database& db) {
    return db.query_text("SELECT batch_id FROM _outbox WHERE batch_id IS NOT NULL ORDER BY seq LIMIT 1");
}

Result<OutgoingBatch> load_batch(Store& store, const std::string& batch_id) {
    auto stmt = store.db().cached("SELECT seq, tbl, row_id, version, fields, base FROM _outbox WHERE batch_id = ? ORDER BY seq");
    if (!stmt.ok()) return stmt.status();
    sql::Statement& s = **stmt;
    s.bind(1, batch_id);
    OutgoingBatch batch{batch_id, {}, {}};
    for (;;) {
        auto has = s.step();
        if (!has.ok()) {
            s.reset();
            return has.status();
        }
        if (!*has) break;
        sync::Change change;
        change.table = s.column_text(1);
        change.row_id = s.column_text(2);
        auto version = sync::Version::parse(s.column_text(3));
        auto entry_fields = store.outbox_entry_fields(change.table, change.row_id, s.column_text(3), s.column_text(4));
        if (!entry_fields.ok()) {
            s.reset();
            return entry_fields.status();
        }
        json fields = std::move(*entry_fields);
        const json base = json::parse(s.column_text(5), nullptr, false);
        if (!version || !fields.is_object() || !base.is_object()) {
            const std::int64_t seq = s.column_int(0);  // before reset() drops the row
            s.reset();
            return Status(ErrorCode::Corrupt, "outbox entry " + std::to_string(seq) + " is unreadable");
        }
        change.version = *version;
        for (auto& [name, value] : fields.get_ref<json::object_t&>()) change.fields.emplace(name, std::move(value));
        for (const auto& [name, value] : base.items())
            if (value.is_string())
                if (auto b = sync::Version::parse(value.get<std::string>())) change.base[name] = *b;
        batch.seqs.push_back(s.column_int(0));
        batch.changes.push_back(std::move(change));
    }
    s.reset();
    return batch;
}

std::string wire(ErrorCode code) { return std::string(wire_code(code)); }

}  // namespace

Result<std::optional<OutgoingBatch>> prepare_batch(Store& store, int batch_size) {
    sql::Database& db = store.db();
    auto resend = pending_batch_id(db);
    if (!resend.ok()) return resend.status();
    std::string id;
    if (*resend) {
        id = **resend;  // sent before, answer never processed: replay it under the same id
    } else {
        // The id is committed before the request leaves, so a crash or a lost answer can only
        // lead to a replay of the same batch, never to a second batch with the same changes.
        id = sync::new_uuid_v7(store.clock().wall_ms());
        auto tx = sql::Transaction::begin(db);
        if (!tx.ok()) return tx.status();
        auto stmt = db.cached(
            "UPDATE _outbox SET batch_id = ? WHERE seq IN "
            "(SELECT seq FROM _outbox WHERE batch_id IS NULL ORDER BY seq LIMIT ?)");
        if (!stmt.ok()) return stmt.status();
        UBUZIMA_TRY((*stmt)->bind(1, id).bind(2, batch_size).run());
        if (db.changes() == 0) return std::optional<OutgoingBatch>();
        UBUZIMA_TRY(tx->commit());
    }
    auto batch = load_batch(store, id);
    if (!batch.ok()) return batch.status();
    return std::optional<OutgoingBatch>(std::move(*batch));
}

namespace {

// Gives outbox entry `seq` (currently version `old`) the version `fresh` and makes it pending
// again. Row versions and later outbox bases that named the old version follow it.
Status restamp_entry(Store& store, std::int64_t seq, const std::string& table_name, const std::string& row_id,
                     const std::string& old, const std::string& fresh) {
    sql::Database& db = store.db();
    const schema::TableDef* table = store.schema().table(table_name);
    // A lazy entry finds its fields by version: copy them before the version changes.
    if (table) UBUZIMA_TRY(store.materialize_outbox(*table, row_id));
    auto upd = db.cached("UPDATE _outbox SET version = ?, batch_id = NULL WHERE seq = ?");
    if (!upd.ok()) return upd.status();
    UBUZIMA_TRY((*upd)->bind(1, fresh).bind(2, seq).run());
    if (table) {
        auto row = store.load_row(*table, row_id);
        if (!row.ok()) return row.status();
        if (row->exists) {
            for (auto& [field, version] : row->versions.items())
                if (version == old) version = fresh;
            UBUZIMA_TRY(store.write_row(*table, row_id, {}, row->versions));
        }
    }
    auto later = db.cached("SELECT seq, base FROM _outbox WHERE tbl = ? AND row_id = ? AND seq > ?");
    if (!later.ok()) return later.status();
    std::vector<std::pair<std::int64_t, json>> rebased;
    (*later)->bind(1, table_name).bind(2, row_id).bind(3, seq);
    for (;;) {
        auto has = (*later)->step();
        if (!has.ok()) return has.status();
        if (!*has) break;
        json base = json::parse((*later)->column_text(1), nullptr, false);
        if (!base.is_object()) continue;
        bool touched = false;
        for (auto& [field, version] : base.items())
            if (version == old) version = fresh, touched = true;
        if (touched) rebased.emplace_back((*later)->column_int(0), std::move(base));
    }
    (*later)->reset();
    for (const auto& [later_seq, base] : rebased) {
        auto set = db.cached("UPDATE _outbox SET base = ? WHERE seq = ?");
        if (!set.ok()) return set.status();
        UBUZIMA_TRY((*set)->bind(1, base.dump()).bind(2, later_seq).run());
    }
    return {};
}

// Gives a change refused for clock skew a fresh version. The row's later pending writes were
// made after it: any that would now be older than it is re-stamped too, in order, so that the
// device's own later edit never loses to the write it followed (found by tests/sim). A fresh
// version is also newer than every version the write was made on top of (its base): the clock
// was just set back, below what the device wrote and the server accepted in earlier syncs, and
// a re-stamped edit older than the value it edited would lose to it (found by tests/sim).
Status restamp(Store& store, std::int64_t seq, const sync::Change& change) {
    sql::Database& db = store.db();
    auto entries = db.cached("SELECT seq, version FROM _outbox WHERE tbl = ? AND row_id = ? AND seq >= ? ORDER BY seq");
    if (!entries.ok()) return entries.status();
    std::vector<std::pair<std::int64_t, std::string>> rows;
    UBUZIMA_TRY((*entries)->bind(1, change.table).bind(2, change.row_id).bind(3, seq).each([&](const sql::Statement& q) {
        rows.emplace_back(q.column_int(0), q.column_text(1));
    }));
    std::string newest;
    for (const auto& [entry_seq, version] : rows) {
        // The entry itself always (its current version: a cascade may have re-stamped it already).
        if (entry_seq != seq && version > newest) continue;
        // Its base as it is now: re-stamping an earlier entry rebased it onto that entry's fresh
        // version (the old one may be the very future the clock was just reset from).
        auto base_text = db.query_text("SELECT base FROM _outbox WHERE seq = ?", {std::to_string(entry_seq)});
        if (!base_text.ok()) return base_text.status();
        const json base = json::parse(base_text->value_or("{}"), nullptr, false);
        if (base.is_object())
            for (const auto& [field, base_version] : base.items())
                if (base_version.is_string())
                    if (auto v = sync::Version::parse(base_version.get<std::string>())) store.clock().observe(v->hlc);
        newest = sync::Version{store.clock().now(), store.node()}.to_string();
        UBUZIMA_TRY(restamp_entry(store, entry_seq, change.table, change.row_id, version, newest));
    }
    return {};
}

// Keeps a refused change for the user and rolls the local row back to the server's state for
// every field this change still owns (a later local write of a field is left alone).
Status reject(Store& store, std::int64_t seq, const sync::Change& change, const sync::Rejection& rejection) {
    sql::Database& db = store.db();
    auto keep = db.cached(
        "INSERT INTO _rejected (tbl, row_id, version, fields, code, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!keep.ok()) return keep.status();
    UBUZIMA_TRY((*keep)
                    ->bind(1, change.table)
                    .bind(2, change.row_id)
                    .bind(3, change.version.to_string())
                    .bind(4, json(change.fields).dump())
                    .bind(5, wire(rejection.code))
                    .bind(6, rejection.message)
                    .bind(7, store.clock().wall_ms())
                    .run());
    auto drop = db.cached("DELETE FROM _outbox WHERE seq = ?");
    if (!drop.ok()) return drop.status();
    UBUZIMA_TRY((*drop)->bind(1, seq).run());

    const schema::TableDef* table = store.schema().table(change.table);
    if (!table) return {};
    auto row = store.load_row(*table, change.row_id);
    if (!row.ok()) return row.status();
    if (!row->exists) return {};
    const std::string rejected_version = change.version.to_string();
    // An earlier write of the same field that this response deferred (clock_skew re-stamp) is
    // still to be pushed: the field rolls back to it, not past it to the server's older state.
    std::map<std::string, std::pair<json, std::string>> deferred;
    auto earlier = db.cached("SELECT version, fields FROM _outbox WHERE tbl = ? AND row_id = ? AND seq < ? "
                             "AND batch_id IS NULL ORDER BY seq DESC");
    if (!earlier.ok()) return earlier.status();
    std::vector<std::pair<std::string, std::string>> earlier_entries;  // version, fields text
    UBUZIMA_TRY((*earlier)->bind(1, change.table).bind(2, change.row_id).bind(3, seq).each([&](const sql::Statement& q) {
        earlier_entries.emplace_back(q.column_text(0), q.column_text(1));
    }));
    for (const auto& [version, text] : earlier_entries) {
        auto fields = store.outbox_entry_fields(change.table, change.row_id, version, text);
        if (!fields.ok()) return fields.status();
        if (!fields->is_object()) continue;
        for (const auto& [name, value] : fields->items()) deferred.emplace(name, std::make_pair(value, version));
    }
    FieldMap columns;
    for (const auto& [field, value] : change.fields) {
        auto stored = row->versions.find(field);
        if (stored == row->versions.end() || *stored != rejected_version) continue;
        const bool is_deleted = field == sync::kDeletedField;
        if (auto pending = deferred.find(field); pending != deferred.end()) {
            columns[field] = pending->second.first;
            row->versions[field] = pending->second.second;
        } else if (rejection.current && rejection.current->count(field)) {
            const sync::VersionedValue& current = rejection.current->at(field);
            columns[field] = current.value;
            row->versions[field] = current.version.to_string();
        } else {
            columns[field] = is_deleted ? json(false) : json();
            row->versions.erase(field);
        }
    }
    if (!rejection.current && row->versions.empty()) return store.delete_row(*table, change.row_id);
    if (columns.empty()) return {};
    return store.write_row(*table, change.row_id, columns, row->versions);
}

}  // namespace

Status reject_too_large(Store& store, const OutgoingBatch& batch, const Status& why) {
    if (batch.changes.empty()) return {};
    auto tx = sql::Transaction::begin(store.db());
    if (!tx.ok()) return tx.status();
    const sync::Rejection rejection{0, ErrorCode::TooLarge, why.message(), std::nullopt};
    UBUZIMA_TRY(reject(store, batch.seqs[0], batch.changes[0], rejection));
    return tx->commit();
}

namespace {

Status apply_push(Store& store, const OutgoingBatch& batch, const sync::SyncResponse& response, ApplyCounts& counts) {
    const sync::PushResult& push = *response.push;
    sync::HybridClock& clock = store.clock();
    std::vector<bool> refused(batch.changes.size(), false);
    for (const sync::Rejection& r : push.rejected)
        if (r.index < refused.size()) refused[r.index] = true;
    bool clock_reset = false;
    for (const sync::Rejection& r : push.rejected) {
        if (r.index >= batch.changes.size()) continue;
        const sync::Change& change = batch.changes[r.index];
        if (r.code == ErrorCode::ClockSkew) {
            if (!clock_reset) {
                // Forget the bad future once per response (twice would hand out duplicate
                // versions), but stay above the server and above this batch's accepted writes.
                clock.reset_to_wall();
                clock.observe(response.server_clock);
                for (std::size_t i = 0; i < batch.changes.size(); ++i)
                    if (!refused[i]) clock.observe(batch.changes[i].version.hlc);
                clock_reset = true;
            }
            UBUZIMA_TRY(restamp(store, batch.seqs[r.index], change));
        } else {
            UBUZIMA_TRY(reject(store, batch.seqs[r.index], change, r));
            ++counts.rejected;
        }
    }
    for (const sync::ConflictReport& c : push.conflicts) {
        if (c.lost.version.node != store.node()) continue;  // the server overwrote someone else
        UBUZIMA_TRY(store.add_journal(JournalEntry{c.table, c.row_id, c.field, c.kept.value, c.kept.version.to_string(),
                                                   c.lost.value, c.lost.version.to_string(), "push"}));
        ++counts.conflicts;
    }
    auto done = store.db().cached("DELETE FROM _outbox WHERE batch_id = ?");
    if (!done.ok()) return done.status();
    UBUZIMA_TRY((*done)->bind(1, batch.id).run());
    counts.pushed += store.db().changes();
    return {};
}

Status apply_pulled(Store& store, const sync::RowChange& rc, ApplyCounts& counts) {
    const schema::TableDef* table = store.schema().table(rc.table);
    if (!table) return {};  // a newer server may know tables this schema does not
    if (rc.gone) {
        // Moved to a facility this user does not see: the copy goes. A local edit still waiting
        // in the outbox is not lost: the server refuses it as out_of_scope into _rejected.
        ++counts.gone;
        return store.delete_row(*table, rc.row_id);
    }
    auto row = store.load_row(*table, rc.row_id);
    if (!row.ok()) return row.status();
    FieldMap columns;
    for (const auto& [field, incoming] : rc.fields) {
        const bool is_deleted = field == sync::kDeletedField;
        if (!is_deleted && !table->field(field)) continue;
        sync::Version stored;
        auto v = row->versions.find(field);
        if (v != row->versions.end() && v->is_string())
            stored = sync::Version::parse(v->get<std::string>()).value_or(sync::Version{});
        bool local_pending = false;
        if (!stored.is_null() && stored.node == store.node()) {
            auto pending = store.in_outbox(table->name, rc.row_id, stored.to_string());
            if (!pending.ok()) return pending.status();
            local_pending = *pending;
        }
        const sync::FieldMerge merge = sync::merge_pulled_field(stored, incoming.version, local_pending);
        // This device's acknowledged write was overwritten on the server by a concurrent one: the
        // server journalled it and says so, and this device keeps it in its own journal too.
        const bool lost_on_server = merge.outcome == sync::MergeOutcome::Apply && !stored.is_null() &&
                                    stored.node == store.node() && incoming.overwrote == stored;
        if (merge.journal_loser || lost_on_server) {
            const json lost = is_deleted ? json(row->deleted) : row->values.value(field, json());
            UBUZIMA_TRY(store.add_journal(JournalEntry{table->name, rc.row_id, field, incoming.value,
                                                       incoming.version.to_string(), lost, stored.to_string(),
                                                       "pull"}));
            ++counts.conflicts;
        }
        if (merge.outcome == sync::MergeOutcome::Apply) {
            columns[field] = incoming.value;
            row->versions[field] = incoming.version.to_string();
            ++counts.fields_applied;
        }
    }
    ++counts.pulled;
    if (columns.empty()) return {};
    return store.write_row(*table, rc.row_id, columns, row->versions);
}

}  // namespace

Result<ApplyCounts> apply_response(Store& store, const std::optional<OutgoingBatch>& batch,
                                   const sync::SyncResponse& response) {
    ApplyCounts counts;
    auto tx = sql::Transaction::begin(store.db());
    if (!tx.ok()) return tx.status();
    sync::HybridClock& clock = store.clock();
    // The server's clock corrects ours: later writes use server-aligned time even when the
    // device says 1970 or 2040.
    clock.set_offset_ms(sync::hlc_millis(response.server_clock) - store.raw_wall_ms());
    clock.observe(response.server_clock);
    // A push result for another batch id (or none) means ours was not processed: the rows keep
    // their batch id and are replayed, which the server answers idempotently.
    if (batch && response.push && response.push->batch == batch->id)
        UBUZIMA_TRY(apply_push(store, *batch, response, counts));
    if (response.scope && !response.scope->all) {
        // The user may see fewer facilities than before: their rows go before the restarted pull
        // brings back everything that is still (or newly) visible.
        auto dropped = store.purge_outside(response.scope->facilities);
        if (!dropped.ok()) return dropped.status();
        counts.gone += *dropped;
    }
    for (const sync::RowChange& rc : response.changes) UBUZIMA_TRY(apply_pulled(store, rc, counts));
    UBUZIMA_TRY(store.set_meta("cursor", response.cursor));
    UBUZIMA_TRY(store.save_clock());
    UBUZIMA_TRY(tx->commit());
    return counts;
}

}  // namespace ubuzima::detail
