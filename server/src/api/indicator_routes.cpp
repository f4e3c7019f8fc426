// Ubuzima Sync — MIT licence.
// The coordinators' indicators (docs/INDICATORS.md): computed on request from what was synced,
// scoped like a pull (a focal point gets their own hospitals' figures only).
#include <cctype>

#include "api/api.hpp"
#include "indicators/needs_services.hpp"
#include "indicators/readiness.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

bool valid_month(const std::string& p) {
    return p.size() == 7 && p[4] == '-' && std::isdigit(static_cast<unsigned char>(p[0])) &&
           std::isdigit(static_cast<unsigned char>(p[1])) && std::isdigit(static_cast<unsigned char>(p[2])) &&
           std::isdigit(static_cast<unsigned char>(p[3])) && ((p[5] == '0' && p[6] >= '1' && p[6] <= '9') ||
                                                              (p[5] == '1' && p[6] >= '0' && p[6] <= '2'));
}

}  // namespace

void Api::add_indicator_routes() {
    add({"GET", "/v1/indicators/{name}", RoleSet{Role::Admin, Role::Coordinator, Role::FocalPoint}, 0, false,
         &Api::indicator, "readiness | needs | services, for every hospital the caller sees (?facility=, ?period=YYYY-MM)"});
}

http::Response Api::indicator(const Call& call) {
    const std::string& name = call.params.at("name");
    const AuthUser& user = *call.user;
    std::vector<std::string> facilities;
    const std::vector<std::string>* scope = nullptr;
    if (auto f = call.request.query.find("facility"); f != call.request.query.end()) {
        if (!user.may_see(f->second))
            return error_response(Status(ErrorCode::Forbidden, "facility " + f->second + " is not among yours"));
        facilities = {f->second};
        scope = &facilities;
    } else if (!user.sees_all()) {
        facilities = user.facilities;
        scope = &facilities;
    }
    std::string period;
    if (auto p = call.request.query.find("period"); p != call.request.query.end()) {
        period = p->second;
        if (!valid_month(period)) return error_response(Status(ErrorCode::BadRequest, "period must be YYYY-MM"));
    }
    const std::vector<std::string>* tables = nullptr;
    if (name == "readiness") tables = &readiness_tables();
    else if (name == "needs") tables = &needs_tables();
    else if (name == "services") tables = &services_tables();
    else return error_response(Status(ErrorCode::NotFound, "no indicator '" + name + "' (readiness, needs, services)"));
    auto data = load_indicator_data(m_store, m_sync.schema(), scope, *tables);
    if (!data.ok()) return error_response(data.status());
    json out;
    if (name == "readiness") out = readiness_json(compute_readiness(*data));
    else if (name == "needs") out = needs_json(*data);
    else out = services_json(*data, period);
    out["scope"] = scope ? json(facilities) : json("all");
    return json_response(200, out.dump());
}

}  // namespace ubuzima::server
