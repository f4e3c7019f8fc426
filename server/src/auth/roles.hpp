// Ubuzima Sync — MIT licence.
// The five roles, sets of roles (route tables, schema write rules) and the authenticated caller.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ubuzima::server {

enum class Role : std::uint8_t { Admin, Coordinator, Assessor, FocalPoint, Practitioner };

/// "admin", "coordinator", "assessor", "focal_point", "practitioner".
std::string_view role_name(Role role);
std::optional<Role> parse_role(std::string_view name);

/// A set of roles. Empty = nobody (on a route: public, no token needed).
class RoleSet {
public:
    constexpr RoleSet() = default;
    constexpr RoleSet(std::initializer_list<Role> roles) {
        for (Role r : roles) m_bits |= bit(r);
    }
    static constexpr RoleSet all() {
        return {Role::Admin, Role::Coordinator, Role::Assessor, Role::FocalPoint, Role::Practitioner};
    }
    /// From role names; unknown names are ignored (the schema checker refuses them earlier).
    static RoleSet from_names(const std::vector<std::string>& names);

    constexpr bool has(Role r) const { return (m_bits & bit(r)) != 0; }
    constexpr bool empty() const { return m_bits == 0; }
    /// "admin, coordinator" (for messages and docs).
    std::string to_string() const;

private:
    static constexpr std::uint8_t bit(Role r) { return static_cast<std::uint8_t>(1u << static_cast<unsigned>(r)); }
    std::uint8_t m_bits = 0;
};

/// The authenticated caller of a request, from its access token (never from the request body).
struct AuthUser {
    std::string id;
    std::string username;
    Role role = Role::Assessor;
    std::vector<std::string> facilities;
    std::string device_id;  ///< the device the token was issued to
    std::string family_id;  ///< the login (token family) the token belongs to

    /// admin and coordinator see every facility; the other roles only their own.
    bool sees_all() const { return role == Role::Admin || role == Role::Coordinator; }
    bool may_see(const std::string& facility) const;
    /// May review conflicts and validate sealed records (the Ministry's step).
    bool is_reviewer() const { return sees_all(); }
};

}  // namespace ubuzima::server
