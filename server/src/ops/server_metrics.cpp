// Ubuzima Sync — MIT licence.
// The server's metric families.
#include "ops/server_metrics.hpp"

namespace ubuzima::server::ops {

ServerMetrics::ServerMetrics(Metrics& m)
    : requests(m.counter("ubuzima_http_requests_total", "HTTP requests answered, by method, route pattern and status.",
                         {"method", "route", "status"})),
      duration(m.histogram("ubuzima_http_request_duration_seconds",
                           "Time from a request reaching the API to its response being ready (streamed bodies "
                           "excluded), by method and route pattern.",
                           {"method", "route"})),
      rows_pushed(m.counter("ubuzima_sync_rows_pushed_total",
                            "Changes from devices' sync batches applied to the store (a replayed batch counts again).")
                      .get()),
      rows_pulled(m.counter("ubuzima_sync_rows_pulled_total", "Row changes sent to devices in pull pages.").get()),
      conflicts(m.counter("ubuzima_sync_conflicts_total",
                          "Concurrent field writes found while applying pushes (each is in the conflict journal).")
                    .get()),
      rejected(m.counter("ubuzima_sync_rejected_changes_total",
                         "Pushed changes the server refused (validation, scope, sealed rows, clock skew).")
                   .get()),
      auth_failures(m.counter("ubuzima_auth_failures_total",
                              "Failed authentications, by step (login, refresh, bearer, role) and reason (the error "
                              "code; invalid_credentials covers unknown user and wrong password alike).",
                              {"step", "reason"})),
      rate_limited(m.counter("ubuzima_rate_limited_total", "Requests refused with 429 by the request rate limits.",
                             {"limit"})) {}

std::string method_label(const std::string& method) {
    static const char* const kKnown[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    for (const char* k : kKnown)
        if (method == k) return method;
    return "OTHER";
}

}  // namespace ubuzima::server::ops
