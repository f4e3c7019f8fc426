// Ubuzima Sync — MIT licence.
// Needs (IND-05, matched and unmatched, days from identified to on site: IND-06, IND-18 in
// docs/INDICATORS.md) and patients served (IND-16), as JSON, from IndicatorData. Pure functions;
// thread-compatible.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "indicators/indicator_data.hpp"

namespace ubuzima::server {

/// Tables needs_json reads.
const std::vector<std::string>& needs_tables();
/// Per facility: needs by status, priority, type and specialty; matched (a live deployment_need
/// to a deployment confirmed, in progress or completed) and unmatched open needs; the median
/// days from a need's first status event to its earliest matched deployment's actual start.
nlohmann::json needs_json(const IndicatorData& data);

/// Tables services_json reads.
const std::vector<std::string>& services_tables();
/// Patients served: Σ patient_count per month (YYYY-MM of service_date), facility, service type,
/// sex and age band, with totals per facility and month. `period` "" = every month, else
/// "YYYY-MM" only. Aggregates only: no row identifies a patient.
nlohmann::json services_json(const IndicatorData& data, const std::string& period);

}  // namespace ubuzima::server
