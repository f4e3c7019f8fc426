// Ubuzima Sync — MIT licence.
// The push path: the field merge and the conflict journal (the rules that may refuse a change
// are in push_rules.cpp), and one batch applied in one transaction.
#include <map>
#include <set>

#include "audit/audit_log.hpp"
#include "replication/push_rules.hpp"
#include "replication/sync_service.hpp"
#include "ubuzima/sync/merge.hpp"

namespace ubuzima::server {

using schema::TableDef;
using sync::Change;
using sync::Value;

std::optional<std::string> row_scope(const TableDef& table, const StoredRow& row) {
    if (!table.scope_field) return std::nullopt;
    if (*table.scope_field == "id") return row.id;
    auto it = row.values.find(*table.scope_field);
    if (it == row.values.end() || !it->second.is_string()) return std::nullopt;
    return it->second.get<std::string>();
}

Result<ApplyOutcome> apply_change(WriteTxn& tx, const TableDef& table, std::optional<StoredRow> row,
                                  const Change& ch, std::int64_t now_ms, const std::string& author) {
    const bool existed = row.has_value();
    StoredRow merged = row ? std::move(*row) : StoredRow{};
    merged.id = ch.row_id;
    ApplyOutcome out;
    std::vector<std::string> applied;
    for (const auto& [field, value] : ch.fields) {
        auto sv = merged.versions.find(field);
        const sync::Version stored = sv == merged.versions.end() ? sync::Version{} : sv->second;
        const sync::FieldMerge m = sync::merge_field(stored, ch.version, ch.base_of(field));
        if (m.outcome == sync::MergeOutcome::Duplicate) continue;
        const Value stored_value = merged.values.count(field) ? merged.values[field] : Value();
        if (m.journal_loser) {
            sync::ConflictReport report{table.name, ch.row_id, field, {}, {}};
            if (m.outcome == sync::MergeOutcome::Apply) {
                report.kept = {value, ch.version};
                report.lost = {stored_value, stored};
            } else {
                report.kept = {stored_value, stored};
                report.lost = {value, ch.version};
            }
            ConflictRecord record{0,  table.name, ch.row_id, field, report.kept, report.lost, "open", now_ms,
                                  "", "",         merged.scope};
            auto id = tx.insert_conflict(record);
            if (!id.ok()) return id.status();
            out.conflicts.push_back(std::move(report));
        }
        if (m.outcome == sync::MergeOutcome::Apply) {
            merged.values[field] = value;
            merged.versions[field] = ch.version;
            if (m.journal_loser) merged.overwrote[field] = stored;
            else merged.overwrote.erase(field);
            applied.push_back(field);
        }
    }
    if (applied.empty()) return out;
    const std::optional<std::string> old_scope = merged.scope;
    merged.scope = row_scope(table, merged);
    const bool moved = existed && old_scope != merged.scope;
    // Devices that see only the old facility must learn the row left it (they drop their copy).
    if (moved) UBUZIMA_TRY(tx.record_move(table.name, merged.id, old_scope, merged.scope));
    auto seq = tx.append_feed(table.name, merged.id, merged.scope);
    if (!seq.ok()) return seq.status();
    for (const std::string& field : applied) merged.seqs[field] = *seq;
    // Devices that see only the new facility never had the row: a pull must send all of it, not
    // just the fields that changed since their cursor.
    if (moved) {
        for (const auto& entry : merged.versions) merged.seqs[entry.first] = *seq;
        merged.moved_seq = *seq;
    }
    merged.seq = *seq;
    merged.author = author;
    UBUZIMA_TRY(tx.write_row(table, merged));
    out.wrote = true;
    out.row = std::move(merged);
    return out;
}

Result<sync::PushResult> SyncService::push(WriteTxn& tx, const AuthUser& user, const sync::SyncRequest& request,
                                           WrittenRows* written) {
    const sync::PushBatch& batch = *request.batch;
    auto seen = tx.find_batch(user.id, batch.id);
    if (!seen.ok()) return seen.status();
    if (*seen) {
        // A replayed batch: answer exactly as the first time and apply nothing.
        auto stored = nlohmann::json::parse(**seen, nullptr, false);
        return sync::push_result_from_json(stored);
    }
    sync::PushResult result;
    result.batch = batch.id;
    const std::int64_t now = m_options.wall();
    // Rows with a change deferred for clock skew: the device re-sends it with a fresh version, so
    // the row's later changes in this batch wait too (judged without it, an edit would be refused
    // for good, and applied before it, it would end up older than the write it followed).
    std::set<std::pair<std::string, std::string>> deferred;
    const PushContext ctx{user, request.node, m_options, m_schema, deferred};
    // Every row the batch touches, read with one call per table (one statement each on
    // PostgreSQL) and kept as the batch writes them.
    std::map<std::string, std::vector<std::string>> wanted;
    for (const Change& ch : batch.changes) wanted[ch.table].push_back(ch.row_id);
    auto rows = read_rows_by_table(tx, m_schema, std::move(wanted));
    if (!rows.ok()) return rows.status();
    for (std::size_t i = 0; i < batch.changes.size(); ++i) {
        const Change& ch = batch.changes[i];
        const TableDef* t = m_schema.table(ch.table);
        if (!t) {
            result.rejected.push_back({i, ErrorCode::UnknownTable, "unknown table '" + ch.table + "'", std::nullopt});
            continue;
        }
        std::map<std::string, StoredRow>& table_rows = (*rows)[ch.table];
        std::optional<StoredRow> row;
        if (auto cached = table_rows.find(ch.row_id); cached != table_rows.end()) row = cached->second;
        const Status verdict = check_change(tx, *t, row, ch, ctx);
        if (verdict.code() == ErrorCode::ClockSkew) deferred.insert({ch.table, ch.row_id});
        if (!verdict.ok()) {
            if (!is_rejection(verdict.code())) return verdict;
            sync::Rejection rej{i, verdict.code(), verdict.message(), std::nullopt};
            // The stored values let the device roll its copy back, if it may see the row at all.
            const std::optional<StoredRow>& stored = row;
            if (stored && (!row_scope(*t, *stored) || user.may_see(*row_scope(*t, *stored)))) {
                std::map<std::string, sync::VersionedValue> current;
                for (const auto& entry : ch.fields) {
                    auto v = stored->versions.find(entry.first);
                    if (v == stored->versions.end()) continue;
                    auto val = stored->values.find(entry.first);
                    current[entry.first] = {val == stored->values.end() ? Value() : val->second, v->second};
                }
                rej.current = std::move(current);
            }
            result.rejected.push_back(std::move(rej));
            continue;
        }
        const bool creates = !row.has_value();
        auto applied = apply_change(tx, *t, std::move(row), ch, now, user.id);
        if (!applied.ok()) return applied.status();
        for (auto& c : applied->conflicts) result.conflicts.push_back(std::move(c));
        bool wrote = applied->wrote;
        StoredRow final_row = std::move(applied->row);
        // Actor fields the change left out are the server's to fill, under its own version (a
        // device's version with a value it never wrote would hide the value from it).
        if (auto stamps = actor_stamps(*t, ch, creates, user); !stamps.empty() && wrote) {
            Change stamp;
            stamp.table = ch.table;
            stamp.row_id = ch.row_id;
            stamp.version = sync::Version{m_clock.now(), m_store.node_id()};
            stamp.fields = std::move(stamps);
            auto stamped = apply_change(tx, *t, std::move(final_row), stamp, now, user.id);
            if (!stamped.ok()) return stamped.status();
            final_row = std::move(stamped->row);
        }
        if (wrote) table_rows[ch.row_id] = final_row;
        if (written && wrote) {
            WrittenRow& w = (*written)[{ch.table, ch.row_id}];
            w.seq = final_row.seq;
            w.moved_seq = final_row.moved_seq;
            w.versions = std::move(final_row.versions);
            w.seqs = std::move(final_row.seqs);
        }
        ++result.applied;
    }
    UBUZIMA_TRY(tx.save_batch(user.id, batch.id, sync::push_result_to_json(result).dump(), now));
    return result;
}

}  // namespace ubuzima::server
