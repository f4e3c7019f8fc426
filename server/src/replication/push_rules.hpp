// Ubuzima Sync — MIT licence.
// Internal to replication/: every reason to refuse one pushed change, in one place. The order
// matters for what a refusal may reveal: scope is judged before anything that depends on a row
// the caller may not see, and an invisible row is answered exactly as a missing one.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "auth/roles.hpp"
#include "config.hpp"
#include "storage/server_store.hpp"

namespace ubuzima::server {

/// What the rules need to know about the push beyond the change itself.
struct PushContext {
    const AuthUser& user;
    sync::NodeId device_node;  ///< the authenticated device's node: the only one it may write as
    const ServerOptions& options;
    const schema::Schema& schema;
    /// (table, id) of rows with a change deferred in this batch: their later changes, and the
    /// children of such rows, wait too.
    const std::set<std::pair<std::string, std::string>>& deferred;
};

/// All reasons to refuse one change. A Status with a rejection code (is_rejection) means
/// "reject this change"; anything else (IoError, ...) aborts the whole push.
Status check_change(WriteTxn& tx, const schema::TableDef& table, const std::optional<StoredRow>& row,
                    const sync::Change& change, const PushContext& ctx);

/// True for the codes that refuse one change rather than the request.
bool is_rejection(ErrorCode code);

/// The actor fields the server sets on this change's row because the change leaves them out:
/// "create" fields when it creates the row, the others when it writes their trigger field.
std::map<std::string, sync::Value> actor_stamps(const schema::TableDef& table, const sync::Change& change, bool creates,
                                                const AuthUser& user);

}  // namespace ubuzima::server
