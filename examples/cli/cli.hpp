// Ubuzima Sync — MIT licence.
// The `ubuzima` command-line assessor app: shared declarations of its commands.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ubuzima/client.hpp"

namespace ubuzima::cli {

using Args = std::vector<std::string>;

/// Runs one command against an open device database; returns the process exit code.
int run_command(Database& db, const std::string& command, const Args& args);
void print_usage();

// format.cpp
/// "field=value" pairs to a JSON object; a value that parses as JSON (42, true, ["a"]) keeps its
/// type, anything else is a string.
nlohmann::json parse_assignments(const Args& args, size_t from);
/// Prints rows as an aligned table of the named columns.
void print_rows(const std::vector<nlohmann::json>& rows, const std::vector<std::string>& columns);
// read_password.cpp
/// The password from UBUZIMA_PASSWORD, else typed at the terminal without echo, else one line of
/// standard input: never from the command line, which `ps` shows to everyone.
Result<std::string> read_password(const std::string& prompt);

/// Prints a Status failure to stderr and returns exit code 1.
int fail(const Status& status);
std::string to_cell(const nlohmann::json& v);

}  // namespace ubuzima::cli
