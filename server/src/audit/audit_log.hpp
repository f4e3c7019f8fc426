// Ubuzima Sync — MIT licence.
// The append-only, hash-chained audit log: who did what, never with what values. Each record's
// hash covers its seq, the previous record's hash and its own content, so an edited, moved or
// deleted record breaks the chain at that point; a cut tail shows only against a head saved
// off the machine (docs/SECURITY.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "storage/server_store.hpp"

namespace ubuzima::server {

/// One thing that happened. Ids only (user ids, device ids, batch ids, row ids): no passwords,
/// tokens, usernames of unknown users or field values (Rwanda Law 58/2021).
struct AuditEvent {
    std::string action;
    std::string actor_user;
    std::string actor_device;
    std::string object;
    /// A flat object of counts, codes and ids (e.g. {"applied":3,"rejected":1}).
    nlohmann::json outcome = nlohmann::json::object();
    std::string address;
};

/// Appends `event` at `now_ms` inside the caller's write transaction, chained to the last record
/// of the same transaction's view (one writer at a time keeps the chain in commit order).
Status append_audit(WriteTxn& tx, const AuditEvent& event, std::int64_t now_ms);

/// The hash a record must carry, from its seq, prev_hash and content (hex).
std::string audit_record_hash(const AuditRecord& record);

/// The last record's position, printed for safekeeping and checked later by verify.
struct AuditHead {
    std::int64_t seq = 0;
    std::string hash;  ///< hex; 64 zeros for an empty log
    /// "ubuzima-audit-head <seq> <hash>"
    std::string to_string() const;
    /// Parses to_string()'s form (or "<seq> <hash>"); nullopt when malformed.
    static std::optional<AuditHead> parse(const std::string& text);
};

struct AuditVerdict {
    bool intact = true;
    std::int64_t records = 0;
    AuditHead head;               ///< the last record read
    std::int64_t first_bad = 0;   ///< the first record that fails (0 when intact)
    std::string problem;          ///< what is wrong, for the operator
};

/// Recomputes the whole chain in one read snapshot, and compares it with `saved` when given.
Result<AuditVerdict> verify_audit(ServerStore& store, const std::optional<AuditHead>& saved);

}  // namespace ubuzima::server
