// Ubuzima Sync — MIT licence.
// The C API: thin shims over ubuzima::Database; one guard turns every Status/exception into a code.
#include "ubuzima.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "c_api/sync_options_json.hpp"
#include "ubuzima/database.hpp"

struct ubuzima_db {
    ubuzima::Database db;
};

namespace {

using ubuzima::ErrorCode;
using ubuzima::Status;

// Keeps the C constants and the X-macro catalogue in step: every code listed once here, and the
// count checked against the .def, so a code added there without a C twin fails to compile.
constexpr std::pair<ErrorCode, ubuzima_status> kCodes[] = {
    {ErrorCode::Ok, UBUZIMA_OK},
    {ErrorCode::BadRequest, UBUZIMA_BAD_REQUEST},
    {ErrorCode::InvalidJson, UBUZIMA_INVALID_JSON},
    {ErrorCode::Unauthorized, UBUZIMA_UNAUTHORIZED},
    {ErrorCode::TokenExpired, UBUZIMA_TOKEN_EXPIRED},
    {ErrorCode::InvalidCredentials, UBUZIMA_INVALID_CREDENTIALS},
    {ErrorCode::Forbidden, UBUZIMA_FORBIDDEN},
    {ErrorCode::NotFound, UBUZIMA_NOT_FOUND},
    {ErrorCode::Conflict, UBUZIMA_CONFLICT},
    {ErrorCode::TooLarge, UBUZIMA_TOO_LARGE},
    {ErrorCode::UnsupportedMedia, UBUZIMA_UNSUPPORTED_MEDIA},
    {ErrorCode::InvalidValue, UBUZIMA_INVALID_VALUE},
    {ErrorCode::RateLimited, UBUZIMA_RATE_LIMITED},
    {ErrorCode::Internal, UBUZIMA_INTERNAL},
    {ErrorCode::Unavailable, UBUZIMA_UNAVAILABLE},
    {ErrorCode::MethodNotAllowed, UBUZIMA_METHOD_NOT_ALLOWED},
    {ErrorCode::LengthRequired, UBUZIMA_LENGTH_REQUIRED},
    {ErrorCode::Revoked, UBUZIMA_REVOKED},
    {ErrorCode::UnknownTable, UBUZIMA_UNKNOWN_TABLE},
    {ErrorCode::UnknownField, UBUZIMA_UNKNOWN_FIELD},
    {ErrorCode::ReadOnly, UBUZIMA_READ_ONLY},
    {ErrorCode::Sealed, UBUZIMA_SEALED},
    {ErrorCode::OutOfScope, UBUZIMA_OUT_OF_SCOPE},
    {ErrorCode::ClockSkew, UBUZIMA_CLOCK_SKEW},
    {ErrorCode::AppendOnly, UBUZIMA_APPEND_ONLY},
    {ErrorCode::ProtocolMismatch, UBUZIMA_PROTOCOL_MISMATCH},
    {ErrorCode::WrongNode, UBUZIMA_WRONG_NODE},
    {ErrorCode::IoError, UBUZIMA_IO_ERROR},
    {ErrorCode::DiskFull, UBUZIMA_DISK_FULL},
    {ErrorCode::Corrupt, UBUZIMA_CORRUPT},
    {ErrorCode::Busy, UBUZIMA_BUSY},
    {ErrorCode::Network, UBUZIMA_NETWORK},
    {ErrorCode::Timeout, UBUZIMA_TIMEOUT},
    {ErrorCode::NotLoggedIn, UBUZIMA_NOT_LOGGED_IN},
    {ErrorCode::InvalidArgument, UBUZIMA_INVALID_ARGUMENT},
    {ErrorCode::Cancelled, UBUZIMA_CANCELLED},
};

constexpr std::size_t kCatalogueSize = 0
#define UBUZIMA_ERROR(name, num, http, wire) +1
#include "ubuzima/sync/error_codes.def"
#undef UBUZIMA_ERROR
    ;
static_assert(sizeof(kCodes) / sizeof(kCodes[0]) == kCatalogueSize, "ubuzima.h lacks a code of error_codes.def");

constexpr bool codes_match() {
    for (const auto& [cpp, c] : kCodes)
        if (static_cast<std::int32_t>(cpp) != static_cast<std::int32_t>(c)) return false;
    return true;
}
static_assert(codes_match(), "ubuzima.h status numbers differ from error_codes.def");

ubuzima_status report(const Status& status, ubuzima_error* err) noexcept {
    if (err) {
        err->code = static_cast<std::int32_t>(status.code());
        const std::string& msg = status.message();
        const std::size_t n = msg.size() < sizeof(err->message) - 1 ? msg.size() : sizeof(err->message) - 1;
        std::memcpy(err->message, msg.data(), n);
        err->message[n] = '\0';
    }
    return static_cast<ubuzima_status>(status.code());
}

// The one edge every function passes through: no exception reaches C.
template <typename F>
ubuzima_status c_api_guard(ubuzima_error* err, F&& body) noexcept {
    try {
        return report(body(), err);
    } catch (const std::bad_alloc&) {
        return report(Status(ErrorCode::Internal, "out of memory"), err);
    } catch (const std::exception& e) {
        return report(Status(ErrorCode::Internal, e.what()), err);
    } catch (...) {
        return report(Status(ErrorCode::Internal, "unknown exception"), err);
    }
}

Status missing(const char* what) { return Status(ErrorCode::InvalidArgument, std::string(what) + " is NULL"); }

// malloc'd copy, so that ubuzima_free is plain free() and foreign runtimes never see operator new.
Status copy_out(const std::string& text, char** out) {
    char* p = static_cast<char*>(std::malloc(text.size() + 1));
    if (!p) return Status(ErrorCode::Internal, "out of memory");
    std::memcpy(p, text.c_str(), text.size() + 1);
    *out = p;
    return {};
}

ubuzima::Result<nlohmann::json> parse(const char* text) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return Status(ErrorCode::InvalidJson, "argument is not valid JSON");
    return j;
}

ubuzima_sync_report to_c(const ubuzima::SyncReport& r) {
    return ubuzima_sync_report{r.pushed, r.pulled, r.conflicts, r.rejected, r.round_trips, r.removed};
}

using FieldWrite = Status (ubuzima::Database::*)(std::string_view, std::string_view, const nlohmann::json&);

// put and update share their argument checks; only the Database method differs.
ubuzima_status write_fields(ubuzima_db* db, const char* table, const char* id, const char* json, ubuzima_error* err,
                            FieldWrite write) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!table) return missing("table");
        if (!id) return missing("id");
        if (!json) return missing("json");
        auto fields = parse(json);
        if (!fields.ok()) return fields.status();
        return (db->db.*write)(table, id, *fields);
    });
}
}  // namespace

extern "C" {

UBUZIMA_API const char* ubuzima_version(void) { return "0.1.0"; }

UBUZIMA_API ubuzima_status ubuzima_db_open(const char* path, ubuzima_db** out, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!path) return missing("path");
        if (!out) return missing("out");
        *out = nullptr;
        ubuzima::DatabaseOptions options;
        options.path = path;
        auto db = ubuzima::Database::open(options);
        if (!db.ok()) return db.status();
        *out = new ubuzima_db{std::move(*db)};
        return {};
    });
}

UBUZIMA_API void ubuzima_db_close(ubuzima_db* db) { delete db; }

UBUZIMA_API ubuzima_status ubuzima_db_insert(ubuzima_db* db, const char* table, const char* json, char** out_id,
                                             ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!table) return missing("table");
        if (!json) return missing("json");
        if (out_id) *out_id = nullptr;
        auto fields = parse(json);
        if (!fields.ok()) return fields.status();
        auto id = db->db.insert(table, *fields);
        if (!id.ok()) return id.status();
        return out_id ? copy_out(*id, out_id) : Status();
    });
}


UBUZIMA_API ubuzima_status ubuzima_db_put(ubuzima_db* db, const char* table, const char* id, const char* json,
                                          ubuzima_error* err) {
    return write_fields(db, table, id, json, err, &ubuzima::Database::put);
}

UBUZIMA_API ubuzima_status ubuzima_db_update(ubuzima_db* db, const char* table, const char* id, const char* json,
                                             ubuzima_error* err) {
    return write_fields(db, table, id, json, err, &ubuzima::Database::update);
}

UBUZIMA_API ubuzima_status ubuzima_db_delete(ubuzima_db* db, const char* table, const char* id, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!table) return missing("table");
        if (!id) return missing("id");
        return db->db.remove(table, id);
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_get(ubuzima_db* db, const char* table, const char* id, char** out_json,
                                          ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!table) return missing("table");
        if (!id) return missing("id");
        if (!out_json) return missing("out_json");
        *out_json = nullptr;
        auto row = db->db.get(table, id);
        if (!row.ok()) return row.status();
        return *row ? copy_out((*row)->dump(), out_json) : Status();
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_query(ubuzima_db* db, const char* table, const char* filter_json,
                                            char** out_json_array, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!table) return missing("table");
        if (!out_json_array) return missing("out_json_array");
        *out_json_array = nullptr;
        nlohmann::json filter;
        if (filter_json) {
            auto parsed = parse(filter_json);
            if (!parsed.ok()) return parsed.status();
            filter = std::move(*parsed);
        }
        auto rows = db->db.query(table, filter);
        if (!rows.ok()) return rows.status();
        return copy_out(nlohmann::json(*rows).dump(), out_json_array);
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_login(ubuzima_db* db, const char* server_url, const char* username,
                                            const char* password, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!server_url) return missing("server_url");
        if (!username) return missing("username");
        if (!password) return missing("password");
        return db->db.login(server_url, username, password);
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_logout(ubuzima_db* db, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        return db->db.logout();
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_reset(ubuzima_db* db, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        return db->db.reset();
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_configure_sync(ubuzima_db* db, const char* options_json, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!options_json) return missing("options_json");
        auto options = ubuzima::detail::sync_options_from_json(options_json, ubuzima::SyncOptions{});
        if (!options.ok()) return options.status();
        db->db.set_sync_options(std::move(*options));
        return {};
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_sync(ubuzima_db* db, ubuzima_sync_report* out, ubuzima_error* err) {
    return ubuzima_db_sync_progress(db, nullptr, nullptr, out, err);
}

UBUZIMA_API ubuzima_status ubuzima_db_sync_progress(ubuzima_db* db, ubuzima_progress_fn progress, void* user_data,
                                                    ubuzima_sync_report* out, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        ubuzima::SyncProgress told;
        if (progress)
            told = [&](const ubuzima::SyncReport& so_far, std::int64_t pending, bool more) {
                const ubuzima_sync_report c = to_c(so_far);
                return progress(&c, pending, more ? 1 : 0, user_data) != 0;
            };
        auto report = db->db.sync(told);
        if (!report.ok()) return report.status();
        if (out) *out = to_c(*report);
        return {};
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_conflicts(ubuzima_db* db, char** out_json, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!out_json) return missing("out_json");
        *out_json = nullptr;
        auto list = db->db.conflicts();
        if (!list.ok()) return list.status();
        return copy_out(list->dump(), out_json);
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_rejected(ubuzima_db* db, char** out_json, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!out_json) return missing("out_json");
        *out_json = nullptr;
        auto list = db->db.rejected();
        if (!list.ok()) return list.status();
        return copy_out(list->dump(), out_json);
    });
}

UBUZIMA_API ubuzima_status ubuzima_db_pending(ubuzima_db* db, int64_t* out, ubuzima_error* err) {
    return c_api_guard(err, [&]() -> Status {
        if (!db) return missing("db");
        if (!out) return missing("out");
        auto n = db->db.pending_changes();
        if (!n.ok()) return n.status();
        *out = *n;
        return {};
    });
}

UBUZIMA_API void ubuzima_free(void* ptr) { std::free(ptr); }

}  // extern "C"
