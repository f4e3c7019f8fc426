// Ubuzima Sync — MIT licence.
// Route matching on decoded segments.
#include "http/router.hpp"

#include "http/message.hpp"

namespace ubuzima::server::http {

namespace {

bool is_param(const std::string& part) { return part.size() > 2 && part.front() == '{' && part.back() == '}'; }

}  // namespace

bool Router::add(const std::string& method, const std::string& pattern, std::size_t id) {
    std::vector<std::string> parts = split_path(pattern);
    if (parts.empty() || method.empty()) return false;
    for (const std::string& p : parts)
        if (p.empty()) return false;
    for (const Entry& e : m_entries)
        if (e.method == method && e.parts == parts) return false;
    m_entries.push_back(Entry{method, std::move(parts), id});
    return true;
}

bool Router::matches(const Entry& e, const std::vector<std::string>& segments,
                     std::map<std::string, std::string>* params) {
    if (e.parts.size() != segments.size()) return false;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        if (is_param(e.parts[i])) {
            if (segments[i].empty()) return false;
        } else if (e.parts[i] != segments[i]) {
            return false;
        }
    }
    if (params)
        for (std::size_t i = 0; i < segments.size(); ++i)
            if (is_param(e.parts[i])) (*params)[e.parts[i].substr(1, e.parts[i].size() - 2)] = segments[i];
    return true;
}

Router::Match Router::match(const std::string& method, const std::vector<std::string>& segments) const {
    Match m;
    for (const Entry& e : m_entries) {
        if (!matches(e, segments, nullptr)) continue;
        m.path_known = true;
        if (m.allow.find(e.method) == std::string::npos) m.allow += (m.allow.empty() ? "" : ", ") + e.method;
        if (!m.id && e.method == method) {
            m.id = e.id;
            matches(e, segments, &m.params);
        }
    }
    return m;
}

}  // namespace ubuzima::server::http
