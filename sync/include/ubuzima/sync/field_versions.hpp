// Ubuzima Sync — MIT licence.
// The text a device stores in a row's `_v` column: which version wrote each field.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ubuzima::sync {

/// Writes field -> version compactly: the version that most fields share is written once, under
/// the key "@" (never a field name), and those fields map to "":
///   {"@":"0193...@9f2c...","facility_id":"","status":"0194...@9f2c...","title":""}
/// A row written in one go (every fresh row) then costs 2 bytes per field instead of ~37: the
/// full map was ~a third of a captured row's bytes (bench/performance_notes.md). With fewer than
/// two fields sharing a version the plain map is written. `members` sorted by name, versions
/// non-empty. Thread-safe (pure function).
std::string encode_field_versions(const std::vector<std::pair<std::string_view, std::string_view>>& members);

/// The same from a JSON object of field -> version string (any other value: dump() of the object).
std::string encode_field_versions(const nlohmann::json& versions);

/// Reads what encode_field_versions wrote, and the plain map older files hold: field -> version
/// string. Text that is not a JSON object reads as no versions.
nlohmann::json decode_field_versions(const std::string& text);

}  // namespace ubuzima::sync
