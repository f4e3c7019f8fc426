// Ubuzima Sync — MIT licence.
// What the indicators are computed from: the live rows of a few tables as one caller may see
// them, read in one snapshot of the store (either backend). Deleted rows and voided rows of
// append-only tables are left out here, so no indicator counts them by accident.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/server_store.hpp"

namespace ubuzima::server {

/// One row's values (field → JSON value). A plain value type.
struct Record {
    std::string id;
    std::map<std::string, sync::Value> values;

    /// The field's string, "" when absent, null or not a string.
    std::string text(std::string_view field) const;
    std::optional<std::int64_t> integer(std::string_view field) const;
    /// True only for a stored `true`.
    bool flag(std::string_view field) const;
};

/// Rows by table name. A plain value type; not shared between threads while being filled.
class IndicatorData {
public:
    /// The rows of `table` ("" rows when it was not loaded or has none), ordered by id.
    const std::vector<Record>& of(const std::string& table) const;
    std::vector<Record>& mutable_of(const std::string& table) { return m_tables[table]; }

private:
    std::map<std::string, std::vector<Record>> m_tables;
};

/// Loads the live rows of `tables` scoped to one of `facilities` (null = every facility) and
/// every unscoped (reference) row, in one read transaction. The caller decides the facilities
/// from the authenticated user (api/indicator_routes.cpp), never from the request alone.
Result<IndicatorData> load_indicator_data(ServerStore& store, const schema::Schema& schema,
                                          const std::vector<std::string>* facilities,
                                          const std::vector<std::string>& tables);

}  // namespace ubuzima::server
