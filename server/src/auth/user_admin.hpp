// Ubuzima Sync — MIT licence.
// Administering users and devices: the same operations for the admin API and for the
// `ubuzima-server user|device ...` console commands, each audited.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "auth/auth_service.hpp"

namespace ubuzima::server {

/// Who performs an administrative operation (for the audit log): an API caller, or the console.
struct Actor {
    std::string user_id;    ///< "" for the console
    std::string device_id;  ///< "console" for the console
    std::string address;
    static Actor console() { return Actor{"", "console", ""}; }
    static Actor of(const AuthUser& caller, const std::string& address) {
        return Actor{caller.id, caller.device_id, address};
    }
};

/// A PATCH of one user: the members present change, the others stay.
struct UserPatch {
    std::optional<std::string> role;
    std::optional<std::vector<std::string>> facilities;
    std::optional<bool> disabled;
    std::optional<std::string> password;
};

/// Thread-safe.
class UserAdmin {
public:
    UserAdmin(ServerStore& store, AuthService& auth) : m_store(store), m_auth(auth) {}

    /// Errors: InvalidValue (username, role, password policy, unknown facility), Conflict (taken).
    Result<UserRecord> create_user(const Actor& actor, const std::string& username, const std::string& password,
                                   const std::string& role, const std::vector<std::string>& facilities);
    /// Errors: NotFound, InvalidValue. Disabling a user, or setting a new password, ends every
    /// login of theirs at once. A change of role or facilities takes effect at each device's next
    /// request; its next sync purges what the user may no longer see and brings what became visible.
    Result<UserRecord> update_user(const Actor& actor, const std::string& username, const UserPatch& patch);
    Result<std::vector<UserRecord>> list_users();
    Result<std::optional<UserRecord>> find_user(const std::string& username);

    Result<std::vector<DeviceRecord>> list_devices();
    /// Every token of the device dies at once; its next request gets 401 `revoked`, and so does
    /// a later login from it. Errors: NotFound.
    Status revoke_device(const Actor& actor, const std::string& device_id);

private:
    Status check_facilities(ReadTxn& tx, const std::vector<std::string>& facilities);

    ServerStore& m_store;
    AuthService& m_auth;
};

}  // namespace ubuzima::server
