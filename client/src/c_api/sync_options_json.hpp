// Ubuzima Sync — MIT licence.
// Sync options from a JSON object: how the C API (and any binding) configures sync without
// depending on the layout of C++ structs.
#pragma once

#include <string_view>

#include "ubuzima/database.hpp"

namespace ubuzima::detail {

/// Starts from `base` and applies the keys present in `text`, a JSON object:
///   server_url (string), connect_timeout_ms, timeout_ms (> 0), batch_size, page_limit,
///   max_round_trips (> 0), retry: {max_attempts (>= 1), initial_backoff_ms, max_backoff_ms
///   (>= 0), jitter (0..1)}.
/// InvalidJson when `text` is not JSON; InvalidArgument naming the key for an unknown key, a
/// wrong type or a value out of range (then nothing is applied).
Result<SyncOptions> sync_options_from_json(std::string_view text, SyncOptions base);

}  // namespace ubuzima::detail
