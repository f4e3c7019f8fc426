// Ubuzima Sync — MIT licence.
// The sync round trip and conflict review.
#include <algorithm>
#include <charconv>

#include "api/api.hpp"
#include "api/json_input.hpp"
#include "ubuzima/sync/json_limits.hpp"

namespace ubuzima::server {

using nlohmann::json;

namespace {

json versioned(const sync::VersionedValue& v) { return json{{"value", v.value}, {"version", v.version.to_string()}}; }

// A resolution is one field value: the largest text field, JSON-encoded, fits easily.
constexpr std::size_t kResolveBody = 64 * 1024;

}  // namespace

void Api::add_sync_routes() {
    const RoleSet reviewers{Role::Admin, Role::Coordinator};
    add({"POST", "/v1/sync", RoleSet::all(), m_options.max_body_bytes, true, &Api::sync,
         "push a batch and pull one page"});
    add({"GET", "/v1/conflicts", reviewers, 0, false, &Api::list_conflicts, "the conflict journal, paged"});
    add({"POST", "/v1/conflicts/{id}/resolve", reviewers, kResolveBody, false, &Api::resolve_conflict,
         "writes the reviewer's value, closes the conflict"});
}

http::Response Api::sync(const Call& call) {
    auto request = sync::decode_sync_request(call.body);
    if (!request.ok()) return error_response(request.status());
    call.note.rows_in = request->batch ? static_cast<std::int64_t>(request->batch->changes.size()) : 0;
    auto response = m_sync.sync(*call.user, *request, call.request.remote_address);
    if (!response.ok()) return error_response(response.status());
    call.note.rows_out = static_cast<std::int64_t>(response->changes.size());
    m_counters.rows_pulled.inc(response->changes.size());
    if (response->push) {
        m_counters.rows_pushed.inc(static_cast<std::uint64_t>(std::max(0, response->push->applied)));
        m_counters.conflicts.inc(response->push->conflicts.size());
        m_counters.rejected.inc(response->push->rejected.size());
    }
    return json_response(200, sync::encode_sync_response(*response));
}

http::Response Api::list_conflicts(const Call& call) {
    std::string status = "open";
    if (auto it = call.request.query.find("status"); it != call.request.query.end()) status = it->second;
    if (status != "open" && status != "resolved" && status != "all")
        return error_response(Status(ErrorCode::BadRequest, "status must be open, resolved or all"));
    auto after = int_param(call.request.query, "after", 0, INT64_MAX, 0);
    auto limit = int_param(call.request.query, "limit", 1, 1000, 200);
    for (const Status& s : {after.status(), limit.status()})
        if (!s.ok()) return error_response(s);
    std::vector<ConflictRecord> list;
    UBUZIMA_TRY_RESPONSE(m_store.read([&](ReadTxn& tx) -> Status {
        auto page = tx.list_conflicts(status == "all" ? "" : status, *after, static_cast<int>(*limit));
        if (!page.ok()) return page.status();
        list = std::move(*page);
        return {};
    }));
    json out = json::array();
    for (const ConflictRecord& c : list) {
        json jc{{"id", c.id},           {"t", c.table},         {"row_id", c.row_id}, {"field", c.field},
                {"kept", versioned(c.kept)}, {"lost", versioned(c.lost)}, {"status", c.status},
                {"created_at", c.created_at_ms}};
        if (c.scope) jc["facility_id"] = *c.scope;
        if (c.status == "resolved") {
            jc["resolved_by"] = c.resolved_by;
            jc["resolved_version"] = c.resolved_version;
        }
        out.push_back(std::move(jc));
    }
    json next = list.size() == static_cast<std::size_t>(*limit) ? json(list.back().id) : json();
    return json_response(200, json{{"conflicts", std::move(out)}, {"next_after", next}}.dump());
}

http::Response Api::resolve_conflict(const Call& call) {
    const std::string& id_text = call.params.at("id");
    std::int64_t id = 0;
    auto [ptr, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (ec != std::errc() || ptr != id_text.data() + id_text.size() || id < 1)
        return error_response(Status(ErrorCode::NotFound, "no conflict " + id_text));
    auto j = sync::parse_json(call.body);
    if (!j.ok()) return error_response(j.status());
    if (!j->is_object()) return error_response(Status(ErrorCode::BadRequest, "body must be a JSON object"));
    auto value = j->find("value");
    if (value == j->end() || j->size() != 1)
        return error_response(Status(ErrorCode::BadRequest, "body must be {\"value\": ...} (use null to clear the field)"));
    auto version = m_sync.resolve_conflict(*call.user, id, *value, call.request.remote_address);
    if (!version.ok()) return error_response(version.status());
    return json_response(200, json{{"id", id}, {"status", "resolved"}, {"version", version->to_string()}}.dump());
}

}  // namespace ubuzima::server
