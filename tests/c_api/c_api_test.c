/* Ubuzima Sync — MIT licence.
 * The C API driven from plain C99: two devices sync through a real server on 127.0.0.1. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ubuzima.h"

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        ++g_checks;                                                          \
        if (!(cond)) {                                                       \
            ++g_failures;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

#define CHECK_OK(call)                                                                      \
    do {                                                                                    \
        ubuzima_error err_;                                                                 \
        memset(&err_, 0, sizeof err_);                                                      \
        ubuzima_status st_ = (call);                                                        \
        ++g_checks;                                                                         \
        if (st_ != UBUZIMA_OK) {                                                            \
            ++g_failures;                                                                   \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, (int)st_); \
        }                                                                                   \
    } while (0)

static pid_t start_server(const char* data_dir, char* url, size_t url_size) {
    int out[2];
    if (pipe(out) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        setenv("UBUZIMA_ADMIN_PASSWORD", "c-api-secret", 1);
        execl(UBUZIMA_SERVER_BIN, UBUZIMA_SERVER_BIN, "--data", data_dir, "--listen", "127.0.0.1:0",
              "--pbkdf2-iterations", "1000", (char*)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[512];
    const char* marker = "listening on ";
    while (fgets(line, sizeof line, f)) {
        char* at = strstr(line, marker);
        if (!at) continue;
        at += strlen(marker);
        at[strcspn(at, "\r\n")] = '\0';
        snprintf(url, url_size, "%s", at);
        return pid; /* the pipe stays open: the server writes little after start-up */
    }
    fclose(f);
    return -1;
}

/* Progress callback: counts its calls in *user_data and stops after the first. */
static int stop_after_first(const ubuzima_sync_report* so_far, int64_t pending, int more, void* user_data) {
    int* calls = (int*)user_data;
    ++*calls;
    (void)pending;
    (void)more;
    return so_far->round_trips < 1;
}

int main(void) {
    char dir_template[] = "/tmp/ubuzima-c-api-XXXXXX";
    char* dir = mkdtemp(dir_template);
    if (!dir) return 2;
    char server_dir[600], db_a_path[600], db_b_path[600], url[256];
    snprintf(server_dir, sizeof server_dir, "%s/server", dir);
    snprintf(db_a_path, sizeof db_a_path, "%s/a.db", dir);
    snprintf(db_b_path, sizeof db_b_path, "%s/b.db", dir);

    pid_t server = start_server(server_dir, url, sizeof url);
    if (server <= 0) {
        fprintf(stderr, "server did not start\n");
        return 2;
    }

    CHECK(ubuzima_version() != NULL);

    ubuzima_db* a = NULL;
    ubuzima_db* b = NULL;
    ubuzima_error err;
    CHECK_OK(ubuzima_db_open(db_a_path, &a, &err));
    CHECK_OK(ubuzima_db_open(db_b_path, &b, &err));
    CHECK(a != NULL && b != NULL);

    /* Bad input is an error code and a message, never a crash. */
    char* bad_id = NULL;
    CHECK(ubuzima_db_insert(a, "no_such_table", "{}", &bad_id, &err) != UBUZIMA_OK);
    CHECK(strlen(err.message) > 0);
    CHECK(ubuzima_db_insert(a, "need", "{not json", &bad_id, &err) != UBUZIMA_OK);
    CHECK(ubuzima_db_insert(NULL, "need", "{}", &bad_id, &err) == UBUZIMA_INVALID_ARGUMENT);

    /* Offline capture on device A. */
    char* id = NULL;
    CHECK_OK(ubuzima_db_insert(a, "need",
                               "{\"facility_id\":\"fac-butaro\",\"need_type\":\"skills_training\","
                               "\"specialty_code\":\"anaesthesiology\",\"title\":\"Anaesthesia cover\","
                               "\"description\":\"No anaesthetist for C-sections at night\","
                               "\"priority\":\"critical\",\"status\":\"identified\"}",
                               &id, &err));
    CHECK(id != NULL);
    int64_t pending = 0;
    CHECK_OK(ubuzima_db_pending(a, &pending, &err));
    CHECK(pending == 1);

    /* A phone app tunes sync for a slow link; a mistake is refused by name and changes nothing. */
    CHECK(ubuzima_db_configure_sync(a, "{\"batch_size\": 0}", &err) == UBUZIMA_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "batch_size") != NULL);
    CHECK(ubuzima_db_configure_sync(a, "{\"retry\": {\"tries\": 2}}", &err) == UBUZIMA_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "retry.tries") != NULL);
    CHECK(ubuzima_db_configure_sync(a, "not json", &err) == UBUZIMA_INVALID_JSON);
    CHECK(ubuzima_db_configure_sync(a, NULL, &err) == UBUZIMA_INVALID_ARGUMENT);
    CHECK_OK(ubuzima_db_configure_sync(a,
                                       "{\"connect_timeout_ms\": 5000, \"timeout_ms\": 20000, \"batch_size\": 1, "
                                       "\"page_limit\": 50, \"retry\": {\"max_attempts\": 2, "
                                       "\"initial_backoff_ms\": 10, \"max_backoff_ms\": 100}}",
                                       &err));

    /* Link appears: both devices log in and sync. */
    CHECK_OK(ubuzima_db_login(a, url, "admin", "c-api-secret", &err));
    CHECK_OK(ubuzima_db_login(b, url, "admin", "c-api-secret", &err));
    ubuzima_sync_report report;
    memset(&report, 0, sizeof report);
    CHECK_OK(ubuzima_db_sync(a, &report, &err));
    CHECK(report.pushed == 1);
    CHECK_OK(ubuzima_db_pending(a, &pending, &err));
    CHECK(pending == 0);
    CHECK_OK(ubuzima_db_configure_sync(b, "{\"page_limit\": 40}", &err));
    /* The app is sent to the background after the first page: the sync stops, keeping that page. */
    int calls = 0;
    CHECK(ubuzima_db_sync_progress(b, stop_after_first, &calls, &report, &err) == UBUZIMA_CANCELLED);
    CHECK(calls == 1);
    CHECK(strstr(err.message, "progress callback") != NULL);
    CHECK_OK(ubuzima_db_sync(b, &report, &err));
    CHECK(report.pulled >= 1);
    CHECK(report.round_trips > 2); /* 121 reference rows and the need, 40 per page */
    CHECK(report.removed == 0);

    char* json = NULL;
    CHECK_OK(ubuzima_db_get(b, "need", id ? id : "", &json, &err));
    CHECK(json != NULL && strstr(json, "Anaesthesia cover") != NULL);
    ubuzima_free(json);
    json = NULL;

    /* The reference data reached the device through the feed. */
    CHECK_OK(ubuzima_db_query(b, "facility", "{\"id\":\"fac-gisenyi\"}", &json, &err));
    CHECK(json != NULL && strstr(json, "Gisenyi") != NULL);
    ubuzima_free(json);

    /* An edit on B comes back to A. */
    CHECK_OK(ubuzima_db_update(b, "need", id ? id : "", "{\"priority\":\"high\"}", &err));
    CHECK_OK(ubuzima_db_sync(b, NULL, &err));
    CHECK_OK(ubuzima_db_sync(a, NULL, &err));
    json = NULL;
    CHECK_OK(ubuzima_db_get(a, "need", id ? id : "", &json, &err));
    CHECK(json != NULL && strstr(json, "\"priority\":\"high\"") != NULL);
    ubuzima_free(json);

    /* A missing row is not an error: out_json is NULL. */
    json = (char*)1;
    CHECK_OK(ubuzima_db_get(a, "need", "no-such-id", &json, &err));
    CHECK(json == NULL);

    ubuzima_free(id);
    ubuzima_db_close(a);
    ubuzima_db_close(b);
    ubuzima_db_close(NULL);

    kill(server, SIGTERM);
    int status = 0;
    waitpid(server, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);

    printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
    return g_failures == 0 ? 0 : 1;
}
