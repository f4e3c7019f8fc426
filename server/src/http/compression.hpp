// Ubuzima Sync — MIT licence.
// gzip encoding of bodies with zlib, with a cap on the inflated size (zip bombs).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// gzip-compresses `data` (level 6: good ratio for JSON at little CPU).
Result<std::string> gzip_compress(std::string_view data);
/// Inflates a gzip (or zlib) stream. TooLarge when the output would exceed `max_out` bytes,
/// BadRequest when the stream is corrupt or truncated.
Result<std::string> gzip_decompress(std::string_view data, std::size_t max_out);

}  // namespace ubuzima::server
