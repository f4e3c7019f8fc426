// Ubuzima Sync — MIT licence.
// Authorization through the real server, randomized: 1,000 hostile reads and writes by
// assessors, focal points and practitioners of one hospital against another hospital's rows
// (inserts, updates, deletes, moves, forged actors and nodes, forbidden tables, forged and
// replayed cursors). Every write is refused with a reason, no row of the other hospital changes,
// and no pull ever carries one.
#include <sqlite3.h>

#include <random>
#include <set>

#include "integration/fixture.hpp"
#include "ubuzima/schema/sqlite.hpp"
#include "ubuzima/sync/ids.hpp"

using namespace ubuzima;
using namespace ubuzima::test;
using nlohmann::json;

namespace {

constexpr const char* kVictimFacility = "fac-butaro";
constexpr const char* kOwnFacility = "fac-gisenyi";

struct Attacker {
    std::string user;
    std::string role;
    sync::NodeId node = 0;
    std::string token;
    std::string user_id;
};

struct Row {
    std::string table;
    std::string id;
};

/// Every row of the victim facility, with its bookkeeping, as one text: equal before and after
/// means nothing of theirs changed (values, versions, seqs, authors).
std::string victim_rows(const std::string& db_path) {
    sql::OpenOptions o;
    o.create = false;
    auto db = sql::Database::open(db_path, o);
    REQUIRE(db.ok());
    std::string out;
    for (const schema::TableDef& t : schema::Schema::builtin().tables()) {
        if (!t.scope_field || *t.scope_field == "id") continue;
        auto st = db->prepare("SELECT * FROM " + sql::quote_ident(t.name) + " WHERE " + sql::quote_ident(*t.scope_field) +
                              " = 'fac-butaro' ORDER BY id");
        REQUIRE(st.ok());
        REQUIRE(st->each([&](const sql::Statement& row) {
                      out += t.name + ":";
                      for (int c = 0; c < sqlite3_column_count(row.handle()); ++c)
                          out += (row.is_null(c) ? std::string("NULL") : row.column_text(c)) + "|";
                      out += "\n";
                  }).ok());
    }
    return out;
}

/// A value of the field's type (what a well-formed hostile change would carry).
json value_for(const schema::FieldDef& f, std::mt19937_64& rng) {
    switch (f.type) {
        case schema::FieldType::Text: return f.name == "facility_id" ? json(kVictimFacility) : json("forged-" + std::to_string(rng() % 1000));
        case schema::FieldType::Int: return static_cast<std::int64_t>(rng() % 50);
        case schema::FieldType::Timestamp: return static_cast<std::int64_t>(1'764'000'000'000);
        case schema::FieldType::Real: return 1.5;
        case schema::FieldType::Bool: return rng() % 2 == 0;
        case schema::FieldType::Date: return "2026-11-21";
        case schema::FieldType::Json: return json::array({"x"});
        case schema::FieldType::Enum: return f.values[rng() % f.values.size()];
    }
    return nullptr;
}

json full_row(const schema::TableDef& t, const std::string& facility, std::mt19937_64& rng) {
    json f = json::object();
    for (const schema::FieldDef& field : t.fields)
        if (field.required && field.actor.empty()) f[field.name] = value_for(field, rng);
    if (t.scope_field) f[*t.scope_field] = facility;
    return f;
}

}  // namespace

TEST_CASE_METHOD(ServerFixture, "1,000 cross-facility reads and writes are all refused and leak nothing",
              "[integration][authz]") {
    UBUZIMA_SQLITE_ONLY("compares the victim's rows in the SQLite file before and after");
    const std::uint64_t seed = 20261201;
    std::mt19937_64 rng(seed);
    INFO("seed " << seed);
    const std::string admin = login_token(server.url(), "admin", server.admin_password());

    // The victims: an assessor and a focal point of Butaro, with a bit of everything.
    create_user(server.url(), admin, "vic-assessor", kPassword, "assessor", {kVictimFacility});
    create_user(server.url(), admin, "vic-focal", kPassword, "focal_point", {kVictimFacility});
    Database va = device("vic-assessor", "vic-assessor");
    Database vf = device("vic-focal", "vic-focal");
    std::vector<Row> victim;
    auto add = [&](Database& db, const std::string& table, json fields) {
        fields["facility_id"] = kVictimFacility;
        auto id = db.insert(table, fields);
        INFO(table << " " << (id.ok() ? "" : id.status().to_string()));
        REQUIRE(id.ok());
        victim.push_back({table, *id});
        return *id;
    };
    const std::string a1 = add(va, "needs_assessment", assessment_fields(kVictimFacility));
    add(va, "assessment_finding", {{"assessment_id", a1}, {"item_id", "item-amn-power"}, {"availability", "not_available"},
                                   {"captured_at", 1'764'000'000'000}});
    const std::string sealed = add(va, "needs_assessment", assessment_fields(kVictimFacility));
    REQUIRE(va.update("needs_assessment", sealed, {{"status", "submitted"}}).ok());
    const std::string need = add(va, "need", need_fields(kVictimFacility, "Butaro's need"));
    add(va, "need_status_event", {{"need_id", need}, {"to_status", "open"}});
    const std::string trainee = add(vf, "trainee", {{"given_name", "Aline"}, {"family_name", "Example"}, {"cadre", "nurse"},
                                                    {"pseudonym_code", "BUT-001"}});
    const std::string session = add(vf, "skill_transfer_session",
                                    {{"deployment_id", "dep-b"}, {"topic", "Neonatal care"}, {"specialty_code", "paediatrics"},
                                     {"method", "bedside_teaching"}, {"start_at", 1'764'000'000'000},
                                     {"duration_minutes", 60}, {"delivery", "in_person"}, {"status", "held"}});
    add(vf, "session_attendance", {{"session_id", session}, {"trainee_id", trainee}, {"attendance", "present"}});
    add(vf, "service_tally", {{"deployment_id", "dep-b"}, {"service_date", "2026-11-21"}, {"service_type", "major_surgery"},
                              {"sex", "female"}, {"age_band", "25_49"}, {"patient_count", 3}});
    must_sync(va);
    must_sync(vf);
    std::set<std::string> victim_ids;
    for (const Row& r : victim) victim_ids.insert(r.id);
    // A cursor of a victim's, to replay as an attacker.
    const std::string victim_cursor = [&] {
        HttpResult r = http_request("POST", server.url() + "/v1/sync",
                                    json{{"protocol", 1}, {"schema_version", 1}, {"node", va.node_id()}}.dump(),
                                    login_token(server.url(), "vic-assessor", kPassword, va.node_id()));
        REQUIRE(r.status == 200);
        return r.json()["cursor"].get<std::string>();
    }();

    // The attackers: Gisenyi staff of each device-writing role, each on its own device.
    std::vector<Attacker> attackers(3);
    attackers[0].user = "att-assessor", attackers[0].role = "assessor";
    attackers[1].user = "att-focal", attackers[1].role = "focal_point";
    attackers[2].user = "att-pract", attackers[2].role = "practitioner";
    for (Attacker& a : attackers) {
        create_user(server.url(), admin, a.user, kPassword, a.role, {kOwnFacility});
        a.node = sync::new_node_id();
        HttpResult r = http_request("POST", server.url() + "/v1/auth/login",
                                    json{{"username", a.user}, {"password", kPassword}, {"device_id", sync::to_hex16(a.node)}}.dump());
        REQUIRE(r.status == 200);
        a.token = r.json()["access_token"];
        a.user_id = r.json()["user"]["id"];
    }
    const std::string vic_id = http_request("POST", server.url() + "/v1/auth/login",
                                            json{{"username", "vic-assessor"}, {"password", kPassword}, {"device_id", "x"}}.dump())
                                   .json()["user"]["id"];
    const std::string db_path = dir.file("server") + "/ubuzima.db";
    const std::string before = victim_rows(db_path);
    REQUIRE(!before.empty());

    const schema::Schema& schema = schema::Schema::builtin();
    std::map<std::string, int> outcomes;
    std::uint32_t counter = 0;
    int pulls = 0, writes = 0;
    for (int op = 0; op < 1000; ++op) {
        Attacker& a = attackers[rng() % attackers.size()];
        const int kind = static_cast<int>(rng() % 9);
        auto version = [&](sync::NodeId node) {
            return sync::Version{sync::make_hlc(sync::system_wall_ms(), counter++ % 60000), node}.to_string();
        };
        json req{{"protocol", 1}, {"schema_version", 1}, {"node", sync::to_hex16(a.node)}, {"limit", 200}};
        if (kind == 8) {
            // Reads: forged and replayed cursors.
            const std::vector<json> cursors = {nullptr, "0", std::to_string(rng() % 5000), "0:" + std::to_string(rng() % 5000),
                                               std::to_string(rng() % 500) + "/all", victim_cursor,
                                               std::to_string(rng() % 300) + ":" + std::to_string(rng() % 300 + 300) + "/all+"};
            req["cursor"] = cursors[rng() % cursors.size()];
            HttpResult r = http_request("POST", server.url() + "/v1/sync", req.dump(), a.token);
            ++pulls;
            if (r.status != 200) {
                ++outcomes["pull " + std::to_string(r.status)];
                CHECK(r.status == 400);  // a malformed forged cursor
                continue;
            }
            const json page = r.json();  // a named copy: the loop must not range over a temporary
            for (const json& c : page["changes"]) {
                INFO(c.dump());
                CHECK(victim_ids.count(c["id"].get<std::string>()) == 0);
                const schema::TableDef* t = schema.table(c["t"].get<std::string>());
                if (t && t->scope_field && c.contains("d") && c["d"].contains(*t->scope_field))
                    CHECK(c["d"][*t->scope_field] == kOwnFacility);
            }
            ++outcomes["pull ok"];
            continue;
        }
        ++writes;
        json change;
        const Row& target = victim[rng() % victim.size()];
        const schema::TableDef* table = schema.table(target.table);
        REQUIRE(table);
        switch (kind) {
            case 0: {  // update a field of their row
                const schema::FieldDef& f = table->fields[rng() % table->fields.size()];
                change = {{"t", target.table}, {"id", target.id}, {"v", version(a.node)}, {"f", {{f.name, value_for(f, rng)}}}};
                break;
            }
            case 1:  // delete their row
                change = {{"t", target.table}, {"id", target.id}, {"v", version(a.node)}, {"f", {{"_deleted", true}}}};
                break;
            case 2:  // take their row over with a whole row of our own facility
                change = {{"t", target.table}, {"id", target.id}, {"v", version(a.node)}, {"f", full_row(*table, kOwnFacility, rng)}};
                break;
            case 3:  // move their row to our facility
                change = {{"t", target.table}, {"id", target.id}, {"v", version(a.node)}, {"f", {{"facility_id", kOwnFacility}}}};
                break;
            case 4: {  // insert a new row into their facility
                const schema::TableDef& t = schema.tables()[rng() % schema.tables().size()];
                change = {{"t", t.name}, {"id", sync::new_uuid_v7(sync::system_wall_ms())}, {"v", version(a.node)},
                          {"f", full_row(t, kVictimFacility, rng)}};
                if (!t.scope_field) change["f"]["name"] = "forged";
                break;
            }
            case 5: {  // a row of our own facility that claims to be the victim's doing
                json f = full_row(*schema.table("need_status_event"), kOwnFacility, rng);
                f["by_user_id"] = vic_id;
                change = {{"t", "need_status_event"}, {"id", sync::new_uuid_v7(sync::system_wall_ms())},
                          {"v", version(a.node)}, {"f", f}};
                break;
            }
            case 6: {  // written as the victim's device (its node id)
                const schema::FieldDef& f = table->fields[rng() % table->fields.size()];
                sync::NodeId victim_node = *sync::parse_hex16(va.node_id());
                change = {{"t", target.table}, {"id", target.id}, {"v", version(victim_node)}, {"f", {{f.name, value_for(f, rng)}}}};
                break;
            }
            default: {  // a table the role may not write, even in its own facility
                const char* forbidden = a.role == "assessor" ? "service_tally" : "needs_assessment";
                change = {{"t", forbidden}, {"id", sync::new_uuid_v7(sync::system_wall_ms())}, {"v", version(a.node)},
                          {"f", full_row(*schema.table(forbidden), kOwnFacility, rng)}};
                break;
            }
        }
        req["batch"] = {{"id", "attack-" + std::to_string(op)}, {"changes", json::array({change})}};
        HttpResult r = http_request("POST", server.url() + "/v1/sync", req.dump(), a.token);
        INFO("op " << op << " kind " << kind << " by " << a.user << ": " << change.dump() << " -> " << r.body);
        REQUIRE(r.status == 200);
        const json push = r.json()["push"];
        CHECK(push["applied"] == 0);
        REQUIRE(push["rejected"].size() == 1);
        const json& why = push["rejected"][0];
        CHECK_FALSE(why["message"].get<std::string>().empty());
        CHECK(why["current"].is_null());  // nothing of theirs comes back either
        CHECK(why["message"].get<std::string>().find(kVictimFacility) == std::string::npos);
        ++outcomes[why["code"].get<std::string>()];
        const json answer = r.json();
        for (const json& c : answer["changes"]) CHECK(victim_ids.count(c["id"].get<std::string>()) == 0);
    }
    CHECK(writes + pulls == 1000);
    std::string summary;
    for (const auto& [what, n] : outcomes) summary += " " + what + "=" + std::to_string(n);
    WARN("1,000 hostile operations (" << writes << " writes, " << pulls << " pulls):" << summary);
    CHECK(victim_rows(db_path) == before);  // 0 rows of theirs changed
    // The victims still sync and see their own rows, unharmed.
    must_sync(va);
    CHECK(va.get("need", need).value().has_value());
}
