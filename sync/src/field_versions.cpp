// Ubuzima Sync — MIT licence.
#include "ubuzima/sync/field_versions.hpp"

#include <algorithm>

#include "ubuzima/sync/flat_json.hpp"

namespace ubuzima::sync {

namespace {

constexpr std::string_view kCommonKey = "@";

// Replaces "" by the "@" version and drops "@" (a no-op on the plain form).
void expand(nlohmann::json& versions) {
    auto common = versions.find(std::string(kCommonKey));
    if (common == versions.end()) return;
    const nlohmann::json shared = *common;
    versions.erase(common);
    for (auto& [name, version] : versions.items())
        if (version.is_string() && version.get_ref<const std::string&>().empty()) version = shared;
}

}  // namespace

std::string encode_field_versions(const std::vector<std::pair<std::string_view, std::string_view>>& members) {
    // The most common version (a row has few distinct ones).
    std::vector<std::pair<std::string_view, int>> counts;
    for (const auto& member : members) {
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == member.second; });
        if (it == counts.end()) counts.emplace_back(member.second, 1);
        else ++it->second;
    }
    auto common = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    const bool shared = common != counts.end() && common->second >= 2;
    FlatObjectWriter text;
    if (shared) text.add_string(kCommonKey, common->first);
    for (const auto& [name, version] : members) text.add_string(name, shared && version == common->first ? std::string_view() : version);
    return text.finish();
}

std::string encode_field_versions(const nlohmann::json& versions) {
    std::vector<std::pair<std::string_view, std::string_view>> members;
    members.reserve(versions.size());
    for (auto it = versions.begin(); it != versions.end(); ++it) {
        if (!it.value().is_string() || it.value().get_ref<const std::string&>().empty()) return versions.dump();
        members.emplace_back(it.key(), it.value().get_ref<const std::string&>());
    }
    return encode_field_versions(members);
}

nlohmann::json decode_field_versions(const std::string& text) {
    nlohmann::json out = nlohmann::json::object();
    if (auto members = read_flat_object(text)) {
        std::string_view common;
        bool strings = true;
        for (const FlatMember& m : *members) {
            if (!m.is_string) strings = false;
            else if (m.key == kCommonKey) common = m.value;
        }
        if (strings) {
            auto& map = out.get_ref<nlohmann::json::object_t&>();
            for (const FlatMember& m : *members) {
                if (m.key == kCommonKey) continue;
                const std::string_view version = m.value.empty() && !common.empty() ? common : m.value;
                // Last one wins, as in the parser; keys come sorted, so the hint is right.
                map.insert_or_assign(map.end(), std::string(m.key), nlohmann::json(std::string(version)));
            }
            return out;
        }
    }
    out = nlohmann::json::parse(text, nullptr, false);
    if (!out.is_object()) return nlohmann::json::object();
    expand(out);
    return out;
}

}  // namespace ubuzima::sync
