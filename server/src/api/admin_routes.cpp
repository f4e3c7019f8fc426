// Ubuzima Sync — MIT licence.
// Administration: users, devices and the audit log. Coordinators read users and devices;
// changing them, and the audit log, are the admin's.
#include <unordered_map>

#include "api/api.hpp"
#include "api/json_input.hpp"
#include "audit/audit_log.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

constexpr std::size_t kAdminBody = 16 * 1024;

json user_view(const UserRecord& u) {
    return json{{"id", u.id},
                {"username", u.username},
                {"role", u.role},
                {"facilities", u.facilities},
                {"disabled", u.disabled},
                {"created_at", u.created_at_ms},
                {"updated_at", u.updated_at_ms}};
}

json ms_or_null(std::int64_t ms) { return ms > 0 ? json(ms) : json(); }

json audit_view(const AuditRecord& r) {
    json outcome = json::parse(r.outcome, nullptr, false);
    return json{{"seq", r.seq},
                {"ts", r.ts_ms},
                {"action", r.action},
                {"actor_user", r.actor_user},
                {"actor_device", r.actor_device},
                {"object", r.object},
                {"outcome", outcome.is_discarded() ? json(r.outcome) : outcome},
                {"address", r.address},
                {"prev_hash", r.prev_hash},
                {"hash", r.hash}};
}

}  // namespace

void Api::add_admin_routes() {
    const RoleSet admins{Role::Admin};
    const RoleSet readers{Role::Admin, Role::Coordinator};
    add({"GET", "/v1/admin/users", readers, 0, false, &Api::list_users, "every user (no password data)"});
    add({"POST", "/v1/admin/users", admins, kAdminBody, false, &Api::create_user, "creates a user"});
    add({"PATCH", "/v1/admin/users/{username}", admins, kAdminBody, false, &Api::update_user,
         "role, facilities, disabled, password"});
    add({"GET", "/v1/admin/devices", readers, 0, false, &Api::list_devices, "devices, last seen and sync, rejections"});
    add({"POST", "/v1/admin/devices/{device_id}/revoke", admins, 1024, false, &Api::revoke_device,
         "ends every token of a device"});
    add({"GET", "/v1/admin/audit", admins, 0, false, &Api::audit_page, "the audit log, paged"});
    add({"GET", "/v1/admin/audit/head", admins, 0, false, &Api::audit_head, "the last record, for safekeeping"});
}

http::Response Api::list_users(const Call&) {
    auto users = m_users.list_users();
    if (!users.ok()) return error_response(users.status());
    json out = json::array();
    for (const UserRecord& u : *users) out.push_back(user_view(u));
    return json_response(200, json{{"users", std::move(out)}}.dump());
}

http::Response Api::create_user(const Call& call) {
    auto j = parse_body_object(call.body, {"username", "password", "role", "facilities"});
    if (!j.ok()) return error_response(j.status());
    auto username = string_member(*j, "username", 64);
    auto password = string_member(*j, "password", 1024);
    auto role = string_member(*j, "role", 32);
    auto facilities = optional_strings_member(*j, "facilities", 128, 1000);
    for (const Status& s : {username.status(), password.status(), role.status(), facilities.status()})
        if (!s.ok()) return error_response(s);
    auto created = m_users.create_user(Actor::of(*call.user, call.request.remote_address), *username, *password, *role,
                                       facilities->value_or(std::vector<std::string>{}));
    if (!created.ok()) return error_response(created.status());
    return json_response(201, user_view(*created).dump());
}

http::Response Api::update_user(const Call& call) {
    auto j = parse_body_object(call.body, {"role", "facilities", "disabled", "password"});
    if (!j.ok()) return error_response(j.status());
    UserPatch patch;
    auto role = optional_string_member(*j, "role", 32);
    auto facilities = optional_strings_member(*j, "facilities", 128, 1000);
    auto disabled = optional_bool_member(*j, "disabled");
    auto password = optional_string_member(*j, "password", 1024);
    for (const Status& s : {role.status(), facilities.status(), disabled.status(), password.status()})
        if (!s.ok()) return error_response(s);
    patch.role = *role;
    patch.facilities = *facilities;
    patch.disabled = *disabled;
    patch.password = *password;
    const std::string& username = call.params.at("username");
    // An admin cannot lock themselves out by accident: another admin must do it.
    if (username == call.user->username && ((patch.disabled && *patch.disabled) || (patch.role && *patch.role != "admin")))
        return error_response(Status(ErrorCode::Forbidden, "an admin cannot disable or demote their own account"));
    auto updated = m_users.update_user(Actor::of(*call.user, call.request.remote_address), username, patch);
    if (!updated.ok()) return error_response(updated.status());
    return json_response(200, user_view(*updated).dump());
}

http::Response Api::list_devices(const Call&) {
    auto devices = m_users.list_devices();
    auto users = m_users.list_users();
    if (!devices.ok()) return error_response(devices.status());
    if (!users.ok()) return error_response(users.status());
    std::unordered_map<std::string, std::string> names;
    for (const UserRecord& u : *users) names[u.id] = u.username;
    json out = json::array();
    for (const DeviceRecord& d : *devices) {
        out.push_back(json{{"device_id", d.id},
                           {"user_id", d.user_id},
                           {"username", names.count(d.user_id) ? json(names[d.user_id]) : json()},
                           {"first_seen", d.first_seen_ms},
                           {"last_seen", d.last_seen_ms},
                           {"last_sync", ms_or_null(d.last_sync_ms)},
                           {"revoked_at", d.revoked_at_ms ? json(*d.revoked_at_ms) : json()},
                           {"pending", d.reported_pending >= 0 ? json(d.reported_pending) : json()},
                           {"rejected", d.reported_rejected >= 0 ? json(d.reported_rejected) : json()},
                           {"rejected_total", d.rejected_total}});
    }
    return json_response(200, json{{"devices", std::move(out)}}.dump());
}

http::Response Api::revoke_device(const Call& call) {
    auto j = parse_body_object(call.body, {}, /*empty_ok=*/true);
    if (!j.ok()) return error_response(j.status());
    const std::string& device = call.params.at("device_id");
    UBUZIMA_TRY_RESPONSE(m_users.revoke_device(Actor::of(*call.user, call.request.remote_address), device));
    return json_response(200, json{{"device_id", device}, {"status", "revoked"}}.dump());
}

http::Response Api::audit_page(const Call& call) {
    auto after = int_param(call.request.query, "after", 0, INT64_MAX, 0);
    auto limit = int_param(call.request.query, "limit", 1, 1000, 200);
    for (const Status& s : {after.status(), limit.status()})
        if (!s.ok()) return error_response(s);
    std::vector<AuditRecord> page;
    UBUZIMA_TRY_RESPONSE(m_store.read([&](ReadTxn& tx) -> Status {
        auto records = tx.audit_after(*after, static_cast<int>(*limit));
        if (!records.ok()) return records.status();
        page = std::move(*records);
        return {};
    }));
    json out = json::array();
    for (const AuditRecord& r : page) out.push_back(audit_view(r));
    json next = page.size() == static_cast<std::size_t>(*limit) ? json(page.back().seq) : json();
    return json_response(200, json{{"records", std::move(out)}, {"next_after", next}}.dump());
}

http::Response Api::audit_head(const Call&) {
    AuditHead head{0, std::string(64, '0')};
    UBUZIMA_TRY_RESPONSE(m_store.read([&](ReadTxn& tx) -> Status {
        auto last = tx.last_audit();
        if (!last.ok()) return last.status();
        if (*last) head = AuditHead{(*last)->seq, (*last)->hash};
        return {};
    }));
    return json_response(200, json{{"seq", head.seq}, {"hash", head.hash}, {"head", head.to_string()}}.dump());
}

}  // namespace ubuzima::server
