// Ubuzima Sync — MIT licence.
// Rate-limit token buckets in PostgreSQL, so that N server processes behind a load balancer
// allow a device (or an address) what one process would, not N times as much. One autocommit
// statement per take, outside the writer lock: the row lock of the key's bucket is the only
// thing two requests of one device wait for.
#include <cmath>

#include "storage/pg_txn.hpp"

namespace ubuzima::server {

namespace {

// $1 key, $2 refill per ms, $3 burst, $4 now (ms). The SET expressions all see the bucket as it
// was, so the refill is computed once per take; a clock that steps back refills nothing.
constexpr const char* kTakeSql =
    "INSERT INTO srv_rate AS b (key, tokens, at, ok) VALUES ($1, $3::float8 - 1, $4::bigint, true) "
    "ON CONFLICT (key) DO UPDATE SET "
    "ok = LEAST($3::float8, b.tokens + GREATEST(0, $4::bigint - b.at) * $2::float8) >= 1, "
    "tokens = LEAST($3::float8, b.tokens + GREATEST(0, $4::bigint - b.at) * $2::float8) - "
    "CASE WHEN LEAST($3::float8, b.tokens + GREATEST(0, $4::bigint - b.at) * $2::float8) >= 1 THEN 1 ELSE 0 END, "
    "at = GREATEST(b.at, $4::bigint) "
    "RETURNING ok, tokens";

class PgRateBuckets final : public SharedRateBuckets {
public:
    explicit PgRateBuckets(pg::Pool& pool) : m_pool(pool) {}

    Result<std::int64_t> take(const std::string& key, double per_s, double burst, std::int64_t now_ms) override {
        if (per_s <= 0) return std::int64_t{0};
        const double per_ms = per_s / 1000.0;
        auto lease = m_pool.acquire();
        if (!lease.ok()) return lease.status();
        auto r = (*lease)->query(kTakeSql, pg::Params().add(key).add(per_ms).add(burst < 1 ? 1.0 : burst).add(now_ms));
        if (!r.ok()) return r.status();
        if (r->boolean(0, 0)) return std::int64_t{0};
        return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil((1 - r->real(0, 1)) / per_ms)));
    }

    Result<std::int64_t> prune(std::int64_t before_ms) override {
        auto lease = m_pool.acquire();
        if (!lease.ok()) return lease.status();
        auto r = (*lease)->query("DELETE FROM srv_rate WHERE at < $1", pg::Params().add(before_ms));
        if (!r.ok()) return r.status();
        return r->affected();
    }

private:
    pg::Pool& m_pool;
};

}  // namespace

std::unique_ptr<SharedRateBuckets> make_pg_rate_buckets(pg::Pool& pool) { return std::make_unique<PgRateBuckets>(pool); }

}  // namespace ubuzima::server
