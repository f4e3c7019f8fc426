// Ubuzima Sync — MIT licence.
// An HttpTransport that hands each POST to the in-process server Api and injects seeded faults.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "api/api.hpp"
#include "rng.hpp"
#include "ubuzima/transport.hpp"

namespace ubuzima::sim {

/// Probabilities per request, in per mille.
struct FaultRates {
    int lose_request = 60;   ///< never reaches the server
    int lose_response = 60;  ///< the server applied it, the device hears nothing
    int duplicate = 60;      ///< delivered twice (a retrying proxy)
    int replay_stale = 60;   ///< an old captured /v1/sync request is delivered again first
};

/// What the transport did, by kind.
struct FaultCounts {
    std::int64_t delivered = 0;
    std::int64_t offline = 0;
    std::int64_t lost_requests = 0;
    std::int64_t lost_responses = 0;
    std::int64_t duplicates = 0;
    std::int64_t stale_replays = 0;

    FaultCounts& operator+=(const FaultCounts& o);
};

/// One device's link to the server. Not thread-safe: the simulation is single-threaded on
/// purpose, so that a seed replays exactly.
class FaultTransport final : public HttpTransport {
public:
    FaultTransport(server::Api& api, Rng& rng, FaultRates rates) : m_api(api), m_rng(rng), m_rates(rates) {}

    Result<HttpResponse> post(const std::string& url, const std::string& body, const HttpHeaders& headers) override;

    /// A device without a link: every request fails with Network at once.
    void set_online(bool online) { m_online = online; }
    bool online() const { return m_online; }
    /// Healing turns every fault off (and forgets captured requests).
    void set_faults(bool on);
    const FaultCounts& counts() const { return m_counts; }
    /// Called at the start of every post(), before any fault: the simulator reads the outbox there.
    std::function<void()> before_post;

private:
    server::http::Response deliver(const server::http::Request& request);

    server::Api& m_api;
    Rng& m_rng;
    FaultRates m_rates;
    bool m_faults = true;
    bool m_online = true;
    FaultCounts m_counts;
    std::deque<server::http::Request> m_captured;  ///< recent /v1/sync requests, for stale replays
};

/// Converts a client POST to the server's transport-neutral request (lower-case header names).
server::http::Request to_server_request(const std::string& url, const std::string& body, const HttpHeaders& headers);

}  // namespace ubuzima::sim
