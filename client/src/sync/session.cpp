// Ubuzima Sync — MIT licence.
// Login, token refresh and the sync loop; each loop iteration is exactly one HTTP round trip.
#include "sync/session.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

#include "ubuzima/sync/ids.hpp"

namespace ubuzima::detail {

namespace {

ErrorCode code_for_http(int status) {
    switch (status) {
        case 400: return ErrorCode::BadRequest;
        case 401: return ErrorCode::Unauthorized;
        case 403: return ErrorCode::Forbidden;
        case 404: return ErrorCode::NotFound;
        case 405: return ErrorCode::MethodNotAllowed;
        case 409: return ErrorCode::Conflict;
        case 413: return ErrorCode::TooLarge;
        case 415: return ErrorCode::UnsupportedMedia;
        case 422: return ErrorCode::InvalidValue;
        case 429: return ErrorCode::RateLimited;
        case 503: return ErrorCode::Unavailable;
        case 504: return ErrorCode::Timeout;
        default: return status >= 500 ? ErrorCode::Internal : ErrorCode::BadRequest;
    }
}

std::string lowercase(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string trim_slash(std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
}

}  // namespace

Status http_error(const HttpResponse& response) {
    Status s = sync::decode_error(response.body, code_for_http(response.status));
    if (s.message().empty()) return Status(s.code(), "HTTP " + std::to_string(response.status));
    return s;
}

void SyncSession::set_options(SyncOptions options) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_options = std::move(options);
    m_default_transport.reset();
}

HttpTransport& SyncSession::transport() {
    if (m_options.transport) return *m_options.transport;
    if (!m_default_transport) m_default_transport = std::make_shared<CurlTransport>(m_options.timeouts);
    return *m_default_transport;
}

Result<std::string> SyncSession::base_url() {
    if (!m_options.server_url.empty()) return trim_slash(m_options.server_url);
    std::lock_guard<std::mutex> lock(m_store.mutex());
    auto stored = m_store.meta("server_url");
    if (!stored.ok()) return stored.status();
    if (!*stored || (*stored)->empty()) return Status(ErrorCode::NotLoggedIn, "no server URL: log in first");
    return trim_slash(**stored);
}

Result<HttpResponse> SyncSession::post(const std::string& url, const std::string& body, const std::string& token) {
    HttpHeaders headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    auto resp = transport().post(url, body, headers);
    if (resp.ok()) {
        m_last_http_status = resp->status;
        m_last_retry_after_ms = resp->retry_after_ms;
    }
    return resp;
}

Status SyncSession::store_tokens(const std::string& body, const LoginState* login) {
    const json j = json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("access_token") || !j["access_token"].is_string() ||
        !j.contains("refresh_token") || !j["refresh_token"].is_string())
        return Status(ErrorCode::BadRequest, "the server's auth response lacks access_token/refresh_token");
    std::string user_id;
    if (j.contains("user") && j["user"].is_object() && j["user"].contains("id") && j["user"]["id"].is_string())
        user_id = j["user"]["id"].get<std::string>();
    std::lock_guard<std::mutex> lock(m_store.mutex());
    auto tx = sql::Transaction::begin(m_store.db());
    if (!tx.ok()) return tx.status();
    if (login) {
        // Another user on this device never sees the last one's data: it goes, in the same
        // transaction as the new tokens (login() made sure nothing of theirs was unsynced).
        if (login->new_node) UBUZIMA_TRY(m_store.reset_local_data(*login->new_node));
        UBUZIMA_TRY(m_store.set_meta("server_url", login->server_url));
        UBUZIMA_TRY(m_store.set_user(user_id, login->username));
    }
    UBUZIMA_TRY(m_store.set_meta("access_token", j["access_token"].get<std::string>()));
    UBUZIMA_TRY(m_store.set_meta("refresh_token", j["refresh_token"].get<std::string>()));
    return tx->commit();
}

Status SyncSession::login(const std::string& server_url, const std::string& username, const std::string& password) {
    std::lock_guard<std::mutex> lock(m_mutex);
    const std::string base = trim_slash(server_url.empty() ? m_options.server_url : server_url);
    if (base.empty()) return Status(ErrorCode::InvalidArgument, "server URL is empty");
    if (username.empty()) return Status(ErrorCode::InvalidArgument, "username is empty");
    LoginState state{base, lowercase(username), std::nullopt};
    sync::NodeId device = 0;
    {
        std::lock_guard<std::mutex> store_lock(m_store.mutex());
        auto previous = m_store.meta("username");
        if (!previous.ok()) return previous.status();
        if (*previous && !(*previous)->empty() && **previous != state.username) {
            // The device holds another user's data. Refused while any of it is unsynced (it would
            // be pushed under the new login, or lost); otherwise wiped at login, and the device
            // becomes a new replica so that the new user's first pull brings everything.
            auto pending = m_store.pending_count();
            if (!pending.ok()) return pending.status();
            if (*pending > 0)
                return Status(ErrorCode::Conflict, "this device holds " + std::to_string(*pending) +
                                                       " unsynced changes of " + **previous +
                                                       ": sync them as " + **previous +
                                                       " first, or reset the device (which discards them)");
            state.new_node = sync::new_node_id();
        }
        device = state.new_node ? *state.new_node : m_store.node();
    }
    const json body{{"username", state.username}, {"password", password}, {"device_id", sync::to_hex16(device)}};
    auto resp = post(base + "/v1/auth/login", body.dump(), "");
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) return http_error(*resp);
    return store_tokens(resp->body, &state);
}

Status SyncSession::logout() {
    std::lock_guard<std::mutex> lock(m_mutex);
    // Told to the server first (it voids every token of this device), then forgotten here even
    // when the server could not be reached: a lost tablet must not keep a usable token.
    Status told;
    auto resp = post_authenticated("/v1/auth/logout", "{}");
    if (!resp.ok()) told = resp.status();
    else if (resp->status != 200) told = http_error(*resp);
    std::lock_guard<std::mutex> store_lock(m_store.mutex());
    auto tx = sql::Transaction::begin(m_store.db());
    if (!tx.ok()) return tx.status();
    UBUZIMA_TRY(m_store.set_meta("access_token", ""));
    UBUZIMA_TRY(m_store.set_meta("refresh_token", ""));
    UBUZIMA_TRY(tx->commit());
    if (told.code() == ErrorCode::NotLoggedIn || told.code() == ErrorCode::Revoked) return {};
    return told;
}

Status SyncSession::reset() {
    std::lock_guard<std::mutex> lock(m_mutex);
    std::lock_guard<std::mutex> store_lock(m_store.mutex());
    auto tx = sql::Transaction::begin(m_store.db());
    if (!tx.ok()) return tx.status();
    UBUZIMA_TRY(m_store.reset_local_data(sync::new_node_id()));
    UBUZIMA_TRY(m_store.set_meta("server_url", ""));
    return tx->commit();
}

Status SyncSession::refresh(const std::string& base) {
    std::optional<std::string> token;
    {
        std::lock_guard<std::mutex> lock(m_store.mutex());
        auto stored = m_store.meta("refresh_token");
        if (!stored.ok()) return stored.status();
        token = *stored;
    }
    if (!token || token->empty()) return Status(ErrorCode::NotLoggedIn, "session expired: log in again");
    const json body{{"refresh_token", *token}, {"device_id", sync::to_hex16(m_store.node())}};
    auto resp = post(base + "/v1/auth/refresh", body.dump(), "");
    if (!resp.ok()) return resp.status();
    if (resp->status == 401 || resp->status == 403) {
        // The refresh token was revoked or expired: only a new login can help.
        return Status(ErrorCode::NotLoggedIn, "session expired: log in again (" + http_error(*resp).message() + ")");
    }
    if (resp->status != 200) return http_error(*resp);
    return store_tokens(resp->body, nullptr);
}

Result<HttpResponse> SyncSession::post_authenticated(const std::string& path, const std::string& body) {
    auto base = base_url();
    if (!base.ok()) return base.status();
    for (int attempt = 0;; ++attempt) {
        std::optional<std::string> token;
        {
            std::lock_guard<std::mutex> lock(m_store.mutex());
            auto stored = m_store.meta("access_token");
            if (!stored.ok()) return stored.status();
            token = *stored;
        }
        if (!token || token->empty()) return Status(ErrorCode::NotLoggedIn, "not logged in");
        auto resp = post(*base + path, body, *token);
        if (!resp.ok() || resp->status != 401) return resp;
        Status error = http_error(*resp);
        if (error.code() != ErrorCode::TokenExpired || attempt > 0) return error;
        UBUZIMA_TRY(refresh(*base));
    }
}

bool SyncSession::retryable(const Status& failure) const {
    // A 500 is the server's bug (code internal): it would answer the same again. Other 5xx (a
    // proxy's 502/504, 503 overloaded, 507 disk full) are conditions that pass.
    if (m_last_http_status > 500 || m_last_http_status == 429) return true;
    if (m_last_http_status == 500) return false;
    return failure.is_transient();
}

std::int64_t SyncSession::backoff_ms(int n) {
    const RetryPolicy& p = m_options.retry;
    const std::int64_t cap = std::max<std::int64_t>(0, p.max_backoff_ms);
    std::int64_t base = std::max<std::int64_t>(0, p.initial_backoff_ms);
    for (int i = 1; i < n && base < cap; ++i) base *= 2;  // doubling stops at the cap: no overflow
    base = std::min(base, cap);
    const double jitter = std::clamp(p.jitter, 0.0, 1.0);
    const double factor = 1.0 - jitter * std::uniform_real_distribution<double>(0.0, 1.0)(m_jitter_rng);
    std::int64_t delay = static_cast<std::int64_t>(static_cast<double>(base) * factor);
    if (m_last_retry_after_ms > delay) delay = std::min(m_last_retry_after_ms, cap);
    return delay;
}

Result<SyncReport> SyncSession::sync(const SyncProgress& progress) {
    std::lock_guard<std::mutex> lock(m_mutex);
    SyncReport report;
    const int attempts = std::max(1, m_options.retry.max_attempts);
    for (int attempt = 1;; ++attempt) {
        m_last_http_status = 0;
        m_last_retry_after_ms = -1;
        Status s = sync_attempt(report, progress);
        if (s.ok()) return report;
        if (attempt >= attempts || !retryable(s)) return s;
        const std::int64_t wait = backoff_ms(attempt);
        if (m_options.retry.sleep) {
            m_options.retry.sleep(wait);
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(wait));
        }
        ++report.retries;
    }
}

Status SyncSession::sync_attempt(SyncReport& report, const SyncProgress& progress) {
    int batch_size = m_options.batch_size > 0 ? m_options.batch_size : 500;
    const int page_limit = m_options.page_limit > 0 ? m_options.page_limit : 1000;
    for (int round = 0; round < m_options.max_round_trips; ++round) {
        m_last_http_status = 0;
        m_last_retry_after_ms = -1;
        sync::SyncRequest request;
        std::optional<OutgoingBatch> batch;
        {
            std::lock_guard<std::mutex> store_lock(m_store.mutex());
            auto prepared = prepare_batch(m_store, batch_size);
            if (!prepared.ok()) return prepared.status();
            batch = std::move(*prepared);
            auto cursor = m_store.meta("cursor");
            if (!cursor.ok()) return cursor.status();
            request.schema_version = m_store.schema().version();
            request.node = m_store.node();
            request.clock = m_store.clock().now();
            if (batch) request.batch = sync::PushBatch{batch->id, batch->changes};
            request.cursor = *cursor;
            request.limit = page_limit;
            // What the operators' device list shows: changes waiting here, and refused ones kept.
            auto pending = m_store.pending_count();
            if (!pending.ok()) return pending.status();
            auto rejected = m_store.rejected_count();
            if (!rejected.ok()) return rejected.status();
            request.pending = *pending;
            request.rejected = *rejected;
        }
        auto resp = post_authenticated("/v1/sync", sync::encode_sync_request(request));
        if (!resp.ok()) return resp.status();
        ++report.round_trips;
        if (resp->status == 413 && batch) {
            // The batch is over the server's body limit (it applied none of it: the size is judged
            // before the body is read). Send it again in halves; one change alone that is too
            // large is refused for good, into the rejected list.
            std::lock_guard<std::mutex> store_lock(m_store.mutex());
            if (batch->changes.size() > 1) {
                batch_size = std::max(1, static_cast<int>(batch->changes.size() / 2));
                UBUZIMA_TRY(m_store.unassign_batch(batch->id));
            } else {
                UBUZIMA_TRY(reject_too_large(m_store, *batch, http_error(*resp)));
                ++report.rejected;
            }
            continue;
        }
        if (resp->status != 200) return http_error(*resp);
        auto decoded = sync::decode_sync_response(resp->body);
        if (!decoded.ok()) return Status(decoded.status().code(), "sync response: " + decoded.status().message());
        if (decoded->protocol != sync::kProtocolVersion)
            return Status(ErrorCode::ProtocolMismatch,
                          "server speaks protocol " + std::to_string(decoded->protocol) + ", this client 1");

        bool outbox_left = false;
        std::int64_t pending_left = 0;
        {
            std::lock_guard<std::mutex> store_lock(m_store.mutex());
            auto counts = apply_response(m_store, batch, *decoded);
            if (!counts.ok()) return counts.status();
            report.pushed += counts->pushed;
            report.pulled += counts->pulled;
            report.fields_applied += counts->fields_applied;
            report.conflicts += counts->conflicts;
            report.rejected += counts->rejected;
            report.removed += counts->gone;
            auto pending = m_store.pending_count();
            if (!pending.ok()) return pending.status();
            pending_left = *pending;
            outbox_left = *pending > 0;
        }
        const bool done = !outbox_left && !decoded->more;
        if (progress && !progress(report, pending_left, decoded->more) && !done)
            return Status(ErrorCode::Cancelled, "sync stopped by the progress callback after " +
                                                    std::to_string(report.round_trips) +
                                                    " round trips; everything received so far is kept");
        if (done) break;
    }
    return Status();
}

}  // namespace ubuzima::detail
