// Ubuzima Sync — MIT licence.
// The coordinators' indicators (server/src/indicators/): SARA readiness on the worked example
// of docs/INDICATORS.md, needs and patients served on hand-computed data, and the route's
// scoping (a focal point gets their own hospital's figures only) through a real store.
#include <catch2/catch.hpp>

#include "indicators/needs_services.hpp"
#include "indicators/readiness.hpp"
#include "server_test_support.hpp"

using namespace ubuzima;
using namespace ubuzima::server;
using namespace ubuzima::server::test;
using nlohmann::json;

namespace {

void add(IndicatorData& data, const std::string& table, const std::string& id, json fields) {
    Record r;
    r.id = id;
    for (auto& [k, v] : fields.items()) r.values[k] = v;
    data.mutable_of(table).push_back(std::move(r));
}

/// The worked example of docs/INDICATORS.md: one hospital, a baseline and a follow-up.
IndicatorData worked_example() {
    IndicatorData d;
    const std::vector<std::pair<std::string, std::vector<std::string>>> domains = {
        {"gsr_basic_amenities", {"A1", "A2", "A3", "A4"}},
        {"gsr_basic_equipment", {"E1", "E2", "E3"}},
        {"gsr_standard_precautions", {"P1", "P2"}},
        {"gsr_diagnostics", {"D1", "D2"}},
        {"gsr_essential_medicines", {"M1", "M2", "M3", "M4"}}};
    for (const auto& [domain, items] : domains) {
        add(d, "instrument_section", "sec-" + domain, {{"version_id", "v1"}, {"domain", domain}});
        int order = 0;
        for (const std::string& code : items)
            add(d, "instrument_item", "item-" + code,
                {{"section_id", "sec-" + domain}, {"code", code}, {"counts_toward_index", true}, {"sort_order", ++order}});
    }
    // Not a tracer item: never counted.
    add(d, "instrument_item", "item-BEDS", {{"section_id", "sec-gsr_basic_amenities"}, {"code", "BEDS"}, {"counts_toward_index", false}});
    add(d, "item_option", "opt-of", {{"option_set_code", "availability"}, {"code", "observed_functional"}, {"scores_as_present", true}});
    add(d, "item_option", "opt-onf", {{"option_set_code", "availability"}, {"code", "observed_not_functional"}, {"scores_as_present", false}});

    add(d, "needs_assessment", "as-base",
        {{"facility_id", "fac-a"}, {"instrument_version_id", "v1"}, {"assessment_type", "baseline"}, {"status", "submitted"},
         {"visit_date", "2025-03-10"}});
    add(d, "needs_assessment", "as-follow",
        {{"facility_id", "fac-a"}, {"instrument_version_id", "v1"}, {"assessment_type", "follow_up"}, {"status", "validated"},
         {"visit_date", "2026-03-10"}});
    add(d, "needs_assessment", "as-draft",
        {{"facility_id", "fac-a"}, {"instrument_version_id", "v1"}, {"assessment_type", "follow_up"}, {"status", "draft"},
         {"visit_date", "2026-06-01"}});
    int n = 0;
    auto finding = [&](const std::string& assessment, const std::string& item, const std::string& availability,
                       const std::string& department = "") {
        json f{{"facility_id", "fac-a"}, {"assessment_id", assessment}, {"item_id", "item-" + item}, {"availability", availability}};
        if (!department.empty()) f["department_id"] = department;
        add(d, "assessment_finding", "f" + std::to_string(++n), f);
    };
    // Baseline
    finding("as-base", "A1", "observed_functional");
    finding("as-base", "A2", "observed_not_functional");
    finding("as-base", "A3", "not_applicable");
    // A4: no finding (unanswered)
    finding("as-base", "E1", "not_available", "dept-x");  // found per department: one has it
    finding("as-base", "E1", "observed_functional", "dept-y");
    finding("as-base", "E2", "observed_functional");
    finding("as-base", "E3", "reported_not_seen", "dept-x");
    finding("as-base", "E3", "not_applicable", "dept-y");
    finding("as-base", "P1", "observed_functional");
    finding("as-base", "P2", "observed_functional");
    finding("as-base", "D1", "not_assessed");
    finding("as-base", "D2", "not_available");
    for (const char* m : {"M1", "M2", "M3"}) finding("as-base", m, "observed_functional");
    finding("as-base", "M4", "not_available");
    finding("as-base", "BEDS", "observed_functional");
    // Follow-up
    for (const char* i : {"A1", "A2", "A4", "E1", "E2", "E3", "P1", "D1", "D2", "M1", "M2", "M3", "M4"})
        finding("as-follow", i, "observed_functional");
    finding("as-follow", "A3", "not_applicable");
    finding("as-follow", "P2", "not_available");
    // The draft would score 0 everywhere if it were counted.
    finding("as-draft", "A1", "not_available");
    return d;
}

}  // namespace

TEST_CASE("SARA readiness: domain scores, completeness and the index on the worked example", "[server][indicators]") {
    const std::vector<AssessmentReadiness> r = compute_readiness(worked_example());
    REQUIRE(r.size() == 2);  // the draft is not counted
    const AssessmentReadiness& base = r[0];
    CHECK(base.assessment_id == "as-base");
    REQUIRE(base.domains.size() == 5);
    const DomainScore& amenities = base.domains[0];
    CHECK(amenities.domain == "gsr_basic_amenities");
    CHECK(amenities.items == 4);
    CHECK(amenities.applicable == 3);
    CHECK(amenities.present == 1);
    CHECK(amenities.answered == 2);
    CHECK(*amenities.score == Approx(100.0 / 3));
    CHECK(*amenities.completeness == Approx(200.0 / 3));
    CHECK(amenities.missing == std::vector<std::string>{"A2", "A4"});
    CHECK(*base.domains[1].score == Approx(200.0 / 3));  // E1 present in one department, E3 not
    CHECK(base.domains[1].applicable == 3);
    CHECK(*base.domains[2].score == Approx(100));
    CHECK(*base.domains[3].score == Approx(0));
    CHECK(*base.domains[3].completeness == Approx(50));  // D1 not assessed
    CHECK(*base.domains[4].score == Approx(75));
    CHECK(base.general_domains_scored == 5);
    CHECK(*base.gsri == Approx(55));

    const AssessmentReadiness& follow = r[1];
    CHECK(*follow.gsri == Approx(90));
    CHECK(*follow.domains[2].score == Approx(50));

    const json j = readiness_json(r);
    REQUIRE(j["facilities"].size() == 1);
    const json& fac = j["facilities"][0];
    CHECK(fac["baseline"] == "as-base");
    CHECK(fac["follow_up"] == "as-follow");
    CHECK(fac["change"]["gsri"].get<double>() == Approx(35));
    CHECK(fac["change"]["domains"]["gsr_standard_precautions"].get<double>() == Approx(-50));
}

TEST_CASE("SARA readiness: a domain with no applicable item has no score and leaves the mean", "[server][indicators]") {
    IndicatorData d = worked_example();
    for (Record& f : d.mutable_of("assessment_finding"))
        if (f.text("assessment_id") == "as-base" && (f.text("item_id") == "item-D1" || f.text("item_id") == "item-D2"))
            f.values["availability"] = "not_applicable";
    const auto r = compute_readiness(d);
    CHECK_FALSE(r[0].domains[3].score.has_value());
    CHECK(r[0].general_domains_scored == 4);
    CHECK(*r[0].gsri == Approx((100.0 / 3 + 200.0 / 3 + 100 + 75) / 4));
}

TEST_CASE("needs: by status and priority, matched only through a deployment that is on, days to on site",
          "[server][indicators]") {
    IndicatorData d;
    add(d, "need", "n1", {{"facility_id", "fac-a"}, {"priority", "critical"}, {"need_type", "skills_training"},
                          {"specialty_code", "anaesthesia"}, {"status", "matched"}});
    add(d, "need", "n2", {{"facility_id", "fac-a"}, {"priority", "high"}, {"need_type", "skills_training"}, {"status", "open"}});
    add(d, "need", "n3", {{"facility_id", "fac-a"}, {"priority", "low"}, {"need_type", "infrastructure"}, {"status", "addressed"}});
    add(d, "need", "n4", {{"facility_id", "fac-b"}, {"priority", "high"}, {"need_type", "skills_training"}, {"status", "identified"}});
    add(d, "deployment", "d1", {{"facility_id", "fac-a"}, {"status", "in_progress"}, {"actual_start", "2025-04-20"}});
    add(d, "deployment", "d2", {{"facility_id", "fac-a"}, {"status", "cancelled"}});
    add(d, "deployment_need", "l1", {{"facility_id", "fac-a"}, {"deployment_id", "d1"}, {"need_id", "n1"}});
    add(d, "deployment_need", "l2", {{"facility_id", "fac-a"}, {"deployment_id", "d2"}, {"need_id", "n3"}});
    // 2025-04-01T08:00Z, then a later event: the first one counts.
    add(d, "need_status_event", "e1", {{"facility_id", "fac-a"}, {"need_id", "n1"}, {"at_ts", 1743465600000 + 8 * 3600000}});
    add(d, "need_status_event", "e2", {{"facility_id", "fac-a"}, {"need_id", "n1"}, {"at_ts", 1744000000000}});
    const json j = needs_json(d);
    REQUIRE(j["facilities"].size() == 2);
    const json& a = j["facilities"][0];
    CHECK(a["facility_id"] == "fac-a");
    CHECK(a["needs"] == 3);
    CHECK(a["matched"] == 1);         // n3's deployment was cancelled
    CHECK(a["unmatched_open"] == 1);  // n2; n3 is addressed
    CHECK(a["by_priority"] == json{{"critical", 1}, {"high", 1}, {"low", 1}});
    CHECK(a["by_specialty"] == json{{"anaesthesia", 1}, {"unspecified", 2}});
    CHECK(a["median_days_to_on_site"] == 19.0);
    CHECK(j["facilities"][1]["unmatched_open"] == 1);
}

TEST_CASE("patients served: sums per month, hospital, service, sex and age band; a period filters",
          "[server][indicators]") {
    IndicatorData d;
    auto tally = [&](const std::string& id, const std::string& fac, const std::string& date, const std::string& type,
                     const std::string& sex, int n) {
        add(d, "service_tally", id, {{"facility_id", fac}, {"service_date", date}, {"service_type", type}, {"sex", sex},
                                     {"age_band", "25_49"}, {"patient_count", n}});
    };
    tally("t1", "fac-a", "2025-04-05", "major_surgery", "female", 3);
    tally("t2", "fac-a", "2025-04-20", "major_surgery", "female", 2);
    tally("t3", "fac-a", "2025-05-01", "outpatient_consultation", "male", 7);
    tally("t4", "fac-b", "2025-04-02", "major_surgery", "female", 4);
    const json all = services_json(d, "");
    REQUIRE(all["rows"].size() == 3);
    CHECK(all["rows"][0] == json{{"month", "2025-04"}, {"facility_id", "fac-a"}, {"service_type", "major_surgery"},
                                 {"sex", "female"}, {"age_band", "25_49"}, {"patients", 5}});
    CHECK(all["totals"].size() == 3);
    const json april = services_json(d, "2025-04");
    CHECK(april["rows"].size() == 2);
    CHECK(april["totals"][0]["patients"] == 5);
    CHECK(april["totals"][1]["patients"] == 4);
}

TEST_CASE("GET /v1/indicators: scoped like a pull; a focal point sees their hospital only", "[server][indicators][http]") {
    TestServer s;
    const std::string kabgayi = s.user_token("ana", "assessor", {"fac-kabgayi"});
    const std::string kibuye = s.user_token("bea", "assessor", {"fac-kibuye"});
    const std::string focal = s.user_token("fp", "focal_point", {"fac-kabgayi"});
    const std::string coordinator = s.user_token("coord", "coordinator", {});
    REQUIRE(s.sync(kabgayi, 0xa1, json::array({change("need", "n-kab", s.version(0xa1), need_fields("fac-kabgayi"))})).status == 200);
    REQUIRE(s.sync(kibuye, 0xb1, json::array({change("need", "n-kib", s.version(0xb1), need_fields("fac-kibuye")),
                                              change("need", "n-kib2", s.version(0xb1), need_fields("fac-kibuye"))}))
                .status == 200);
    json tally{{"deployment_id", "dep-1"}, {"facility_id", "fac-kabgayi"}, {"service_date", "2026-11-03"},
               {"service_type", "major_surgery"}, {"sex", "female"}, {"age_band", "25_49"}, {"patient_count", 6}};
    REQUIRE(s.sync(focal, 0xf1, json::array({change("service_tally", "t-1", s.version(0xf1), tally)})).status == 200);

    Reply mine = s.call("GET", "/v1/indicators/needs", "", focal);
    REQUIRE(mine.status == 200);
    REQUIRE(mine.body["facilities"].size() == 1);
    CHECK(mine.body["facilities"][0]["facility_id"] == "fac-kabgayi");
    CHECK(mine.body["scope"] == json::array({"fac-kabgayi"}));
    CHECK(s.call("GET", "/v1/indicators/needs?facility=fac-kibuye", "", focal).status == 403);

    Reply all = s.call("GET", "/v1/indicators/needs", "", coordinator);
    REQUIRE(all.status == 200);
    REQUIRE(all.body["facilities"].size() == 2);
    CHECK(all.body["facilities"][1]["needs"] == 2);
    Reply one = s.call("GET", "/v1/indicators/needs?facility=fac-kibuye", "", coordinator);
    REQUIRE(one.body["facilities"].size() == 1);
    CHECK(one.body["facilities"][0]["facility_id"] == "fac-kibuye");

    Reply services = s.call("GET", "/v1/indicators/services?period=2026-11", "", coordinator);
    REQUIRE(services.status == 200);
    REQUIRE(services.body["totals"].size() == 1);
    CHECK(services.body["totals"][0]["patients"] == 6);
    CHECK(s.call("GET", "/v1/indicators/services?period=2026-13", "", coordinator).status == 400);
    CHECK(s.call("GET", "/v1/indicators/services", "", kibuye).status == 403);  // assessors record, they do not report
    CHECK(s.call("GET", "/v1/indicators/nothing", "", coordinator).status == 404);
    Reply readiness = s.call("GET", "/v1/indicators/readiness", "", coordinator);
    REQUIRE(readiness.status == 200);
    CHECK(readiness.body["facilities"].empty());  // nothing assessed yet
}
