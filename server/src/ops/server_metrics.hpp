// Ubuzima Sync — MIT licence.
// The server's own metric families (names, help and labels in one place; docs/OPERATIONS.md
// lists them), registered on a Metrics and kept by reference for the hot path.
#pragma once

#include <string>

#include "ops/metrics.hpp"

namespace ubuzima::server::ops {

struct ServerMetrics {
    explicit ServerMetrics(Metrics& metrics);

    CounterFamily& requests;        ///< {method, route, status}
    HistogramFamily& duration;      ///< {method, route}, seconds
    Counter& rows_pushed;           ///< changes applied from devices' batches
    Counter& rows_pulled;           ///< changes sent to devices
    Counter& conflicts;             ///< concurrent writes journalled while applying pushes
    Counter& rejected;              ///< pushed changes refused (rules, scope, sealed rows...)
    CounterFamily& auth_failures;   ///< {step, reason}
    CounterFamily& rate_limited;    ///< {limit}
};

/// The method as a label value: the common methods as sent, anything else "OTHER", so a client
/// inventing methods cannot grow the label set.
std::string method_label(const std::string& method);

/// The route label of a request that matched no route.
inline constexpr const char* kUnmatchedRoute = "unmatched";

}  // namespace ubuzima::server::ops
