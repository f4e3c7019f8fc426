// Ubuzima Sync — MIT licence.
// Argument parsing and table printing for the `ubuzima` CLI.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli.hpp"

namespace ubuzima::cli {

nlohmann::json parse_assignments(const Args& args, size_t from) {
    nlohmann::json out = nlohmann::json::object();
    for (size_t i = from; i < args.size(); ++i) {
        const auto eq = args[i].find('=');
        if (eq == std::string::npos || eq == 0) continue;
        const std::string key = args[i].substr(0, eq);
        const std::string raw = args[i].substr(eq + 1);
        nlohmann::json value = nlohmann::json::parse(raw, nullptr, false);
        out[key] = value.is_discarded() || value.is_string() ? nlohmann::json(raw) : value;
    }
    return out;
}

std::string to_cell(const nlohmann::json& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

void print_rows(const std::vector<nlohmann::json>& rows, const std::vector<std::string>& columns) {
    std::vector<size_t> width;
    for (const std::string& c : columns) width.push_back(c.size());
    for (const auto& row : rows)
        for (size_t i = 0; i < columns.size(); ++i)
            width[i] = std::max(width[i], std::min<size_t>(to_cell(row.value(columns[i], nlohmann::json())).size(), 40));
    auto line = [&](const std::vector<std::string>& cells) {
        for (size_t i = 0; i < cells.size(); ++i) {
            std::string cell = cells[i].size() > 40 ? cells[i].substr(0, 37) + "..." : cells[i];
            std::printf("%-*s%s", static_cast<int>(width[i]), cell.c_str(), i + 1 < cells.size() ? "  " : "\n");
        }
    };
    line(columns);
    for (const auto& row : rows) {
        std::vector<std::string> cells;
        for (const std::string& c : columns) cells.push_back(to_cell(row.value(c, nlohmann::json())));
        line(cells);
    }
    std::printf("(%zu row%s)\n", rows.size(), rows.size() == 1 ? "" : "s");
}

int fail(const Status& status) {
    std::cerr << "error: " << status.to_string() << "\n";
    return 1;
}

}  // namespace ubuzima::cli
