/* Ubuzima Sync — MIT licence.
   The C API (C99; also the ABI for the Android NDK/JNI and Swift): an offline-first device database. */
#ifndef UBUZIMA_H
#define UBUZIMA_H

#include <stdint.h>

#if defined(_WIN32)
#  if defined(UBUZIMA_BUILDING_C_API)
#    define UBUZIMA_API __declspec(dllexport)
#  else
#    define UBUZIMA_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define UBUZIMA_API __attribute__((visibility("default")))
#else
#  define UBUZIMA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Conventions
   - Every fallible function returns a ubuzima_status (UBUZIMA_OK = 0) and takes a trailing
     `ubuzima_error* err` that may be NULL; on failure it receives the code and a message
     (NUL-terminated, truncated to 255 bytes); on success err->code is UBUZIMA_OK and the
     message empty.
   - Strings in are NUL-terminated UTF-8; JSON arguments are UTF-8 JSON text.
   - Strings out are allocated by the library and freed by the caller with ubuzima_free().
   - No function throws or aborts on bad input; NULL required arguments give
     UBUZIMA_INVALID_ARGUMENT.
   - Thread-safety: a ubuzima_db may be used from several threads at once (an internal mutex
     serialises the connection; a sync does its network I/O without holding it). */

/** Status codes; the numbers equal ubuzima::ErrorCode (sync/include/ubuzima/sync/error_codes.def)
    and never change. */
typedef enum ubuzima_status {
    UBUZIMA_OK = 0,
    UBUZIMA_BAD_REQUEST = 1,
    UBUZIMA_INVALID_JSON = 2,
    UBUZIMA_UNAUTHORIZED = 3,
    UBUZIMA_TOKEN_EXPIRED = 4,
    UBUZIMA_INVALID_CREDENTIALS = 5,
    UBUZIMA_FORBIDDEN = 6,
    UBUZIMA_NOT_FOUND = 7,
    UBUZIMA_CONFLICT = 8,
    UBUZIMA_TOO_LARGE = 9,
    UBUZIMA_UNSUPPORTED_MEDIA = 10,
    UBUZIMA_INVALID_VALUE = 11,
    UBUZIMA_RATE_LIMITED = 12,
    UBUZIMA_INTERNAL = 13,
    UBUZIMA_UNAVAILABLE = 14,
    UBUZIMA_METHOD_NOT_ALLOWED = 15,
    UBUZIMA_LENGTH_REQUIRED = 16,
    UBUZIMA_REVOKED = 17,          /**< the device was revoked or the user disabled: log in again (or ask an admin) */
    UBUZIMA_UNKNOWN_TABLE = 20,
    UBUZIMA_UNKNOWN_FIELD = 21,
    UBUZIMA_READ_ONLY = 22,
    UBUZIMA_SEALED = 23,
    UBUZIMA_OUT_OF_SCOPE = 24,
    UBUZIMA_CLOCK_SKEW = 25,
    UBUZIMA_APPEND_ONLY = 26,
    UBUZIMA_PROTOCOL_MISMATCH = 27,
    UBUZIMA_WRONG_NODE = 28,       /**< a change carried another device's node id */
    UBUZIMA_IO_ERROR = 30,
    UBUZIMA_DISK_FULL = 31,
    UBUZIMA_CORRUPT = 32,
    UBUZIMA_BUSY = 33,
    UBUZIMA_NETWORK = 40,
    UBUZIMA_TIMEOUT = 41,
    UBUZIMA_NOT_LOGGED_IN = 42,
    UBUZIMA_INVALID_ARGUMENT = 43,
    UBUZIMA_CANCELLED = 44
} ubuzima_status;

/** Error details. Plain data, no allocation; one per call site, so it is thread-safe. */
typedef struct ubuzima_error {
    int32_t code;      /**< a ubuzima_status value */
    char message[256]; /**< human-readable, NUL-terminated */
} ubuzima_error;

/** What one ubuzima_db_sync() did. */
typedef struct ubuzima_sync_report {
    int64_t pushed;      /**< local changes the server accepted */
    int64_t pulled;      /**< remote row changes received */
    int64_t conflicts;   /**< entries added to the conflict journal */
    int64_t rejected;    /**< local changes the server refused (see ubuzima_db_rejected) */
    int64_t round_trips; /**< HTTP round trips */
    int64_t removed;     /**< rows dropped: they moved to a facility outside the user's */
} ubuzima_sync_report;

/** An open device database (opaque). Created by ubuzima_db_open, destroyed by ubuzima_db_close. */
typedef struct ubuzima_db ubuzima_db;

/** @return the library version ("0.1.0"), a static string (do not free). Thread-safe. */
UBUZIMA_API const char* ubuzima_version(void);

/** Opens or creates the database file (WAL, synchronous=FULL), creating/upgrading its tables.
    @param path SQLite file path
    @param out  receives the handle; close it with ubuzima_db_close
    @return UBUZIMA_OK, UBUZIMA_IO_ERROR, UBUZIMA_CORRUPT, UBUZIMA_DISK_FULL, UBUZIMA_BUSY */
UBUZIMA_API ubuzima_status ubuzima_db_open(const char* path, ubuzima_db** out, ubuzima_error* err);

/** Closes the database and frees the handle. NULL is a harmless no-op. No other call may be in
    progress on the handle. */
UBUZIMA_API void ubuzima_db_close(ubuzima_db* db);

/** Inserts a row with a new UUIDv7 id.
    @param json   JSON object of field values (every required field)
    @param out_id receives the new id (free with ubuzima_free); may be NULL
    @return UBUZIMA_OK, UNKNOWN_TABLE, UNKNOWN_FIELD, INVALID_VALUE, INVALID_JSON, READ_ONLY, SEALED */
UBUZIMA_API ubuzima_status ubuzima_db_insert(ubuzima_db* db, const char* table, const char* json, char** out_id,
                                             ubuzima_error* err);

/** Inserts the row with the caller's id, or updates the given fields when it exists.
    @return as ubuzima_db_insert, plus APPEND_ONLY */
UBUZIMA_API ubuzima_status ubuzima_db_put(ubuzima_db* db, const char* table, const char* id, const char* json,
                                          ubuzima_error* err);

/** Updates only the given fields of an existing row.
    @return as ubuzima_db_put, plus NOT_FOUND */
UBUZIMA_API ubuzima_status ubuzima_db_update(ubuzima_db* db, const char* table, const char* id, const char* json,
                                             ubuzima_error* err);

/** Deletes a row (a synced tombstone).
    @return UBUZIMA_OK, NOT_FOUND, READ_ONLY, APPEND_ONLY (void it instead), SEALED */
UBUZIMA_API ubuzima_status ubuzima_db_delete(ubuzima_db* db, const char* table, const char* id, ubuzima_error* err);

/** Reads one row as a JSON object {"id":…, field: value, …}.
    @param out_json receives the JSON (free with ubuzima_free), or NULL when the row does not
                    exist or is deleted (still UBUZIMA_OK)
    @return UBUZIMA_OK, UNKNOWN_TABLE */
UBUZIMA_API ubuzima_status ubuzima_db_get(ubuzima_db* db, const char* table, const char* id, char** out_json,
                                          ubuzima_error* err);

/** Rows whose fields equal every entry of a filter, ordered by id, as a JSON array.
    @param filter_json JSON object field → value, or NULL for every row
    @param out_json_array receives the JSON array (free with ubuzima_free)
    @return UBUZIMA_OK, UNKNOWN_TABLE, UNKNOWN_FIELD, INVALID_JSON, INVALID_ARGUMENT */
UBUZIMA_API ubuzima_status ubuzima_db_query(ubuzima_db* db, const char* table, const char* filter_json,
                                            char** out_json_array, ubuzima_error* err);

/** Logs in to the server and stores the URL, username and tokens in the database.
    Blocks for the network round trip.
    @return UBUZIMA_OK, INVALID_CREDENTIALS, NETWORK, TIMEOUT, server error codes */
UBUZIMA_API ubuzima_status ubuzima_db_login(ubuzima_db* db, const char* server_url, const char* username,
                                            const char* password, ubuzima_error* err);

/** Ends this device's login on the server (every token of it is void) and forgets the tokens
    locally, even when the server cannot be reached (then that error is returned). Data stays.
    @return UBUZIMA_OK, NETWORK, TIMEOUT */
UBUZIMA_API ubuzima_status ubuzima_db_logout(ubuzima_db* db, ubuzima_error* err);

/** Deletes everything the device holds but reference data -- unsynced changes included -- and
    the login, and makes it a new device (new node id): for a tablet handed to someone else.
    (Logging in as another user does this by itself when nothing is unsynced, and is refused with
    UBUZIMA_CONFLICT otherwise.)
    @return UBUZIMA_OK, IO_ERROR, DISK_FULL */
UBUZIMA_API ubuzima_status ubuzima_db_reset(ubuzima_db* db, ubuzima_error* err);

/** Configures sync from a JSON object; keys left out keep their defaults:
      {"server_url": "https://…",                  (default: the URL of the last login)
       "connect_timeout_ms": 10000, "timeout_ms": 60000,
       "batch_size": 500, "page_limit": 1000, "max_round_trips": 1000,
       "retry": {"max_attempts": 5, "initial_backoff_ms": 500, "max_backoff_ms": 30000,
                 "jitter": 0.5},
       "ca_file": "/path/ca.pem",                   (certificate authorities to trust; default: the system's)
       "ca_pem": "-----BEGIN CERTIFICATE-----…",   (the same as PEM text: an Android app has no CA path)
       "pins": "sha256//…;sha256//…"}               (or an array; public-key pins, current key + backup)
    Certificates are always verified; plain http:// is sent only to this machine (loopback).
    Every call starts again from the defaults. Not while a ubuzima_db_sync() of this db runs on
    another thread (the next sync uses the new options).
    @return UBUZIMA_OK, INVALID_JSON, INVALID_ARGUMENT (an unknown key, a wrong type or a value
            out of range, named in err; nothing is changed then) */
UBUZIMA_API ubuzima_status ubuzima_db_configure_sync(ubuzima_db* db, const char* options_json, ubuzima_error* err);

/** Pushes pending changes and pulls remote ones until both are done. Blocks; call it from a
    background thread. Local reads and writes from other threads proceed meanwhile.
    @param out receives the report; may be NULL
    @return UBUZIMA_OK, NOT_LOGGED_IN, UNAUTHORIZED, NETWORK, TIMEOUT, server error codes */
UBUZIMA_API ubuzima_status ubuzima_db_sync(ubuzima_db* db, ubuzima_sync_report* out, ubuzima_error* err);

/** Told after every round trip of ubuzima_db_sync_progress(): the report so far, the local
    changes still to push, and whether the server has more to pull (0/1). Return nonzero to go
    on, 0 to stop between two round trips. Runs on the syncing thread; may read and write the db. */
typedef int (*ubuzima_progress_fn)(const ubuzima_sync_report* so_far, int64_t pending, int more_to_pull,
                                   void* user_data);

/** ubuzima_db_sync() with a progress callback (NULL = none) that may stop it. What was applied
    before stopping stays applied; the next sync resumes from there.
    @return as ubuzima_db_sync(), or UBUZIMA_CANCELLED when the callback stopped it */
UBUZIMA_API ubuzima_status ubuzima_db_sync_progress(ubuzima_db* db, ubuzima_progress_fn progress, void* user_data,
                                                    ubuzima_sync_report* out, ubuzima_error* err);

/** The conflict journal as a JSON array (free with ubuzima_free). */
UBUZIMA_API ubuzima_status ubuzima_db_conflicts(ubuzima_db* db, char** out_json, ubuzima_error* err);

/** The changes the server refused, as a JSON array (free with ubuzima_free). */
UBUZIMA_API ubuzima_status ubuzima_db_rejected(ubuzima_db* db, char** out_json, ubuzima_error* err);

/** Number of local changes not yet accepted by the server. */
UBUZIMA_API ubuzima_status ubuzima_db_pending(ubuzima_db* db, int64_t* out, ubuzima_error* err);

/** Frees a string returned by this library. NULL is a no-op. */
UBUZIMA_API void ubuzima_free(void* ptr);

#ifdef __cplusplus
}
#endif

#endif /* UBUZIMA_H */
