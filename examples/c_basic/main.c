/* Ubuzima Sync — MIT licence.
 * Minimal C app on ubuzima.h: record a need offline, then sync when a server is given.
 * usage: ubuzima_c_example DB_FILE [SERVER_URL USERNAME PASSWORD] */
#include <stdio.h>

#include "ubuzima.h"

static int report(const char* what, ubuzima_status st, const ubuzima_error* err) {
    if (st == UBUZIMA_OK) return 0;
    fprintf(stderr, "%s failed (%d): %s\n", what, (int)st, err->message);
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: %s DB_FILE [SERVER_URL USERNAME PASSWORD]\n", argv[0]);
        return 2;
    }
    ubuzima_error err;
    ubuzima_db* db = NULL;
    if (report("open", ubuzima_db_open(argv[1], &db, &err), &err)) return 1;
    printf("ubuzima %s\n", ubuzima_version());

    char* id = NULL;
    const char* need =
        "{\"facility_id\":\"fac-kibungo\",\"need_type\":\"specialist_clinical_service\","
        "\"specialty_code\":\"obstetrics_gynaecology\",\"title\":\"Obstetrician cover\","
        "\"description\":\"2 specialists for a need of 11\",\"priority\":\"critical\",\"status\":\"identified\"}";
    int failed = report("insert", ubuzima_db_insert(db, "need", need, &id, &err), &err);
    if (!failed) printf("recorded need %s offline\n", id);

    if (!failed && argc == 5) {
        failed = report("login", ubuzima_db_login(db, argv[2], argv[3], argv[4], &err), &err);
        ubuzima_sync_report sync;
        if (!failed) failed = report("sync", ubuzima_db_sync(db, &sync, &err), &err);
        if (!failed)
            printf("synced: pushed %lld, pulled %lld rows in %lld round trip(s)\n", (long long)sync.pushed,
                   (long long)sync.pulled, (long long)sync.round_trips);
    }
    char* rows = NULL;
    if (!failed) failed = report("query", ubuzima_db_query(db, "need", NULL, &rows, &err), &err);
    if (!failed) printf("needs on this device: %s\n", rows);
    ubuzima_free(rows);
    ubuzima_free(id);
    ubuzima_db_close(db);
    return failed;
}
