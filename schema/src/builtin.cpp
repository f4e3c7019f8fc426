// Ubuzima Sync — MIT licence.
// Access to the schema and seed data compiled into the library.
#include <cstdio>
#include <cstdlib>

#include "embedded.hpp"
#include "ubuzima/schema/schema.hpp"

namespace ubuzima::schema {

const Schema& Schema::builtin() {
    static const Schema schema = [] {
        auto parsed = Schema::parse(detail::kSchemaJson);
        if (!parsed.ok()) {
            // The embedded schema is checked by the tests; a broken build must not limp on.
            std::fprintf(stderr, "ubuzima: embedded schema is invalid: %s\n", parsed.status().to_string().c_str());
            std::abort();
        }
        return std::move(*parsed);
    }();
    return schema;
}

const std::vector<SeedTable>& builtin_seed() {
    static const std::vector<SeedTable> seed = [] {
        std::vector<SeedTable> out;
        for (std::size_t i = 0; i < detail::kSeedCount; ++i) {
            Value rows = Value::parse(detail::kSeeds[i].json, nullptr, false);
            if (rows.is_discarded() || !rows.is_array()) {
                std::fprintf(stderr, "ubuzima: embedded seed %s is invalid\n", detail::kSeeds[i].table);
                std::abort();
            }
            SeedTable t{detail::kSeeds[i].table, {}};
            for (Value& row : rows) t.rows.push_back(std::move(row));
            out.push_back(std::move(t));
        }
        return out;
    }();
    return seed;
}

}  // namespace ubuzima::schema
