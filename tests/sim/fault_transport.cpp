// Ubuzima Sync — MIT licence.
// Routes device POSTs to Api::handle and injects lost, duplicated and stale deliveries.
#include "fault_transport.hpp"

#include <algorithm>
#include <cctype>

#include "http/compression.hpp"

namespace ubuzima::sim {

namespace {

constexpr std::size_t kCaptured = 8;

Status network(const char* what) { return Status(ErrorCode::Network, std::string("simulated: ") + what); }

}  // namespace

FaultCounts& FaultCounts::operator+=(const FaultCounts& o) {
    delivered += o.delivered;
    offline += o.offline;
    lost_requests += o.lost_requests;
    lost_responses += o.lost_responses;
    duplicates += o.duplicates;
    stale_replays += o.stale_replays;
    return *this;
}

server::http::Request to_server_request(const std::string& url, const std::string& body, const HttpHeaders& headers) {
    server::http::Request r;
    r.method = "POST";
    const std::size_t scheme = url.find("://");
    const std::size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    r.raw_path = path == std::string::npos ? "/" : url.substr(path);
    for (const auto& [name, value] : headers) {
        std::string key = name;
        std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
        r.headers[key] = value;
    }
    r.body = body;
    return r;
}

void FaultTransport::set_faults(bool on) {
    m_faults = on;
    if (!on) m_captured.clear();
}

server::http::Response FaultTransport::deliver(const server::http::Request& request) {
    ++m_counts.delivered;
    return m_api.handle(request);
}

Result<HttpResponse> FaultTransport::post(const std::string& url, const std::string& body, const HttpHeaders& headers) {
    if (before_post) before_post();
    if (!m_online) {
        ++m_counts.offline;
        return network("offline");
    }
    const server::http::Request request = to_server_request(url, body, headers);
    const bool is_sync = request.raw_path == "/v1/sync";
    if (m_faults && is_sync && !m_captured.empty() && m_rng.chance(m_rates.replay_stale)) {
        // A request that sat in some queue arrives late, after newer ones: its answer goes nowhere.
        ++m_counts.stale_replays;
        deliver(m_captured[m_rng.below(m_captured.size())]);
    }
    if (m_faults && m_rng.chance(m_rates.lose_request)) {
        ++m_counts.lost_requests;
        return network("request lost");
    }
    if (is_sync && m_faults) {
        m_captured.push_back(request);
        if (m_captured.size() > kCaptured) m_captured.pop_front();
    }
    server::http::Response response = deliver(request);
    if (m_faults && m_rng.chance(m_rates.duplicate)) {
        ++m_counts.duplicates;
        response = deliver(request);
    }
    if (m_faults && m_rng.chance(m_rates.lose_response)) {
        ++m_counts.lost_responses;
        return network("response lost");
    }
    HttpResponse out;
    out.status = response.status;
    out.body = std::move(response.body);
    if (auto retry = response.headers.find("Retry-After"); retry != response.headers.end())
        out.retry_after_ms = std::stoll(retry->second) * 1000;
    auto encoding = response.headers.find("Content-Encoding");
    if (encoding != response.headers.end() && encoding->second == "gzip") {
        auto plain = server::gzip_decompress(out.body, std::size_t{1} << 30);
        if (!plain.ok()) return plain.status();
        out.body = std::move(*plain);
    }
    return out;
}

}  // namespace ubuzima::sim
