// Ubuzima Sync — MIT licence.
// The per-field merge rule.
#include "ubuzima/sync/merge.hpp"

namespace ubuzima::sync {

FieldMerge merge_field(const Version& stored, const Version& incoming, const Version& base) {
    if (incoming == stored) return {MergeOutcome::Duplicate, false};
    if (incoming > stored) {
        const bool concurrent = !stored.is_null() && base != stored;
        return {MergeOutcome::Apply, concurrent};
    }
    return {MergeOutcome::Keep, true};
}

FieldMerge merge_pulled_field(const Version& stored, const Version& incoming, bool local_pending) {
    if (incoming == stored) return {MergeOutcome::Duplicate, false};
    if (incoming > stored) return {MergeOutcome::Apply, local_pending && !stored.is_null()};
    return {MergeOutcome::Keep, false};
}

}  // namespace ubuzima::sync
