// Ubuzima Sync — MIT licence.
// `--config FILE`: the serve options as `key = value` lines, an alternative to flags.
#pragma once

#include <string>
#include <vector>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// Replaces `--config FILE` in `args` by the options the file gives, placed first so that flags
/// on the command line override them. Each line is `key = value` (the key is a serve flag
/// without its dashes: `listen = 0.0.0.0:8443`, `insecure-http = true`), `#` starts a comment.
/// A key that is not a serve flag, a key given twice or a malformed line is an InvalidArgument
/// naming FILE:LINE; values are then checked by parse_serve_args like flags.
Result<std::vector<std::string>> expand_config_file(const std::vector<std::string>& args);

}  // namespace ubuzima::server
