// Ubuzima Sync — MIT licence.
// Users and devices, administered and audited.
#include "auth/user_admin.hpp"

#include <algorithm>
#include <set>

#include "audit/audit_log.hpp"
#include "auth/passwords.hpp"
#include "ubuzima/sync/ids.hpp"

namespace ubuzima::server {

namespace {

Status invalid(std::string why) { return Status(ErrorCode::InvalidValue, std::move(why)); }

Status check_role(const std::string& role) {
    if (!parse_role(role)) return invalid("role must be admin, coordinator, assessor, focal_point or practitioner");
    return {};
}

std::vector<std::string> sorted_unique(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

}  // namespace

Status UserAdmin::check_facilities(ReadTxn& tx, const std::vector<std::string>& facilities) {
    const schema::Schema& schema = m_auth.options().schema ? *m_auth.options().schema : schema::Schema::builtin();
    const schema::TableDef* table = schema.table("facility");
    if (facilities.size() > 1000) return invalid("at most 1000 facilities per user");
    for (const std::string& id : facilities) {
        if (id.empty() || id.size() > 128) return invalid("facility ids must have 1 to 128 characters");
        if (!table) continue;
        auto row = tx.read_row(*table, id);
        if (!row.ok()) return row.status();
        const bool live = *row && !((*row)->values.count(std::string(sync::kDeletedField)) &&
                                    (*row)->values.at(std::string(sync::kDeletedField)) == true);
        if (!live) return invalid("no facility " + id);
    }
    return {};
}

Result<UserRecord> UserAdmin::create_user(const Actor& actor, const std::string& raw_username,
                                          const std::string& password, const std::string& role,
                                          const std::vector<std::string>& facilities) {
    const std::string username = normalize_username(raw_username);
    UBUZIMA_TRY(check_username(username));
    UBUZIMA_TRY(check_role(role));
    auto hash = m_auth.hash_new_password(password, username);
    if (!hash.ok()) return hash.status();
    const std::int64_t now = m_auth.options().wall();
    UserRecord user{sync::new_uuid_v7(now), username, *hash, role, sorted_unique(facilities), now, now, false};
    UBUZIMA_TRY(m_store.write([&](WriteTxn& tx) -> Status {
        UBUZIMA_TRY(check_facilities(tx, user.facilities));
        UBUZIMA_TRY(tx.insert_user(user));
        AuditEvent e{"user_created",
                     actor.user_id,
                     actor.device_id,
                     user.id,
                     {{"role", role}, {"facilities", static_cast<std::int64_t>(user.facilities.size())}},
                     actor.address};
        return append_audit(tx, e, now);
    }));
    return user;
}

Result<UserRecord> UserAdmin::update_user(const Actor& actor, const std::string& raw_username, const UserPatch& patch) {
    const std::string username = normalize_username(raw_username);
    if (patch.role) UBUZIMA_TRY(check_role(*patch.role));
    std::string new_hash;
    if (patch.password) {
        auto hash = m_auth.hash_new_password(*patch.password, username);
        if (!hash.ok()) return hash.status();
        new_hash = std::move(*hash);
    }
    const std::int64_t now = m_auth.options().wall();
    UserRecord updated;
    UBUZIMA_TRY(m_store.write([&](WriteTxn& tx) -> Status {
        auto found = tx.find_user_by_name(username);
        if (!found.ok()) return found.status();
        if (!*found) return Status(ErrorCode::NotFound, "no user " + username);
        updated = **found;
        nlohmann::json changed = nlohmann::json::object();
        if (patch.role && *patch.role != updated.role) {
            changed["role"] = *patch.role;
            updated.role = *patch.role;
        }
        if (patch.facilities) {
            std::vector<std::string> next = sorted_unique(*patch.facilities);
            UBUZIMA_TRY(check_facilities(tx, next));
            if (next != updated.facilities) {
                std::set<std::string> before(updated.facilities.begin(), updated.facilities.end());
                std::set<std::string> after(next.begin(), next.end());
                std::int64_t added = 0, removed = 0;
                for (const std::string& f : after) added += before.count(f) ? 0 : 1;
                for (const std::string& f : before) removed += after.count(f) ? 0 : 1;
                changed["facilities_added"] = added;
                changed["facilities_removed"] = removed;
                updated.facilities = std::move(next);
            }
        }
        if (patch.disabled && *patch.disabled != updated.disabled) {
            changed["disabled"] = *patch.disabled;
            updated.disabled = *patch.disabled;
        }
        if (!new_hash.empty()) {
            changed["password"] = "changed";
            updated.password_hash = new_hash;
        }
        updated.updated_at_ms = now;
        UBUZIMA_TRY(tx.update_user(updated));
        // A new password or a disabled account ends every login at once (a stolen password or
        // a departed user); other changes apply at each device's next request.
        if (updated.disabled || !new_hash.empty()) {
            auto ended = tx.revoke_families(updated.id, "", now, updated.disabled ? "user_disabled" : "password_changed");
            if (!ended.ok()) return ended.status();
            changed["logins_ended"] = *ended;
        }
        AuditEvent e{"user_updated", actor.user_id, actor.device_id, updated.id, changed, actor.address};
        return append_audit(tx, e, now);
    }));
    return updated;
}

Result<std::vector<UserRecord>> UserAdmin::list_users() {
    std::vector<UserRecord> users;
    UBUZIMA_TRY(m_store.read([&](ReadTxn& tx) -> Status {
        auto all = tx.list_users();
        if (!all.ok()) return all.status();
        users = std::move(*all);
        return {};
    }));
    return users;
}

Result<std::optional<UserRecord>> UserAdmin::find_user(const std::string& username) {
    std::optional<UserRecord> user;
    UBUZIMA_TRY(m_store.read([&](ReadTxn& tx) -> Status {
        auto found = tx.find_user_by_name(normalize_username(username));
        if (!found.ok()) return found.status();
        user = std::move(*found);
        return {};
    }));
    return user;
}

Result<std::vector<DeviceRecord>> UserAdmin::list_devices() {
    std::vector<DeviceRecord> devices;
    UBUZIMA_TRY(m_store.read([&](ReadTxn& tx) -> Status {
        auto all = tx.list_devices();
        if (!all.ok()) return all.status();
        devices = std::move(*all);
        return {};
    }));
    return devices;
}

Status UserAdmin::revoke_device(const Actor& actor, const std::string& device_id) {
    const std::int64_t now = m_auth.options().wall();
    return m_store.write([&](WriteTxn& tx) -> Status {
        auto device = tx.find_device(device_id);
        if (!device.ok()) return device.status();
        if (!*device) return Status(ErrorCode::NotFound, "no device " + device_id);
        DeviceRecord d = **device;
        if (!d.revoked_at_ms) {
            d.revoked_at_ms = now;
            d.revoked_by = actor.user_id.empty() ? "console" : actor.user_id;
            UBUZIMA_TRY(tx.put_device(d));
        }
        auto ended = tx.revoke_families("", device_id, now, "device_revoked");
        if (!ended.ok()) return ended.status();
        AuditEvent e{"device_revoked", actor.user_id, actor.device_id, device_id, {{"logins_ended", *ended}},
                     actor.address};
        return append_audit(tx, e, now);
    });
}

}  // namespace ubuzima::server
