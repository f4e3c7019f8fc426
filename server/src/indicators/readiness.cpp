// Ubuzima Sync — MIT licence.
#include "indicators/readiness.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace ubuzima::server {

using nlohmann::json;

const std::vector<std::string>& general_readiness_domains() {
    static const std::vector<std::string> d = {"gsr_basic_amenities", "gsr_basic_equipment", "gsr_standard_precautions",
                                               "gsr_diagnostics", "gsr_essential_medicines"};
    return d;
}

const std::vector<std::string>& readiness_tables() {
    static const std::vector<std::string> t = {"needs_assessment", "assessment_finding", "instrument_section",
                                               "instrument_item", "item_option"};
    return t;
}

namespace {

bool is_readiness_domain(const std::string& domain) {
    return domain.rfind("gsr_", 0) == 0 || domain.rfind("ssr_", 0) == 0;
}

// What an item's findings in one assessment say (an item may be found per department: it is
// available when any department has it, and not applicable only when every finding says so).
enum class ItemState { Unanswered, NotApplicable, NotAvailable, Present };

ItemState item_state(const std::vector<const Record*>& findings, const std::set<std::string>& present_codes) {
    if (findings.empty()) return ItemState::Unanswered;
    bool any_answer = false, all_not_applicable = true;
    for (const Record* f : findings) {
        const std::string a = f->text("availability");
        if (present_codes.count(a)) return ItemState::Present;
        if (a != "not_applicable") all_not_applicable = false;
        if (!a.empty() && a != "not_assessed" && a != "not_applicable") any_answer = true;
    }
    if (all_not_applicable) return ItemState::NotApplicable;
    return any_answer ? ItemState::NotAvailable : ItemState::Unanswered;
}

std::optional<double> percent(int part, int whole) {
    if (whole <= 0) return std::nullopt;
    return 100.0 * part / whole;
}

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json assessment_json(const AssessmentReadiness& a) {
    json domains = json::array();
    for (const DomainScore& d : a.domains)
        domains.push_back({{"domain", d.domain},
                           {"items", d.items},
                           {"applicable", d.applicable},
                           {"present", d.present},
                           {"answered", d.answered},
                           {"score", optional_number(d.score)},
                           {"completeness", optional_number(d.completeness)},
                           {"missing", d.missing}});
    return {{"assessment_id", a.assessment_id},
            {"assessment_type", a.assessment_type},
            {"status", a.status},
            {"visit_date", a.visit_date},
            {"instrument_version_id", a.instrument_version_id},
            {"gsri", optional_number(a.gsri)},
            {"general_domains_scored", a.general_domains_scored},
            {"domains", domains}};
}

}  // namespace

std::vector<AssessmentReadiness> compute_readiness(const IndicatorData& data) {
    // Options that score as present (item_option.scores_as_present); the SARA default when the
    // option set is not loaded.
    std::set<std::string> present_codes;
    for (const Record& o : data.of("item_option"))
        if (o.text("option_set_code") == "availability" && o.flag("scores_as_present")) present_codes.insert(o.text("code"));
    if (present_codes.empty()) present_codes.insert("observed_functional");

    std::map<std::string, const Record*> sections;
    for (const Record& s : data.of("instrument_section")) sections[s.id] = &s;
    // version → domain → tracer items (ordered by sort_order, then code)
    std::map<std::string, std::map<std::string, std::vector<const Record*>>> tracers;
    for (const Record& item : data.of("instrument_item")) {
        if (!item.flag("counts_toward_index")) continue;
        auto section = sections.find(item.text("section_id"));
        if (section == sections.end()) continue;
        const std::string domain = section->second->text("domain");
        if (!is_readiness_domain(domain)) continue;
        tracers[section->second->text("version_id")][domain].push_back(&item);
    }
    for (auto& [version, domains] : tracers)
        for (auto& [domain, items] : domains)
            std::sort(items.begin(), items.end(), [](const Record* a, const Record* b) {
                return std::make_pair(a->integer("sort_order").value_or(0), a->text("code")) <
                       std::make_pair(b->integer("sort_order").value_or(0), b->text("code"));
            });
    // assessment → item → findings
    std::map<std::string, std::map<std::string, std::vector<const Record*>>> findings;
    for (const Record& f : data.of("assessment_finding")) findings[f.text("assessment_id")][f.text("item_id")].push_back(&f);

    std::vector<AssessmentReadiness> out;
    for (const Record& a : data.of("needs_assessment")) {
        const std::string status = a.text("status");
        if (status != "submitted" && status != "validated") continue;
        AssessmentReadiness r;
        r.assessment_id = a.id;
        r.facility_id = a.text("facility_id");
        r.assessment_type = a.text("assessment_type");
        r.status = status;
        r.visit_date = a.text("visit_date");
        r.instrument_version_id = a.text("instrument_version_id");
        static const std::map<std::string, std::vector<const Record*>> no_domains;
        auto version = tracers.find(r.instrument_version_id);
        const auto& domains = version == tracers.end() ? no_domains : version->second;
        auto own = findings.find(a.id);
        std::vector<std::string> order = general_readiness_domains();
        for (const auto& entry : domains)
            if (entry.first.rfind("ssr_", 0) == 0) order.push_back(entry.first);
        double sum = 0;
        for (const std::string& domain : order) {
            DomainScore d;
            d.domain = domain;
            auto items = domains.find(domain);
            if (items != domains.end()) {
                for (const Record* item : items->second) {
                    ++d.items;
                    static const std::vector<const Record*> none;
                    const std::vector<const Record*>* found = &none;
                    if (own != findings.end()) {
                        auto it = own->second.find(item->id);
                        if (it != own->second.end()) found = &it->second;
                    }
                    const ItemState state = item_state(*found, present_codes);
                    if (state == ItemState::NotApplicable) continue;
                    ++d.applicable;
                    if (state == ItemState::Present) ++d.present;
                    if (state == ItemState::Present || state == ItemState::NotAvailable) ++d.answered;
                    // Unanswered counts as not available (and lowers completeness).
                    if (state != ItemState::Present) d.missing.push_back(item->text("code"));
                }
            }
            d.score = percent(d.present, d.applicable);
            d.completeness = percent(d.answered, d.applicable);
            if (domain.rfind("gsr_", 0) == 0 && d.score) {
                sum += *d.score;
                ++r.general_domains_scored;
            }
            r.domains.push_back(std::move(d));
        }
        if (r.general_domains_scored > 0) r.gsri = sum / r.general_domains_scored;
        out.push_back(std::move(r));
    }
    std::sort(out.begin(), out.end(), [](const AssessmentReadiness& x, const AssessmentReadiness& y) {
        return std::tie(x.facility_id, x.visit_date, x.assessment_id) < std::tie(y.facility_id, y.visit_date, y.assessment_id);
    });
    return out;
}

json readiness_json(const std::vector<AssessmentReadiness>& assessments) {
    json facilities = json::array();
    for (std::size_t i = 0; i < assessments.size();) {
        const std::string facility = assessments[i].facility_id;
        json list = json::array();
        const AssessmentReadiness* baseline = nullptr;
        const AssessmentReadiness* follow_up = nullptr;
        for (; i < assessments.size() && assessments[i].facility_id == facility; ++i) {
            const AssessmentReadiness& a = assessments[i];
            list.push_back(assessment_json(a));
            // Ordered by visit date: the last of each type is the latest.
            if (a.assessment_type == "baseline") baseline = &a;
            if (a.assessment_type == "follow_up") follow_up = &a;
        }
        json change = nullptr;
        if (baseline && follow_up && baseline->gsri && follow_up->gsri && follow_up->visit_date > baseline->visit_date) {
            json domains = json::object();
            for (std::size_t d = 0; d < general_readiness_domains().size(); ++d) {
                const auto& b = baseline->domains[d].score;
                const auto& f = follow_up->domains[d].score;
                domains[general_readiness_domains()[d]] = b && f ? json(*f - *b) : json(nullptr);
            }
            change = {{"gsri", *follow_up->gsri - *baseline->gsri}, {"domains", domains}};
        }
        facilities.push_back({{"facility_id", facility},
                              {"assessments", list},
                              {"baseline", baseline ? json(baseline->assessment_id) : json(nullptr)},
                              {"follow_up", follow_up ? json(follow_up->assessment_id) : json(nullptr)},
                              {"change", change}});
    }
    return {{"indicator", "readiness"}, {"facilities", facilities}};
}

}  // namespace ubuzima::server
