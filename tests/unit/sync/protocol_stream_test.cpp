// Ubuzima Sync — MIT licence.
// The sync messages are written straight to a string (no JSON tree). Random messages must come
// out as canonical compact JSON (what dump() writes for the parsed value: sorted keys, same
// escapes) and decode back to exactly what was encoded.
#include <catch2/catch.hpp>

#include <random>

#include "ubuzima/sync/protocol.hpp"

using namespace ubuzima::sync;
using nlohmann::json;

namespace {

class Gen {
public:
    explicit Gen(std::uint64_t seed) : m_rng(seed) {}
    std::uint64_t below(std::uint64_t n) { return m_rng() % n; }
    std::string text() {
        static const std::vector<std::string> pieces = {"a", "Z", "_", "0", " ", "\"", "\\", "/", "\n", "\x01",
                                                        "\x7f", "é", "☃", "{", "]", ":", ",", "@"};
        std::string out;
        for (std::uint64_t n = below(8); n > 0; --n) out += pieces[below(pieces.size())];
        return out;
    }
    Version version() { return Version{make_hlc(static_cast<std::int64_t>(below(2'000'000'000'000)), static_cast<std::uint32_t>(below(5))), below(4) + 1}; }
    json value() {
        switch (below(8)) {
            case 0: return nullptr;
            case 1: return below(2) == 1;
            case 2: return static_cast<std::int64_t>(m_rng()) / 7;
            case 3: return static_cast<double>(below(100000)) / 64.0;
            case 4: return json::array({text(), static_cast<std::int64_t>(below(9))});
            case 5: return json{{text(), text()}, {"k", nullptr}};
            default: return text();
        }
    }

private:
    std::mt19937_64 m_rng;
};

void check_canonical(const std::string& text) {
    const json parsed = json::parse(text, nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    CHECK(parsed.dump() == text);
}

}  // namespace

TEST_CASE("Streamed requests are canonical JSON and round-trip exactly", "[sync][codec]") {
    Gen g(1128);
    for (int round = 0; round < 500; ++round) {
        SyncRequest req;
        req.schema_version = static_cast<int>(g.below(5)) + 1;
        req.node = g.below(1ULL << 62);
        req.clock = g.version().hlc;
        req.limit = static_cast<int>(g.below(5000)) + 1;
        if (g.below(3) != 0) req.cursor = g.text();
        if (g.below(4) != 0) {
            PushBatch batch{g.text() + "b", {}};
            for (std::uint64_t n = g.below(4); n > 0; --n) {
                Change c;
                c.table = g.text() + "t";  // the decoder refuses empty names
                c.row_id = g.text() + "r";
                c.version = g.version();
                for (std::uint64_t f = g.below(5) + 1; f > 0; --f) c.fields[g.text()] = g.value();
                for (std::uint64_t b = g.below(3); b > 0; --b) c.base[g.text()] = g.below(3) == 0 ? Version{} : g.version();
                batch.changes.push_back(std::move(c));
            }
            req.batch = std::move(batch);
        }
        const std::string text = encode_sync_request(req);
        INFO(text);
        check_canonical(text);
        auto back = decode_sync_request(text);
        REQUIRE(back.ok());
        CHECK(back->schema_version == req.schema_version);
        CHECK(back->node == req.node);
        CHECK(back->clock == req.clock);
        CHECK(back->limit == req.limit);
        CHECK(back->cursor == req.cursor);
        REQUIRE(back->batch.has_value() == req.batch.has_value());
        if (!req.batch) continue;
        CHECK(back->batch->id == req.batch->id);
        REQUIRE(back->batch->changes.size() == req.batch->changes.size());
        for (std::size_t i = 0; i < req.batch->changes.size(); ++i) {
            const Change& a = req.batch->changes[i];
            const Change& b = back->batch->changes[i];
            CHECK(a.table == b.table);
            CHECK(a.row_id == b.row_id);
            CHECK(a.version == b.version);
            CHECK(json(a.fields) == json(b.fields));
            for (const auto& [field, version] : a.base) CHECK(b.base_of(field) == version);
        }
    }
}

TEST_CASE("Streamed pull pages are canonical JSON and round-trip exactly", "[sync][codec]") {
    Gen g(2811);
    for (int round = 0; round < 500; ++round) {
        SyncResponse resp;
        resp.server_clock = g.version().hlc;
        resp.cursor = g.text();
        resp.more = g.below(2) == 1;
        if (g.below(3) == 0) resp.push = PushResult{g.text(), static_cast<int>(g.below(9)), {}, {}};
        for (std::uint64_t n = g.below(5); n > 0; --n) {
            RowChange rc{g.text() + "t", g.text() + "r", {}, g.below(6) == 0};
            if (!rc.gone) {
                const Version shared = g.version();
                for (std::uint64_t f = g.below(6) + 1; f > 0; --f) {
                    VersionedValue vv{g.value(), g.below(3) == 0 ? g.version() : shared, {}};
                    if (g.below(5) == 0) vv.overwrote = g.version();
                    rc.fields[g.text()] = vv;
                }
            }
            resp.changes.push_back(std::move(rc));
        }
        const std::string text = encode_sync_response(resp);
        INFO(text);
        check_canonical(text);
        auto back = decode_sync_response(text);
        REQUIRE(back.ok());
        CHECK(back->server_clock == resp.server_clock);
        CHECK(back->cursor == resp.cursor);
        CHECK(back->more == resp.more);
        CHECK(back->push.has_value() == resp.push.has_value());
        REQUIRE(back->changes.size() == resp.changes.size());
        for (std::size_t i = 0; i < resp.changes.size(); ++i) {
            const RowChange& a = resp.changes[i];
            const RowChange& b = back->changes[i];
            CHECK(a.table == b.table);
            CHECK(a.row_id == b.row_id);
            CHECK(a.gone == b.gone);
            REQUIRE(a.fields.size() == b.fields.size());
            for (const auto& [name, vv] : a.fields) {
                REQUIRE(b.fields.count(name) == 1);
                CHECK(b.fields.at(name).value == vv.value);
                CHECK(b.fields.at(name).version == vv.version);
                CHECK(b.fields.at(name).overwrote == vv.overwrote);
            }
        }
    }
}
