// Ubuzima Sync — MIT licence.
#include "ubuzima/sync/flat_json.hpp"

#include <nlohmann/json.hpp>

namespace ubuzima::sync {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A printable-ASCII string without escapes: the quotes and what is between them.
bool read_plain_string(std::string_view text, std::size_t& pos, std::string_view& out) {
    if (pos >= text.size() || text[pos] != '"') return false;
    const std::size_t start = ++pos;
    while (pos < text.size() && text[pos] != '"') {
        const auto c = static_cast<unsigned char>(text[pos]);
        // Escapes, control characters and non-ASCII bytes (whose UTF-8 validity the full parser
        // checks) are left to the full parser.
        if (c == '\\' || c < 0x20 || c >= 0x80) return false;
        ++pos;
    }
    if (pos >= text.size()) return false;
    out = text.substr(start, pos - start);
    ++pos;
    return true;
}

// An integer as dump() writes one: optional '-', then digits, no leading zero unless alone.
bool read_integer(std::string_view text, std::size_t& pos, std::string_view& out) {
    const std::size_t start = pos;
    if (pos < text.size() && text[pos] == '-') ++pos;
    const std::size_t digits = pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    if (pos == digits) return false;
    if (text[digits] == '0' && pos - digits > 1) return false;
    out = text.substr(start, pos - start);
    return true;
}

}  // namespace

std::optional<std::vector<FlatMember>> read_flat_object(std::string_view text) {
    std::vector<FlatMember> members;
    std::size_t pos = 0;
    if (text.size() < 2 || text[pos++] != '{') return std::nullopt;
    if (text == "{}") return members;
    for (;;) {
        FlatMember m;
        if (!read_plain_string(text, pos, m.key)) return std::nullopt;
        if (pos >= text.size() || text[pos++] != ':') return std::nullopt;
        if (pos < text.size() && text[pos] == '"') {
            if (!read_plain_string(text, pos, m.value)) return std::nullopt;
            m.is_string = true;
        } else if (!read_integer(text, pos, m.value)) {
            return std::nullopt;
        }
        members.push_back(m);
        if (pos >= text.size()) return std::nullopt;
        const char sep = text[pos++];
        if (sep == '}') return pos == text.size() ? std::optional<std::vector<FlatMember>>(std::move(members)) : std::nullopt;
        if (sep != ',') return std::nullopt;
    }
}

void append_json_string(std::string& out, std::string_view text) {
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
            out += nlohmann::json(std::string(text)).dump();
            return;
        }
    }
    out += '"';
    out += text;
    out += '"';
}

void FlatObjectWriter::add_key(std::string_view key) {
    if (m_text.size() > 1) m_text += ',';
    append_json_string(m_text, key);
    m_text += ':';
}

FlatObjectWriter& FlatObjectWriter::add_string(std::string_view key, std::string_view value) {
    add_key(key);
    append_json_string(m_text, value);
    return *this;
}

FlatObjectWriter& FlatObjectWriter::add_integer(std::string_view key, std::int64_t value) {
    add_key(key);
    m_text += std::to_string(value);
    return *this;
}

std::string FlatObjectWriter::finish() {
    m_text += '}';
    std::string out = std::move(m_text);
    m_text = "{";
    return out;
}

}  // namespace ubuzima::sync
