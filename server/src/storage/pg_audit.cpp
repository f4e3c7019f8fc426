// Ubuzima Sync — MIT licence.
// The PostgreSQL transaction object, continued: the audit log table (its chain is computed by
// audit/audit_log.cpp; the writer lock keeps appends in commit order, as SQLite's single writer).
#include "storage/pg_txn.hpp"

namespace ubuzima::server {

namespace {

constexpr const char* kAuditColumns =
    "seq, ts, actor_user, actor_device, action, object, outcome, address, prev_hash, hash";

AuditRecord audit_from_row(const pg::PgResult& r, int i) {
    return AuditRecord{r.integer(i, 0), r.integer(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4),
                       r.text(i, 5),    r.text(i, 6),    r.text(i, 7), r.text(i, 8), r.text(i, 9)};
}

}  // namespace

Result<std::optional<AuditRecord>> PgTxn::last_audit() {
    auto r = m_db.query(std::string("SELECT ") + kAuditColumns + " FROM srv_audit ORDER BY seq DESC LIMIT 1");
    if (!r.ok()) return r.status();
    std::optional<AuditRecord> out;
    if (r->rows()) out = audit_from_row(*r, 0);
    return out;
}

Result<std::vector<AuditRecord>> PgTxn::audit_after(std::int64_t after, int limit) {
    auto r = m_db.query(std::string("SELECT ") + kAuditColumns + " FROM srv_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                        pg::Params().add(after).add(limit));
    if (!r.ok()) return r.status();
    std::vector<AuditRecord> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(audit_from_row(*r, i));
    return out;
}

Status PgTxn::insert_audit(const AuditRecord& a) {
    return run(std::string("INSERT INTO srv_audit (") + kAuditColumns +
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
               pg::Params()
                   .add(a.seq)
                   .add(a.ts_ms)
                   .add(a.actor_user)
                   .add(a.actor_device)
                   .add(a.action)
                   .add(a.object)
                   .add(a.outcome)
                   .add(a.address)
                   .add(a.prev_hash)
                   .add(a.hash));
}

}  // namespace ubuzima::server
