// Ubuzima Sync — MIT licence.
// Identifiers generated offline: UUIDv7 row ids and random 64-bit node ids.
#pragma once

#include <cstdint>
#include <string>

namespace ubuzima::sync {

/// A UUIDv7 (RFC 9562): 48-bit Unix ms, then random bits; time-ordered, so inserts stay local in
/// B-tree indexes. Thread-safe.
std::string new_uuid_v7(std::int64_t unix_ms);
std::string new_uuid_v7();
/// A random non-zero 64-bit node id. Thread-safe.
std::uint64_t new_node_id();

}  // namespace ubuzima::sync
