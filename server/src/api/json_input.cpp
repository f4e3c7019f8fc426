// Ubuzima Sync — MIT licence.
// Strict readers for small JSON bodies and query parameters.
#include "api/json_input.hpp"

#include <charconv>
#include <cstring>
#include <map>

#include "ubuzima/sync/json_limits.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

Status bad(std::string message) { return Status(ErrorCode::BadRequest, std::move(message)); }

// Administrative bodies are flat records: a few levels at most.
constexpr int kBodyDepth = 8;

}  // namespace

Result<json> parse_body_object(std::string_view body, std::initializer_list<const char*> allowed, bool empty_ok) {
    if (body.empty() && empty_ok) return json::object();
    auto j = sync::parse_json(body, sync::JsonLimits{static_cast<std::size_t>(-1), kBodyDepth});
    if (!j.ok()) return j.status();
    if (!j->is_object()) return bad("body must be a JSON object");
    for (auto it = j->begin(); it != j->end(); ++it) {
        bool known = false;
        for (const char* a : allowed) known = known || it.key() == a;
        if (!known) return bad("unknown member '" + it.key() + "'");
    }
    return j;
}

Result<std::string> string_member(const json& j, const char* name, std::size_t max_len) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return bad(std::string(name) + " must be a string");
    const auto& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > max_len)
        return bad(std::string(name) + " must have 1 to " + std::to_string(max_len) + " bytes");
    return s;
}

Result<std::optional<std::string>> optional_string_member(const json& j, const char* name, std::size_t max_len) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::optional<std::string>();
    auto s = string_member(j, name, max_len);
    if (!s.ok()) return s.status();
    return std::optional<std::string>(std::move(*s));
}

Result<std::optional<std::vector<std::string>>> optional_strings_member(const json& j, const char* name,
                                                                        std::size_t max_len, std::size_t max_items) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::optional<std::vector<std::string>>();
    const std::string what = std::string(name) + " must be an array of at most " + std::to_string(max_items) +
                             " strings of 1 to " + std::to_string(max_len) + " bytes";
    if (!it->is_array() || it->size() > max_items) return bad(what);
    std::vector<std::string> out;
    for (const json& v : *it) {
        if (!v.is_string() || v.get_ref<const std::string&>().empty() || v.get_ref<const std::string&>().size() > max_len)
            return bad(what);
        out.push_back(v.get<std::string>());
    }
    return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<bool>> optional_bool_member(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::optional<bool>();
    if (!it->is_boolean()) return bad(std::string(name) + " must be true or false");
    return std::optional<bool>(it->get<bool>());
}

Result<std::int64_t> int_param(const std::map<std::string, std::string>& query, const char* name, std::int64_t min,
                               std::int64_t max, std::int64_t fallback) {
    auto it = query.find(name);
    if (it == query.end() || it->second.empty()) return fallback;
    std::int64_t v = 0;
    const char* first = it->second.data();
    const char* last = first + it->second.size();
    const auto [end, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || end != last || v < min || v > max)
        return bad(std::string(name) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return v;
}

}  // namespace ubuzima::server
