// Ubuzima Sync — MIT licence.
// The command line of `ubuzima-server [serve]`.
#pragma once

#include <string>
#include <vector>

#include "config.hpp"

namespace ubuzima::server {

extern const char* const kServeUsage;

/// Fills `options` from the arguments after the program name (and after "serve"). Returns an
/// InvalidArgument naming the bad option; `help` is set for --help.
Status parse_serve_args(const std::vector<std::string>& args, ServerOptions& options, bool& help);

/// Refuses a configuration that would be unsafe on the network: plain HTTP on an address other
/// than loopback without --insecure-http, one of --tls-cert/--tls-key without the other.
/// Returns warnings to print for what is allowed but risky.
Status check_serve_options(const ServerOptions& options, std::vector<std::string>& warnings);

}  // namespace ubuzima::server
