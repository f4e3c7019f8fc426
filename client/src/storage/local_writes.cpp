// Ubuzima Sync — MIT licence.
// Captured local writes: checks, then row + field versions + outbox entry in one transaction.
#include "storage/store.hpp"

#include <algorithm>

#include "ubuzima/sync/field_versions.hpp"
#include "ubuzima/sync/json_limits.hpp"
#include "ubuzima/sync/protocol.hpp"

namespace ubuzima::detail {

namespace {

std::string short_id(std::string_view id) { return std::string(id.substr(0, 13)) + (id.size() > 13 ? "…" : ""); }

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The fields a write stores: the caller's own object, checked and used in place (copying it was
// ~15% of a captured write), or `storage` when the write must differ from it. "id" may repeat the
// row id (apps pass back what get() returned); "_deleted" is written only by remove() so that
// deletes are always deliberate.
Result<const FieldMap*> to_fields(Store::WriteMode mode, std::string_view id, const json& input, FieldMap& storage) {
    if (mode == Store::WriteMode::Remove) {
        storage[std::string(sync::kDeletedField)] = true;
        return &storage;
    }
    if (!input.is_object()) return Status(ErrorCode::InvalidArgument, "fields must be a JSON object");
    const FieldMap& given = input.get_ref<const FieldMap&>();
    if (given.count(sync::kDeletedField))
        return Status(ErrorCode::InvalidArgument, "use remove() to delete a row, not the field _deleted");
    const FieldMap* fields = &given;
    if (auto id_field = given.find("id"); id_field != given.end()) {
        const json& value = id_field->second;
        if (mode == Store::WriteMode::Insert || !value.is_string() || value.get_ref<const std::string&>() != id)
            return Status(ErrorCode::InvalidArgument, "the row id is given separately, not as field 'id'");
        storage = given;
        storage.erase("id");
        fields = &storage;
    }
    if (fields->empty()) return Status(ErrorCode::InvalidArgument, "no fields to write");
    return fields;
}

}  // namespace

Status Store::fill_actor_fields(const schema::TableDef& table, bool creating, const FieldMap*& fields,
                                FieldMap& storage) {
    for (const schema::FieldDef& f : table.fields) {
        if (!f.is_actor()) continue;
        auto given = fields->find(f.name);
        if (given != fields->end()) {
            // The server refuses another user's id here; say so now, not at the next sync.
            if (!m_user_id.empty() &&
                !(given->second.is_string() && given->second.get_ref<const std::string&>() == m_user_id))
                return Status(ErrorCode::InvalidValue, table.name + "." + f.name +
                                                           " is set from the login (the logged-in user's id): leave it out");
            continue;
        }
        // Not logged in yet: left out, and the server fills it in from the login that pushes it.
        if (m_user_id.empty()) continue;
        bool due = false;
        if (f.actor == "create") {
            due = creating;
        } else if (auto trigger = fields->find(f.actor); trigger != fields->end()) {
            due = !trigger->second.is_null();
        }
        if (!due) continue;
        if (fields != &storage) {
            storage = *fields;
            fields = &storage;
        }
        storage[f.name] = m_user_id;
    }
    return {};
}

Status Store::check_class_rules(const schema::TableDef& table, std::string_view id, const RowState& row, bool live,
                                const FieldMap& fields, WriteMode mode) {
    using schema::TableClass;
    if (table.cls == TableClass::AppendOnly) {
        if (mode == WriteMode::Remove)
            return Status(ErrorCode::AppendOnly, table.name + " rows cannot be deleted; void the row instead "
                                                              "(voided_at, voided_by, void_reason)");
        if (live) {
            for (const auto& [name, value] : fields)
                if (!schema::is_void_field(name))
                    return Status(ErrorCode::AppendOnly,
                                  table.name + " " + short_id(id) + " is append-only: '" + name +
                                      "' cannot change after it is recorded; record a new row or void this one");
        }
    }
    if (table.cls != TableClass::Sealed) return {};
    if (table.seal && live) {
        const json current = row.values.value(table.seal->field, json());
        if (table.is_sealing_value(current))
            return Status(ErrorCode::Sealed, table.name + " " + short_id(id) + " is " + value_text(current) +
                                                 " and can no longer be edited; record a new " + table.name +
                                                 " that supersedes it");
    }
    if (table.sealed_with) {
        const schema::TableDef* parent = m_schema->table(table.sealed_with->table);
        const schema::FieldDef* parent_seal_def = nullptr;
        if (parent && parent->seal) parent_seal_def = parent->field(parent->seal->field);
        if (!parent_seal_def) return {};
        // Both the parent the row belongs to now and the one it would move to must be open.
        std::vector<json> parent_ids;
        auto written = fields.find(table.sealed_with->field);
        if (written != fields.end()) parent_ids.push_back(written->second);
        if (live) parent_ids.push_back(row.values.value(table.sealed_with->field, json()));
        for (const json& pid : parent_ids) {
            if (!pid.is_string()) continue;
            auto prow = load_row(*parent, pid.get<std::string>(), /*with_versions=*/false);
            if (!prow.ok()) return prow.status();
            if (!prow->exists || prow->deleted) continue;
            const json seal_value = prow->values.value(parent->seal->field, json());
            if (parent->is_sealing_value(seal_value))
                return Status(ErrorCode::Sealed, parent->name + " " + short_id(pid.get<std::string>()) + " is " +
                                                     value_text(seal_value) + " and can no longer be edited; record a new " +
                                                     parent->name + " that supersedes it");
        }
    }
    return {};
}

Status Store::write(WriteMode mode, std::string_view table_name, std::string_view id, const json& input) {
    auto tx = sql::Transaction::begin(m_db);
    if (!tx.ok()) return tx.status();
    UBUZIMA_TRY(write_in_transaction(mode, table_name, id, input));
    return tx->commit();
}

Status Store::write_in_transaction(WriteMode mode, std::string_view table_name, std::string_view id, const json& input) {
    const schema::TableDef* table = m_schema->table(table_name);
    if (!table) return Status(ErrorCode::UnknownTable, "no table '" + std::string(table_name) + "'");
    if (table->cls == schema::TableClass::Reference)
        return Status(ErrorCode::ReadOnly, table->name + " is reference data maintained by the server; it cannot "
                                                         "be changed on a device");
    if (id.empty() || id.size() > 128 || !sync::is_valid_utf8(id) ||
        std::any_of(id.begin(), id.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
        return Status(ErrorCode::InvalidArgument, "row id must be 1 to 128 bytes of UTF-8 text without control characters");
    FieldMap storage;
    auto checked = to_fields(mode, id, input, storage);
    if (!checked.ok()) return checked.status();
    const FieldMap* fields = *checked;

    // An insert does not look its id up first: the plain INSERT below fails on an existing id,
    // and only then is the row read, to say why (ids are fresh UUIDs: the lookup always missed).
    Result<RowState> row = RowState{};
    if (mode != WriteMode::Insert) row = load_row(*table, id);
    if (!row.ok()) return row.status();
    const bool live = row->exists && !row->deleted;
    switch (mode) {
        case WriteMode::Insert:
            break;
        case WriteMode::Update:
        case WriteMode::Remove:
            if (!live) return Status(ErrorCode::NotFound, table->name + " " + std::string(id) + " does not exist");
            break;
        case WriteMode::Put:
            // Writing over a tombstone revives the row: the undelete is a versioned write too.
            if (row->exists && row->deleted) {
                if (fields != &storage) storage = *fields;
                storage[std::string(sync::kDeletedField)] = false;
                fields = &storage;
            }
            break;
    }
    UBUZIMA_TRY(fill_actor_fields(*table, !live, fields, storage));
    UBUZIMA_TRY(schema::validate_object_fields(*table, *fields, /*creating=*/!live));
    UBUZIMA_TRY(check_class_rules(*table, id, *row, live, *fields, mode));

    const std::string version = sync::Version{m_clock.now(), m_node}.to_string();
    std::string base_text = "{}";
    std::string fields_text = kLazyFields;  // a fresh row: the outbox entry refers to it
    if (row->exists) {
        fields_text = json(*fields).dump();  // an update's own copy: only a fresh row's entry refers to it
        json versions = row->versions;
        json base = json::object();
        for (const auto& [name, value] : *fields) {
            auto old = versions.find(name);
            if (old != versions.end() && old->is_string()) base[name] = *old;
            versions[name] = version;
        }
        base_text = base.dump();
        UBUZIMA_TRY(write_row(*table, id, *fields, versions));
    } else {
        // A fresh row: every written field gets this version and there is no base. Written
        // without a JSON tree (the trees were the largest cost of a captured write:
        // bench/performance_notes.md).
        std::vector<std::pair<std::string_view, std::string_view>> versions;
        versions.reserve(fields->size());
        for (const auto& [name, value] : *fields) versions.emplace_back(name, version);
        Status inserted = insert_row_text(*table, id, *fields, sync::encode_field_versions(versions));
        if (!inserted.ok()) {
            auto existing = load_row(*table, id);
            if (existing.ok() && existing->exists)
                return Status(ErrorCode::Conflict, table->name + " " + std::string(id) + " already exists");
            return inserted;
        }
    }

    auto outbox = m_db.cached("INSERT INTO _outbox (tbl, row_id, version, fields, base) VALUES (?, ?, ?, ?, ?)");
    if (!outbox.ok()) return outbox.status();
    return (*outbox)->bind(1, table->name).bind(2, id).bind(3, version).bind(4, fields_text).bind(5, base_text).run();
}

}  // namespace ubuzima::detail
