// Ubuzima Sync — MIT licence.
// Bounds on JSON from outside (request bodies, responses, app input) checked before any tree is
// built, and UTF-8 checks for text that reaches a JSON writer.
//
// Why: nlohmann's parser is iterative, but copying, comparing and dumping a document recurse once
// per nesting level. A 200 KB body of 100,000 nested arrays crashed the server (stack overflow
// in a copy); a 30 KB gzip body inflating to 30 MB of `[[],...]` built a 650 MB tree. The size
// is bounded by the caller (per route); the depth here, in one pass over the bytes.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::sync {

/// Deepest nesting accepted in any JSON document from outside. A sync request puts field values
/// at depth 5 ({batch:{changes:[{f:{field: value}}]}}), so a `json` field keeps ~58 levels of
/// its own; real documents use fewer than 10.
inline constexpr int kMaxJsonDepth = 64;
/// Deepest nesting accepted inside one `json`-typed field value (schema validation).
inline constexpr int kMaxValueDepth = 32;

struct JsonLimits {
    std::size_t max_bytes = static_cast<std::size_t>(-1);
    int max_depth = kMaxJsonDepth;
};

/// Checks `text`'s size and nesting depth without building anything (brackets inside strings
/// do not count). TooLarge when over max_bytes; BadRequest naming the limit when too deep. A
/// text that is not JSON at all may pass: the parser judges that.
/// Thread-safe (pure function).
Status check_json_limits(std::string_view text, const JsonLimits& limits = {});

/// Parses `text` within `limits`. Errors: TooLarge, BadRequest (too deep), InvalidJson (not
/// JSON, or text that is not UTF-8). Never throws.
Result<nlohmann::json> parse_json(std::string_view text, const JsonLimits& limits = {});

/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view text);

/// Checks a JSON value built in memory (e.g. by an app through the C++ API): every string and
/// object key valid UTF-8 (a JSON writer would throw later, at sync time, on the first bad byte)
/// and nesting at most `max_depth`. Iterative: a hostile depth cannot overflow the stack.
/// Returns InvalidValue naming what is wrong, with `what` as the subject.
Status check_json_value(const nlohmann::json& value, int max_depth, std::string_view what);

}  // namespace ubuzima::sync
