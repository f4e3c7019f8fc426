// Ubuzima Sync — MIT licence.
// A reader for the flat JSON objects the library itself writes into bookkeeping columns (field
// versions, field seqs): {"k":"v",...} or {"k":123,...}, as nlohmann's dump() writes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ubuzima::sync {

/// One member of a flat object; views into the text that was read.
struct FlatMember {
    std::string_view key;
    std::string_view value;  ///< a string's contents without quotes, or an integer's digits
    bool is_string = false;
};

/// The members of `text` when it is a flat object in the compact form the library writes: no
/// whitespace, keys and strings of printable ASCII without escapes, values strings or integers
/// (an optional '-' and digits). Anything else, including valid JSON in another form, gives nullopt: callers then use
/// a full JSON parser. Reading a row's `_v` through nlohmann built a tree with two allocations per
/// member and cost ~50k instructions per 15-field row (bench/performance_notes.md).
/// Thread-safe (pure function).
std::optional<std::vector<FlatMember>> read_flat_object(std::string_view text);

/// Appends `text` as a JSON string, byte for byte as nlohmann's dump() writes it (printable ASCII
/// is copied between quotes; anything else goes through nlohmann, which throws on invalid UTF-8
/// as dump() does).
void append_json_string(std::string& out, std::string_view text);

/// Builds a flat object in the compact form above, members in the order added (add them sorted
/// to get exactly the text dump() writes for a std::map). Not thread-safe; one per text.
class FlatObjectWriter {
public:
    FlatObjectWriter() : m_text("{") {}
    FlatObjectWriter& add_string(std::string_view key, std::string_view value);
    FlatObjectWriter& add_integer(std::string_view key, std::int64_t value);
    /// The finished text; the writer is left empty.
    std::string finish();

private:
    void add_key(std::string_view key);
    std::string m_text;
};

}  // namespace ubuzima::sync
