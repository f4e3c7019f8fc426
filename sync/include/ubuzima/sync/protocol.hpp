// Ubuzima Sync — MIT licence.
// The v1 wire messages of POST /v1/sync (docs/PROTOCOL.md) and their JSON codec.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ubuzima/sync/status.hpp"
#include "ubuzima/sync/version.hpp"

namespace ubuzima::sync {

/// A field value as it travels: null, bool, integer, real, string, or (json-typed fields) an
/// array/object.
using Value = nlohmann::json;

constexpr int kProtocolVersion = 1;
/// The row-level tombstone field: `"_deleted": true` deletes a row.
constexpr std::string_view kDeletedField = "_deleted";

/// One local write of one row (push direction).
struct Change {
    std::string table;
    std::string row_id;
    Version version;                       ///< `v`: every field of `fields` carries it
    std::map<std::string, Value> fields;   ///< `f`
    std::map<std::string, Version> base;   ///< `b`: absent or null entries mean "no version seen"

    /// The base for one field (null version when absent).
    Version base_of(const std::string& field) const;
};

struct PushBatch {
    std::string id;  ///< client-generated; the idempotency key
    std::vector<Change> changes;
};

struct SyncRequest {
    int protocol = kProtocolVersion;
    int schema_version = 0;
    NodeId node = 0;
    Hlc clock = 0;
    std::optional<PushBatch> batch;
    std::optional<std::string> cursor;  ///< null: from the beginning
    int limit = 1000;
    /// What the device reports of itself (device health for the operators); -1 = not sent.
    std::int64_t pending = -1;   ///< local changes not yet accepted
    std::int64_t rejected = -1;  ///< refused changes kept in the device's rejected list
};

/// A field value together with its version (pull direction, conflict reports).
struct VersionedValue {
    Value value;
    Version version;
    /// Pull only: the concurrent version this value overwrote on the server (it is in the server's
    /// conflict journal). Lets the device that wrote the loser journal it too. Null otherwise.
    Version overwrote = {};
};

/// A concurrent write that lost, kept in the conflict journal.
struct ConflictReport {
    std::string table;
    std::string row_id;
    std::string field;
    VersionedValue kept;
    VersionedValue lost;
};

/// A change the server refused; the rest of the batch still applies.
struct Rejection {
    std::size_t index = 0;  ///< position in batch.changes
    ErrorCode code = ErrorCode::InvalidValue;
    std::string message;
    /// The server's current value of the fields the change wrote (absent fields: the server has
    /// no value), so the device can roll its copy back and converge. Null when the row does not
    /// exist on the server or may not be seen.
    std::optional<std::map<std::string, VersionedValue>> current;
};

struct PushResult {
    std::string batch;
    int applied = 0;
    std::vector<ConflictReport> conflicts;
    std::vector<Rejection> rejected;
};

/// The current values of the changed fields of one row (pull direction).
struct RowChange {
    std::string table;
    std::string row_id;
    std::map<std::string, VersionedValue> fields;
    /// The row moved to a facility the device's user does not see: the device drops its copy
    /// (wire: {"t", "id", "gone": true}, no "f").
    bool gone = false;
};

/// Sent when what the user may see changed since the device's cursor (facilities added or
/// removed, another role): the pull restarts from the beginning, and the device first drops every
/// row of a facility outside this list (wire: "scope": ["fac-…", …], or "*" for every facility).
struct ScopeNotice {
    bool all = false;
    std::vector<std::string> facilities;
};

struct SyncResponse {
    int protocol = kProtocolVersion;
    Hlc server_clock = 0;
    std::optional<PushResult> push;
    std::vector<RowChange> changes;
    std::string cursor;
    bool more = false;
    std::optional<ScopeNotice> scope;
};

// ---- codec. Decoders validate shapes and types strictly and never throw. ----

Result<SyncRequest> decode_sync_request(std::string_view body);
std::string encode_sync_request(const SyncRequest& req);
Result<SyncResponse> decode_sync_response(std::string_view body);
std::string encode_sync_response(const SyncResponse& resp);

nlohmann::json push_result_to_json(const PushResult& push);
Result<PushResult> push_result_from_json(const nlohmann::json& j);

/// `{"error":{"code":"...","message":"..."}}`
std::string encode_error(const Status& status);
/// Reads an error body back into a Status (falls back to `fallback` when the body is not one).
Status decode_error(std::string_view body, ErrorCode fallback);

}  // namespace ubuzima::sync
