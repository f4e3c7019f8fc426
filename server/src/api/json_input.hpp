// Ubuzima Sync — MIT licence.
// Reading small JSON request bodies strictly: depth-bounded, no unknown members, every member
// of the right type and length, without exceptions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// The body as a JSON object. An empty body reads as {} when `empty_ok`. Errors: InvalidJson,
/// BadRequest (not an object, too deep, a member not in `allowed`).
Result<nlohmann::json> parse_body_object(std::string_view body, std::initializer_list<const char*> allowed,
                                         bool empty_ok = false);

/// A required string member of 1..max_len bytes. BadRequest naming it otherwise.
Result<std::string> string_member(const nlohmann::json& j, const char* name, std::size_t max_len);
/// The same when present; nullopt when absent or null.
Result<std::optional<std::string>> optional_string_member(const nlohmann::json& j, const char* name,
                                                          std::size_t max_len);
/// An array of strings of 1..max_len bytes each, at most max_items; nullopt when absent or null.
Result<std::optional<std::vector<std::string>>> optional_strings_member(const nlohmann::json& j, const char* name,
                                                                        std::size_t max_len, std::size_t max_items);
/// A boolean member; nullopt when absent or null.
Result<std::optional<bool>> optional_bool_member(const nlohmann::json& j, const char* name);

/// A query parameter as an integer in [min, max], `fallback` when absent. BadRequest otherwise.
Result<std::int64_t> int_param(const std::map<std::string, std::string>& query, const char* name, std::int64_t min,
                               std::int64_t max, std::int64_t fallback);

}  // namespace ubuzima::server
