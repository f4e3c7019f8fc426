// Ubuzima Sync — MIT licence.
// Rate-limit buckets shared through PostgreSQL (storage/pg_rate_buckets.cpp): two stores stand
// for two server processes; a key's tokens are spent once across both, refill with time, a clock
// that steps back refills nothing, and idle buckets are pruned. Hidden ("[.]") in the plain run:
// ubuzima_server_tests_pg runs it (scripts/test-postgres.sh).
#include <catch2/catch.hpp>

#include "api/rate_limiter.hpp"
#include "server_test_support.hpp"

#ifdef UBUZIMA_WITH_POSTGRESQL

using namespace ubuzima;
using namespace ubuzima::server;
using namespace ubuzima::server::test;

namespace {

std::unique_ptr<PgStore> open_store(const PgTestDatabase& db) {
    auto s = PgStore::open(pg_test_url(), db.options(2));
    if (!s.ok()) FAIL(s.status().to_string());
    return std::move(*s);
}

}  // namespace

TEST_CASE("PostgreSQL rate buckets: two processes spend one key's tokens once", "[.][postgres][rate]") {
    PgTestDatabase db;
    auto first = open_store(db);
    auto second = open_store(db);
    SharedRateBuckets* a = first->shared_rate_buckets();
    SharedRateBuckets* b = second->shared_rate_buckets();
    REQUIRE(a);
    REQUIRE(b);
    const std::int64_t t0 = 1'780'000'000'000;
    // 2 per second, bursts of 5, taken alternately through both.
    int taken = 0;
    std::int64_t wait = 0;
    for (int i = 0; i < 10; ++i) {
        auto r = (i % 2 ? b : a)->take("device:tab", 2, 5, t0);
        REQUIRE(r.ok());
        if (*r == 0) ++taken;
        else wait = *r;
    }
    CHECK(taken == 5);
    CHECK(wait == 500);  // one token per 500 ms
    // Another key has a bucket of its own.
    CHECK(*a->take("device:other", 2, 5, t0) == 0);
    // Refill: one token after 500 ms, through either process.
    CHECK(*b->take("device:tab", 2, 5, t0 + 499) > 0);
    CHECK(*b->take("device:tab", 2, 5, t0 + 500) == 0);
    CHECK(*a->take("device:tab", 2, 5, t0 + 500) > 0);
    // A clock that steps back (another machine's, NTP) refills nothing.
    CHECK(*a->take("device:tab", 2, 5, t0 - 60'000) > 0);
    // Idle buckets go; a pruned key starts full.
    auto pruned = a->prune(t0 + 1);
    REQUIRE(pruned.ok());
    CHECK(*pruned == 1);  // "device:other"; "device:tab" was touched at t0 + 500
    CHECK(*b->prune(t0 + 501) == 1);
    for (int i = 0; i < 5; ++i) CHECK(*a->take("device:tab", 2, 5, t0 + 1000) == 0);
}

TEST_CASE("PostgreSQL rate buckets: request limiters of two processes refuse together", "[.][postgres][rate]") {
    PgTestDatabase db;
    auto first = open_store(db);
    auto second = open_store(db);
    RateLimiter one(1, 4), two(1, 4);
    one.share(first->shared_rate_buckets(), "device:");
    two.share(second->shared_rate_buckets(), "device:");
    const std::int64_t t0 = 1'780'000'000'000;
    int allowed = 0;
    for (int i = 0; i < 8; ++i) allowed += (i % 2 ? two : one).take("tab", t0) == 0;
    CHECK(allowed == 4);  // each alone would allow 4
    CHECK(one.shared_failures() == 0);
    CHECK(two.shared_failures() == 0);
}

#endif  // UBUZIMA_WITH_POSTGRESQL
