// Ubuzima Sync — MIT licence.
// Parsing of the declarative schema document.
#include "ubuzima/schema/schema.hpp"

#include <algorithm>
#include <set>

namespace ubuzima::schema {

using nlohmann::json;

std::string_view to_string(FieldType t) {
    switch (t) {
        case FieldType::Text: return "text";
        case FieldType::Int: return "int";
        case FieldType::Real: return "real";
        case FieldType::Bool: return "bool";
        case FieldType::Date: return "date";
        case FieldType::Timestamp: return "ts";
        case FieldType::Json: return "json";
        case FieldType::Enum: return "enum";
    }
    return "text";
}

std::string_view to_string(TableClass c) {
    switch (c) {
        case TableClass::Reference: return "reference";
        case TableClass::Editable: return "editable";
        case TableClass::Sealed: return "sealed";
        case TableClass::AppendOnly: return "append_only";
    }
    return "editable";
}

const FieldDef* TableDef::field(std::string_view field_name) const {
    for (const FieldDef& f : fields)
        if (f.name == field_name) return &f;
    return nullptr;
}

bool TableDef::is_sealing_value(const Value& value) const {
    if (!seal || !value.is_string()) return false;
    const auto& s = value.get_ref<const std::string&>();
    return std::find(seal->values.begin(), seal->values.end(), s) != seal->values.end();
}

const TableDef* Schema::table(std::string_view name) const {
    for (const TableDef& t : m_tables)
        if (t.name == name) return &t;
    return nullptr;
}

namespace {

Status bad_schema(std::string msg) { return Status(ErrorCode::InvalidArgument, "schema: " + std::move(msg)); }

bool valid_identifier(const std::string& s) {
    if (s.empty() || s.size() > 63 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

std::optional<FieldType> parse_type(const std::string& s) {
    static const std::map<std::string, FieldType> kTypes = {
        {"text", FieldType::Text}, {"int", FieldType::Int},  {"real", FieldType::Real},
        {"bool", FieldType::Bool}, {"date", FieldType::Date}, {"ts", FieldType::Timestamp},
        {"json", FieldType::Json}, {"enum", FieldType::Enum}};
    auto it = kTypes.find(s);
    if (it == kTypes.end()) return std::nullopt;
    return it->second;
}

std::optional<TableClass> parse_class(const std::string& s) {
    if (s == "reference") return TableClass::Reference;
    if (s == "editable") return TableClass::Editable;
    if (s == "sealed") return TableClass::Sealed;
    if (s == "append_only") return TableClass::AppendOnly;
    return std::nullopt;
}

Result<FieldDef> parse_field(const json& jf, const std::string& table) {
    if (!jf.is_object() || !jf.contains("name") || !jf["name"].is_string() || !jf.contains("type") ||
        !jf["type"].is_string())
        return bad_schema(table + ": every field needs a name and a type");
    FieldDef f;
    f.name = jf["name"].get<std::string>();
    if (!valid_identifier(f.name) || f.name == "id") return bad_schema(table + ": bad field name '" + f.name + "'");
    auto type = parse_type(jf["type"].get<std::string>());
    if (!type) return bad_schema(table + "." + f.name + ": unknown type");
    f.type = *type;
    f.required = jf.value("required", false);
    if (f.type == FieldType::Enum) {
        if (!jf.contains("values") || !jf["values"].is_array() || jf["values"].empty())
            return bad_schema(table + "." + f.name + ": enum needs values");
        for (const json& v : jf["values"]) {
            if (!v.is_string()) return bad_schema(table + "." + f.name + ": enum values are strings");
            f.values.push_back(v.get<std::string>());
        }
    }
    if (jf.contains("min") && jf["min"].is_number()) f.min = jf["min"].get<double>();
    if (jf.contains("max") && jf["max"].is_number()) f.max = jf["max"].get<double>();
    if (jf.contains("max_length") && jf["max_length"].is_number_unsigned())
        f.max_length = jf["max_length"].get<std::size_t>();
    if (jf.contains("references") && jf["references"].is_string()) f.references = jf["references"].get<std::string>();
    if (jf.contains("actor")) {
        if (!jf["actor"].is_string() || jf["actor"].get_ref<const std::string&>().empty() || f.type != FieldType::Text)
            return bad_schema(table + "." + f.name + ": actor must be \"create\" or a field name, on a text field");
        f.actor = jf["actor"].get<std::string>();
    }
    if (jf.contains("value_roles")) {
        const json& vr = jf["value_roles"];
        if (!vr.is_object() || f.type != FieldType::Enum)
            return bad_schema(table + "." + f.name + ": value_roles maps enum values to role lists");
        for (auto it = vr.begin(); it != vr.end(); ++it) {
            if (std::find(f.values.begin(), f.values.end(), it.key()) == f.values.end() || !it.value().is_array())
                return bad_schema(table + "." + f.name + ": value_roles names an unknown value " + it.key());
            std::vector<std::string>& roles = f.value_roles[it.key()];
            for (const json& r : it.value())
                if (r.is_string()) roles.push_back(r.get<std::string>());
        }
    }
    return f;
}

Result<TableDef> parse_table(const json& jt) {
    if (!jt.is_object() || !jt.contains("name") || !jt["name"].is_string())
        return bad_schema("every table needs a name");
    TableDef t;
    t.name = jt["name"].get<std::string>();
    if (!valid_identifier(t.name)) return bad_schema("bad table name '" + t.name + "'");
    auto cls = parse_class(jt.value("class", std::string()));
    if (!cls) return bad_schema(t.name + ": class must be reference, editable, sealed or append_only");
    t.cls = *cls;
    if (!jt.contains("fields") || !jt["fields"].is_array()) return bad_schema(t.name + ": fields must be an array");
    std::set<std::string> names;
    for (const json& jf : jt["fields"]) {
        auto f = parse_field(jf, t.name);
        if (!f.ok()) return f.status();
        if (!names.insert(f->name).second) return bad_schema(t.name + ": duplicate field " + f->name);
        t.fields.push_back(std::move(*f));
    }
    if (jt.contains("scope") && jt["scope"].is_string()) {
        t.scope_field = jt["scope"].get<std::string>();
        if (*t.scope_field != "id" && !t.field(*t.scope_field))
            return bad_schema(t.name + ": scope field " + *t.scope_field + " is not a field");
    }
    if (jt.contains("seal") && jt["seal"].is_object()) {
        const json& js = jt["seal"];
        SealRule rule;
        rule.field = js.value("field", std::string());
        if (!t.field(rule.field)) return bad_schema(t.name + ": seal field is not a field");
        if (js.contains("values") && js["values"].is_array())
            for (const json& v : js["values"])
                if (v.is_string()) rule.values.push_back(v.get<std::string>());
        t.seal = std::move(rule);
    }
    if (jt.contains("sealed_with") && jt["sealed_with"].is_object()) {
        SealedWith sw{jt["sealed_with"].value("table", std::string()), jt["sealed_with"].value("field", std::string())};
        if (!t.field(sw.field)) return bad_schema(t.name + ": sealed_with field is not a field");
        t.sealed_with = std::move(sw);
    }
    if (t.cls == TableClass::Sealed && !t.seal && !t.sealed_with)
        return bad_schema(t.name + ": a sealed table needs seal or sealed_with");
    if (jt.contains("write_roles")) {
        if (!jt["write_roles"].is_array()) return bad_schema(t.name + ": write_roles must be an array of roles");
        for (const json& r : jt["write_roles"])
            if (r.is_string()) t.write_roles.push_back(r.get<std::string>());
    }
    for (const FieldDef& f : t.fields)
        if (f.is_actor() && f.actor != "create" && !t.field(f.actor))
            return bad_schema(t.name + "." + f.name + ": actor names unknown field " + f.actor);
    return t;
}

}  // namespace

Result<Schema> Schema::parse(std::string_view json_text) {
    json doc = json::parse(json_text.begin(), json_text.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return bad_schema("not a JSON object");
    Schema schema;
    if (!doc.contains("schema_version") || !doc["schema_version"].is_number_integer() ||
        doc["schema_version"].get<int>() < 1)
        return bad_schema("schema_version must be a positive integer");
    schema.m_version = doc["schema_version"].get<int>();
    if (!doc.contains("tables") || !doc["tables"].is_array()) return bad_schema("tables must be an array");
    std::set<std::string> names;
    for (const json& jt : doc["tables"]) {
        auto t = parse_table(jt);
        if (!t.ok()) return t.status();
        if (!names.insert(t->name).second) return bad_schema("duplicate table " + t->name);
        schema.m_tables.push_back(std::move(*t));
    }
    for (const TableDef& t : schema.m_tables)
        if (t.sealed_with && !schema.table(t.sealed_with->table))
            return bad_schema(t.name + ": sealed_with names unknown table " + t.sealed_with->table);
    return schema;
}

}  // namespace ubuzima::schema
