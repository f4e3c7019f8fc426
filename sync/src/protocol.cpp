// Ubuzima Sync — MIT licence.
// JSON codec of the sync messages. Every decoder checks each shape it reads, so hostile input
// yields a Status, never an exception or a crash.
#include "ubuzima/sync/protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "json_out.hpp"
#include "ubuzima/sync/json_limits.hpp"

namespace ubuzima::sync {

using nlohmann::json;

Version Change::base_of(const std::string& field) const {
    auto it = base.find(field);
    return it == base.end() ? Version{} : it->second;
}

namespace {

Status bad(std::string msg) { return Status(ErrorCode::BadRequest, std::move(msg)); }

// Bodies from the other side: depth-bounded before any tree is built (json_limits.hpp). Their
// size is bounded by whoever read them (the server per route, the client by its transport).
Result<json> parse_object(std::string_view body) {
    auto j = parse_json(body);
    if (!j.ok()) return j.status();
    if (!j->is_object()) return bad("body must be a JSON object");
    return j;
}

/// An integer member within [min, max], else BadRequest naming it (get<int>() of 4294967297
/// read 1).
Status int_member(const json& j, const char* name, std::int64_t min, std::int64_t max, std::int64_t& out) {
    auto it = j.find(name);
    const std::string range = " must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
    if (it == j.end() || !(it->is_number_integer() || it->is_number_unsigned())) return bad(std::string(name) + range);
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        return bad(std::string(name) + range);
    const std::int64_t v = it->get<std::int64_t>();
    if (v < min || v > max) return bad(std::string(name) + range);
    out = v;
    return {};
}

Result<Version> version_at(const json& j, const char* what) {
    if (!j.is_string()) return bad(std::string(what) + " must be a version string \"<hlc>@<node>\"");
    auto v = Version::parse(j.get_ref<const std::string&>());
    if (!v) return bad(std::string(what) + " is not a valid version: " + j.get<std::string>());
    return *v;
}

Result<std::uint64_t> hex_at(const json& j, const char* what) {
    if (!j.is_string()) return bad(std::string(what) + " must be 16 lowercase hex digits");
    auto v = parse_hex16(j.get_ref<const std::string&>());
    if (!v) return bad(std::string(what) + " must be 16 lowercase hex digits");
    return *v;
}

bool is_int(const json& j) { return j.is_number_integer() || j.is_number_unsigned(); }

// Field values are moved out of the parsed document (it is thrown away after decoding).
Result<Change> decode_change(json& c, size_t index) {
    const std::string where = "batch.changes[" + std::to_string(index) + "]";
    if (!c.is_object()) return bad(where + " must be an object");
    Change ch;
    auto t = c.find("t");
    auto id = c.find("id");
    auto v = c.find("v");
    auto f = c.find("f");
    if (t == c.end() || !t->is_string() || t->get_ref<const std::string&>().empty())
        return bad(where + ".t must be a table name");
    if (id == c.end() || !id->is_string() || id->get_ref<const std::string&>().empty() ||
        id->get_ref<const std::string&>().size() > 128)
        return bad(where + ".id must be a non-empty string of at most 128 characters");
    if (v == c.end()) return bad(where + ".v is missing");
    auto ver = version_at(*v, (where + ".v").c_str());
    if (!ver.ok()) return ver.status();
    if (ver->is_null()) return bad(where + ".v must not be the null version");
    if (f == c.end() || !f->is_object() || f->empty()) return bad(where + ".f must be a non-empty object");
    ch.table = t->get<std::string>();
    ch.row_id = id->get<std::string>();
    ch.version = *ver;
    for (auto it = f->begin(); it != f->end(); ++it) ch.fields.emplace(it.key(), std::move(it.value()));
    auto b = c.find("b");
    if (b != c.end() && !b->is_null()) {
        if (!b->is_object()) return bad(where + ".b must be an object");
        for (auto it = b->begin(); it != b->end(); ++it) {
            if (it.value().is_null()) continue;
            auto bv = version_at(it.value(), (where + ".b." + it.key()).c_str());
            if (!bv.ok()) return bv.status();
            ch.base.emplace(it.key(), *bv);
        }
    }
    return ch;
}

json versioned_map_to_json(const std::map<std::string, VersionedValue>& m) {
    json o = json::object();
    for (const auto& [k, vv] : m) {
        o[k] = json::array({vv.value, vv.version.to_string()});
        if (!vv.overwrote.is_null()) o[k].push_back(vv.overwrote.to_string());
    }
    return o;
}

// Json is json (values are moved out of the parsed document) or const json (copied).
template <typename Json>
Result<std::map<std::string, VersionedValue>> versioned_map_from_json(Json& o, const std::string& where) {
    if (!o.is_object()) return bad(where + " must be an object");
    std::map<std::string, VersionedValue> out;
    for (auto it = o.begin(); it != o.end(); ++it) {
        Json& pair = it.value();
        if (!pair.is_array() || pair.size() < 2 || pair.size() > 3)
            return bad(where + "." + it.key() + " must be [value, version] or [value, version, overwrote]");
        auto ver = version_at(pair[1], (where + "." + it.key()).c_str());
        if (!ver.ok()) return ver.status();
        Version overwrote;
        if (pair.size() == 3) {
            auto ov = version_at(pair[2], (where + "." + it.key()).c_str());
            if (!ov.ok()) return ov.status();
            overwrote = *ov;
        }
        if constexpr (std::is_const_v<Json>) out.emplace(it.key(), VersionedValue{pair[0], *ver, overwrote});
        else out.emplace(it.key(), VersionedValue{std::move(pair[0]), *ver, overwrote});
    }
    return out;
}

}  // namespace

Result<SyncRequest> decode_sync_request(std::string_view body) {
    auto parsed = parse_object(body);
    if (!parsed.ok()) return parsed.status();
    json& j = *parsed;
    SyncRequest req;

    std::int64_t n64 = 0;
    UBUZIMA_TRY(int_member(j, "protocol", INT64_MIN, INT64_MAX, n64));
    if (n64 != kProtocolVersion)
        return Status(ErrorCode::ProtocolMismatch, "unsupported protocol " + std::to_string(n64));
    req.protocol = kProtocolVersion;
    UBUZIMA_TRY(int_member(j, "schema_version", 1, 1'000'000, n64));
    req.schema_version = static_cast<int>(n64);
    for (const char* name : {"pending", "rejected"}) {
        if (!j.contains(name) || j[name].is_null()) continue;
        UBUZIMA_TRY(int_member(j, name, 0, INT64_MAX, n64));
        (std::string_view(name) == "pending" ? req.pending : req.rejected) = n64;
    }
    auto node = j.find("node");
    if (node == j.end()) return bad("node is missing");
    auto n = hex_at(*node, "node");
    if (!n.ok()) return n.status();
    req.node = *n;
    auto clock = j.find("clock");
    if (clock != j.end() && !clock->is_null()) {
        auto c = hex_at(*clock, "clock");
        if (!c.ok()) return c.status();
        req.clock = *c;
    }
    auto cursor = j.find("cursor");
    if (cursor != j.end() && !cursor->is_null()) {
        if (!cursor->is_string() || cursor->get_ref<const std::string&>().size() > 256)
            return bad("cursor must be a string or null");
        req.cursor = cursor->get<std::string>();
    }
    auto limit = j.find("limit");
    if (limit != j.end() && !limit->is_null()) {
        if (!is_int(*limit) || (limit->is_number_integer() && limit->get<std::int64_t>() < 1))
            return bad("limit must be a positive integer");
        // Clamped, as documented: the server applies its own page maximum on top.
        req.limit = limit->is_number_unsigned() && limit->get<std::uint64_t>() > 5000
                        ? 5000
                        : static_cast<int>(std::min<std::int64_t>(limit->get<std::int64_t>(), 5000));
    }
    auto batch = j.find("batch");
    if (batch != j.end() && !batch->is_null()) {
        if (!batch->is_object()) return bad("batch must be an object");
        auto id = batch->find("id");
        if (id == batch->end() || !id->is_string() || id->get_ref<const std::string&>().empty() ||
            id->get_ref<const std::string&>().size() > 128)
            return bad("batch.id must be a non-empty string of at most 128 characters");
        auto changes = batch->find("changes");
        if (changes == batch->end() || !changes->is_array()) return bad("batch.changes must be an array");
        PushBatch pb;
        pb.id = id->get<std::string>();
        pb.changes.reserve(changes->size());
        for (size_t i = 0; i < changes->size(); ++i) {
            auto ch = decode_change((*changes)[i], i);
            if (!ch.ok()) return ch.status();
            pb.changes.push_back(std::move(*ch));
        }
        req.batch = std::move(pb);
    }
    return req;
}

std::string encode_sync_request(const SyncRequest& req) {
    // Keys in sorted order, as a json tree's dump() wrote them.
    std::string out;
    out.reserve(256 + (req.batch ? req.batch->changes.size() * 1024 : 0));
    detail::JsonOut w(out);
    w.raw("{");
    if (req.batch) {
        w.key("batch", true).raw("{\"changes\":[");
        bool first = true;
        for (const Change& c : req.batch->changes) {
            w.raw(first ? "{" : ",{");
            first = false;
            if (!c.base.empty()) {
                w.key("b", true).raw("{");
                bool first_base = true;
                for (const auto& [field, ver] : c.base) {
                    w.key(field, first_base);
                    first_base = false;
                    if (ver.is_null()) w.raw("null");
                    else w.string(ver.to_string());
                }
                w.raw("}");
            }
            w.key("f", c.base.empty()).raw("{");
            bool first_field = true;
            for (const auto& [field, value] : c.fields) {
                w.key(field, first_field).value(value);
                first_field = false;
            }
            w.raw("}");
            w.key("id").string(c.row_id).key("t").string(c.table).key("v").string(c.version.to_string()).raw("}");
        }
        w.raw("]").key("id").string(req.batch->id).raw("}");
    }
    w.key("clock", !req.batch).string(to_hex16(req.clock)).key("cursor");
    if (req.cursor) w.string(*req.cursor);
    else w.raw("null");
    w.key("limit").raw(std::to_string(req.limit)).key("node").string(to_hex16(req.node));
    if (req.pending >= 0) w.key("pending").raw(std::to_string(req.pending));
    w.key("protocol").raw(std::to_string(req.protocol));
    if (req.rejected >= 0) w.key("rejected").raw(std::to_string(req.rejected));
    w.key("schema_version").raw(std::to_string(req.schema_version));
    w.raw("}");
    return out;
}

json push_result_to_json(const PushResult& push) {
    json conflicts = json::array();
    for (const ConflictReport& c : push.conflicts) {
        conflicts.push_back(json{{"t", c.table},
                                 {"id", c.row_id},
                                 {"field", c.field},
                                 {"kept", c.kept.version.to_string()},
                                 {"lost", c.lost.version.to_string()},
                                 {"kept_value", c.kept.value},
                                 {"lost_value", c.lost.value}});
    }
    json rejected = json::array();
    for (const Rejection& r : push.rejected) {
        json jr{{"index", r.index}, {"code", std::string(wire_code(r.code))}, {"message", r.message}};
        jr["current"] = r.current ? versioned_map_to_json(*r.current) : json();
        rejected.push_back(std::move(jr));
    }
    return json{{"batch", push.batch}, {"applied", push.applied}, {"conflicts", conflicts}, {"rejected", rejected}};
}

Result<PushResult> push_result_from_json(const json& j) {
    if (!j.is_object()) return bad("push must be an object");
    PushResult out;
    if (!j.contains("batch") || !j["batch"].is_string()) return bad("push.batch must be a string");
    out.batch = j["batch"].get<std::string>();
    if (!j.contains("applied") || !is_int(j["applied"])) return bad("push.applied must be an integer");
    out.applied = j["applied"].get<int>();
    const json& conflicts = j.contains("conflicts") ? j["conflicts"] : json::array();
    if (!conflicts.is_array()) return bad("push.conflicts must be an array");
    for (const json& c : conflicts) {
        if (!c.is_object() || !c.contains("t") || !c["t"].is_string() || !c.contains("id") || !c["id"].is_string() ||
            !c.contains("field") || !c["field"].is_string())
            return bad("push.conflicts[] must name t, id and field");
        auto kept = version_at(c.value("kept", json()), "push.conflicts[].kept");
        auto lost = version_at(c.value("lost", json()), "push.conflicts[].lost");
        if (!kept.ok()) return kept.status();
        if (!lost.ok()) return lost.status();
        out.conflicts.push_back(ConflictReport{c["t"].get<std::string>(), c["id"].get<std::string>(),
                                               c["field"].get<std::string>(),
                                               VersionedValue{c.value("kept_value", json()), *kept},
                                               VersionedValue{c.value("lost_value", json()), *lost}});
    }
    const json& rejected = j.contains("rejected") ? j["rejected"] : json::array();
    if (!rejected.is_array()) return bad("push.rejected must be an array");
    for (const json& r : rejected) {
        if (!r.is_object() || !r.contains("index") || !is_int(r["index"]) || !r.contains("code") ||
            !r["code"].is_string())
            return bad("push.rejected[] must have index and code");
        Rejection rej;
        rej.index = r["index"].get<std::size_t>();
        rej.code = error_code_from_wire(r["code"].get<std::string>());
        // json::value() throws when the member exists with another type: check it instead.
        if (r.contains("message") && r["message"].is_string()) rej.message = r["message"].get<std::string>();
        if (r.contains("current") && !r["current"].is_null()) {
            auto cur = versioned_map_from_json(r["current"], "push.rejected[].current");
            if (!cur.ok()) return cur.status();
            rej.current = std::move(*cur);
        }
        out.rejected.push_back(std::move(rej));
    }
    return out;
}

namespace {

/// One pulled row on the wire. Most rows were written in one go, so their fields share one
/// version: that version is sent once as "v" and those fields as plain values in "d"; the other
/// fields keep [value, version(, overwrote)] in "f". About a fifth fewer bytes after gzip.
void write_versioned(detail::JsonOut& w, const VersionedValue& vv) {
    w.raw("[").value(vv.value).raw(",").string(vv.version.to_string());
    if (!vv.overwrote.is_null()) w.raw(",").string(vv.overwrote.to_string());
    w.raw("]");
}

void write_row_change(detail::JsonOut& w, const RowChange& rc) {
    if (rc.gone) {
        w.raw("{\"gone\":true").key("id").string(rc.row_id).key("t").string(rc.table).raw("}");
        return;
    }
    std::vector<std::pair<Version, int>> counts;  // a row has few distinct versions
    for (const auto& entry : rc.fields) {
        if (!entry.second.overwrote.is_null()) continue;
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == entry.second.version; });
        if (it == counts.end()) counts.emplace_back(entry.second.version, 1);
        else ++it->second;
    }
    auto common = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    const bool shared = common != counts.end() && common->second >= 2;
    auto in_d = [&](const VersionedValue& vv) { return shared && vv.overwrote.is_null() && vv.version == common->first; };
    w.raw("{");
    bool first = true;
    if (shared) {
        w.key("d", true).raw("{");
        bool first_d = true;
        for (const auto& [name, vv] : rc.fields) {
            if (!in_d(vv)) continue;
            w.key(name, first_d).value(vv.value);
            first_d = false;
        }
        w.raw("}");
        first = false;
    }
    const bool any_f = std::any_of(rc.fields.begin(), rc.fields.end(), [&](const auto& e) { return !in_d(e.second); });
    if (any_f || !shared) {
        w.key("f", first).raw("{");
        bool first_f = true;
        for (const auto& [name, vv] : rc.fields) {
            if (in_d(vv)) continue;
            w.key(name, first_f);
            first_f = false;
            write_versioned(w, vv);
        }
        w.raw("}");
    }
    w.key("id").string(rc.row_id).key("t").string(rc.table);
    if (shared) w.key("v").string(common->first.to_string());
    w.raw("}");
}

Result<RowChange> row_change_from_json(json& c) {
    if (!c.is_object() || !c.contains("t") || !c["t"].is_string() || !c.contains("id") || !c["id"].is_string())
        return bad("changes[] must have t and id");
    RowChange rc{c["t"].get<std::string>(), c["id"].get<std::string>(), {}, false};
    if (c.contains("gone")) {
        if (!c["gone"].is_boolean() || !c["gone"].get<bool>() || c.contains("f") || c.contains("d"))
            return bad("changes[].gone must be true, and such a change has no f or d");
        rc.gone = true;
        return rc;
    }
    if (!c.contains("f") && !c.contains("d")) return bad("changes[] must have f or d (or gone)");
    if (c.contains("f")) {
        auto fields = versioned_map_from_json(c["f"], "changes[].f");
        if (!fields.ok()) return fields.status();
        rc.fields = std::move(*fields);
    }
    if (c.contains("d") != c.contains("v")) return bad("changes[].d and changes[].v come together");
    if (c.contains("d")) {
        if (!c["d"].is_object()) return bad("changes[].d must be an object");
        auto version = version_at(c["v"], "changes[].v");
        if (!version.ok()) return version.status();
        for (auto it = c["d"].begin(); it != c["d"].end(); ++it)
            if (!rc.fields.emplace(it.key(), VersionedValue{std::move(it.value()), *version, Version{}}).second)
                return bad("changes[]: field " + it.key() + " is in both d and f");
    }
    return rc;
}

}  // namespace

std::string encode_sync_response(const SyncResponse& resp) {
    // Keys in sorted order, as a json tree's dump() wrote them; the page itself without a tree.
    std::string out;
    out.reserve(256 + resp.changes.size() * 1024);
    detail::JsonOut w(out);
    w.raw("{\"changes\":[");
    bool first = true;
    for (const RowChange& rc : resp.changes) {
        if (!first) w.raw(",");
        first = false;
        write_row_change(w, rc);
    }
    w.raw("]").key("cursor").string(resp.cursor).key("more").raw(resp.more ? "true" : "false");
    w.key("protocol").raw(std::to_string(resp.protocol)).key("push");
    if (resp.push) w.raw(push_result_to_json(*resp.push).dump());
    else w.raw("null");
    if (resp.scope) {
        w.key("scope");
        if (resp.scope->all) {
            w.string("*");
        } else {
            w.raw("[");
            for (std::size_t i = 0; i < resp.scope->facilities.size(); ++i) {
                if (i) w.raw(",");
                w.string(resp.scope->facilities[i]);
            }
            w.raw("]");
        }
    }
    w.key("server_clock").string(to_hex16(resp.server_clock)).raw("}");
    return out;
}

Result<SyncResponse> decode_sync_response(std::string_view body) {
    auto parsed = parse_object(body);
    if (!parsed.ok()) return parsed.status();
    const json& j = *parsed;
    SyncResponse resp;
    std::int64_t protocol = 0;
    UBUZIMA_TRY(int_member(j, "protocol", 1, 1'000'000, protocol));
    resp.protocol = static_cast<int>(protocol);
    auto clock = hex_at(j.value("server_clock", json()), "server_clock");
    if (!clock.ok()) return clock.status();
    resp.server_clock = *clock;
    if (j.contains("push") && !j["push"].is_null()) {
        auto push = push_result_from_json(j["push"]);
        if (!push.ok()) return push.status();
        resp.push = std::move(*push);
    }
    if (!j.contains("changes") || !j["changes"].is_array()) return bad("changes must be an array");
    resp.changes.reserve(j["changes"].size());
    for (json& c : (*parsed)["changes"]) {  // checked above; values are moved out
        auto rc = row_change_from_json(c);
        if (!rc.ok()) return rc.status();
        resp.changes.push_back(std::move(*rc));
    }
    if (!j.contains("cursor") || !j["cursor"].is_string()) return bad("cursor must be a string");
    resp.cursor = j["cursor"].get<std::string>();
    if (!j.contains("more") || !j["more"].is_boolean()) return bad("more must be a boolean");
    resp.more = j["more"].get<bool>();
    if (j.contains("scope") && !j["scope"].is_null()) {
        const json& scope = j["scope"];
        ScopeNotice notice;
        if (scope.is_string() && scope.get_ref<const std::string&>() == "*") {
            notice.all = true;
        } else if (scope.is_array()) {
            for (const json& f : scope) {
                if (!f.is_string()) return bad("scope must be \"*\" or an array of facility ids");
                notice.facilities.push_back(f.get<std::string>());
            }
        } else {
            return bad("scope must be \"*\" or an array of facility ids");
        }
        resp.scope = std::move(notice);
    }
    return resp;
}

std::string encode_error(const Status& status) {
    json j{{"error", {{"code", std::string(wire_code(status.code()))}, {"message", status.message()}}}};
    // Messages quote request bytes (a path, a header) that need not be UTF-8; a strict dump
    // would throw and turn a 4xx into a 500.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status decode_error(std::string_view body, ErrorCode fallback) {
    json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("code") &&
        j["error"]["code"].is_string()) {
        const json& e = j["error"];
        std::string msg = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
        return Status(error_code_from_wire(e["code"].get<std::string>()), msg);
    }
    return Status(fallback, std::string(body.substr(0, 200)));
}

}  // namespace ubuzima::sync
