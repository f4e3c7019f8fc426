// Ubuzima Sync — MIT licence.
// Internal to storage/: reading the per-field bookkeeping texts of a domain row (`_v`/`_c`:
// field → version, `_s`: field → seq), shared by the SQLite and PostgreSQL stores.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ubuzima/sync/version.hpp"

namespace ubuzima::server {

void read_versions(const std::string& text, std::map<std::string, sync::Version>& out);
void read_seqs(const std::string& text, std::map<std::string, std::int64_t>& out);

}  // namespace ubuzima::server
