// Ubuzima Sync — MIT licence.
// The simulation itself: setup from templates, random local writes and syncs, healing.
#include "sim.hpp"

#include <cstdlib>
#include <filesystem>

namespace ubuzima::sim {

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kStart = 1'795'154'400'000;  // 2026-11-20 06:00 UTC
constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t k2040 = 2'214'172'800'000;
constexpr const char* kAdminPassword = "sim-admin-password";
const std::vector<std::string> kFacilities = {"fac-gisenyi", "fac-butaro", "fac-kibuye"};
const std::vector<std::string> kAllFacilities = {"fac-gisenyi", "fac-butaro", "fac-kibuye", "fac-kabgayi"};
const std::vector<std::string> kPriorities = {"critical", "high", "medium", "low"};
const std::vector<std::string> kNeedStatus = {"identified", "validated", "open", "matched", "deferred"};
const std::vector<std::string> kCadres = {"nurse", "midwife", "medical_officer", "pharmacist"};
const std::vector<std::string> kItems = {"item-amn-power", "item-amn-water", "item-amn-privacy", "item-amn-comms"};
const std::vector<std::string> kAvailability = {"observed_functional", "observed_not_functional", "not_available"};

server::ServerOptions server_options(const std::function<std::int64_t()>& wall) {
    server::ServerOptions o;
    o.pbkdf2_iterations = 1000;  // the simulation logs in thousands of times
    o.bootstrap_admin_password = kAdminPassword;
    o.rate = server::RateLimits{0, 0, 0, 0};  // simulated time runs in bursts; limits have their own tests
    o.wall = wall;
    return o;
}

std::string password_of(const std::string& user) { return "pw-" + user + "-simulated"; }

/// May this device's role write `table` (the schema's write_roles)?
bool may_write(const Device& d, const std::string& table) {
    const schema::TableDef* t = schema::Schema::builtin().table(table);
    return t && std::find(t->write_roles.begin(), t->write_roles.end(), d.role) != t->write_roles.end();
}

bool expected_refusal(ErrorCode code) {
    return code == ErrorCode::NotFound || code == ErrorCode::Sealed || code == ErrorCode::AppendOnly ||
           code == ErrorCode::Conflict;
}

}  // namespace

SimStats& SimStats::operator+=(const SimStats& o) {
    seeds += o.seeds;
    writes += o.writes;
    refused_locally += o.refused_locally;
    syncs += o.syncs;
    failed_syncs += o.failed_syncs;
    relogins += o.relogins;
    server_conflicts += o.server_conflicts;
    rejections += o.rejections;
    for (const auto& [code, n] : o.rejections_by_code) rejections_by_code[code] += n;
    restamped += o.restamped;
    faults += o.faults;
    for (const auto& [name, n] : o.checks_passed) checks_passed[name] += n;
    failures += o.failures;
    return *this;
}

bool Device::sees(const std::string& facility) const {
    return facilities.empty() || std::find(facilities.begin(), facilities.end(), facility) != facilities.end();
}

Status Simulation::make_server_template(const std::string& path) {
    std::error_code ec;
    fs::remove(path, ec);
    auto store = server::SqliteStore::open(path, 0x5e5e5e5e5e5e5e5eULL);
    if (!store.ok()) return store.status();
    auto api = server::Api::create(**store, server_options([] { return kStart - kDay; }));
    return api.status();
}

#ifdef UBUZIMA_WITH_POSTGRESQL
namespace {

Status on_maintenance_connection(const std::string& sql) {
    server::pg::ConnectOptions o;
    o.application_name = "ubuzima-sim";
    auto c = server::pg::Connection::connect("", o);
    if (!c.ok()) return c.status();
    return (*c)->exec(sql);
}

Result<std::unique_ptr<server::ServerStore>> open_pg(const std::string& database) {
    server::PgStoreOptions o;
    o.pool_size = 2;
    o.connect.database = database;
    o.connect.application_name = "ubuzima-sim";
    auto store = server::PgStore::open("", o);
    if (!store.ok()) return store.status();
    return std::unique_ptr<server::ServerStore>(std::move(*store));
}

}  // namespace
#endif

Result<sync::NodeId> Simulation::make_pg_template(const std::string& name) {
#ifdef UBUZIMA_WITH_POSTGRESQL
    UBUZIMA_TRY(drop_pg_database(name));
    UBUZIMA_TRY(on_maintenance_connection("CREATE DATABASE " + name));
    auto store = open_pg(name);
    if (!store.ok()) return store.status();
    auto api = server::Api::create(**store, server_options([] { return kStart - kDay; }));
    if (!api.ok()) return api.status();
    return (*store)->node_id();
#else
    (void)name;
    return Status(ErrorCode::InvalidArgument, "built without PostgreSQL support");
#endif
}

Status Simulation::drop_pg_database(const std::string& name) {
#ifdef UBUZIMA_WITH_POSTGRESQL
    return on_maintenance_connection("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
#else
    (void)name;
    return Status(ErrorCode::InvalidArgument, "built without PostgreSQL support");
#endif
}

Simulation::Simulation(SimOptions options) : m_options(std::move(options)), m_rng(m_options.seed * 0x2545f4914f6cdd1dULL + 1) {}

Simulation::~Simulation() {
    m_devices.clear();
    m_api.reset();
    m_store.reset();
    if (!m_pg_database.empty()) (void)drop_pg_database(m_pg_database);
    std::error_code ec;
    fs::remove_all(m_options.work_dir, ec);
}

Status Simulation::setup() {
    fs::create_directories(m_options.work_dir);
    m_now = kStart + m_rng.between(0, kDay);
    if (!m_options.pg_template.empty()) {
#ifdef UBUZIMA_WITH_POSTGRESQL
        // A copy of the template per seed, as the SQLite file is copied: every seed starts equal.
        m_pg_database = m_options.pg_template + "_s" + std::to_string(m_options.seed);
        UBUZIMA_TRY(drop_pg_database(m_pg_database));
        UBUZIMA_TRY(on_maintenance_connection("CREATE DATABASE " + m_pg_database + " TEMPLATE " + m_options.pg_template));
        auto store = open_pg(m_pg_database);
        if (!store.ok()) return store.status();
        m_store = std::move(*store);
#else
        return Status(ErrorCode::InvalidArgument, "built without PostgreSQL support");
#endif
    } else {
        const std::string server_path = m_options.work_dir + "/server.db";
        fs::copy_file(m_options.server_template, server_path, fs::copy_options::overwrite_existing);
        auto store = server::SqliteStore::open(server_path);
        if (!store.ok()) return store.status();
        m_store = std::move(*store);
    }
    auto api = server::Api::create(*m_store, server_options([this] { return m_now; }));
    if (!api.ok()) return api.status();
    m_api = std::move(*api);

    for (int i = 0; i < m_options.devices; ++i) {
        auto d = std::make_unique<Device>();
        d->index = i;
        d->user = "u" + std::to_string(i);
        d->node = m_rng.next() | 1;
        // Assessors and focal points write different tables (schema write_roles): both kinds.
        std::string role = i % 2 ? "focal_point" : "assessor";
        if (i == 0) {
            role = "coordinator";  // sees everything, may validate submitted assessments
            d->skew_ms = m_rng.between(-3'600'000, 3'600'000);
        } else if (i == 1) {
            d->facilities = {"fac-gisenyi", "fac-butaro"};
            d->skew_ms = -m_now + m_rng.between(0, 30 * kDay);  // dead battery: 1970
        } else if (i == 2) {
            d->facilities = {"fac-gisenyi"};
            d->rogue = true;
            d->skew_ms = k2040 - m_now + m_rng.between(0, 300 * kDay);  // set to 2040
        } else if (i == 4) {
            // An assessor of two facilities (assessors write needs): the one who surely moves
            // needs past the single-facility devices that wrote them.
            d->facilities = {"fac-gisenyi", m_rng.chance(500) ? "fac-butaro" : "fac-kibuye"};
            d->skew_ms = m_rng.between(-5 * kDay, 5 * kDay);
        } else {
            d->facilities = {m_rng.pick(kFacilities)};
            if (m_rng.chance(500)) {
                const std::string& other = m_rng.pick(kFacilities);
                if (other != d->facilities[0]) d->facilities.push_back(other);
            }
            d->rogue = m_rng.chance(300);
            d->skew_ms = m_rng.between(-5 * kDay, 5 * kDay);
        }
        auto created = m_api->users().create_user(server::Actor::console(), d->user, password_of(d->user), role,
                                                  d->facilities);
        if (!created.ok()) return created.status();
        d->user_id = created->id;
        d->role = role;

        d->path = m_options.work_dir + "/device-" + std::to_string(i) + ".db";
        d->transport = std::make_shared<FaultTransport>(*m_api, m_rng, FaultRates{});
        Device* raw = d.get();
        d->transport->before_post = [this, raw] { snapshot_outbox(*raw); };
        DatabaseOptions o;
        o.path = d->path;
        o.durability = Durability::Normal;
        const std::int64_t skew = d->skew_ms;
        o.wall_clock = [this, skew] { return m_now + skew; };
        o.node_id = d->node;
        o.sync.server_url = "sim://server";
        o.sync.transport = d->transport;
        o.sync.batch_size = static_cast<int>(m_rng.between(2, 40));
        o.sync.page_limit = static_cast<int>(m_rng.between(5, 300));
        // Retries wait in simulated time, without jitter: the same seed must replay exactly.
        o.sync.retry.max_attempts = static_cast<int>(m_rng.between(1, 5));
        o.sync.retry.jitter = 0;
        o.sync.retry.sleep = [this](std::int64_t ms) { m_now += ms; };
        auto db = Database::open(o);
        if (!db.ok()) return db.status();
        d->db.emplace(std::move(*db));
        sql::OpenOptions peek;
        peek.create = false;
        peek.synchronous = "NORMAL";
        auto conn = sql::Database::open(d->path, peek);
        if (!conn.ok()) return conn.status();
        d->peek.emplace(std::move(*conn));
        d->transport->set_faults(false);
        UBUZIMA_TRY(login(*d));
        d->transport->set_faults(true);
        m_devices.push_back(std::move(d));
    }
    return {};
}

Status Simulation::login(Device& d) {
    return d.db->login("", d.user, password_of(d.user));
}

void Simulation::snapshot_outbox(Device& d) {
    auto stmt = d.peek->cached("SELECT seq, version, base FROM _outbox");
    if (!stmt.ok()) return;
    (void)(*stmt)->each([&](const sql::Statement& s) {
        auto it = d.by_seq.find(s.column_int(0));
        if (it == d.by_seq.end()) return;
        WriteRecord& w = m_writes[it->second];
        const std::string version = s.column_text(1);
        if (version != w.version) {
            ++m_stats.restamped;
            if (m_options.verbose)
                m_trace.push_back("dev " + std::to_string(d.index) + " restamped " + w.table + "/" + w.row + " " +
                                  w.version + " -> " + version);
            w.version = version;
        }
        w.base = json::parse(s.column_text(2), nullptr, false);
    });
}

namespace {

/// The facility of a need as the device holds it (none if it does not hold it).
std::optional<std::string> facility_of(const Device& d, const std::string& id) {
    auto row = d.db->get("need", id);
    if (!row.ok() || !*row || !(**row).contains("facility_id") || !(**row)["facility_id"].is_string()) return std::nullopt;
    return (**row)["facility_id"].get<std::string>();
}

}  // namespace

bool Simulation::local_write(Device& d, const char* op, const std::string& table, const std::string& id,
                             const json& fields) {
    const std::string kind(op);
    Status s = kind == "put" ? d.db->put(table, id, fields)
               : kind == "update" ? d.db->update(table, id, fields)
                                  : d.db->remove(table, id);
    if (!s.ok()) {
        if (!expected_refusal(s.code())) {
            throw std::runtime_error("device " + std::to_string(d.index) + " " + kind + " " + table + " " + id +
                                     " failed unexpectedly: " + s.to_string());
        }
        ++m_stats.refused_locally;
        return false;
    }
    auto stmt = d.peek->cached("SELECT seq, version, fields, base FROM _outbox ORDER BY seq DESC LIMIT 1");
    if (!stmt.ok()) throw std::runtime_error("outbox read: " + stmt.status().to_string());
    auto has = (*stmt)->step();
    if (!has.ok() || !*has) throw std::runtime_error("an accepted write is not in the outbox");
    sql::Statement& q = **stmt;
    // A row's first write leaves `fields` empty in the outbox (it refers to the row): what was
    // written is then exactly what this call passed.
    json written = q.column_text(2).empty() ? fields : json::parse(q.column_text(2), nullptr, false);
    if (q.column_text(2).empty()) written.erase("id");
    WriteRecord w{d.index, table, id, q.column_text(1), std::move(written), json::parse(q.column_text(3), nullptr, false)};
    d.by_seq[q.column_int(0)] = m_writes.size();
    q.reset();
    m_writes.push_back(std::move(w));
    ++m_stats.writes;
    return true;
}

std::string Simulation::need_status(Device& d) {
    // Validating a need is the Ministry's step (value_roles): others try it only when rogue.
    for (;;) {
        const std::string& s = m_rng.pick(kNeedStatus);
        if (s != "validated" || d.facilities.empty() || (d.rogue && m_rng.chance(100))) return s;
    }
}

std::string Simulation::pick_facility(Device& d) {
    if (d.rogue && m_rng.chance(200)) return m_rng.pick(kAllFacilities);  // out of scope: rejected
    return d.facilities.empty() ? m_rng.pick(kFacilities) : m_rng.pick(d.facilities);
}

const KnownRow* Simulation::pick_row(const std::string& table) {
    auto it = m_rows.find(table);
    if (it == m_rows.end() || it->second.empty()) return nullptr;
    return &it->second[m_rng.below(it->second.size())];
}

void Simulation::act_write(Device& d, int n) {
    static const std::vector<std::string> kTables = {"need", "need", "trainee", "needs_assessment",
                                                     "assessment_finding", "service_tally", "session_attendance"};
    const std::string table = m_rng.pick(kTables);
    // A rogue device now and then writes a table its role may not (the server refuses it).
    if (!may_write(d, table) && !(d.rogue && m_rng.chance(100))) return;
    const std::string tag = "v" + std::to_string(n) + "d" + std::to_string(d.index);
    const KnownRow* row = pick_row(table);
    const bool create = row == nullptr || m_rng.chance(350);
    if (create) {
        const std::string prefix = table == "needs_assessment" ? "asmt" : table == "assessment_finding" ? "find"
                                                                                                          : table.substr(0, 4);
        const std::string id = prefix + "-" + std::to_string(m_next_id++);
        KnownRow known{table, id, pick_facility(d), ""};
        json f{{"facility_id", known.facility}};
        if (table == "need") {
            f.update({{"need_type", "skills_training"}, {"title", "title " + tag}, {"description", "desc " + tag},
                      {"priority", m_rng.pick(kPriorities)}, {"status", need_status(d)}});
        } else if (table == "trainee") {
            f.update({{"given_name", "given " + tag}, {"family_name", "family " + tag},
                      {"cadre", m_rng.pick(kCadres)}, {"pseudonym_code", "P-" + tag}});
        } else if (table == "needs_assessment") {
            f.update({{"instrument_version_id", "instv-dehs-hna-1.0.0"}, {"assessment_type", "baseline"},
                      {"status", "draft"}, {"visit_date", "2026-11-20"}, {"lead_assessor_id", d.user_id}});
        } else if (table == "assessment_finding") {
            const KnownRow* parent = pick_row("needs_assessment");
            if (!parent) return;
            known.facility = parent->facility;
            known.parent = parent->id;
            f = {{"facility_id", parent->facility}, {"assessment_id", parent->id}, {"item_id", m_rng.pick(kItems)},
                 {"availability", m_rng.pick(kAvailability)}, {"captured_at", m_now}, {"comment", "c " + tag}};
        } else if (table == "service_tally") {
            f.update({{"deployment_id", "dep-001"}, {"service_date", "2026-11-21"},
                      {"service_type", "outpatient_consultation"}, {"sex", "female"}, {"age_band", "25_49"},
                      {"patient_count", m_rng.between(0, 40)}});
        } else {
            f.update({{"session_id", "sess-" + tag}, {"trainee_id", "trainee-" + tag}, {"attendance", "present"}});
        }
        if (local_write(d, "put", table, id, f)) m_rows[table].push_back(known);
        return;
    }
    KnownRow target = *row;  // copied: m_rows may grow below
    std::optional<std::string> move_back;
    if (table == "need" && m_options.moves && !d.moved_away.empty() && m_rng.chance(300)) {
        const std::size_t k = m_rng.below(d.moved_away.size());
        target.id = d.moved_away[k].first;
        move_back = d.moved_away[k].second;
        d.moved_away.erase(d.moved_away.begin() + static_cast<std::ptrdiff_t>(k));
    }
    if ((table == "need" || table == "trainee") && m_rng.chance(120)) {
        local_write(d, "remove", table, target.id, nullptr);
        return;
    }
    json f;
    if (table == "need") {
        f = {{"title", "title " + tag}};
        if (m_rng.chance(500)) f["priority"] = m_rng.pick(kPriorities);
        if (m_rng.chance(500)) f["status"] = need_status(d);
        if (m_rng.chance(300)) f["trainees_expected"] = m_rng.between(0, 30);
        if (d.rogue && m_rng.chance(150)) {
            const std::string& to = m_rng.pick(kAllFacilities);
            if (m_options.moves || !d.sees(to)) f["facility_id"] = to;  // out of scope: rejected
        } else if (move_back) {
            f["facility_id"] = *move_back;
        } else if (m_options.moves && d.facilities.size() > 1 && m_rng.chance(100)) {
            // A move others may not see (a no-op when the row is elsewhere already).
            f["facility_id"] = m_rng.pick(d.facilities);
            auto from = facility_of(d, target.id);
            if (from && *from != f["facility_id"]) {
                if (local_write(d, "update", table, target.id, f)) d.moved_away.emplace_back(target.id, *from);
                return;
            }
        }
    } else if (table == "trainee") {
        f = {{"given_name", "given " + tag}};
        if (m_rng.chance(400)) f["cadre"] = m_rng.pick(kCadres);
    } else if (table == "needs_assessment") {
        if (m_rng.chance(300)) f = {{"status", "submitted"}, {"submitted_at", m_now}};
        else if (d.facilities.empty() && m_rng.chance(200)) f = {{"status", "validated"}};
        else f = {{"summary", "summary " + tag}};
    } else if (table == "assessment_finding") {
        f = {{"comment", "c " + tag}};
        if (m_rng.chance(400)) f["value_int"] = m_rng.between(0, 100);
    } else if (m_rng.chance(500)) {
        f = {{"voided_at", m_now}, {"voided_by", d.user_id}, {"void_reason", "r " + tag}};
    } else {
        f = table == "service_tally" ? json{{"patient_count", m_rng.between(0, 40)}} : json{{"attendance", "absent"}};
    }
    local_write(d, "update", table, target.id, f);
}

void Simulation::act_sync(Device& d) {
    ++m_stats.syncs;
    auto r = d.db->sync();
    if (m_options.verbose)
        m_trace.push_back("t=" + std::to_string(m_now) + " dev " + std::to_string(d.index) + " sync " +
                          (r.ok() ? "ok pushed " + std::to_string(r->pushed) + " pulled " + std::to_string(r->pulled) +
                                        " rejected " + std::to_string(r->rejected) + " conflicts " +
                                        std::to_string(r->conflicts)
                                  : r.status().to_string()));
    if (r.ok()) return;
    if (r.status().code() == ErrorCode::Network) {
        ++m_stats.failed_syncs;
        return;
    }
    if (r.status().code() == ErrorCode::NotLoggedIn || r.status().code() == ErrorCode::Revoked) {
        // A refresh whose answer was lost may be repeated once, within a minute. Lost twice, or
        // retried later than that (simulated time jumps up to 90 s a step), it is reuse and the
        // server revokes the login, as it must for a stolen token: the user logs in again.
        ++m_stats.relogins;
        (void)login(d);
        return;
    }
    throw std::runtime_error("device " + std::to_string(d.index) + " sync failed unexpectedly: " + r.status().to_string());
}

void Simulation::step(int n) {
    m_now += m_rng.between(0, 90'000);
    Device& d = *m_devices[m_rng.below(m_devices.size())];
    if (d.offline_steps > 0 && --d.offline_steps == 0) d.transport->set_online(true);
    const int roll = static_cast<int>(m_rng.below(100));
    if (roll < 55) act_write(d, n);
    else if (roll < 80) act_sync(d);
    else if (roll < 84 && d.transport->online()) {
        d.offline_steps = static_cast<int>(m_rng.between(5, 60));
        d.transport->set_online(false);
    }
}

Status Simulation::heal() {
    for (auto& d : m_devices) {
        d->transport->set_faults(false);
        d->transport->set_online(true);
        d->offline_steps = 0;
    }
    // Twice around: the second round brings everyone the writes of devices that synced after them.
    for (int round = 0; round < 2; ++round) {
        for (auto& d : m_devices) {
            m_now += 1000;
            auto r = d->db->sync();
            if (!r.ok() && (r.status().code() == ErrorCode::NotLoggedIn || r.status().code() == ErrorCode::Revoked)) {
                ++m_stats.relogins;
                UBUZIMA_TRY(login(*d));
                r = d->db->sync();
            }
            if (!r.ok()) return Status(r.status().code(), "flush of device " + std::to_string(d->index) + ": " + r.status().message());
            auto pending = d->db->pending_changes();
            if (!pending.ok()) return pending.status();
            if (*pending != 0)
                return Status(ErrorCode::Internal, "device " + std::to_string(d->index) + " still has " +
                                                       std::to_string(*pending) + " pending changes after a full sync");
        }
    }
    return {};
}

void Simulation::dump_history(const std::vector<std::string>& failures) {
    // For a replay: every recorded write and rejection of the rows the failures name.
    for (const WriteRecord& w : m_writes) {
        bool named = false;
        for (const std::string& f : failures) named = named || f.find(w.table + "/" + w.row + " ") != std::string::npos ||
                                                             f.find(w.table + "/" + w.row + ".") != std::string::npos;
        if (!named) continue;
        std::printf("  write dev %d %s/%s @%s %s base %s\n", w.device, w.table.c_str(), w.row.c_str(), w.version.c_str(),
                    w.fields.dump().c_str(), w.base.dump().c_str());
    }
    for (const auto& d : m_devices) {
        auto rejected = d->db->rejected();
        if (!rejected.ok()) continue;
        for (const json& r : *rejected)
            for (const std::string& f : failures)
                if (f.find(r["table"].get<std::string>() + "/" + r["row_id"].get<std::string>()) != std::string::npos) {
                    std::printf("  rejected dev %d %s\n", d->index, r.dump().c_str());
                    break;
                }
    }
    for (const std::string& line : m_trace) std::printf("  trace %s\n", line.c_str());
}

std::vector<std::string> Simulation::run() {
    std::vector<std::string> failures;
    try {
        Status s = setup();
        if (!s.ok()) throw std::runtime_error("setup: " + s.to_string());
        for (int n = 0; n < m_options.steps; ++n) step(n);
        s = heal();
        if (!s.ok()) throw std::runtime_error("heal: " + s.to_string());
        Checker::run(*this, failures);
    } catch (const std::exception& e) {
        failures.emplace_back(e.what());
    }
    for (const auto& d : m_devices) m_stats.faults += d->transport->counts();
    ++m_stats.seeds;
    if (const char* row = std::getenv("UBUZIMA_SIM_TRACE_ROW"); row && m_options.verbose)
        dump_history({std::string(row) + " "});  // history of one row, even when the seed passed
    if (!failures.empty()) {
        ++m_stats.failures;
        if (m_options.verbose) dump_history(failures);
    }
    return failures;
}

}  // namespace ubuzima::sim
