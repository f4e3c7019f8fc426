// Ubuzima Sync — MIT licence.
// The endpoints: health, auth, users, sync and conflict review. Bodies are parsed without
// exceptions; every bad shape becomes a 400 with a precise message.
#include <charconv>

#include "api/api.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

Status bad(std::string message) { return Status(ErrorCode::BadRequest, std::move(message)); }

Result<json> parse_object(const std::string& body) {
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status(ErrorCode::InvalidJson, "body is not valid JSON");
    if (!j.is_object()) return bad("body must be a JSON object");
    return j;
}

/// A required string member of at most `max_len` bytes.
Result<std::string> string_member(const json& j, const char* name, std::size_t max_len = 1024) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return bad(std::string(name) + " must be a string");
    const auto& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > max_len)
        return bad(std::string(name) + " must have 1 to " + std::to_string(max_len) + " characters");
    return s;
}

json user_json(const AuthUser& u) {
    return json{{"id", u.id}, {"username", u.username}, {"role", u.role}, {"facilities", u.facilities}};
}

HttpResponse grant_response(const TokenGrant& g) {
    json j{{"access_token", g.access_token}, {"token_type", "Bearer"},      {"expires_in", g.expires_in},
           {"refresh_token", g.refresh_token}, {"user", user_json(g.user)}};
    return json_response(200, j.dump());
}

json versioned(const sync::VersionedValue& v) {
    return json{{"value", v.value}, {"version", v.version.to_string()}};
}

}  // namespace

HttpResponse Api::health() {
    json j{{"status", "ok"},
           {"version", kServerVersion},
           {"protocol", sync::kProtocolVersion},
           {"schema_version", schema::Schema::builtin().version()}};
    return json_response(200, j.dump());
}

HttpResponse Api::login(const std::string& body) {
    auto j = parse_object(body);
    if (!j.ok()) return error_response(j.status());
    auto username = string_member(*j, "username", 64);
    auto password = string_member(*j, "password");
    auto device = string_member(*j, "device_id", 128);
    for (const Status& s : {username.status(), password.status(), device.status()})
        if (!s.ok()) return error_response(s);
    auto grant = m_auth.login(*username, *password, *device);
    if (!grant.ok()) return error_response(grant.status());
    return grant_response(*grant);
}

HttpResponse Api::refresh(const std::string& body) {
    auto j = parse_object(body);
    if (!j.ok()) return error_response(j.status());
    auto token = string_member(*j, "refresh_token", 256);
    auto device = string_member(*j, "device_id", 128);
    for (const Status& s : {token.status(), device.status()})
        if (!s.ok()) return error_response(s);
    auto grant = m_auth.refresh(*token, *device);
    if (!grant.ok()) return error_response(grant.status());
    return grant_response(*grant);
}

HttpResponse Api::create_user(const AuthUser& user, const std::string& body) {
    if (user.role != "admin") return error_response(Status(ErrorCode::Forbidden, "only an admin may create users"));
    auto j = parse_object(body);
    if (!j.ok()) return error_response(j.status());
    auto username = string_member(*j, "username", 64);
    auto password = string_member(*j, "password");
    auto role = string_member(*j, "role", 32);
    for (const Status& s : {username.status(), password.status(), role.status()})
        if (!s.ok()) return error_response(s);
    std::vector<std::string> facilities;
    if (auto f = j->find("facilities"); f != j->end() && !f->is_null()) {
        if (!f->is_array()) return error_response(bad("facilities must be an array of facility ids"));
        for (const json& id : *f) {
            if (!id.is_string()) return error_response(bad("facilities must be an array of facility ids"));
            facilities.push_back(id.get<std::string>());
        }
    }
    auto created = m_auth.create_user(*username, *password, *role, facilities);
    if (!created.ok()) return error_response(created.status());
    return json_response(201, user_json(*created).dump());
}

HttpResponse Api::sync(const AuthUser& user, const std::string& body) {
    auto request = sync::decode_sync_request(body);
    if (!request.ok()) return error_response(request.status());
    auto response = m_sync.sync(user, *request);
    if (!response.ok()) return error_response(response.status());
    return json_response(200, sync::encode_sync_response(*response));
}

HttpResponse Api::list_conflicts(const AuthUser& user, const HttpRequest& request) {
    if (!user.is_reviewer())
        return error_response(Status(ErrorCode::Forbidden, "only coordinators and admins review conflicts"));
    std::string status = "open";
    if (auto it = request.query.find("status"); it != request.query.end()) status = it->second;
    if (status != "open" && status != "resolved" && status != "all")
        return error_response(bad("status must be open, resolved or all"));
    auto list = m_store.list_conflicts(status == "all" ? "" : status);
    if (!list.ok()) return error_response(list.status());
    json out = json::array();
    for (const ConflictRecord& c : *list) {
        json jc{{"id", c.id},           {"t", c.table},         {"row_id", c.row_id}, {"field", c.field},
                {"kept", versioned(c.kept)}, {"lost", versioned(c.lost)}, {"status", c.status},
                {"created_at", c.created_at_ms}};
        if (c.status == "resolved") {
            jc["resolved_by"] = c.resolved_by;
            jc["resolved_version"] = c.resolved_version;
        }
        out.push_back(std::move(jc));
    }
    return json_response(200, json{{"conflicts", std::move(out)}}.dump());
}

HttpResponse Api::resolve_conflict(const AuthUser& user, const std::string& id_text, const std::string& body) {
    if (!user.is_reviewer())
        return error_response(Status(ErrorCode::Forbidden, "only coordinators and admins resolve conflicts"));
    std::int64_t id = 0;
    auto [ptr, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (ec != std::errc() || ptr != id_text.data() + id_text.size() || id < 1)
        return error_response(Status(ErrorCode::NotFound, "no conflict " + id_text));
    auto j = parse_object(body);
    if (!j.ok()) return error_response(j.status());
    auto value = j->find("value");
    if (value == j->end()) return error_response(bad("value is missing (use null to clear the field)"));
    auto version = m_sync.resolve_conflict(user, id, *value);
    if (!version.ok()) return error_response(version.status());
    return json_response(200, json{{"id", id}, {"status", "resolved"}, {"version", version->to_string()}}.dump());
}

}  // namespace ubuzima::server
