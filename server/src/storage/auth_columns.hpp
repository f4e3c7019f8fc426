// Ubuzima Sync — MIT licence.
// Internal to storage/: the column lists of the user, token and device tables and the facilities
// text of a user, the same on the SQLite and PostgreSQL stores.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ubuzima::server::columns {

inline constexpr const char* kUser = "id, username, password_hash, role, facilities, created_at, updated_at, disabled";
inline constexpr const char* kToken =
    "hash, kind, family, user_id, device_id, parent, issued_at, expires_at, used_at, regranted, revoked_at";
inline constexpr const char* kDevice =
    "id, user_id, first_seen, last_seen, last_sync, revoked_at, revoked_by, reported_pending, reported_rejected, "
    "rejected_total";

/// `srv_users.facilities`: a JSON array of facility ids (anything else reads as none).
inline std::vector<std::string> parse_facilities(const std::string& text) {
    std::vector<std::string> out;
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_array()) return out;
    for (const nlohmann::json& v : j)
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

}  // namespace ubuzima::server::columns
