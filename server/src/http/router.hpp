// Ubuzima Sync — MIT licence.
// Matches a method and decoded path segments against route patterns ("/v1/admin/users/{name}").
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ubuzima::server::http {

/// Immutable after setup; match() is thread-safe.
class Router {
public:
    /// Registers `pattern` for `method` under `id`. A segment "{name}" matches any one non-empty
    /// segment and is returned as a parameter. Returns false for a malformed pattern or a
    /// method + pattern already registered.
    bool add(const std::string& method, const std::string& pattern, std::size_t id);

    struct Match {
        std::optional<std::size_t> id;              ///< the route, when method and path match
        std::map<std::string, std::string> params;  ///< decoded {name} segments
        bool path_known = false;                    ///< some route has this path (then 405, not 404)
        std::string allow;                          ///< the methods this path has, for a 405's Allow
    };
    Match match(const std::string& method, const std::vector<std::string>& segments) const;

private:
    struct Entry {
        std::string method;
        std::vector<std::string> parts;
        std::size_t id;
    };
    static bool matches(const Entry& e, const std::vector<std::string>& segments, std::map<std::string, std::string>* params);
    std::vector<Entry> m_entries;
};

}  // namespace ubuzima::server::http
