// Ubuzima Sync — MIT licence.
// The rules a pushed change must pass: table class, role, device node, clock, values, scope,
// actor fields, role-bound values, append-only and sealed rows.
#include "replication/push_rules.hpp"

#include "replication/sync_service.hpp"
#include "ubuzima/sync/ids.hpp"

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

bool visible(const TableDef& t, const AuthUser& user, const StoredRow& row) {
    if (!t.scope_field || user.sees_all()) return true;
    auto scope = row_scope(t, row);
    return !scope || user.may_see(*scope);
}

/// The first required field a new row would lack (actor fields the server fills aside), or "".
std::string missing_for_create(const TableDef& t, const Change& ch) {
    auto deleted = ch.fields.find(kDeleted);
    if (deleted != ch.fields.end() && deleted->second == true) return "";
    for (const schema::FieldDef& f : t.fields)
        if (f.required && f.actor != "create" && !ch.fields.count(f.name)) return f.name;
    return "";
}

// Scope first, and one answer for "not there" and "not yours": a refusal must not tell a user
// of one hospital which ids exist in another, or their state. An update of a row the caller may
// not see gets exactly what an update of an unknown id gets.
Status check_scope(const TableDef& t, const AuthUser& user, const std::optional<StoredRow>& row, const Change& ch) {
    const std::string missing = missing_for_create(t, ch);
    const bool hidden = row && !visible(t, user, *row);
    // No id in the words: the rejection's index names the change.
    const std::string no_row = "no such " + t.name + " among your facilities";
    if ((!row || hidden) && !missing.empty())
        return reject(ErrorCode::OutOfScope, no_row + " (a new one would need '" + missing + "')");
    if (hidden) return reject(ErrorCode::OutOfScope, no_row);
    if (!t.scope_field || user.sees_all()) return {};
    auto target = written_scope(t, ch);
    if (target) {
        if (!target->is_string() || !user.may_see(target->get<std::string>()))
            return reject(ErrorCode::OutOfScope, "the change puts the row in a facility outside your facilities");
    } else if (!row) {
        return reject(ErrorCode::OutOfScope, "a new row needs a facility among yours");
    }
    return {};
}

Status check_actor_fields(const TableDef& t, const AuthUser& user, const Change& ch) {
    for (const auto& [name, value] : ch.fields) {
        const schema::FieldDef* f = t.field(name);
        if (!f || !f->is_actor()) continue;
        if (!value.is_string() || value.get_ref<const std::string&>() != user.id)
            return reject(ErrorCode::Forbidden, t.name + "." + name +
                                                    " is set from your login: leave it out or send your own user id");
    }
    return {};
}

Status check_value_roles(const TableDef& t, const AuthUser& user, const Change& ch) {
    for (const auto& [name, value] : ch.fields) {
        const schema::FieldDef* f = t.field(name);
        if (!f || f->value_roles.empty() || !value.is_string()) continue;
        auto rule = f->value_roles.find(value.get<std::string>());
        if (rule == f->value_roles.end()) continue;
        const RoleSet allowed = RoleSet::from_names(rule->second);
        if (!allowed.has(user.role))
            return reject(ErrorCode::Forbidden, "only " + allowed.to_string() + " may set " + t.name + "." + name +
                                                    " to '" + value.get<std::string>() + "'");
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

/// The parent id a sealed_with child names (from the change, else the stored row).
std::optional<std::string> parent_id(const TableDef& t, const std::optional<StoredRow>& row, const Change& ch) {
    if (!t.sealed_with) return std::nullopt;
    Value id;
    if (auto it = ch.fields.find(t.sealed_with->field); it != ch.fields.end()) id = it->second;
    else if (row && row->values.count(t.sealed_with->field)) id = row->values.at(t.sealed_with->field);
    if (!id.is_string()) return std::nullopt;
    return id.get<std::string>();
}

Status check_sealed(WriteTxn& tx, const TableDef& t, const AuthUser& user, const std::optional<StoredRow>& row,
                    const Change& ch, const schema::Schema& schema) {
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
    const std::optional<std::string> pid = parent_id(t, row, ch);
    if (!pid) return {};
    const TableDef* parent = schema.table(t.sealed_with->table);
    if (!parent) return {};
    auto prow = tx.read_row(*parent, *pid);
    if (!prow.ok()) return prow.status();
    // The parent must be there and visible to the writer: a finding cannot hang off another
    // hospital's assessment (nor learn, by trying, whether one exists).
    if (!*prow || !visible(*parent, user, **prow))
        return reject(ErrorCode::OutOfScope, "no " + parent->name + " " + *pid + " among your facilities");
    if (t.scope_field && parent->scope_field) {
        std::optional<std::string> child_scope;
        if (auto target = written_scope(t, ch); target && target->is_string()) child_scope = target->get<std::string>();
        else if (row) child_scope = row_scope(t, *row);
        if (child_scope && row_scope(*parent, **prow) != child_scope)
            return reject(ErrorCode::InvalidValue, t.name + "." + *t.scope_field + " must be the facility of its " +
                                                       parent->name);
    }
    auto seal = (*prow)->values.find(parent->seal ? parent->seal->field : std::string());
    if (parent->seal && seal != (*prow)->values.end() && parent->is_sealing_value(seal->second))
        return reject(ErrorCode::Sealed, parent->name + " " + *pid + " is sealed; its " + t.name + " rows can no longer change");
    return {};
}

}  // namespace

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
        case ErrorCode::Forbidden:
        case ErrorCode::WrongNode:
            return true;
        default:
            return false;
    }
}

Status check_change(WriteTxn& tx, const TableDef& t, const std::optional<StoredRow>& row, const Change& ch,
                    const PushContext& ctx) {
    const AuthUser& user = ctx.user;
    if (t.cls == TableClass::Reference) return reject(ErrorCode::ReadOnly, t.name + " is reference data, read-only");
    const RoleSet writers = RoleSet::from_names(t.write_roles);
    if (!writers.has(user.role))
        return reject(ErrorCode::Forbidden, std::string(role_name(user.role)) + "s may not write " + t.name +
                                                " (written by " + writers.to_string() + ")");
    // A device writes under its own node id only: a version naming another device's node would
    // be skipped in that device's pulls (it "has it already"), hiding the write from it.
    if (ch.version.node != ctx.device_node)
        return reject(ErrorCode::WrongNode, "version " + ch.version.to_string() + " names node " +
                                                sync::to_hex16(ch.version.node) + ", not this device's " +
                                                sync::to_hex16(ctx.device_node));
    // Clock skew first: the device re-sends such a change with a fresh version. Were an edit
    // checked against the row first, it would be refused for good ("new row lacks a required
    // field") whenever the insert before it in the batch was only deferred for its clock.
    const std::int64_t ahead = sync::hlc_millis(ch.version.hlc) - ctx.options.wall();
    if (ahead > ctx.options.clock_skew_ms)
        return reject(ErrorCode::ClockSkew, "version is " + std::to_string(ahead / 1000) +
                                                " s ahead of the server clock; fix the device clock");
    if (ctx.deferred.count({ch.table, ch.row_id}))
        return reject(ErrorCode::ClockSkew, "an earlier change of this row was deferred for clock skew");
    if (t.sealed_with) {
        if (auto pid = parent_id(t, row, ch); pid && ctx.deferred.count({t.sealed_with->table, *pid}))
            return reject(ErrorCode::ClockSkew, "its " + t.sealed_with->table + " was deferred for clock skew");
    }
    UBUZIMA_TRY(schema::validate_fields(t, ch.fields, /*creating=*/false));
    UBUZIMA_TRY(check_scope(t, user, row, ch));
    if (is_replay(row, ch)) return {};
    UBUZIMA_TRY(check_actor_fields(t, user, ch));
    UBUZIMA_TRY(check_value_roles(t, user, ch));
    UBUZIMA_TRY(check_append_only(t, row, ch));
    return check_sealed(tx, t, user, row, ch, ctx.schema);
}

std::map<std::string, Value> actor_stamps(const TableDef& t, const Change& ch, bool creates, const AuthUser& user) {
    std::map<std::string, Value> stamps;
    for (const schema::FieldDef& f : t.fields) {
        if (!f.is_actor() || ch.fields.count(f.name)) continue;
        bool due = false;
        if (f.actor == "create") {
            due = creates;
        } else if (auto trigger = ch.fields.find(f.actor); trigger != ch.fields.end()) {
            due = !trigger->second.is_null();
        }
        if (due) stamps.emplace(f.name, Value(user.id));
    }
    return stamps;
}

}  // namespace ubuzima::server
