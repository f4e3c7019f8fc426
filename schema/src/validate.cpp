// Ubuzima Sync — MIT licence.
// Value validation against field definitions, applied identically on devices and server.
#include <cmath>
#include <cstdio>

#include "ubuzima/schema/schema.hpp"
#include "ubuzima/sync/json_limits.hpp"

namespace ubuzima::schema {

namespace {

Status invalid(const FieldDef& f, const std::string& why) {
    return Status(ErrorCode::InvalidValue, f.name + ": " + why);
}

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool valid_date(const std::string& s) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (s[i] < '0' || s[i] > '9') return false;
    const int y = std::stoi(s.substr(0, 4));
    const int m = std::stoi(s.substr(5, 2));
    const int d = std::stoi(s.substr(8, 2));
    static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || m < 1 || m > 12 || d < 1) return false;
    const int max_day = kDays[m - 1] + ((m == 2 && is_leap(y)) ? 1 : 0);
    return d <= max_day;
}

// A text field the schema gives no max_length still has one: an unbounded value would let one
// change fill the server's disk and every device's.
constexpr std::size_t kDefaultMaxText = 10'000;

Status check_range(const FieldDef& f, double v) {
    if (f.min && v < *f.min) return invalid(f, "must be at least " + std::to_string(static_cast<long long>(*f.min)));
    if (f.max && v > *f.max) return invalid(f, "must be at most " + std::to_string(static_cast<long long>(*f.max)));
    return {};
}

}  // namespace

bool is_void_field(std::string_view field) {
    return field == "voided_at" || field == "voided_by" || field == "void_reason";
}

Status validate_value(const FieldDef& f, const Value& v) {
    if (v.is_null()) return f.required ? invalid(f, "is required and cannot be null") : Status();
    switch (f.type) {
        case FieldType::Text: {
            if (!v.is_string()) return invalid(f, "must be a string");
            const std::string& text = v.get_ref<const std::string&>();
            const std::size_t max = f.max_length ? *f.max_length : kDefaultMaxText;
            if (text.size() > max) return invalid(f, "is longer than " + std::to_string(max) + " bytes");
            if (f.required && text.empty()) return invalid(f, "is required and cannot be empty");
            // Checked here, at the write: text that is not UTF-8 cannot be sent as JSON, and let in,
            // it would fail every later sync of the device.
            if (!sync::is_valid_utf8(text)) return invalid(f, "is not valid UTF-8 text");
            return {};
        }
        case FieldType::Int:
        case FieldType::Timestamp:
            if (!v.is_number_integer() && !v.is_number_unsigned()) return invalid(f, "must be an integer");
            if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
                return invalid(f, "is out of range");
            return check_range(f, static_cast<double>(v.get<std::int64_t>()));
        case FieldType::Real:
            if (!v.is_number()) return invalid(f, "must be a number");
            if (!std::isfinite(v.get<double>())) return invalid(f, "must be finite");
            return check_range(f, v.get<double>());
        case FieldType::Bool:
            if (!v.is_boolean()) return invalid(f, "must be true or false");
            return {};
        case FieldType::Date:
            if (!v.is_string() || !valid_date(v.get_ref<const std::string&>()))
                return invalid(f, "must be a date YYYY-MM-DD");
            return {};
        case FieldType::Json:
            if (!v.is_array() && !v.is_object()) return invalid(f, "must be a JSON array or object");
            return sync::check_json_value(v, sync::kMaxValueDepth, f.name + ":");
        case FieldType::Enum: {
            if (!v.is_string()) return invalid(f, "must be one of its enumerated codes");
            const auto& s = v.get_ref<const std::string&>();
            for (const std::string& allowed : f.values)
                if (allowed == s) return {};
            return invalid(f, "'" + s + "' is not one of its enumerated codes");
        }
    }
    return {};
}

namespace {

template <typename FieldMap>
Status validate_field_map(const TableDef& table, const FieldMap& fields, bool creating) {
    for (const auto& [name, value] : fields) {
        if (name == sync::kDeletedField) {
            if (!value.is_boolean()) return Status(ErrorCode::InvalidValue, "_deleted must be true or false");
            continue;
        }
        const FieldDef* f = table.field(name);
        if (!f) return Status(ErrorCode::UnknownField, table.name + " has no field '" + name + "'");
        UBUZIMA_TRY(validate_value(*f, value));
    }
    if (creating) {
        auto deleted = fields.find(std::string(sync::kDeletedField));
        const bool is_delete = deleted != fields.end() && deleted->second == true;
        if (!is_delete) {
            // A "create" actor field may be left out: the server sets it from the login.
            for (const FieldDef& f : table.fields)
                if (f.required && f.actor != "create" && fields.find(f.name) == fields.end())
                    return Status(ErrorCode::InvalidValue, table.name + ": new row lacks required field '" + f.name + "'");
        }
    }
    return {};
}

}  // namespace

Status validate_fields(const TableDef& table, const std::map<std::string, Value>& fields, bool creating) {
    return validate_field_map(table, fields, creating);
}

Status validate_object_fields(const TableDef& table, const Value::object_t& fields, bool creating) {
    return validate_field_map(table, fields, creating);
}

std::string_view sql_type(FieldType t) {
    switch (t) {
        case FieldType::Int:
        case FieldType::Timestamp:
        case FieldType::Bool:
            return "INTEGER";
        case FieldType::Real:
            return "REAL";
        default:
            return "TEXT";
    }
}

std::string create_table_sql(const TableDef& table, const std::vector<std::string>& extra_columns) {
    std::string sql = "CREATE TABLE IF NOT EXISTS \"" + table.name + "\" (id TEXT PRIMARY KEY NOT NULL";
    for (const FieldDef& f : table.fields) {
        sql += ", \"" + f.name + "\" ";
        sql += sql_type(f.type);
    }
    for (const std::string& extra : extra_columns) sql += ", " + extra;
    sql += ")";
    return sql;
}

}  // namespace ubuzima::schema
