// Ubuzima Sync — MIT licence.
// Reading a password at the console without it ever being a command-line argument (which every
// user of the machine sees in `ps` and /proc).
#pragma once

#include <string>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// The password from UBUZIMA_PASSWORD when set (scripts), else typed at the terminal without
/// echo (twice when `confirm`), else one line of standard input (pipes). InvalidArgument when
/// none arrives or the two typed ones differ.
Result<std::string> read_secret(const std::string& prompt, bool confirm);

/// Overwrites the value of environment variable `name` in place, so it no longer shows in
/// /proc/<pid>/environ, after the caller has copied it.
void scrub_environment_value(const char* name);

}  // namespace ubuzima::server
