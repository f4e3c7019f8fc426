// Ubuzima Sync — MIT licence.
// One seeded convergence run: K real device databases, the real server Api, a faulty network.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fault_transport.hpp"
#include "storage/sqlite_store.hpp"
#ifdef UBUZIMA_WITH_POSTGRESQL
#include "storage/pg_store.hpp"
#endif
#include "ubuzima/database.hpp"
#include "ubuzima/schema/sqlite.hpp"

namespace ubuzima::sim {

using nlohmann::json;

struct SimOptions {
    std::uint64_t seed = 1;
    int devices = 5;
    int steps = 200;
    std::string work_dir;        ///< per-run scratch directory (under /dev/shm when it exists)
    std::string server_template; ///< server file with seeds and admin, copied per seed
    /// PostgreSQL instead (the cluster of the PG* environment): the template database with seeds
    /// and admin, copied per seed with CREATE DATABASE ... TEMPLATE. "" = SQLite.
    std::string pg_template;
    /// The node that wrote the seed rows into the template (on PostgreSQL each open of a store is
    /// a node of its own, so the seeds' node is not the seed's server node). 0 = the server's.
    sync::NodeId seed_node = 0;
    bool verbose = false;
    /// Also move rows between facilities of the writer's scope (moves out of it are always
    /// tried, and refused). Such a move takes the row out of other users' scope: their devices
    /// must drop it (the feed's exit entries), and users who see only the new facility get it whole.
    bool moves = true;
};

/// Counters summed over seeds for the summary.
struct SimStats {
    std::int64_t seeds = 0;
    std::int64_t writes = 0;           ///< local writes the library accepted
    std::int64_t refused_locally = 0;  ///< writes the library refused (sealed, append-only, ...)
    std::int64_t syncs = 0;
    std::int64_t failed_syncs = 0;     ///< sync() calls that ended in a (simulated) network error
    std::int64_t relogins = 0;         ///< a lost refresh answer logged the device out
    std::int64_t server_conflicts = 0;
    std::int64_t rejections = 0;
    std::map<std::string, std::int64_t> rejections_by_code;
    std::int64_t restamped = 0;        ///< writes re-versioned after a clock_skew rejection
    FaultCounts faults;
    std::map<std::string, std::int64_t> checks_passed;
    std::int64_t failures = 0;

    SimStats& operator+=(const SimStats& o);
};

/// A write the library accepted, as captured from the outbox (version and bases updated when a
/// clock_skew rejection re-stamps it).
struct WriteRecord {
    int device = 0;
    std::string table;
    std::string row;
    std::string version;
    json fields;
    json base;
};

/// A row the simulation knows about (created by some device), so others can try to edit it.
struct KnownRow {
    std::string table;
    std::string id;
    std::string facility;
    std::string parent;  ///< assessment of a finding
};

struct Device {
    int index = 0;
    std::string user;
    std::string user_id;  ///< the server's id of `user`: actor fields carry it
    std::string role;
    std::vector<std::string> facilities;  ///< empty = sees every facility (coordinator)
    bool rogue = false;                   ///< sometimes writes outside its facilities
    std::int64_t skew_ms = 0;
    sync::NodeId node = 0;
    std::string path;
    std::shared_ptr<FaultTransport> transport;
    std::optional<Database> db;
    std::optional<sql::Database> peek;           ///< second connection: reads the outbox and rows
    std::map<std::int64_t, std::size_t> by_seq;  ///< outbox seq -> index in Simulation::m_writes
    int offline_steps = 0;
    /// Rows this device moved to another facility, with the facility each left: it may move one
    /// back (a move by mistake, undone). Out and back is the history that tests whether a device
    /// that dropped the row on the way out gets all of it again, its own fields included.
    std::vector<std::pair<std::string, std::string>> moved_away;
    bool sees(const std::string& facility) const;
};

class Simulation {
public:
    explicit Simulation(SimOptions options);
    ~Simulation();
    Simulation(const Simulation&) = delete;
    Simulation& operator=(const Simulation&) = delete;

    /// Runs setup, the random steps, healing and the checks. Returns the failures ("" = passed).
    std::vector<std::string> run();
    const SimStats& stats() const { return m_stats; }

    /// Builds the server template file once per process (seeds, admin).
    static Status make_server_template(const std::string& path);
    /// The same as a PostgreSQL database `name` (replaced if it exists; needs the PG* environment).
    /// Returns the node id that wrote the seeds (see SimOptions::seed_node).
    static Result<sync::NodeId> make_pg_template(const std::string& name);
    /// Drops database `name` (the template, at the end of a run).
    static Status drop_pg_database(const std::string& name);

private:
    Status setup();
    void step(int n);
    void act_write(Device& d, int n);
    void act_sync(Device& d);
    bool local_write(Device& d, const char* op, const std::string& table, const std::string& id, const json& fields);
    void snapshot_outbox(Device& d);
    Status login(Device& d);
    Status heal();
    void dump_history(const std::vector<std::string>& failures);
    std::string pick_facility(Device& d);
    std::string need_status(Device& d);
    const KnownRow* pick_row(const std::string& table);

    SimOptions m_options;
    Rng m_rng;
    std::int64_t m_now = 0;  ///< the true time (server wall clock), Unix ms
    std::unique_ptr<server::ServerStore> m_store;
    std::string m_pg_database;  ///< this seed's database on PostgreSQL, dropped with the simulation
    std::unique_ptr<server::Api> m_api;
    std::vector<std::unique_ptr<Device>> m_devices;
    std::vector<WriteRecord> m_writes;
    std::map<std::string, std::vector<KnownRow>> m_rows;
    std::int64_t m_next_id = 0;
    SimStats m_stats;
    std::vector<std::string> m_trace;  ///< sync outcomes, printed with --verbose on failure
    friend struct Checker;
};

/// Runs the final checks (sim_checks.cpp) and appends human-readable failures.
struct Checker {
    static void run(Simulation& sim, std::vector<std::string>& failures);
};

}  // namespace ubuzima::sim
