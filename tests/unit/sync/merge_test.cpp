// Ubuzima Sync — MIT licence.
// Tests of the per-field merge rule: concurrent edits, deletes, replays, stale writes.
#include <catch2/catch.hpp>

#include "ubuzima/sync/merge.hpp"

using namespace ubuzima::sync;

namespace {
const Version kNull{};
const Version kA1{make_hlc(1000, 0), 0xA};
const Version kB1{make_hlc(1001, 0), 0xB};
const Version kA2{make_hlc(1002, 0), 0xA};
}  // namespace

TEST_CASE("A first write to a field applies without conflict", "[sync][merge]") {
    FieldMerge m = merge_field(kNull, kA1, kNull);
    CHECK(m.outcome == MergeOutcome::Apply);
    CHECK_FALSE(m.journal_loser);
}

TEST_CASE("A write that saw the stored version applies without conflict", "[sync][merge]") {
    FieldMerge m = merge_field(kA1, kB1, kA1);
    CHECK(m.outcome == MergeOutcome::Apply);
    CHECK_FALSE(m.journal_loser);
}

TEST_CASE("Concurrent edits: the larger version wins and the loser is journalled", "[sync][merge]") {
    // A and B both edited the field after seeing nothing / A1.
    SECTION("newer incoming overwrites a concurrent stored value") {
        FieldMerge m = merge_field(kA1, kB1, kNull);
        CHECK(m.outcome == MergeOutcome::Apply);
        CHECK(m.journal_loser);  // A1 was not seen by B: kept in the journal
    }
    SECTION("older incoming loses to a concurrent stored value") {
        FieldMerge m = merge_field(kB1, kA1, kNull);
        CHECK(m.outcome == MergeOutcome::Keep);
        CHECK(m.journal_loser);
    }
    SECTION("the outcome is the same whatever the arrival order") {
        // Order 1: A1 then B1.  Order 2: B1 then A1.  Both end with B1 stored.
        FieldMerge first = merge_field(kNull, kA1, kNull);
        FieldMerge second = merge_field(kA1, kB1, kNull);
        CHECK(first.outcome == MergeOutcome::Apply);
        CHECK(second.outcome == MergeOutcome::Apply);
        FieldMerge other_first = merge_field(kNull, kB1, kNull);
        FieldMerge other_second = merge_field(kB1, kA1, kNull);
        CHECK(other_first.outcome == MergeOutcome::Apply);
        CHECK(other_second.outcome == MergeOutcome::Keep);
    }
}

TEST_CASE("A replayed write is a duplicate and changes nothing", "[sync][merge]") {
    FieldMerge m = merge_field(kA1, kA1, kNull);
    CHECK(m.outcome == MergeOutcome::Duplicate);
    CHECK_FALSE(m.journal_loser);
}

TEST_CASE("A stale write that arrives after a newer one is journalled, never dropped", "[sync][merge]") {
    FieldMerge m = merge_field(kA2, kA1, kNull);
    CHECK(m.outcome == MergeOutcome::Keep);
    CHECK(m.journal_loser);
}

TEST_CASE("Deletes merge like any field", "[sync][merge]") {
    // Device A deletes (writes _deleted at A2) while B edits another field: both survive.
    FieldMerge del = merge_field(kNull, kA2, kNull);
    CHECK(del.outcome == MergeOutcome::Apply);
    // An undelete concurrent with the delete: larger version wins.
    FieldMerge undelete = merge_field(kA2, kB1, kNull);
    CHECK(undelete.outcome == MergeOutcome::Keep);
    CHECK(undelete.journal_loser);
}

TEST_CASE("Pulled values: own unsynced writes that lose are journalled on the device", "[sync][merge]") {
    CHECK(merge_pulled_field(kA1, kB1, true).outcome == MergeOutcome::Apply);
    CHECK(merge_pulled_field(kA1, kB1, true).journal_loser);
    CHECK_FALSE(merge_pulled_field(kA1, kB1, false).journal_loser);
    CHECK(merge_pulled_field(kB1, kA1, true).outcome == MergeOutcome::Keep);
    CHECK(merge_pulled_field(kB1, kB1, false).outcome == MergeOutcome::Duplicate);
    CHECK(merge_pulled_field(kNull, kA1, false).outcome == MergeOutcome::Apply);
}
