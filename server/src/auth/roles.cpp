// Ubuzima Sync — MIT licence.
// Role names and sets.
#include "auth/roles.hpp"

#include <algorithm>

namespace ubuzima::server {

namespace {

constexpr Role kRoles[] = {Role::Admin, Role::Coordinator, Role::Assessor, Role::FocalPoint, Role::Practitioner};

}  // namespace

std::string_view role_name(Role role) {
    switch (role) {
        case Role::Admin: return "admin";
        case Role::Coordinator: return "coordinator";
        case Role::Assessor: return "assessor";
        case Role::FocalPoint: return "focal_point";
        case Role::Practitioner: return "practitioner";
    }
    return "?";
}

std::optional<Role> parse_role(std::string_view name) {
    for (Role r : kRoles)
        if (role_name(r) == name) return r;
    return std::nullopt;
}

RoleSet RoleSet::from_names(const std::vector<std::string>& names) {
    RoleSet out;
    for (const std::string& n : names)
        if (auto r = parse_role(n)) out.m_bits |= bit(*r);
    return out;
}

std::string RoleSet::to_string() const {
    std::string out;
    for (Role r : kRoles) {
        if (!has(r)) continue;
        if (!out.empty()) out += ", ";
        out += role_name(r);
    }
    return out.empty() ? "nobody" : out;
}

bool AuthUser::may_see(const std::string& facility) const {
    return sees_all() || std::find(facilities.begin(), facilities.end(), facility) != facilities.end();
}

}  // namespace ubuzima::server
