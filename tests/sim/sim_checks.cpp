// Ubuzima Sync — MIT licence.
// The end-of-run checks: same state everywhere, no acknowledged write lost, no invented value.
#include <climits>
#include <functional>
#include <set>
#include <tuple>

#include "sim.hpp"
#include "replication/sync_service.hpp"
#include "ubuzima/sync/field_versions.hpp"

namespace ubuzima::sim {

namespace {

using RowKey = std::pair<std::string, std::string>;                               // table, id
using FieldKey = std::tuple<std::string, std::string, std::string>;               // table, id, field
using VersionKey = std::tuple<std::string, std::string, std::string, std::string>;  // + version

struct DeviceRow {
    bool deleted = false;
    json values = json::object();
    json versions = json::object();
};

/// Every row of every table in a device file, read over the simulator's second connection.
std::map<RowKey, DeviceRow> device_rows(Device& d) {
    std::map<RowKey, DeviceRow> out;
    for (const schema::TableDef& t : schema::Schema::builtin().tables()) {
        std::string sql = "SELECT id, _deleted, _v";
        for (const schema::FieldDef& f : t.fields) sql += ", " + sql::quote_ident(f.name);
        auto stmt = d.peek->prepare(sql + " FROM " + sql::quote_ident(t.name));
        if (!stmt.ok()) throw std::runtime_error("device read: " + stmt.status().to_string());
        Status s = stmt->each([&](const sql::Statement& q) {
            DeviceRow row;
            row.deleted = q.column_int(1) != 0;
            row.versions = sync::decode_field_versions(q.column_text(2));
            int col = 3;
            for (const schema::FieldDef& f : t.fields) row.values[f.name] = q.column_value(col++, f.type);
            out[{t.name, q.column_text(0)}] = std::move(row);
        });
        if (!s.ok()) throw std::runtime_error("device read: " + s.to_string());
    }
    return out;
}

/// Why: an implicit json -> std::string conversion inside a braced tuple picks the wrong overload.
std::string str(const json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

std::string describe(const RowKey& k) { return k.first + "/" + k.second; }

}  // namespace

void Checker::run(Simulation& sim, std::vector<std::string>& failures) {
    const schema::Schema& schema = schema::Schema::builtin();
    const sync::NodeId server_node = sim.m_store->node_id();
    auto fail = [&](const std::string& check, const std::string& what) {
        if (failures.size() < 20) failures.push_back(check + ": " + what);
    };

    // ---- the server's state, straight from its store ----
    std::map<RowKey, server::StoredRow> server_rows;
    std::size_t feed_entries = 0;
    Status read = sim.m_store->read([&](server::ReadTxn& tx) -> Status {
        auto feed = tx.feed_after(0, nullptr, INT_MAX);
        if (!feed.ok()) return feed.status();
        for (const server::FeedEntry& e : *feed) {
            if (e.gone) continue;  // exits: the row's live entry names it too
            ++feed_entries;
            const schema::TableDef* t = schema.table(e.table);
            if (!t) return Status(ErrorCode::Internal, "feed names unknown table " + e.table);
            auto row = tx.read_row(*t, e.row_id);
            if (!row.ok()) return row.status();
            if (!*row) return Status(ErrorCode::Internal, "feed names missing row " + e.table + "/" + e.row_id);
            server_rows[{e.table, e.row_id}] = std::move(**row);
        }
        return Status();
    });
    if (!read.ok()) throw std::runtime_error("server read: " + read.to_string());

    // ---- the server's conflict journal, through the API as a coordinator would see it ----
    server::http::Request login;
    login.method = "POST";
    login.raw_path = "/v1/auth/login";
    login.headers["content-type"] = "application/json";
    login.body = json{{"username", "admin"}, {"password", "sim-admin-password"}, {"device_id", "sim-checker"}}.dump();
    const json grant = json::parse(sim.m_api->handle(login).body, nullptr, false);
    std::set<VersionKey> journal_lost;
    json all_conflicts = json::array();
    for (json after = 0; !after.is_null();) {
        server::http::Request list;
        list.method = "GET";
        list.raw_path = "/v1/conflicts";
        list.query = {{"status", "all"}, {"limit", "1000"}, {"after", after.dump()}};
        list.headers["authorization"] = "Bearer " + grant.value("access_token", std::string());
        const json page = json::parse(sim.m_api->handle(list).body, nullptr, false);
        if (!page.contains("conflicts")) throw std::runtime_error("GET /v1/conflicts failed: " + page.dump());
        for (const json& c : page["conflicts"]) all_conflicts.push_back(c);
        after = page["next_after"];
    }
    const json conflicts{{"conflicts", all_conflicts}};
    for (const json& c : conflicts["conflicts"])
        journal_lost.insert({str(c["t"]), str(c["row_id"]), str(c["field"]), str(c["lost"]["version"])});
    sim.m_stats.server_conflicts += static_cast<std::int64_t>(conflicts["conflicts"].size());

    // ---- (a) + (e): every device holds the server's rows of its scope, with the same winners ----
    bool same_state = true;
    bool same_winner = true;
    for (auto& d : sim.m_devices) {
        const auto local = device_rows(*d);
        std::map<RowKey, json> want;
        std::map<RowKey, json> want_versions;
        for (const auto& [key, row] : server_rows) {
            const schema::TableDef& t = *schema.table(key.first);
            auto deleted = row.values.find(std::string(sync::kDeletedField));
            if (deleted != row.values.end() && deleted->second == true) continue;
            if (t.scope_field) {
                auto scope = server::row_scope(t, row);
                if (!scope || !d->sees(*scope)) continue;
            }
            json values = json::object();
            for (const schema::FieldDef& f : t.fields) {
                auto v = row.values.find(f.name);
                values[f.name] = v == row.values.end() ? json() : v->second;
            }
            want[key] = std::move(values);
            json versions = json::object();
            for (const auto& [field, version] : row.versions) versions[field] = version.to_string();
            want_versions[key] = std::move(versions);
        }
        std::map<RowKey, json> have;
        for (const auto& [key, row] : local) {
            if (row.deleted) continue;
            const schema::TableDef& t = *schema.table(key.first);
            if (t.scope_field && !d->sees(str(row.values.value(*t.scope_field, json())))) {
                same_state = false;
                fail("(a) state", "device " + std::to_string(d->index) + " holds " + describe(key) +
                                      " outside its facilities: " + row.values.dump());
                continue;
            }
            have[key] = row.values;
            auto v = want_versions.find(key);
            if (v != want_versions.end() && v->second != row.versions) {
                same_winner = false;
                fail("(e) winner", "device " + std::to_string(d->index) + " " + describe(key) + " versions " +
                                       row.versions.dump() + " server " + v->second.dump());
            }
        }
        if (have != want) {
            same_state = false;
            for (const auto& [key, values] : want) {
                auto h = have.find(key);
                if (h == have.end()) fail("(a) state", "device " + std::to_string(d->index) + " lacks " + describe(key));
                else if (h->second != values)
                    fail("(a) state", "device " + std::to_string(d->index) + " " + describe(key) + " = " +
                                          h->second.dump() + " but server = " + values.dump());
            }
            for (const auto& [key, values] : have)
                if (!want.count(key))
                    fail("(a) state", "device " + std::to_string(d->index) + " has " + describe(key) +
                                          " the server does not show it: " + values.dump());
        }
        if (sim.m_options.verbose)
            std::printf("  device %d state hash %016zx (%zu rows)\n", d->index, std::hash<std::string>()(json(have).dump()),
                        have.size());
    }
    if (same_state) ++sim.m_stats.checks_passed["(a) same state"];
    if (same_winner) ++sim.m_stats.checks_passed["(e) same winner"];

    // ---- (b): every acknowledged write is current, journalled, rejected, or seen and overwritten ----
    std::set<VersionKey> rejected;
    for (auto& d : sim.m_devices) {
        auto list_rejected = d->db->rejected();
        if (!list_rejected.ok()) throw std::runtime_error("rejected(): " + list_rejected.status().to_string());
        for (const json& r : *list_rejected) {
            rejected.insert({std::to_string(d->index), str(r["table"]), str(r["row_id"]), str(r["version"])});
            ++sim.m_stats.rejections;
            ++sim.m_stats.rejections_by_code[str(r["code"])];
            if (sim.m_options.verbose)
                std::printf("  device %d rejected %s/%s: %s %s\n", d->index, str(r["table"]).c_str(),
                            str(r["row_id"]).c_str(), str(r["code"]).c_str(), str(r["message"]).c_str());
        }
    }
    std::set<VersionKey> seen_as_base;
    std::map<VersionKey, json> written;
    std::set<RowKey> created;
    for (const WriteRecord& w : sim.m_writes) {
        for (const auto& [field, version] : w.base.items())
            if (version.is_string()) seen_as_base.insert({w.table, w.row, field, version.get<std::string>()});
        for (const auto& [field, value] : w.fields.items()) written[{w.table, w.row, field, w.version}] = value;
        created.insert({w.table, w.row});
    }
    bool none_lost = true;
    for (const WriteRecord& w : sim.m_writes) {
        for (const auto& [field, value] : w.fields.items()) {
            auto row = server_rows.find({w.table, w.row});
            if (row != server_rows.end()) {
                auto current = row->second.versions.find(field);
                if (current != row->second.versions.end() && current->second.to_string() == w.version) continue;
            }
            if (journal_lost.count({w.table, w.row, field, w.version})) continue;
            if (rejected.count({std::to_string(w.device), w.table, w.row, w.version})) continue;
            if (seen_as_base.count({w.table, w.row, field, w.version})) continue;
            none_lost = false;
            fail("(b) lost write", "device " + std::to_string(w.device) + " wrote " + w.table + "/" + w.row + "." +
                                       field + " = " + value.dump() + " @" + w.version +
                                       ": not current, not journalled, not rejected, not overwritten knowingly");
        }
    }
    if (none_lost) ++sim.m_stats.checks_passed["(b) no acknowledged write lost"];

    // ---- (c): every value on the server was written by someone with exactly that version ----
    std::map<FieldKey, json> seed;
    for (const schema::SeedTable& table : schema::builtin_seed())
        for (const json& r : table.rows)
            for (const auto& [field, value] : r.items())
                if (field != "id") seed[{table.table, r["id"].get<std::string>(), field}] = value;
    bool none_invented = true;
    bool no_duplicates = feed_entries == server_rows.size();
    if (!no_duplicates) fail("(d) duplicates", "the server feed lists some rows more than once");
    for (const auto& [key, row] : server_rows) {
        for (const auto& [field, version] : row.versions) {
            auto value = row.values.find(field);
            const json v = value == row.values.end() ? json() : value->second;
            bool known = false;
            if (version.node == server_node || version.node == sim.m_options.seed_node) {
                auto s = seed.find({key.first, key.second, field});
                known = s != seed.end() && s->second == v;
            } else {
                auto wr = written.find({key.first, key.second, field, version.to_string()});
                known = wr != written.end() && wr->second == v;
            }
            if (!known) {
                none_invented = false;
                fail("(c) invented value", describe(key) + "." + field + " = " + v.dump() + " @" +
                                               version.to_string() + " was never written with that version");
            }
        }
        const bool seeded = seed.lower_bound({key.first, key.second, ""}) != seed.end() &&
                            std::get<0>(seed.lower_bound({key.first, key.second, ""})->first) == key.first &&
                            std::get<1>(seed.lower_bound({key.first, key.second, ""})->first) == key.second;
        if (!seeded && !created.count(key)) {
            no_duplicates = false;
            fail("(d) duplicates", "server row " + describe(key) + " was created by no write");
        }
    }
    if (none_invented) ++sim.m_stats.checks_passed["(c) no invented value"];
    if (no_duplicates) ++sim.m_stats.checks_passed["(d) no duplicate rows"];
}

}  // namespace ubuzima::sim
