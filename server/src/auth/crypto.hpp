// Ubuzima Sync — MIT licence.
// Random tokens and SHA-256, from OpenSSL.
#pragma once

#include <string>
#include <string_view>

#include "ubuzima/sync/status.hpp"

namespace ubuzima::server {

/// `bytes` random bytes from the OpenSSL CSPRNG, hex-encoded.
Result<std::string> random_hex(int bytes);
/// Lower-case hex SHA-256 of `data` (how tokens are stored).
std::string sha256_hex(std::string_view data);
/// The raw 32-byte SHA-256 of `data`.
std::string sha256_raw(std::string_view data);
/// Lower-case hex of raw bytes.
std::string to_hex(std::string_view bytes);
/// Raw bytes of lower-case hex; false on odd length or a non-hex digit.
bool from_hex(std::string_view hex, std::string& out);

}  // namespace ubuzima::server
