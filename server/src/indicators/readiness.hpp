// Ubuzima Sync — MIT licence.
// SARA service readiness (docs/INDICATORS.md, IND-01, IND-02, IND-04): per submitted assessment,
// each readiness domain's score (tracer items available / items that apply) with its
// completeness (items answered / items that apply), and the general service readiness index as
// the mean of the five general domains; per hospital, the latest baseline against the latest
// follow-up. Pure functions of IndicatorData; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "indicators/indicator_data.hpp"

namespace ubuzima::server {

struct DomainScore {
    std::string domain;      ///< instrument_section.domain, "gsr_*" or "ssr_*"
    int items = 0;           ///< tracer items of the domain in the instrument version
    int applicable = 0;      ///< items minus those found not applicable
    int present = 0;         ///< applicable items found available (an option that scores as present)
    int answered = 0;        ///< applicable items with an availability answer (not "not_assessed")
    std::optional<double> score;         ///< 100 × present / applicable; none when nothing applies
    std::optional<double> completeness;  ///< 100 × answered / applicable
    std::vector<std::string> missing;    ///< codes of applicable items not available (candidate needs)
};

struct AssessmentReadiness {
    std::string assessment_id;
    std::string facility_id;
    std::string assessment_type;  ///< baseline, follow_up, post_deployment, ad_hoc
    std::string status;           ///< submitted or validated
    std::string visit_date;
    std::string instrument_version_id;
    std::vector<DomainScore> domains;  ///< the five general domains first, then service-specific
    std::optional<double> gsri;        ///< mean of the scored general domains
    int general_domains_scored = 0;    ///< of 5
};

/// The general readiness domains, in the SARA order.
const std::vector<std::string>& general_readiness_domains();

/// Readiness of every submitted or validated assessment in `data` (tables needs_assessment,
/// assessment_finding, instrument_section, instrument_item, item_option), ordered by facility
/// and visit date.
std::vector<AssessmentReadiness> compute_readiness(const IndicatorData& data);

/// {"facilities":[{"facility_id", "assessments":[...], "baseline", "follow_up", "change"}]}.
nlohmann::json readiness_json(const std::vector<AssessmentReadiness>& assessments);

/// The tables compute_readiness reads.
const std::vector<std::string>& readiness_tables();

}  // namespace ubuzima::server
