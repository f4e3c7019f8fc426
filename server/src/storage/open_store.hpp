// Ubuzima Sync — MIT licence.
// Opening the configured store: SQLite in a data directory, or PostgreSQL (--db URL).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "storage/server_store.hpp"

namespace ubuzima::server {

/// PostgreSQL when `db_url` is given (`pool_size` connections), else SQLite at
/// `data_dir`/ubuzima.db. `must_exist` (console commands): an SQLite store that is not there yet
/// is NotFound rather than created. A build without PostgreSQL support answers `--db` with
/// InvalidArgument saying so.
Result<std::unique_ptr<ServerStore>> open_server_store(const std::string& data_dir,
                                                       const std::optional<std::string>& db_url, int pool_size,
                                                       const schema::Schema* schema, bool must_exist);

}  // namespace ubuzima::server
