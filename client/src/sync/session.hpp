// Ubuzima Sync — MIT licence.
// The sync session: login/refresh, and the push+pull loop over POST /v1/sync.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage/store.hpp"
#include "ubuzima/sync/protocol.hpp"

namespace ubuzima::detail {

/// A batch as sent: the outbox sequence numbers in the same order as the changes.
struct OutgoingBatch {
    std::string id;
    std::vector<std::int64_t> seqs;
    std::vector<sync::Change> changes;
};

/// What applying one response did (summed into SyncReport).
struct ApplyCounts {
    std::int64_t pushed = 0;
    std::int64_t pulled = 0;
    std::int64_t fields_applied = 0;
    std::int64_t conflicts = 0;
    std::int64_t rejected = 0;
    std::int64_t gone = 0;  ///< rows dropped because they moved out of the user's facilities
};

/// Picks the batch to send: the one sent before whose answer was never processed (same id, so
/// the server replays its stored result), else up to `batch_size` new rows under a new id, which
/// is committed before sending. Requires the store mutex; opens its own transaction.
Result<std::optional<OutgoingBatch>> prepare_batch(Store& store, int batch_size);

/// Applies one 200 response in ONE transaction: clock, push result (outbox, rejections,
/// clock-skew re-stamps, push conflicts), the pulled page and its cursor. Requires the mutex.
Result<ApplyCounts> apply_response(Store& store, const std::optional<OutgoingBatch>& batch,
                                   const sync::SyncResponse& response);

/// Talks to one server for one Database. Thread-safe: login/sync/set_options are serialised by
/// an internal mutex; the store mutex is held only around local transactions, never during I/O.
class SyncSession {
public:
    SyncSession(Store& store, SyncOptions options) : m_store(store), m_options(std::move(options)) {}

    void set_options(SyncOptions options);
    Status login(const std::string& server_url, const std::string& username, const std::string& password);
    /// Database::reset().
    Status reset();
    /// Database::logout().
    Status logout();
    Result<SyncReport> sync(const SyncProgress& progress);

private:
    /// One attempt of the push+pull loop; adds what it did to `report` even when it fails.
    Status sync_attempt(SyncReport& report, const SyncProgress& progress);
    /// True when `failure` may be cured by trying again (see RetryPolicy).
    bool retryable(const Status& failure) const;
    /// The wait before retry `n` (1-based) under the current policy and the last Retry-After.
    std::int64_t backoff_ms(int n);
    HttpTransport& transport();
    Result<std::string> base_url();
    Result<HttpResponse> post(const std::string& url, const std::string& body, const std::string& token);
    /// POST with the stored access token; one refresh + retry on 401 token_expired.
    Result<HttpResponse> post_authenticated(const std::string& path, const std::string& body);
    Status refresh(const std::string& base);
    /// What a successful login stores with its tokens.
    struct LoginState {
        std::string server_url;
        std::string username;
        std::optional<sync::NodeId> new_node;  ///< another user: wipe and become this new replica
    };
    /// Stores the tokens of an auth answer (and, for a login, `login`) in one transaction.
    Status store_tokens(const std::string& body, const LoginState* login);

    Store& m_store;
    std::mutex m_mutex;  // serialises sessions; lock order: m_mutex, then the store mutex
    SyncOptions m_options;
    std::shared_ptr<HttpTransport> m_default_transport;
    // What the last answer of the current attempt said, to classify its failure: 5xx is
    // transient whatever code the body names (507 disk_full), Retry-After sets the next wait.
    int m_last_http_status = 0;
    std::int64_t m_last_retry_after_ms = -1;
    std::minstd_rand m_jitter_rng{std::random_device{}()};
};

/// Moves the one change of `batch` into _rejected with `why` (a 413 for a single change: it can
/// never be sent) and rolls its row back, as for a server refusal. Requires the store mutex.
Status reject_too_large(Store& store, const OutgoingBatch& batch, const Status& why);

/// The error Status for a non-2xx response (the server's JSON error, else one from the status).
Status http_error(const HttpResponse& response);

}  // namespace ubuzima::detail
