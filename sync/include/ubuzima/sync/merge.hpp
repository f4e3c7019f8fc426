// Ubuzima Sync — MIT licence.
// The per-field merge rule, identical on every replica: the larger version wins, and a
// concurrent loser is reported so that it can be kept in a conflict journal.
#pragma once

#include "ubuzima/sync/version.hpp"

namespace ubuzima::sync {

/// What to do with one incoming field write.
enum class MergeOutcome {
    Apply,      ///< incoming wins: store it
    Keep,       ///< stored wins: incoming is not stored
    Duplicate,  ///< incoming is the stored write itself (a replay): nothing to do
};

/// The decision for one field, with who lost if anything was lost.
struct FieldMerge {
    MergeOutcome outcome = MergeOutcome::Duplicate;
    /// True when a write loses and must go to the conflict journal: the stored value when it was
    /// overwritten by a concurrent write, or the incoming value when it did not win.
    bool journal_loser = false;
};

/// Decides one field of a pushed change.
/// @param stored   version currently stored for the field (null if never written)
/// @param incoming version of the incoming write
/// @param base     version the writer had seen for the field (null if none)
/// Concurrent = the writer had not seen the stored write (base != stored). A concurrent stored
/// value that is overwritten is journalled; an incoming value that does not win is always
/// journalled, because a write that never becomes current must not vanish silently.
FieldMerge merge_field(const Version& stored, const Version& incoming, const Version& base);

/// Decides one field of a pulled change on a device: no base travels with pulled values, so the
/// device journals its own unsynced write (`local_pending`) when the pulled value beats it.
FieldMerge merge_pulled_field(const Version& stored, const Version& incoming, bool local_pending);

}  // namespace ubuzima::sync
