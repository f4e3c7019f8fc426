// Ubuzima Sync — MIT licence.
// Status helpers: wire codes and HTTP statuses from the error catalogue.
#include "ubuzima/sync/status.hpp"

namespace ubuzima {

std::string_view wire_code(ErrorCode code) noexcept {
    switch (code) {
#define UBUZIMA_ERROR(name, num, http, wire) \
    case ErrorCode::name: return wire;
#include "ubuzima/sync/error_codes.def"
#undef UBUZIMA_ERROR
    }
    return "internal";
}

int http_status(ErrorCode code) noexcept {
    switch (code) {
#define UBUZIMA_ERROR(name, num, http, wire) \
    case ErrorCode::name: return http;
#include "ubuzima/sync/error_codes.def"
#undef UBUZIMA_ERROR
    }
    return 500;
}

ErrorCode error_code_from_wire(std::string_view wire) noexcept {
#define UBUZIMA_ERROR(name, num, http, w) \
    if (wire == w) return ErrorCode::name;
#include "ubuzima/sync/error_codes.def"
#undef UBUZIMA_ERROR
    return ErrorCode::Internal;
}

bool Status::is_transient() const noexcept {
    switch (m_code) {
        case ErrorCode::Network:
        case ErrorCode::Timeout:
        case ErrorCode::Busy:
        case ErrorCode::Unavailable:
        case ErrorCode::RateLimited:
            return true;
        default:
            return false;
    }
}

std::string Status::to_string() const {
    if (ok()) return "ok";
    std::string out(wire_code(m_code));
    if (!m_message.empty()) out += ": " + m_message;
    return out;
}

}  // namespace ubuzima
