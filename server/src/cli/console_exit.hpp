// Ubuzima Sync — MIT licence.
// The exit statuses of the console commands: 2 for a usage error, 1 for a failure, each with one
// line on stderr.
#pragma once

#include <cstdio>
#include <string>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

inline int console_usage(const std::string& why) {
    std::fprintf(stderr, "ubuzima-server: %s (see ubuzima-server --help)\n", why.c_str());
    return 2;
}

inline int console_fail(const Status& s) {
    std::fprintf(stderr, "ubuzima-server: %s\n", s.to_string().c_str());
    return 1;
}

}  // namespace ubuzima::server
