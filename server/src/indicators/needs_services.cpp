// Ubuzima Sync — MIT licence.
#include "indicators/needs_services.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace ubuzima::server {

using nlohmann::json;

const std::vector<std::string>& needs_tables() {
    static const std::vector<std::string> t = {"need", "need_status_event", "deployment", "deployment_need"};
    return t;
}

const std::vector<std::string>& services_tables() {
    static const std::vector<std::string> t = {"service_tally"};
    return t;
}

namespace {

const std::set<std::string>& matching_deployment_statuses() {
    static const std::set<std::string> s = {"confirmed", "in_progress", "completed"};
    return s;
}

// Needs that are settled are neither matched work to do nor a gap to fill.
bool is_open(const std::string& status) {
    return status != "addressed" && status != "cancelled" && status != "deferred";
}

json count_map(const std::map<std::string, int>& m) {
    json out = json::object();
    for (const auto& [k, v] : m) out[k.empty() ? "unspecified" : k] = v;
    return out;
}

// Days since 1970-01-01 of a "YYYY-MM-DD" date (proleptic Gregorian), or none.
std::optional<std::int64_t> date_days(const std::string& s) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
    for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
    std::int64_t y = std::stoll(s.substr(0, 4));
    const std::int64_t m = std::stoll(s.substr(5, 2)), d = std::stoll(s.substr(8, 2));
    if (m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
    // Count from March, so the leap day ends the year.
    y -= m <= 2;
    const std::int64_t era = y / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

std::optional<double> median(std::vector<double> v) {
    if (v.empty()) return std::nullopt;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

json needs_json(const IndicatorData& data) {
    std::map<std::string, const Record*> deployments;
    for (const Record& d : data.of("deployment")) deployments[d.id] = &d;
    // need → deployments that answer it and are (or were) really on
    std::map<std::string, std::vector<const Record*>> answered_by;
    for (const Record& link : data.of("deployment_need")) {
        auto d = deployments.find(link.text("deployment_id"));
        if (d != deployments.end() && matching_deployment_statuses().count(d->second->text("status")))
            answered_by[link.text("need_id")].push_back(d->second);
    }
    std::map<std::string, std::int64_t> identified_at;  // need → first status event (ms)
    for (const Record& e : data.of("need_status_event")) {
        const auto at = e.integer("at_ts");
        if (!at) continue;
        auto [it, inserted] = identified_at.emplace(e.text("need_id"), *at);
        if (!inserted) it->second = std::min(it->second, *at);
    }
    struct Tally {
        int total = 0, matched = 0, unmatched_open = 0;
        std::map<std::string, int> status, priority, type, specialty;
        std::vector<double> days_to_on_site;
    };
    std::map<std::string, Tally> by_facility;
    for (const Record& n : data.of("need")) {
        Tally& t = by_facility[n.text("facility_id")];
        ++t.total;
        ++t.status[n.text("status")];
        ++t.priority[n.text("priority")];
        ++t.type[n.text("need_type")];
        ++t.specialty[n.text("specialty_code")];
        auto answered = answered_by.find(n.id);
        if (answered != answered_by.end()) {
            ++t.matched;
            std::optional<std::int64_t> first_start;
            for (const Record* d : answered->second)
                if (auto day = date_days(d->text("actual_start")))
                    first_start = first_start ? std::min(*first_start, *day) : *day;
            auto identified = identified_at.find(n.id);
            if (first_start && identified != identified_at.end()) {
                const double identified_day = static_cast<double>(identified->second / 86'400'000);
                t.days_to_on_site.push_back(std::max(0.0, static_cast<double>(*first_start) - identified_day));
            }
        } else if (is_open(n.text("status"))) {
            ++t.unmatched_open;
        }
    }
    json facilities = json::array();
    for (auto& [facility, t] : by_facility) {
        const auto m = median(t.days_to_on_site);
        facilities.push_back({{"facility_id", facility},
                              {"needs", t.total},
                              {"matched", t.matched},
                              {"unmatched_open", t.unmatched_open},
                              {"by_status", count_map(t.status)},
                              {"by_priority", count_map(t.priority)},
                              {"by_type", count_map(t.type)},
                              {"by_specialty", count_map(t.specialty)},
                              {"median_days_to_on_site", m ? json(*m) : json(nullptr)},
                              {"days_to_on_site_samples", t.days_to_on_site.size()}});
    }
    return {{"indicator", "needs"}, {"facilities", facilities}};
}

json services_json(const IndicatorData& data, const std::string& period) {
    using Key = std::tuple<std::string, std::string, std::string, std::string, std::string>;
    std::map<Key, std::int64_t> cells;
    std::map<std::pair<std::string, std::string>, std::int64_t> totals;
    for (const Record& t : data.of("service_tally")) {
        const std::string date = t.text("service_date");
        if (date.size() < 7) continue;
        const std::string month = date.substr(0, 7);
        if (!period.empty() && month != period) continue;
        const std::int64_t n = std::max<std::int64_t>(0, t.integer("patient_count").value_or(0));
        const std::string facility = t.text("facility_id");
        cells[{month, facility, t.text("service_type"), t.text("sex"), t.text("age_band")}] += n;
        totals[{facility, month}] += n;
    }
    json rows = json::array();
    for (const auto& [k, n] : cells)
        rows.push_back({{"month", std::get<0>(k)},
                        {"facility_id", std::get<1>(k)},
                        {"service_type", std::get<2>(k)},
                        {"sex", std::get<3>(k)},
                        {"age_band", std::get<4>(k)},
                        {"patients", n}});
    json by_month = json::array();
    for (const auto& [k, n] : totals) by_month.push_back({{"facility_id", k.first}, {"month", k.second}, {"patients", n}});
    return {{"indicator", "services"}, {"period", period.empty() ? json(nullptr) : json(period)}, {"rows", rows},
            {"totals", by_month}};
}

}  // namespace ubuzima::server
