// Ubuzima Sync — MIT licence.
// The HTTP API of the server on transport-neutral requests: routing, auth, body limits, gzip,
// JSON errors. The cpprestsdk listener (or a test) feeds it HttpRequest objects.
#pragma once

#include <memory>
#include <string>

#include "auth/auth_service.hpp"
#include "config.hpp"
#include "http/http_types.hpp"
#include "storage/store.hpp"
#include "sync/sync_service.hpp"

namespace ubuzima::server {

/// Thread-safe: handle() may run on many listener threads at once.
class Api {
public:
    /// Builds the API on an open store: inserts missing seed rows and, when configured and the
    /// store has no users, creates the bootstrap admin. `store` must outlive the Api.
    static Result<std::unique_ptr<Api>> create(Store& store, ServerOptions options);

    Api(const Api&) = delete;
    Api& operator=(const Api&) = delete;

    /// Answers one request. Never throws: any failure becomes a JSON error response.
    HttpResponse handle(const HttpRequest& request) noexcept;

    const ServerOptions& options() const { return m_options; }
    AuthService& auth() { return m_auth; }
    SyncService& sync_service() { return m_sync; }

private:
    Api(Store& store, ServerOptions options);
    HttpResponse dispatch(const HttpRequest& request);

    // Endpoints (handlers.cpp). `body` is the decoded (gunzipped) request body.
    HttpResponse health();
    HttpResponse login(const std::string& body);
    HttpResponse refresh(const std::string& body);
    HttpResponse create_user(const AuthUser& user, const std::string& body);
    HttpResponse sync(const AuthUser& user, const std::string& body);
    HttpResponse list_conflicts(const AuthUser& user, const HttpRequest& request);
    HttpResponse resolve_conflict(const AuthUser& user, const std::string& id, const std::string& body);

    ServerOptions m_options;
    Store& m_store;
    ServerClock m_clock;
    AuthService m_auth;
    SyncService m_sync;
};

/// `{"error":{...}}` with the status of the code and Content-Type application/json.
HttpResponse error_response(const Status& status);
/// A JSON body with the given status.
HttpResponse json_response(int status, std::string body);

}  // namespace ubuzima::server
