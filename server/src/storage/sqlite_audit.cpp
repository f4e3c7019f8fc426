// Ubuzima Sync — MIT licence.
// The SQLite transaction object, continued: the audit log table (its chain is computed by
// audit/audit_log.cpp; SQLite's single writer keeps appends in commit order).
#include "storage/sqlite_txn.hpp"

namespace ubuzima::server {

namespace {

constexpr const char* kAuditColumns =
    "seq, ts, actor_user, actor_device, action, object, outcome, address, prev_hash, hash";

AuditRecord audit_from_row(const sql::Statement& s) {
    return AuditRecord{s.column_int(0),  s.column_int(1),  s.column_text(2), s.column_text(3), s.column_text(4),
                       s.column_text(5), s.column_text(6), s.column_text(7), s.column_text(8), s.column_text(9)};
}

}  // namespace

Result<std::optional<AuditRecord>> SqliteTxn::last_audit() {
    auto st = m_db.cached(std::string("SELECT ") + kAuditColumns + " FROM srv_audit ORDER BY seq DESC LIMIT 1");
    if (!st.ok()) return st.status();
    auto row = (*st)->step();
    if (!row.ok()) {
        (*st)->reset();
        return row.status();
    }
    std::optional<AuditRecord> out;
    if (*row) out = audit_from_row(**st);
    (*st)->reset();
    return out;
}

Result<std::vector<AuditRecord>> SqliteTxn::audit_after(std::int64_t after, int limit) {
    auto st = m_db.cached(std::string("SELECT ") + kAuditColumns + " FROM srv_audit WHERE seq > ? ORDER BY seq LIMIT ?");
    if (!st.ok()) return st.status();
    (*st)->bind(1, after).bind(2, limit);
    std::vector<AuditRecord> out;
    UBUZIMA_TRY((*st)->each([&](const sql::Statement& row) { out.push_back(audit_from_row(row)); }));
    return out;
}

Status SqliteTxn::insert_audit(const AuditRecord& r) {
    auto st = m_db.cached(std::string("INSERT INTO srv_audit (") + kAuditColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    return (*st)
        ->bind(1, r.seq)
        .bind(2, r.ts_ms)
        .bind(3, r.actor_user)
        .bind(4, r.actor_device)
        .bind(5, r.action)
        .bind(6, r.object)
        .bind(7, r.outcome)
        .bind(8, r.address)
        .bind(9, r.prev_hash)
        .bind(10, r.hash)
        .run();
}

}  // namespace ubuzima::server
