// Ubuzima Sync — MIT licence.
// Health and the auth endpoints: login, refresh, logout.
#include "api/api.hpp"
#include "api/json_input.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

// A login or refresh body is three short strings: anything larger is not one, and these routes
// answer anyone, so they must cost next to nothing to refuse.
constexpr std::size_t kAuthBody = 4096;

json user_json(const AuthUser& u) {
    return json{{"id", u.id}, {"username", u.username}, {"role", std::string(role_name(u.role))}, {"facilities", u.facilities}};
}

http::Response grant_response(const TokenGrant& g) {
    json j{{"access_token", g.access_token}, {"token_type", "Bearer"},      {"expires_in", g.expires_in},
           {"refresh_token", g.refresh_token}, {"user", user_json(g.user)}};
    return json_response(200, j.dump());
}

}  // namespace

void Api::add_auth_routes() {
    add({"GET", "/v1/health", {}, 0, false, &Api::health, "liveness, versions"});
    add({"POST", "/v1/auth/login", {}, kAuthBody, false, &Api::login, "password login of a device"});
    add({"POST", "/v1/auth/refresh", {}, kAuthBody, false, &Api::refresh, "rotates the refresh token"});
    add({"POST", "/v1/auth/logout", RoleSet::all(), kAuthBody, false, &Api::logout, "ends the device's login"});
}

http::Response Api::health(const Call&) {
    json j{{"status", "ok"},
           {"version", kServerVersion},
           {"protocol", sync::kProtocolVersion},
           {"schema_version", m_sync.schema().version()}};
    return json_response(200, j.dump());
}

http::Response Api::login(const Call& call) {
    auto j = parse_body_object(call.body, {"username", "password", "device_id"});
    if (!j.ok()) return error_response(j.status());
    auto username = string_member(*j, "username", 64);
    auto password = string_member(*j, "password", 1024);
    auto device = string_member(*j, "device_id", 128);
    for (const Status& s : {username.status(), password.status(), device.status()})
        if (!s.ok()) return error_response(s);
    RetryHint hint;
    auto grant = m_auth.login(*username, *password, *device, call.request.remote_address, &hint);
    if (!grant.ok()) {
        count_auth_failure("login", grant.status());
        return error_response(grant.status(), hint.retry_after_s);
    }
    call.note.user_id = grant->user.id;
    call.note.device_id = *device;
    return grant_response(*grant);
}

http::Response Api::refresh(const Call& call) {
    auto j = parse_body_object(call.body, {"refresh_token", "device_id"});
    if (!j.ok()) return error_response(j.status());
    auto token = string_member(*j, "refresh_token", 256);
    auto device = string_member(*j, "device_id", 128);
    for (const Status& s : {token.status(), device.status()})
        if (!s.ok()) return error_response(s);
    auto grant = m_auth.refresh(*token, *device, call.request.remote_address);
    if (!grant.ok()) {
        count_auth_failure("refresh", grant.status());
        return error_response(grant.status());
    }
    call.note.user_id = grant->user.id;
    call.note.device_id = *device;
    return grant_response(*grant);
}

http::Response Api::logout(const Call& call) {
    auto j = parse_body_object(call.body, {}, /*empty_ok=*/true);
    if (!j.ok()) return error_response(j.status());
    UBUZIMA_TRY_RESPONSE(m_auth.logout(*call.user, call.request.remote_address));
    return json_response(200, R"({"status":"logged_out"})");
}

}  // namespace ubuzima::server
