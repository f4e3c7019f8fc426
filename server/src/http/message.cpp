// Ubuzima Sync — MIT licence.
// Path and query decoding shared by every listener.
#include "http/message.hpp"

namespace ubuzima::server::http {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

Response internal_error() {
    Response r;
    r.status = 500;
    r.headers["Content-Type"] = "application/json";
    r.body = R"({"error":{"code":"internal","message":"internal server error"}})";
    return r;
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%' && i + 2 < text.size()) {
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
    return out;
}

std::vector<std::string> split_path(std::string_view raw_path) {
    std::vector<std::string> out;
    if (raw_path.empty() || raw_path.front() != '/') return out;
    std::size_t start = 1;
    for (;;) {
        const std::size_t slash = raw_path.find('/', start);
        const std::string_view part =
            raw_path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        out.push_back(percent_decode(part, false));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return out;
}

std::string display_path(std::string_view raw_path) {
    std::string out;
    for (const std::string& s : split_path(raw_path)) out += "/" + s;
    return out.empty() ? std::string(raw_path) : out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
    std::map<std::string, std::string> out;
    std::size_t start = 0;
    while (start <= query.size()) {
        const std::size_t amp = query.find('&', start);
        const std::string_view pair =
            query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
        if (!pair.empty()) {
            const std::size_t eq = pair.find('=');
            const std::string key = percent_decode(pair.substr(0, eq), true);
            const std::string value =
                eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
            out[key] = value;
        }
        if (amp == std::string_view::npos) break;
        start = amp + 1;
    }
    return out;
}

}  // namespace ubuzima::server::http
