// Ubuzima Sync — MIT licence.
// Tests of the hybrid logical clock, including clocks that go backwards or jump years.
#include <catch2/catch.hpp>

#include "ubuzima/sync/hlc.hpp"

using namespace ubuzima::sync;

namespace {
struct FakeWall {
    std::int64_t ms = 1'700'000'000'000;
    WallClock fn() {
        return [this] { return ms; };
    }
};
constexpr std::int64_t kYearMs = 365LL * 24 * 3600 * 1000;
}  // namespace

TEST_CASE("HLC follows the wall clock and is strictly monotonic", "[sync][hlc]") {
    FakeWall wall;
    HybridClock clock(wall.fn());
    Hlc a = clock.now();
    CHECK(hlc_millis(a) == wall.ms);
    Hlc b = clock.now();  // same millisecond: counter increments
    CHECK(b == a + 1);
    wall.ms += 5;
    Hlc c = clock.now();
    CHECK(hlc_millis(c) == wall.ms);
    CHECK((c & kHlcCounterMask) == 0);
    CHECK(c > b);
}

TEST_CASE("HLC never goes back when the wall clock does", "[sync][hlc]") {
    FakeWall wall;
    HybridClock clock(wall.fn());
    Hlc before = clock.now();
    wall.ms -= 10 * kYearMs;  // battery died: the device now thinks it is a decade ago
    Hlc after = clock.now();
    CHECK(after > before);
    CHECK(hlc_millis(after) == hlc_millis(before));
}

TEST_CASE("HLC counter overflow borrows the next millisecond", "[sync][hlc]") {
    FakeWall wall;
    HybridClock clock(wall.fn(), make_hlc(wall.ms, kHlcCounterMask));
    Hlc next = clock.now();
    CHECK(hlc_millis(next) == wall.ms + 1);
    CHECK((next & kHlcCounterMask) == 0);
}

TEST_CASE("HLC absorbs remote clocks and refuses ones too far ahead", "[sync][hlc]") {
    FakeWall wall;
    HybridClock clock(wall.fn());
    const Hlc remote = make_hlc(wall.ms + 60'000, 7);
    CHECK(clock.observe(remote, 300'000));
    CHECK(clock.now() > remote);

    const Hlc from_2040 = make_hlc(wall.ms + 15 * kYearMs, 0);
    CHECK_FALSE(clock.observe(from_2040, 300'000));
    CHECK(hlc_millis(clock.now()) < wall.ms + 300'000);
}

TEST_CASE("A wall clock before 1970 yields valid versions", "[sync][hlc]") {
    FakeWall wall;
    wall.ms = -86'400'000;  // 1969-12-31
    HybridClock clock(wall.fn());
    Hlc a = clock.now();
    Hlc b = clock.now();
    CHECK(b > a);
    CHECK(hlc_millis(a) == 0);
}

TEST_CASE("The clock offset learned from the server corrects a wrong device clock", "[sync][hlc]") {
    FakeWall wall;
    wall.ms = 0;  // 1970
    HybridClock clock(wall.fn());
    clock.set_offset_ms(1'700'000'000'000);
    CHECK(hlc_millis(clock.now()) == 1'700'000'000'000);

    // A device at 2040 that already issued versions can be reset once the server says so.
    FakeWall future;
    future.ms = 1'700'000'000'000 + 15 * kYearMs;
    HybridClock ahead(future.fn());
    Hlc poisoned = ahead.now();
    ahead.set_offset_ms(-15 * kYearMs);
    ahead.reset_to_wall();
    Hlc repaired = ahead.now();
    CHECK(repaired < poisoned);
    CHECK(hlc_millis(repaired) == 1'700'000'000'000);
}
