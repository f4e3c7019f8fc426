// Ubuzima Sync — MIT licence.
// The commands of the `ubuzima` CLI: capture, listing, sync and conflict review on one device.
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>

#include "cli.hpp"
#include "ubuzima/sync/hlc.hpp"

namespace ubuzima::cli {

namespace {

using nlohmann::json;

bool need_args(const Args& args, size_t n, const char* usage) {
    if (args.size() >= n) return true;
    std::cerr << "usage: ubuzima " << usage << "\n";
    return false;
}

int print_id(const Result<std::string>& id) {
    if (!id.ok()) return fail(id.status());
    std::cout << *id << "\n";
    return 0;
}

int done(const Status& s) { return s.ok() ? 0 : fail(s); }

// Columns worth showing per table in `list`; other tables show id + scope.
const std::map<std::string, std::vector<std::string>> kColumns = {
    {"facility", {"id", "name", "facility_type", "district_id"}},
    {"needs_assessment", {"id", "facility_id", "assessment_type", "status", "visit_date"}},
    {"assessment_finding", {"id", "assessment_id", "item_id", "availability", "comment"}},
    {"need", {"id", "facility_id", "specialty_code", "priority", "status", "title"}},
    {"skill_transfer_session", {"id", "facility_id", "topic", "method", "duration_minutes", "status"}},
    {"trainee", {"id", "facility_id", "pseudonym_code", "cadre"}},
    {"session_attendance", {"id", "session_id", "trainee_id", "attendance"}},
    {"service_tally", {"id", "facility_id", "service_date", "service_type", "sex", "age_band", "patient_count"}},
    {"specialty", {"id", "name_en", "profession_category"}},
    {"instrument_item", {"id", "code", "prompt_en"}},
};

int cmd_login(Database& db, const Args& a) {
    if (a.size() > 2) {
        std::cerr << "ubuzima: the password is never a command-line argument (everyone on the machine sees those);\n"
                     "type it when asked, or give it in UBUZIMA_PASSWORD or on standard input\n";
        return 2;
    }
    if (!need_args(a, 2, "login SERVER_URL USERNAME")) return 2;
    auto password = read_password("password for " + a[1] + ": ");
    if (!password.ok()) return fail(password.status());
    if (Status s = db.login(a[0], a[1], *password); !s.ok()) return fail(s);
    std::cout << "logged in as " << a[1] << " (device " << db.node_id() << ")\n";
    return 0;
}

int cmd_logout(Database& db, const Args&) {
    Status s = db.logout();
    if (!s.ok()) return fail(s);
    std::cout << "logged out: this device's tokens are void\n";
    return 0;
}

int cmd_reset(Database& db, const Args&) {
    if (Status s = db.reset(); !s.ok()) return fail(s);
    std::cout << "reset: local data and login deleted; new device id " << db.node_id() << "\n";
    return 0;
}

int cmd_sync(Database& db, const Args&) {
    auto r = db.sync();
    if (!r.ok()) return fail(r.status());
    std::printf("synced: pushed %lld, pulled %lld rows, %lld conflicts kept, %lld rejected, %lld round trips\n",
                static_cast<long long>(r->pushed), static_cast<long long>(r->pulled),
                static_cast<long long>(r->conflicts), static_cast<long long>(r->rejected),
                static_cast<long long>(r->round_trips));
    if (r->removed > 0)
        std::printf("removed %lld rows that moved to facilities outside yours\n", static_cast<long long>(r->removed));
    return 0;
}

int cmd_status(Database& db, const Args&) {
    auto pending = db.pending_changes();
    if (!pending.ok()) return fail(pending.status());
    std::cout << "device " << db.node_id() << ": " << *pending << " change(s) waiting to sync\n";
    return 0;
}

int cmd_assess(Database& db, const Args& a) {
    if (!need_args(a, 1, "assess new|finding|submit ...")) return 2;
    if (a[0] == "new") {
        if (!need_args(a, 3, "assess new FACILITY VISIT_DATE [TYPE]")) return 2;
        // The lead assessor is the logged-in user: the library fills it in (the server checks).
        return print_id(db.insert("needs_assessment", {{"facility_id", a[1]},
                                                       {"instrument_version_id", "instv-dehs-hna-1.0.0"},
                                                       {"assessment_type", a.size() > 3 ? a[3] : "baseline"},
                                                       {"status", "draft"},
                                                       {"visit_date", a[2]},
                                                       {"started_at", sync::system_wall_ms()}}));
    }
    if (a[0] == "finding") {
        if (!need_args(a, 4, "assess finding ASSESSMENT_ID ITEM_ID AVAILABILITY [COMMENT]")) return 2;
        auto assessment = db.get("needs_assessment", a[1]);
        if (!assessment.ok()) return fail(assessment.status());
        if (!*assessment) return fail(Status(ErrorCode::NotFound, "no assessment " + a[1]));
        json fields = {{"facility_id", (**assessment)["facility_id"]},
                       {"assessment_id", a[1]},
                       {"item_id", a[2]},
                       {"availability", a[3]},
                       {"captured_at", sync::system_wall_ms()}};
        if (a.size() > 4) fields["comment"] = a[4];
        return print_id(db.insert("assessment_finding", fields));
    }
    if (a[0] == "submit") {
        if (!need_args(a, 2, "assess submit ASSESSMENT_ID")) return 2;
        return done(db.update("needs_assessment", a[1],
                              {{"status", "submitted"}, {"submitted_at", sync::system_wall_ms()}}));
    }
    std::cerr << "unknown: assess " << a[0] << "\n";
    return 2;
}

int cmd_need(Database& db, const Args& a) {
    if (!need_args(a, 5, "need FACILITY SPECIALTY PRIORITY TITLE [field=value ...]")) return 2;
    json fields = {{"facility_id", a[0]}, {"need_type", "skills_training"}, {"specialty_code", a[1]},
                   {"priority", a[2]},    {"title", a[3]},                  {"description", a[3]},
                   {"status", "identified"}};
    fields.update(parse_assignments(a, 4));
    return print_id(db.insert("need", fields));
}

int cmd_session(Database& db, const Args& a) {
    if (!need_args(a, 6, "session FACILITY DEPLOYMENT SPECIALTY METHOD MINUTES TOPIC")) return 2;
    return print_id(db.insert("skill_transfer_session",
                              {{"facility_id", a[0]},
                               {"deployment_id", a[1]},
                               {"specialty_code", a[2]},
                               {"method", a[3]},
                               {"duration_minutes", std::atoi(a[4].c_str())},
                               {"topic", a[5]},
                               {"start_at", sync::system_wall_ms()},
                               {"delivery", "in_person"},
                               {"status", "held"}}));
}

int cmd_trainee(Database& db, const Args& a) {
    if (!need_args(a, 5, "trainee FACILITY GIVEN_NAME FAMILY_NAME CADRE PSEUDONYM_CODE")) return 2;
    return print_id(db.insert("trainee", {{"facility_id", a[0]},
                                          {"given_name", a[1]},
                                          {"family_name", a[2]},
                                          {"cadre", a[3]},
                                          {"pseudonym_code", a[4]}}));
}

int cmd_attend(Database& db, const Args& a) {
    if (!need_args(a, 3, "attend SESSION_ID TRAINEE_ID present|partial|absent")) return 2;
    auto session = db.get("skill_transfer_session", a[0]);
    if (!session.ok()) return fail(session.status());
    if (!*session) return fail(Status(ErrorCode::NotFound, "no session " + a[0]));
    return print_id(db.insert("session_attendance", {{"facility_id", (**session)["facility_id"]},
                                                     {"session_id", a[0]},
                                                     {"trainee_id", a[1]},
                                                     {"attendance", a[2]}}));
}

int cmd_tally(Database& db, const Args& a) {
    if (!need_args(a, 7, "tally DEPLOYMENT FACILITY DATE SERVICE_TYPE SEX AGE_BAND COUNT")) return 2;
    return print_id(db.insert("service_tally", {{"deployment_id", a[0]},
                                                {"facility_id", a[1]},
                                                {"service_date", a[2]},
                                                {"service_type", a[3]},
                                                {"sex", a[4]},
                                                {"age_band", a[5]},
                                                {"patient_count", std::atoi(a[6].c_str())}}));
}

int cmd_set(Database& db, const Args& a) {
    if (!need_args(a, 3, "set TABLE ID field=value ...")) return 2;
    return done(db.update(a[0], a[1], parse_assignments(a, 2)));
}

int cmd_delete(Database& db, const Args& a) {
    if (!need_args(a, 2, "delete TABLE ID")) return 2;
    return done(db.remove(a[0], a[1]));
}

int cmd_list(Database& db, const Args& a) {
    if (!need_args(a, 1, "list TABLE [field=value ...]")) return 2;
    json filter = parse_assignments(a, 1);
    auto rows = db.query(a[0], filter.empty() ? json() : filter);
    if (!rows.ok()) return fail(rows.status());
    auto cols = kColumns.find(a[0]);
    print_rows(*rows, cols != kColumns.end() ? cols->second : std::vector<std::string>{"id"});
    return 0;
}

int cmd_show(Database& db, const Args& a) {
    if (!need_args(a, 2, "show TABLE ID")) return 2;
    auto row = db.get(a[0], a[1]);
    if (!row.ok()) return fail(row.status());
    if (!*row) return fail(Status(ErrorCode::NotFound, a[0] + " " + a[1] + " does not exist"));
    std::cout << (*row)->dump(2) << "\n";
    return 0;
}

int cmd_conflicts(Database& db, const Args&) {
    auto journal = db.conflicts();
    if (!journal.ok()) return fail(journal.status());
    std::vector<json> rows(journal->begin(), journal->end());
    print_rows(rows, {"table", "row_id", "field", "kept_value", "lost_value", "source"});
    return 0;
}

int cmd_rejected(Database& db, const Args&) {
    auto rejected = db.rejected();
    if (!rejected.ok()) return fail(rejected.status());
    std::vector<json> rows(rejected->begin(), rejected->end());
    print_rows(rows, {"table", "row_id", "code", "message"});
    return 0;
}

}  // namespace

void print_usage() {
    std::cout << R"(ubuzima — offline needs assessments and skill-transfer records

usage: ubuzima [--db FILE] [--ca-file PEM] [--pin sha256//...]... COMMAND [ARGS]
       (FILE defaults to $UBUZIMA_DB or ubuzima.db; --ca-file: the authorities to trust instead of
       the system's; --pin: the server's public key pin, repeat for a backup key)

  login SERVER_URL USERNAME                 provision this device (needs the link once); the password
                                            is asked for, or read from UBUZIMA_PASSWORD / stdin
  logout                                    end this device's login (the tokens are void)
  reset                                     delete local data and the login (a tablet handed on)
  sync                                      push local changes and pull the others' (any link)
  status                                    device id and changes waiting to sync
  assess new FACILITY DATE [TYPE]           start a needs assessment (prints its id)
  assess finding ASSESSMENT ITEM AVAIL [COMMENT]
                                            record a checklist item (AVAIL: observed_functional,
                                            observed_not_functional, reported_not_seen, not_available)
  assess submit ASSESSMENT                  submit: the assessment and its findings become sealed
  need FACILITY SPECIALTY PRIORITY TITLE [field=value ...]
  session FACILITY DEPLOYMENT SPECIALTY METHOD MINUTES TOPIC
  trainee FACILITY GIVEN FAMILY CADRE PSEUDONYM
  attend SESSION TRAINEE present|partial|absent
  tally DEPLOYMENT FACILITY DATE SERVICE_TYPE SEX AGE_BAND COUNT
  set TABLE ID field=value ...              edit fields of a row
  delete TABLE ID
  list TABLE [field=value ...]              list rows (e.g. list need facility_id=fac-gisenyi)
  show TABLE ID
  conflicts                                 this device's writes that lost a concurrent edit
  rejected                                  changes the server refused (kept, never retried)
)";
}

int run_command(Database& db, const std::string& command, const Args& args) {
    static const std::map<std::string, std::function<int(Database&, const Args&)>> kCommands = {
        {"login", cmd_login},     {"logout", cmd_logout},   {"reset", cmd_reset},       {"sync", cmd_sync},       {"status", cmd_status},     {"assess", cmd_assess},
        {"need", cmd_need},       {"session", cmd_session}, {"trainee", cmd_trainee},   {"attend", cmd_attend},
        {"tally", cmd_tally},     {"set", cmd_set},         {"delete", cmd_delete},     {"list", cmd_list},
        {"show", cmd_show},       {"conflicts", cmd_conflicts}, {"rejected", cmd_rejected}};
    auto it = kCommands.find(command);
    if (it == kCommands.end()) {
        std::cerr << "unknown command '" << command << "'\n";
        print_usage();
        return 2;
    }
    return it->second(db, args);
}

}  // namespace ubuzima::cli
