// Ubuzima Sync — MIT licence.
// The device database: local reads and captured writes on SQLite, login, and sync with the server.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ubuzima/sync/hlc.hpp"
#include "ubuzima/sync/status.hpp"
#include "ubuzima/transport.hpp"

namespace ubuzima {

namespace schema {
class Schema;
}

/// How sync() retries transient failures: Network, Timeout, Busy, Unavailable, RateLimited and
/// any 5xx answer but 500 (the server's bug, which would answer the same again). Other errors
/// (auth, validation, local disk, Internal) return at once. Retrying is safe:
/// an unanswered batch is resent under the same id (the server replays its stored result) and
/// the cursor only moves with pages that were applied.
///
/// The delay before retry n (n = 1, 2, …) is base = min(max_backoff_ms, initial_backoff_ms·2^(n-1)),
/// scaled by a uniform random factor in [1 - jitter, 1] ("full jitter" when jitter = 1), so it
/// never exceeds the cap and devices that failed together do not retry together. A Retry-After
/// from the server raises the delay to at least that value (still capped by max_backoff_ms).
struct RetryPolicy {
    int max_attempts = 5;                 ///< attempts per sync(), the first included; <= 1: no retry
    std::int64_t initial_backoff_ms = 500;
    std::int64_t max_backoff_ms = 30'000;
    double jitter = 0.5;                  ///< random fraction of each delay, clamped to [0, 1]
    /// Waits between attempts; null = std::this_thread::sleep_for. Tests record the delays here.
    std::function<void(std::int64_t ms)> sleep;
};

/// How to reach the server and how much to do per sync().
struct SyncOptions {
    /// Base URL ("https://moh.example"). Empty: the URL given to the last successful login().
    std::string server_url;
    TransportOptions timeouts;
    int batch_size = 500;        ///< outbox changes pushed per round trip
    int page_limit = 1000;       ///< pulled row changes asked for per round trip
    int max_round_trips = 1000;  ///< upper bound of round trips in one sync()
    /// The HTTP transport. Null: a CurlTransport with `timeouts`. Tests inject fakes here; a
    /// host app may inject its platform networking.
    std::shared_ptr<HttpTransport> transport;
    RetryPolicy retry;
};

/// SQLite durability of committed writes.
enum class Durability {
    Full,    ///< synchronous=FULL: a write that returned survives power loss (default)
    Normal,  ///< synchronous=NORMAL: faster; the last writes may be lost on power loss (never corrupt)
};

struct DatabaseOptions {
    std::string path;  ///< SQLite file; created when missing
    Durability durability = Durability::Full;
    /// Schema to create/upgrade the tables with; null = Schema::builtin(). The pointee must
    /// outlive the Database (tests use it to simulate schema upgrades).
    const schema::Schema* schema = nullptr;
    /// Wall clock in Unix ms; tests inject a fake one. Null = the system clock.
    sync::WallClock wall_clock;
    /// Node id given to a NEW database file; 0 = random (the normal case). Deterministic
    /// simulations inject one. An existing file keeps the id it was created with.
    sync::NodeId node_id = 0;
    /// Name of a SQLite VFS registered by the application (e.g. encrypted storage); empty = the
    /// platform default. Tests use one that simulates power loss.
    std::string vfs;
    SyncOptions sync;
};

/// What one sync() did.
struct SyncReport {
    std::int64_t pushed = 0;          ///< local changes the server accepted
    std::int64_t pulled = 0;          ///< remote row changes received
    std::int64_t fields_applied = 0;  ///< remote field values that became current locally
    std::int64_t conflicts = 0;       ///< entries added to the conflict journal
    std::int64_t rejected = 0;        ///< local changes the server refused (see rejected())
    std::int64_t round_trips = 0;     ///< HTTP requests to /v1/sync that got an answer
    std::int64_t retries = 0;         ///< attempts repeated after transient failures
    std::int64_t removed = 0;         ///< rows dropped: moved to a facility outside the user's
};

/// Called by sync() after every round trip it applied, with the report so far, the local
/// changes still to push and whether the server has more to pull. Return false to stop: what was
/// applied stays applied, and sync() returns Cancelled (unless nothing was left to do). Runs on
/// the thread that called sync(), with no store lock held: it may read and write the database
/// (not call sync(), which would wait for itself).
using SyncProgress = std::function<bool(const SyncReport& so_far, std::int64_t pending, bool more_to_pull)>;

/// One write of Database::write_batch().
struct BatchWrite {
    enum class Op { Insert, Update, Put, Remove };
    Op op = Op::Insert;
    std::string table;
    std::string id;              ///< Insert: empty = a new UUIDv7 id
    nlohmann::json fields;       ///< as for insert()/update()/put(); ignored by Remove
};

/// An open device database. Rows live in typed tables named after the schema (readable with
/// plain SQL); every write through this class is captured with per-field versions and an outbox
/// entry in one SQLite transaction, so a write that returned is durable and will be synced.
///
/// Thread-safety: all methods are safe to call from any thread; one internal mutex serialises
/// access to the connection. sync() and login() do their network I/O without holding it, so
/// local reads and writes proceed during a sync; a second concurrent sync() waits for the first.
/// Errors are returned as Status/Result; no exception escapes.
/// Ownership: movable, not copyable; closing happens in the destructor.
class Database {
public:
    /// Opens or creates the database file, creating or upgrading the tables in place.
    /// @return the database, or IoError/Corrupt/DiskFull/Busy from SQLite, InvalidArgument for an
    ///         empty path.
    static Result<Database> open(const DatabaseOptions& options);

    Database(Database&& other) noexcept;
    Database& operator=(Database&& other) noexcept;
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;
    ~Database();

    /// Creates a row with a new UUIDv7 id.
    /// @param table  schema table name
    /// @param fields JSON object field → value (every required field)
    /// @return the new id. Errors: UnknownTable, UnknownField, InvalidValue, ReadOnly, Sealed
    ///         (parent row submitted), InvalidArgument (not an object, "id" or "_deleted" given).
    Result<std::string> insert(std::string_view table, const nlohmann::json& fields);
    /// Changes only the given fields of an existing row.
    /// Errors: NotFound (no such row, or deleted), AppendOnly, Sealed, ReadOnly, plus insert's.
    Status update(std::string_view table, std::string_view id, const nlohmann::json& fields);
    /// Inserts the row with the caller's id, or updates the given fields when it exists.
    /// Errors: as insert() and update().
    Status put(std::string_view table, std::string_view id, const nlohmann::json& fields);
    /// Applies every write in ONE transaction: all are committed or, on the first error, none
    /// (the error names the failing write's index). Captures each write like the single calls;
    /// much faster than one transaction per row when an app imports or records many rows at once.
    /// @return the row id of each write, in order. Errors: those of insert/update/put/remove.
    Result<std::vector<std::string>> write_batch(const std::vector<BatchWrite>& writes);
    /// Deletes a row (a tombstone `_deleted: true` that syncs like any field).
    /// Errors: NotFound, ReadOnly, AppendOnly (void the row instead), Sealed.
    Status remove(std::string_view table, std::string_view id);

    /// One row as {"id": …, field: value, …} with every schema field (null when unset).
    /// @return nullopt when the row does not exist or is deleted. Errors: UnknownTable.
    Result<std::optional<nlohmann::json>> get(std::string_view table, std::string_view id) const;
    /// Rows whose fields equal every entry of `equals` (JSON object; null = all rows), ordered
    /// by id, deleted rows hidden. Errors: UnknownTable, UnknownField, InvalidArgument.
    Result<std::vector<nlohmann::json>> query(std::string_view table, const nlohmann::json& equals = nullptr,
                                              std::optional<std::int64_t> limit = std::nullopt,
                                              std::int64_t offset = 0) const;

    /// Number of local changes not yet accepted by the server.
    Result<std::int64_t> pending_changes() const;
    /// The conflict journal: array of {id, table, row_id, field, kept_value, kept_version,
    /// lost_value, lost_version, source ("push"|"pull"), created_at (Unix ms)}.
    Result<nlohmann::json> conflicts() const;
    /// Changes the server refused: array of {id, table, row_id, version, fields, code, message,
    /// created_at}. They are never retried; the rows were rolled back to the server's state.
    Result<nlohmann::json> rejected() const;
    /// This installation's node id (16 hex digits), generated once and kept in the file.
    std::string node_id() const;

    /// Replaces the sync options (server URL, limits, transport).
    void set_sync_options(SyncOptions options);
    /// Logs in (POST /v1/auth/login) and stores the URL, username and tokens in the database.
    /// A different user than the last one: refused (Conflict) while the device holds unsynced
    /// changes of the last one; otherwise the last user's rows, journal and rejected list are
    /// deleted when the login succeeds, and the next sync brings the new user's data.
    /// @param server_url base URL; empty = SyncOptions::server_url
    /// Errors: InvalidCredentials, RateLimited (too many failures: wait), Revoked (this device or
    /// account was revoked), Conflict, Network, Timeout, the server's error codes, InvalidArgument.
    Status login(std::string_view server_url, std::string_view username, std::string_view password);
    /// Ends this device's login (POST /v1/auth/logout voids all its tokens) and forgets the
    /// tokens locally, even when the server cannot be reached (then the error is returned too).
    /// Data and unsynced changes stay; the next sync needs a login. Errors: Network, Timeout.
    Status logout();
    /// Deletes everything the device holds but reference data -- unsynced changes included -- and
    /// the login, and makes it a new device (new node id). For a device handed to someone else.
    Status reset();
    /// Pushes the outbox and pulls remote changes until both are done (or max_round_trips).
    /// Each round trip commits locally before the next, so an interrupted sync resumes exactly.
    /// Transient failures are retried with backoff (SyncOptions::retry); the error of the last
    /// attempt is returned when all fail. No store lock is held while waiting.
    /// `progress` (may be empty) is told after each round trip and may stop the sync between
    /// two round trips (a round trip is at most batch_size pushed and page_limit pulled rows).
    /// Errors: NotLoggedIn, Unauthorized, Network, Timeout, Cancelled, the server's error codes.
    Result<SyncReport> sync(const SyncProgress& progress = {});

private:
    struct Impl;
    explicit Database(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace ubuzima
