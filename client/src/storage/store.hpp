// Ubuzima Sync — MIT licence.
// The device store: the SQLite file with typed tables, field versions, outbox, journal and meta.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ubuzima/database.hpp"
#include "ubuzima/schema/schema.hpp"
#include "ubuzima/schema/sqlite.hpp"
#include "ubuzima/sync/hlc.hpp"

namespace ubuzima::detail {

using nlohmann::json;
/// Field name -> value, as a JSON object holds them: a captured write uses the app's object as is.
using FieldMap = json::object_t;

/// Hidden bookkeeping columns of every typed table.
inline constexpr const char* kDeletedColumn = "_deleted";
inline constexpr const char* kVersionsColumn = "_v";

/// `_outbox.fields` of a row's first write: "the row's fields that carry this entry's version".
/// The row is written once instead of twice (the outbox copy was most of a captured write's
/// bytes: bench/performance_notes.md); the copy is made only if the row changes before the push
/// (Store::materialize_outbox), so an entry always pushes exactly what was written.
inline constexpr const char* kLazyFields = "";

/// The stored state of one row, as read in one statement.
struct RowState {
    bool exists = false;
    bool deleted = false;
    json versions = json::object();  ///< `_v`: field → "<hlc>@<node>"
    json values = json::object();    ///< every schema field → value (null when unset)
};

/// One conflict-journal entry (the loser and the winner of one field).
struct JournalEntry {
    std::string table;
    std::string row_id;
    std::string field;
    json kept_value;
    std::string kept_version;
    json lost_value;
    std::string lost_version;
    std::string source;  ///< "push" or "pull"
};

/// Owner of the SQLite connection, the schema in use and the hybrid logical clock.
///
/// Not thread-safe by itself: every method except the accessors requires mutex() to be held
/// (Database and the sync session take it). Methods that write expect an open transaction
/// unless they say they open one.
class Store {
public:
    /// Opens/creates the file and creates or upgrades every table in one transaction.
    static Result<std::unique_ptr<Store>> open(const DatabaseOptions& options);

    std::mutex& mutex() { return m_mutex; }
    sql::Database& db() { return m_db; }
    const schema::Schema& schema() const { return *m_schema; }
    sync::HybridClock& clock() { return m_clock; }
    sync::NodeId node() const { return m_node; }
    /// The uncorrected device wall clock (Unix ms).
    std::int64_t raw_wall_ms() const { return m_wall(); }
    /// The logged-in user's id ("" before the first login): local writes fill actor fields
    /// with it, as the server would.
    const std::string& user_id() const { return m_user_id; }
    /// Records the logged-in user (in _meta, in the caller's transaction).
    Status set_user(std::string_view user_id, std::string_view username);

    /// Deletes every row of the device-written tables, the outbox, the journal, the rejected list,
    /// the cursor and the tokens, and makes this device a new replica with node id `new_node`:
    /// a pull skips fields "this node" wrote, which a wiped device no longer holds. Reference data
    /// stays (everyone may read it). In the caller's transaction.
    Status reset_local_data(sync::NodeId new_node);
    /// Drops every row of a facility outside `facilities` (the user's scope shrank), local edits
    /// still in the outbox included: the server refuses those as out_of_scope into _rejected.
    /// Returns the number of rows dropped. In the caller's transaction.
    Result<std::int64_t> purge_outside(const std::vector<std::string>& facilities);
    /// Clears batch `id` from its outbox entries: the server never applied it (413), so they are
    /// sent again, in smaller batches.
    Status unassign_batch(const std::string& id);
    /// Number of refused changes kept in _rejected.
    Result<std::int64_t> rejected_count();

    Result<std::optional<std::string>> meta(std::string_view key);
    Status set_meta(std::string_view key, std::string_view value);
    /// Persists the HLC's last value and the clock offset (in the sync's transaction; a local
    /// write's version is recovered from its outbox entry on open instead).
    Status save_clock();

    /// with_versions = false leaves RowState::versions empty (callers that need only the values).
    Result<RowState> load_row(const schema::TableDef& table, std::string_view id, bool with_versions = true);
    /// Upserts the given columns (schema fields and/or "_deleted") and the row's `_v`.
    Status write_row(const schema::TableDef& table, std::string_view id, const FieldMap& columns,
                     const json& versions);
    /// The same with `_v` already serialised (local writes build it without a JSON tree).
    Status write_row_text(const schema::TableDef& table, std::string_view id,
                          const FieldMap& columns, const std::string& versions_text);
    /// A plain INSERT of a row that must not exist yet: an existing id fails instead of merging.
    Status insert_row_text(const schema::TableDef& table, std::string_view id,
                           const FieldMap& columns, const std::string& versions_text);
    Status delete_row(const schema::TableDef& table, std::string_view id);
    /// The fields of a row that carry `version`, as pushed for an outbox entry whose `fields` is
    /// kLazyFields (the row's first write, which nothing has changed since).
    Result<json> fields_at(const schema::TableDef& table, std::string_view id, std::string_view version);
    /// The fields an outbox entry pushes, from its `fields` text (parsed; not an object if the
    /// text is unreadable) or, for kLazyFields, from the row (fields_at).
    Result<json> outbox_entry_fields(std::string_view table, std::string_view id, std::string_view version,
                                     const std::string& fields_text);
    /// Copies the fields into this row's lazy outbox entries: called before anything changes or
    /// deletes the row (write_row*, delete_row, re-stamping a version).
    Status materialize_outbox(const schema::TableDef& table, std::string_view id);
    /// True when an outbox entry for this row carries `version` (a local write not yet accepted).
    Result<bool> in_outbox(std::string_view table, std::string_view id, std::string_view version);
    Status add_journal(const JournalEntry& entry);

    // ---- local writes (local_writes.cpp); each opens and commits its own transaction ----
    enum class WriteMode { Insert, Update, Put, Remove };
    Status write(WriteMode mode, std::string_view table, std::string_view id, const json& fields);
    /// The same write inside the caller's transaction (batches).
    Status write_in_transaction(WriteMode mode, std::string_view table, std::string_view id, const json& fields);

    // ---- reads (reads.cpp) ----
    Result<std::optional<json>> get(std::string_view table, std::string_view id);
    Result<std::vector<json>> query(std::string_view table, const json& equals, std::optional<std::int64_t> limit,
                                    std::int64_t offset);
    Result<std::int64_t> pending_count();
    Result<json> journal();
    Result<json> rejected();

private:
    Store(sql::Database db, const schema::Schema* schema, sync::WallClock wall, sync::NodeId node, sync::Hlc last);
    Status store_row(const schema::TableDef& table, std::string_view id, const FieldMap& columns,
                     const std::string& versions_text, bool upsert);
    /// Checks the actor fields a write gives and fills those it leaves out (see user_id()),
    /// copying the app's fields into `storage` only then.
    Status fill_actor_fields(const schema::TableDef& table, bool creating, const FieldMap*& fields, FieldMap& storage);
    Status check_class_rules(const schema::TableDef& table, std::string_view id, const RowState& row, bool live,
                             const FieldMap& fields, WriteMode mode);

    // Prepared statements keyed by what decides their text, so the hot paths neither rebuild SQL
    // text nor hash it per row (the pointers are owned by m_db's statement cache).
    std::map<const schema::TableDef*, sql::Statement*> m_load_stmts;
    std::map<std::pair<const schema::TableDef*, std::string>, sql::Statement*> m_row_write_stmts;
    std::string m_key_buffer;

    std::mutex m_mutex;
    sql::Database m_db;
    const schema::Schema* m_schema;
    sync::WallClock m_wall;
    sync::HybridClock m_clock;
    sync::NodeId m_node;
    std::string m_user_id;
};

/// Helper for both reads and writes: `"f1", "f2", ...` for every schema field, in order.
std::string field_list(const schema::TableDef& table);

}  // namespace ubuzima::detail
