// Ubuzima Sync — MIT licence.
// Status and Result<T>: expected failures as values; no exception crosses a public boundary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ubuzima {

/// Stable error codes, generated from error_codes.def. Numeric values never change.
enum class ErrorCode : std::int32_t {
#define UBUZIMA_ERROR(name, num, http, wire) name = num,
#include "ubuzima/sync/error_codes.def"
#undef UBUZIMA_ERROR
};

/// The snake_case code used on the wire ("sealed", "clock_skew", ...).
std::string_view wire_code(ErrorCode code) noexcept;
/// The HTTP status a server answers with for this code.
int http_status(ErrorCode code) noexcept;
/// Parses a wire code; unknown strings map to ErrorCode::Internal.
ErrorCode error_code_from_wire(std::string_view wire) noexcept;

/// Outcome of an operation: Ok, or an error code with a human message.
/// A plain value type; thread-compatible (no shared state).
class [[nodiscard]] Status {
public:
    Status() = default;
    Status(ErrorCode code, std::string message) : m_code(code), m_message(std::move(message)) {}

    static Status ok_status() { return Status(); }

    bool ok() const noexcept { return m_code == ErrorCode::Ok; }
    ErrorCode code() const noexcept { return m_code; }
    const std::string& message() const noexcept { return m_message; }
    /// True for failures a later retry may cure (network, timeout, busy, unavailable, throttling).
    /// Internal is not: a bug or a bad value answers the same way every time, and retrying it
    /// only hides it behind backoff.
    bool is_transient() const noexcept;
    /// "sealed: row is submitted"
    std::string to_string() const;

private:
    ErrorCode m_code = ErrorCode::Ok;
    std::string m_message;
};

/// Either a value or a non-OK Status (modelled on absl::StatusOr).
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_data(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Status status) : m_data(std::in_place_index<1>, std::move(status)) {
        if (std::get<1>(m_data).ok()) m_data.template emplace<1>(ErrorCode::Internal, "Result built from OK status");
    }

    bool ok() const noexcept { return m_data.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    Status status() const { return ok() ? Status() : std::get<1>(m_data); }

    T& value() & { return std::get<0>(m_data); }
    const T& value() const& { return std::get<0>(m_data); }
    T&& value() && { return std::get<0>(std::move(m_data)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

private:
    std::variant<T, Status> m_data;
};

}  // namespace ubuzima

/// Returns early from the enclosing function when a Status-valued expression fails. The local's
/// name is unique per use, so a TRY inside a lambda inside a TRY shadows nothing.
#define UBUZIMA_TRY(expr) UBUZIMA_TRY_IMPL(expr, UBUZIMA_TRY_CAT(ubuzima_try_status_, __COUNTER__))
#define UBUZIMA_TRY_CAT(a, b) UBUZIMA_TRY_CAT2(a, b)
#define UBUZIMA_TRY_CAT2(a, b) a##b
#define UBUZIMA_TRY_IMPL(expr, name)            \
    do {                                        \
        ::ubuzima::Status name = (expr);        \
        if (!name.ok()) return name;            \
    } while (0)
