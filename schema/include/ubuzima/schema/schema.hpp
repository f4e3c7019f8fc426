// Ubuzima Sync — MIT licence.
// The declarative domain schema (schema/ubuzima.schema.json): tables, fields, types, classes,
// scope fields, and the value validation both client and server apply.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ubuzima/sync/protocol.hpp"
#include "ubuzima/sync/status.hpp"

namespace ubuzima::schema {

using sync::Value;

enum class FieldType { Text, Int, Real, Bool, Date, Timestamp, Json, Enum };
/// Mutability class of a table (shared/domain.md §3.1).
enum class TableClass {
    Reference,   ///< server-authored; read-only on devices
    Editable,    ///< per-field merge
    Sealed,      ///< editable until the seal field takes a sealing value; immutable after
    AppendOnly,  ///< insert only; the void fields are the only later change
};

std::string_view to_string(FieldType t);
std::string_view to_string(TableClass c);

struct FieldDef {
    std::string name;
    FieldType type = FieldType::Text;
    bool required = false;
    std::vector<std::string> values;  ///< enum values
    std::optional<double> min;
    std::optional<double> max;
    std::optional<std::size_t> max_length;
    std::string references;  ///< informational: the table an id points to
    /// An actor field holds the id of the user who did something ("by_user_id", "voided_by"):
    /// the server sets it from the login, never from what a device claims. "create": stamped
    /// when a row is created without it; otherwise the name of the field whose write stamps it
    /// ("voided_at" for voided_by). Empty: not an actor field.
    std::string actor;
    /// Values only some roles may write (e.g. status "validated": the Ministry's step).
    std::map<std::string, std::vector<std::string>> value_roles;

    bool is_actor() const { return !actor.empty(); }
};

struct SealRule {
    std::string field;
    std::vector<std::string> values;
};

struct SealedWith {
    std::string table;  ///< parent table
    std::string field;  ///< field of this table holding the parent id
};

struct TableDef {
    std::string name;
    TableClass cls = TableClass::Editable;
    std::optional<std::string> scope_field;  ///< facility id field; nullopt = visible to all users
    std::optional<SealRule> seal;
    std::optional<SealedWith> sealed_with;
    std::vector<FieldDef> fields;
    /// Roles that may write rows of this table from a device; empty = written by the server only.
    std::vector<std::string> write_roles;

    const FieldDef* field(std::string_view field_name) const;
    /// True when `value` of the seal field makes a row immutable.
    bool is_sealing_value(const Value& value) const;
};

/// The parsed schema. Immutable after parse; safe to share between threads.
class Schema {
public:
    /// Parses and checks a schema document.
    static Result<Schema> parse(std::string_view json_text);
    /// The schema compiled into the library from schema/ubuzima.schema.json.
    static const Schema& builtin();

    int version() const { return m_version; }
    const TableDef* table(std::string_view name) const;
    const std::vector<TableDef>& tables() const { return m_tables; }

private:
    int m_version = 0;
    std::vector<TableDef> m_tables;
};

/// Fields that void an append-only row: the only change allowed after its insert.
bool is_void_field(std::string_view field);

/// Checks one value against its field definition. Null clears a field and is refused only for
/// required fields. Errors: InvalidValue.
Status validate_value(const FieldDef& field, const Value& value);

/// Checks the fields of one change: every name known (UnknownField), every value valid
/// (InvalidValue), `_deleted` a boolean. When `creating`, every required field must be present
/// but required "create" actor fields (the server sets those).
Status validate_fields(const TableDef& table, const std::map<std::string, Value>& fields, bool creating);
/// The same for a JSON object's own map (a device checks the app's object without copying it).
Status validate_object_fields(const TableDef& table, const Value::object_t& fields, bool creating);

/// SQLite column type for a field type.
std::string_view sql_type(FieldType t);
/// `CREATE TABLE IF NOT EXISTS "<t>" (id TEXT PRIMARY KEY NOT NULL, <fields>, <extra>)`.
/// `extra_columns` are hidden bookkeeping columns, e.g. `_v TEXT NOT NULL DEFAULT '{}'`.
std::string create_table_sql(const TableDef& table, const std::vector<std::string>& extra_columns);

/// Seed rows of one table (schema/seed/<table>.json).
struct SeedTable {
    std::string table;
    std::vector<Value> rows;  ///< objects with "id" and field values
};
/// The reference data compiled into the library (the 10 hospitals, specialties, SARA items, ...).
const std::vector<SeedTable>& builtin_seed();

}  // namespace ubuzima::schema
