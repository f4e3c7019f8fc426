// Ubuzima Sync — MIT licence.
#include "indicators/indicator_data.hpp"

#include <algorithm>
#include <set>

#include "ubuzima/sync/protocol.hpp"

namespace ubuzima::server {

std::string Record::text(std::string_view field) const {
    auto it = values.find(std::string(field));
    return it != values.end() && it->second.is_string() ? it->second.get<std::string>() : std::string();
}

std::optional<std::int64_t> Record::integer(std::string_view field) const {
    auto it = values.find(std::string(field));
    if (it == values.end() || !it->second.is_number()) return std::nullopt;
    return it->second.get<std::int64_t>();
}

bool Record::flag(std::string_view field) const {
    auto it = values.find(std::string(field));
    return it != values.end() && it->second.is_boolean() && it->second.get<bool>();
}

const std::vector<Record>& IndicatorData::of(const std::string& table) const {
    static const std::vector<Record> none;
    auto it = m_tables.find(table);
    return it == m_tables.end() ? none : it->second;
}

namespace {

constexpr int kFeedPage = 2000;
constexpr std::size_t kReadChunk = 500;

bool live(const schema::TableDef& table, const StoredRow& row) {
    auto deleted = row.values.find(std::string(sync::kDeletedField));
    if (deleted != row.values.end() && deleted->second == true) return false;
    // Append-only rows are corrected by voiding, never by deleting.
    if (table.cls == schema::TableClass::AppendOnly) {
        auto voided = row.values.find("voided_at");
        if (voided != row.values.end() && !voided->second.is_null()) return false;
    }
    return true;
}

}  // namespace

Result<IndicatorData> load_indicator_data(ServerStore& store, const schema::Schema& schema,
                                          const std::vector<std::string>* facilities,
                                          const std::vector<std::string>& tables) {
    const std::set<std::string> wanted(tables.begin(), tables.end());
    IndicatorData data;
    const Status s = store.read([&](ReadTxn& tx) -> Status {
        // The feed has one live entry per row and is filtered by facility in the store, the same
        // way a pull is: what a user cannot pull, no indicator of theirs counts.
        const std::set<std::string> allowed = facilities ? std::set<std::string>(facilities->begin(), facilities->end())
                                                         : std::set<std::string>();
        std::map<std::string, std::vector<std::string>> ids;
        std::int64_t after = 0;
        for (;;) {
            auto page = tx.feed_after(after, facilities, kFeedPage);
            if (!page.ok()) return page.status();
            for (const FeedEntry& e : *page)
                if (!e.gone && wanted.count(e.table)) ids[e.table].push_back(e.row_id);
            if (page->size() < static_cast<std::size_t>(kFeedPage)) break;
            after = page->back().seq;
        }
        for (auto& [name, list] : ids) {
            const schema::TableDef* table = schema.table(name);
            if (!table) continue;
            std::sort(list.begin(), list.end());
            std::vector<Record>& out = data.mutable_of(name);
            for (std::size_t from = 0; from < list.size(); from += kReadChunk) {
                const std::vector<std::string> chunk(list.begin() + static_cast<std::ptrdiff_t>(from),
                                                     list.begin() + static_cast<std::ptrdiff_t>(std::min(list.size(), from + kReadChunk)));
                auto rows = tx.read_rows(*table, chunk);
                if (!rows.ok()) return rows.status();
                for (auto& [id, row] : *rows) {
                    if (!live(*table, row)) continue;
                    if (facilities && row.scope && !allowed.count(*row.scope)) continue;
                    Record r;
                    r.id = id;
                    for (auto& [field, value] : row.values)
                        if (field != sync::kDeletedField) r.values.emplace(field, std::move(value));
                    out.push_back(std::move(r));
                }
            }
        }
        return {};
    });
    if (!s.ok()) return s;
    return data;
}

}  // namespace ubuzima::server
