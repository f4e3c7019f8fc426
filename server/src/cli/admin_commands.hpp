// Ubuzima Sync — MIT licence.
// `ubuzima-server user|device|audit ...`: the administrative operations for an operator at the
// console, on the data directory (SQLite locks make them safe while the server runs).
#pragma once

#include <string>
#include <vector>

namespace ubuzima::server {

/// True when `command` is one of the console commands.
bool is_admin_command(const std::string& command);
/// Runs it; returns the process exit status (0 done, 1 failed or audit not intact, 2 usage).
int run_admin_command(const std::string& command, const std::vector<std::string>& args);

}  // namespace ubuzima::server
