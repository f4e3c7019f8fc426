// Ubuzima Sync — MIT licence.
// Shared bench helpers: record generator, peak RSS, JSON lines and setup HTTP calls.
#include "common.hpp"

#include <curl/curl.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace ubuzima::bench {

using nlohmann::json;

namespace {

const char* const kWords[] = {
    "oxygen",     "concentrator", "theatre",   "sterile",   "neonatal",  "ward",        "broken",
    "since",      "March",        "staff",     "trained",   "pump",      "infusion",    "missing",
    "generator",  "fuel",         "shortage",  "anaesthesia", "machine", "maintenance", "requested",
    "district",   "hospital",     "referral",  "delayed",   "patients",  "transferred", "Kigali",
    "protocol",   "outdated",     "supervisor", "nurse",    "midwife",   "surgeon",     "power",
    "cuts",       "weekly",       "water",     "supply",    "intermittent", "ultrasound", "probe",
    "replaced",   "calibration",  "needed",    "laboratory", "reagents", "stock",       "out",
    "functional", "observed",     "reported",  "partially", "repair",    "vendor",      "quote"};
constexpr std::uint64_t kWordCount = sizeof kWords / sizeof kWords[0];

// splitmix64: a deterministic stream per record, identical on every run and machine.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::string sentence(std::uint64_t& seed, int words) {
    std::string out;
    for (int i = 0; i < words; ++i) {
        seed = mix(seed);
        if (i) out += ' ';
        out += kWords[seed % kWordCount];
    }
    out += '.';
    return out;
}

template <std::size_t N>
const char* pick(std::uint64_t& seed, const char* const (&options)[N]) {
    seed = mix(seed);
    return options[seed % N];
}

const char* const kAvailability[] = {"observed_functional", "observed_not_functional", "reported_not_seen",
                                     "not_available"};
const char* const kItems[] = {"item-amn-power", "item-amn-water", "item-amn-privacy", "item-amn-sanitation",
                              "item-amn-comms"};
const char* const kNeedTypes[] = {"skills_training", "equipment_repair_maintenance", "specialist_clinical_service",
                                  "medicines_supplies"};
const char* const kPriorities[] = {"critical", "high", "medium", "low"};

std::string make_id(const std::string& prefix, std::int64_t index) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s-%012lld", prefix.c_str(), static_cast<long long>(index));
    return buf;
}

}  // namespace

Record make_record(std::int64_t index, const std::string& facility, const std::string& id_prefix) {
    std::uint64_t seed = mix(static_cast<std::uint64_t>(index) * 7919 + 17);
    const std::int64_t assessment = index / 50 * 50;  // the assessment this record's findings belong to
    const std::int64_t captured = 1767225600000 + index * 60000;
    Record r;
    r.id = make_id(id_prefix, index);
    if (index % 50 == 0) {
        r.table = "needs_assessment";
        r.fields = {{"facility_id", facility},
                    {"instrument_version_id", "instv-dehs-hna-1.0.0"},
                    {"assessment_type", "baseline"},
                    {"status", "draft"},
                    {"visit_date", "2026-11-20"},
                    {"started_at", captured},
                    {"respondent_role", "clinical_director"},
                    {"respondent_name", "Dr. " + sentence(seed, 2)},
                    {"latitude", -1.7 + static_cast<double>(index % 97) / 1000.0},
                    {"longitude", 29.25 + static_cast<double>(index % 89) / 1000.0},
                    {"gps_accuracy_m", 12.5},
                    {"summary", sentence(seed, 60)}};
    } else if (index % 10 == 3) {
        r.table = "need";
        r.fields = {{"facility_id", facility},
                    {"department_id", "dept-" + std::to_string(index % 7)},
                    {"source_assessment_id", make_id(id_prefix, assessment)},
                    {"need_type", pick(seed, kNeedTypes)},
                    {"specialty_code", "anaesthesiology"},
                    {"title", sentence(seed, 6)},
                    {"description", sentence(seed, 70)},
                    {"priority", pick(seed, kPriorities)},
                    {"priority_rank", index % 5 + 1},
                    {"requested_mode", "in_person"},
                    {"requested_duration_weeks", 2 + index % 6},
                    {"earliest_start", "2027-01-15"},
                    {"trainees_expected", 4 + index % 9},
                    {"status", "identified"}};
    } else if (index % 10 == 7) {
        // A status step of a need (an assessor's table, as the rest of the mix; sessions are the
        // focal points' since write_roles, and replaced them here at about the same size).
        r.table = "need_status_event";
        r.fields = {{"facility_id", facility},
                    {"need_id", make_id(id_prefix, index / 10 * 10 + 3)},
                    {"from_status", "identified"},
                    {"to_status", "open"},
                    {"at_ts", captured},
                    {"note", sentence(seed, 40)}};
    } else {
        r.table = "assessment_finding";
        r.fields = {{"facility_id", facility},
                    {"assessment_id", make_id(id_prefix, assessment)},
                    {"item_id", pick(seed, kItems)},
                    {"department_id", "dept-" + std::to_string(index % 7)},
                    {"availability", pick(seed, kAvailability)},
                    {"value_int", static_cast<std::int64_t>(mix(seed) % 40)},
                    {"value_codes", json::array({"c" + std::to_string(index % 11), "c" + std::to_string(index % 3)})},
                    {"comment", sentence(seed, 70)},
                    {"captured_at", captured}};
    }
    return r;
}

long peak_rss_kb(int pid) {
    std::ifstream in(pid ? "/proc/" + std::to_string(pid) + "/status" : std::string("/proc/self/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

void emit(const json& result) {
    std::printf("%s\n", result.dump().c_str());
    std::fflush(stdout);
}

namespace {

extern "C" size_t collect(char* data, size_t size, size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
}

struct CurlDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

namespace {
std::string g_ca_file;  // set once at start (set_ca_file), read by every setup call
}  // namespace

void set_ca_file(const std::string& path) { g_ca_file = path; }

SimpleResponse http_post(const std::string& url, const std::string& body, const std::string& bearer) {
    std::unique_ptr<CURL, CurlDeleter> h(curl_easy_init());
    if (!h) throw std::runtime_error("curl_easy_init failed");
    std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, "Content-Type: application/json"));
    if (!bearer.empty()) headers.reset(curl_slist_append(headers.release(), ("Authorization: Bearer " + bearer).c_str()));
    SimpleResponse out;
    curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h.get(), CURLOPT_TIMEOUT, 120L);
    if (!g_ca_file.empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, g_ca_file.c_str());
    const CURLcode rc = curl_easy_perform(h.get());
    if (rc != CURLE_OK) throw std::runtime_error("POST " + url + ": " + curl_easy_strerror(rc));
    curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &out.status);
    return out;
}

std::string admin_token(const std::string& url, const std::string& admin_password) {
    const SimpleResponse r = http_post(url + "/v1/auth/login",
                                       json{{"username", "admin"}, {"password", admin_password}, {"device_id", "bench-admin"}}.dump());
    if (r.status != 200) throw std::runtime_error("admin login failed: " + r.body);
    return json::parse(r.body).at("access_token").get<std::string>();
}

void ensure_user(const std::string& url, const std::string& token, const std::string& username,
                 const std::string& password, const std::string& role, const std::vector<std::string>& facilities) {
    const SimpleResponse r = http_post(url + "/v1/admin/users",
                                       json{{"username", username}, {"password", password}, {"role", role},
                                            {"facilities", facilities}}.dump(),
                                       token);
    if (r.status != 201 && r.status != 409) throw std::runtime_error("creating " + username + " failed: " + r.body);
}

}  // namespace ubuzima::bench
