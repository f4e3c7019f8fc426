// Ubuzima Sync — MIT licence.
// Run-time options of the server, filled from the command line (main.cpp) or by tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ubuzima/sync/hlc.hpp"

namespace ubuzima::server {

inline constexpr const char* kServerVersion = "0.1.0";

struct ServerOptions {
    std::string data_dir;                             ///< holds ubuzima.db
    std::string host = "127.0.0.1";
    int port = 8080;                                  ///< 0 = pick a free port
    std::size_t max_body_bytes = 32u * 1024 * 1024;   ///< request bodies, before and after gunzip
    std::int64_t access_ttl_s = 3600;
    std::int64_t refresh_ttl_s = 90 * 24 * 3600;      ///< devices may stay offline for weeks
    std::int64_t clock_skew_ms = 300000;
    int pbkdf2_iterations = 100000;
    /// When set and the store has no users, user `admin` is created with this password.
    std::optional<std::string> bootstrap_admin_password;
    /// Wall clock; tests inject one to simulate time passing or skewed devices.
    sync::WallClock wall = sync::system_wall_ms;
};

}  // namespace ubuzima::server
