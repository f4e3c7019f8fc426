// Ubuzima Sync — MIT licence.
// Internal: compact JSON appended straight to a string, byte for byte what nlohmann's dump()
// writes for the same value, for the sync messages' hot parts (a pull page, a push batch).
// Building a json tree per row only to dump it cost ~70k instructions per pulled row on the
// server (bench/performance_notes.md). Callers write object keys in sorted order, as dump() does.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ubuzima/sync/flat_json.hpp"

namespace ubuzima::sync::detail {

class JsonOut {
public:
    explicit JsonOut(std::string& out)
        : m_out(out),
          m_writer(nlohmann::detail::output_adapter<char, std::string>(out), ' ', nlohmann::json::error_handler_t::strict) {}

    JsonOut& raw(std::string_view text) {
        m_out += text;
        return *this;
    }
    JsonOut& string(std::string_view text) {
        append_json_string(m_out, text);
        return *this;
    }
    JsonOut& value(const nlohmann::json& v) {
        if (v.is_string()) append_json_string(m_out, v.get_ref<const std::string&>());
        else m_writer.dump(v, false, false, 0);
        return *this;
    }
    /// `"key":`, preceded by a comma unless `first`.
    JsonOut& key(std::string_view name, bool first = false) {
        if (!first) m_out += ',';
        append_json_string(m_out, name);
        m_out += ':';
        return *this;
    }

private:
    std::string& m_out;
    nlohmann::detail::serializer<nlohmann::json> m_writer;
};

}  // namespace ubuzima::sync::detail
