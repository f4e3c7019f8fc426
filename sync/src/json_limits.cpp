// Ubuzima Sync — MIT licence.
// Size and depth bounds for outside JSON, UTF-8 checks.
#include "ubuzima/sync/json_limits.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ubuzima::sync {

using nlohmann::json;

Status check_json_limits(std::string_view text, const JsonLimits& limits) {
    if (text.size() > limits.max_bytes)
        return Status(ErrorCode::TooLarge, "JSON body exceeds " + std::to_string(limits.max_bytes) + " bytes");
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        switch (c) {
            case '"': in_string = true; break;
            case '[':
            case '{':
                if (++depth > limits.max_depth)
                    return Status(ErrorCode::BadRequest,
                                  "JSON nests deeper than " + std::to_string(limits.max_depth) + " levels");
                break;
            case ']':
            case '}':
                if (depth > 0) --depth;
                break;
            default: break;
        }
    }
    return {};
}

Result<json> parse_json(std::string_view text, const JsonLimits& limits) {
    UBUZIMA_TRY(check_json_limits(text, limits));
    json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status(ErrorCode::InvalidJson, "body is not valid JSON");
    return j;
}

bool is_valid_utf8(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + text.size();
    while (p < end) {
        const unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int extra = 0;
        std::uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) extra = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) extra = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) extra = 3, cp = c & 0x07;
        else return false;  // a continuation byte first, 0xC0/0xC1 (overlong) or past U+10FFFF
        if (end - p <= extra) return false;
        for (int i = 1; i <= extra; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += extra + 1;
    }
    return true;
}

Status check_json_value(const json& value, int max_depth, std::string_view what) {
    auto invalid = [&](const std::string& why) { return Status(ErrorCode::InvalidValue, std::string(what) + " " + why); };
    std::vector<std::pair<const json*, int>> todo{{&value, 0}};
    while (!todo.empty()) {
        const auto [v, depth] = todo.back();
        todo.pop_back();
        if (v->is_string()) {
            if (!is_valid_utf8(v->get_ref<const std::string&>())) return invalid("holds text that is not valid UTF-8");
        } else if (v->is_structured()) {
            if (depth + 1 > max_depth) return invalid("nests deeper than " + std::to_string(max_depth) + " levels");
            if (v->is_object()) {
                for (auto it = v->begin(); it != v->end(); ++it) {
                    if (!is_valid_utf8(it.key())) return invalid("has a key that is not valid UTF-8");
                    todo.emplace_back(&it.value(), depth + 1);
                }
            } else {
                for (const json& item : *v) todo.emplace_back(&item, depth + 1);
            }
        } else if (v->is_number_float() && !std::isfinite(v->get<double>())) {
            return invalid("holds a number that is not finite");
        }
    }
    return {};
}

}  // namespace ubuzima::sync
