// Ubuzima Sync — MIT licence.
// The push path: per-change checks (rejections), the field merge and the conflict journal.
#include "sync/sync_service.hpp"

#include <set>

#include "ubuzima/sync/merge.hpp"

namespace ubuzima::server {

using schema::TableClass;
using schema::TableDef;
using sync::Change;
using sync::Value;

namespace {

const std::string kDeleted(sync::kDeletedField);

Status reject(ErrorCode code, std::string message) { return Status(code, std::move(message)); }

/// True when the stored row already holds every field of the change at the change's version:
/// a replay (e.g. under a new batch id) that must not be refused for being "a second write".
bool is_replay(const std::optional<StoredRow>& row, const Change& ch) {
    if (!row) return false;
    for (const auto& entry : ch.fields) {
        auto v = row->versions.find(entry.first);
        if (v == row->versions.end() || v->second != ch.version) return false;
    }
    return true;
}

/// The facility the change assigns to the row, when it writes the scope field.
std::optional<Value> written_scope(const TableDef& t, const Change& ch) {
    if (!t.scope_field) return std::nullopt;
    if (*t.scope_field == "id") return Value(ch.row_id);
    auto it = ch.fields.find(*t.scope_field);
    if (it == ch.fields.end()) return std::nullopt;
    return it->second;
}

Status check_scope(const TableDef& t, const AuthUser& user, const std::optional<StoredRow>& row, const Change& ch) {
    if (!t.scope_field || user.sees_all()) return {};
    if (row) {
        auto stored = row_scope(t, *row);
        if (stored && !user.may_see(*stored))
            return reject(ErrorCode::OutOfScope, "row belongs to facility " + *stored + ", outside your facilities");
    }
    auto target = written_scope(t, ch);
    if (target) {
        if (!target->is_string() || !user.may_see(target->get<std::string>()))
            return reject(ErrorCode::OutOfScope, "the change puts the row in a facility outside your facilities");
    } else if (!row) {
        return reject(ErrorCode::OutOfScope, "a new row needs a facility among yours");
    }
    return {};
}

Status check_append_only(const TableDef& t, const std::optional<StoredRow>& row, const Change& ch) {
    if (t.cls != TableClass::AppendOnly) return {};
    if (ch.fields.count(kDeleted)) return reject(ErrorCode::AppendOnly, t.name + " rows cannot be deleted; void them");
    if (!row) return {};
    for (const auto& entry : ch.fields)
        if (!schema::is_void_field(entry.first))
            return reject(ErrorCode::AppendOnly,
                          t.name + " rows are insert-only; only voided_at, voided_by and void_reason may change");
    return {};
}

Status check_sealed(WriteTxn& tx, const TableDef& t, const AuthUser& user, const std::optional<StoredRow>& row,
                    const Change& ch) {
    if (t.cls != TableClass::Sealed) return {};
    if (t.seal && row) {
        auto stored = row->values.find(t.seal->field);
        if (stored != row->values.end() && t.is_sealing_value(stored->second)) {
            // Reviewers still move the status of a submitted record (validated, voided, ...).
            const bool only_seal = ch.fields.size() == 1 && ch.fields.count(t.seal->field) == 1;
            if (!(only_seal && user.is_reviewer()))
                return reject(ErrorCode::Sealed, t.name + " " + ch.row_id + " is " +
                                                     stored->second.get<std::string>() + " and can no longer change");
        }
    }
    if (t.sealed_with) {
        const TableDef* parent = schema::Schema::builtin().table(t.sealed_with->table);
        Value parent_id;
        if (auto it = ch.fields.find(t.sealed_with->field); it != ch.fields.end()) parent_id = it->second;
        else if (row && row->values.count(t.sealed_with->field)) parent_id = row->values.at(t.sealed_with->field);
        if (parent && parent->seal && parent_id.is_string()) {
            auto prow = tx.read_row(*parent, parent_id.get<std::string>());
            if (!prow.ok()) return prow.status();
            if (*prow) {
                auto seal = (*prow)->values.find(parent->seal->field);
                if (seal != (*prow)->values.end() && parent->is_sealing_value(seal->second))
                    return reject(ErrorCode::Sealed, parent->name + " " + parent_id.get<std::string>() +
                                                         " is sealed; its " + t.name + " rows can no longer change");
            }
        }
    }
    return {};
}

/// All reasons to refuse one change, in the order of the protocol's list. A Status with a
/// rejection code means "reject this change"; IoError and friends abort the whole push.
Status check_change(WriteTxn& tx, const TableDef& t, const AuthUser& user, const std::optional<StoredRow>& row,
                    const Change& ch, const ServerOptions& options) {
    if (t.cls == TableClass::Reference) return reject(ErrorCode::ReadOnly, t.name + " is reference data, read-only");
    // Clock skew first: the device re-sends such a change with a fresh version. Were an edit
    // checked against the row first, it would be refused for good ("new row lacks a required
    // field") whenever the insert before it in the batch was only deferred for its clock.
    const std::int64_t ahead = sync::hlc_millis(ch.version.hlc) - options.wall();
    if (ahead > options.clock_skew_ms)
        return reject(ErrorCode::ClockSkew, "version is " + std::to_string(ahead / 1000) +
                                                " s ahead of the server clock; fix the device clock");
    UBUZIMA_TRY(schema::validate_fields(t, ch.fields, /*creating=*/!row));
    UBUZIMA_TRY(check_scope(t, user, row, ch));
    if (is_replay(row, ch)) return {};
    UBUZIMA_TRY(check_append_only(t, row, ch));
    return check_sealed(tx, t, user, row, ch);
}

bool is_rejection(ErrorCode code) {
    switch (code) {
        case ErrorCode::UnknownTable:
        case ErrorCode::UnknownField:
        case ErrorCode::InvalidValue:
        case ErrorCode::ReadOnly:
        case ErrorCode::Sealed:
        case ErrorCode::OutOfScope:
        case ErrorCode::ClockSkew:
        case ErrorCode::AppendOnly:
            return true;
        default:
            return false;
    }
}

}  // namespace

std::optional<std::string> row_scope(const TableDef& table, const StoredRow& row) {
    if (!table.scope_field) return std::nullopt;
    if (*table.scope_field == "id") return row.id;
    auto it = row.values.find(*table.scope_field);
    if (it == row.values.end() || !it->second.is_string()) return std::nullopt;
    return it->second.get<std::string>();
}

Result<ApplyOutcome> apply_change(WriteTxn& tx, const TableDef& table, std::optional<StoredRow> row,
                                  const Change& ch, std::int64_t now_ms) {
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
            ConflictRecord record{0, table.name, ch.row_id, field, report.kept, report.lost, "open", now_ms, "", ""};
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
    if (moved)
        for (const auto& entry : merged.versions) merged.seqs[entry.first] = *seq;
    merged.seq = *seq;
    UBUZIMA_TRY(tx.write_row(table, merged));
    out.wrote = true;
    out.row = std::move(merged);
    return out;
}

Result<sync::PushResult> SyncService::push(WriteTxn& tx, const AuthUser& user, const sync::PushBatch& batch,
                                           WrittenRows* written) {
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
    for (std::size_t i = 0; i < batch.changes.size(); ++i) {
        const Change& ch = batch.changes[i];
        const TableDef* t = schema::Schema::builtin().table(ch.table);
        if (!t) {
            result.rejected.push_back({i, ErrorCode::UnknownTable, "unknown table '" + ch.table + "'", std::nullopt});
            continue;
        }
        auto row = tx.read_row(*t, ch.row_id);
        if (!row.ok()) return row.status();
        Status verdict = deferred.count({ch.table, ch.row_id})
                             ? reject(ErrorCode::ClockSkew, "an earlier change of this row was deferred for clock skew")
                             : check_change(tx, *t, user, *row, ch, m_options);
        if (verdict.code() == ErrorCode::ClockSkew) deferred.insert({ch.table, ch.row_id});
        if (!verdict.ok()) {
            if (!is_rejection(verdict.code())) return verdict;
            sync::Rejection rej{i, verdict.code(), verdict.message(), std::nullopt};
            // The stored values let the device roll its copy back, if it may see the row at all.
            const std::optional<StoredRow>& stored = *row;
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
        auto applied = apply_change(tx, *t, std::move(*row), ch, now);
        if (!applied.ok()) return applied.status();
        for (auto& c : applied->conflicts) result.conflicts.push_back(std::move(c));
        if (written && applied->wrote) {
            WrittenRow& w = (*written)[{ch.table, ch.row_id}];
            w.seq = applied->row.seq;
            w.versions = std::move(applied->row.versions);
            w.seqs = std::move(applied->row.seqs);
        }
        ++result.applied;
    }
    UBUZIMA_TRY(tx.save_batch(user.id, batch.id, sync::push_result_to_json(result).dump()));
    return result;
}

}  // namespace ubuzima::server
