// Ubuzima Sync — MIT licence.
// read_flat_object: whatever it accepts it must read exactly as nlohmann does; the library's own
// compact texts must take the fast path.
#include <algorithm>
#include <catch2/catch.hpp>

#include <charconv>
#include <random>

#include <nlohmann/json.hpp>

#include "ubuzima/sync/flat_json.hpp"

using nlohmann::json;
using ubuzima::sync::read_flat_object;

namespace {

// The members as nlohmann reads them, for comparison.
json as_json(const std::vector<ubuzima::sync::FlatMember>& members) {
    json out = json::object();
    for (const auto& m : members) {
        if (m.is_string) {
            out[std::string(m.key)] = std::string(m.value);
        } else {
            std::int64_t n = 0;
            const auto [end, ec] = std::from_chars(m.value.data(), m.value.data() + m.value.size(), n);
            REQUIRE(ec == std::errc());
            REQUIRE(end == m.value.data() + m.value.size());
            out[std::string(m.key)] = n;
        }
    }
    return out;
}

}  // namespace

TEST_CASE("the library's compact objects are read on the fast path", "[sync][flat_json]") {
    const std::vector<json> objects = {
        json::object(),
        json{{"title", "0001234567890abc@00000000000000ff"}},
        json{{"a", 1}, {"b", -20}, {"c", 0}, {"d", 9007199254740993LL}},
        json{{"_deleted", "x"}, {"facility_id", "y"}, {"z", ""}},
        json{{"", ""}},
    };
    for (const json& j : objects) {
        const std::string text = j.dump();
        INFO(text);
        auto members = read_flat_object(text);
        REQUIRE(members.has_value());
        CHECK(as_json(*members) == j);
    }
}

TEST_CASE("texts in any other form are left to the full parser", "[sync][flat_json]") {
    for (const char* text : {"", "{", "}", "[]", "null", "\"s\"", "{ }", R"({ "a":"b"})", R"({"a" :"b"})",
                             R"({"a":"b" })", R"({"a":"b"} )", R"({"a":"b",})", R"({"a":"b"}x)", R"({"a":"b")",
                             R"({"a":)", R"({"a")", R"({"a":"b\"c"})", R"({"a\u0041":"b"})", R"({"a":1.5})",
                             R"({"a":1e3})", R"({"a":01})", R"({"a":-})", R"({"a":true})", R"({"a":null})",
                             R"({"a":{"b":"c"}})", R"({"a":["b"]})", "{\"a\":\"\xc3\xa9\"}", "{\"a\":\"\x01\"}",
                             R"({a:"b"})"}) {
        INFO(text);
        CHECK_FALSE(read_flat_object(text).has_value());
    }
}

TEST_CASE("random flat objects read back equal to nlohmann's reading", "[sync][flat_json]") {
    std::mt19937_64 rng(20261128);
    const std::string alphabet = "abcXYZ_09@-: ,{}[]\"\\\x01\xc3\xa9";
    int fast = 0;
    for (int round = 0; round < 2000; ++round) {
        json j = json::object();
        const int n = static_cast<int>(rng() % 6);
        for (int i = 0; i < n; ++i) {
            std::string key;
            for (std::uint64_t k = rng() % 6; k > 0; --k) key += alphabet[rng() % alphabet.size()];
            if (rng() % 2) {
                std::string value;
                for (std::uint64_t k = rng() % 10; k > 0; --k) value += alphabet[rng() % alphabet.size()];
                j[key] = value;
            } else {
                j[key] = static_cast<std::int64_t>(rng() % 2000000) - 1000000;
            }
        }
        const std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
        const json reference = json::parse(text, nullptr, false);
        INFO(text);
        // The fast path must take exactly the texts in the form it documents (printable ASCII
        // without quote, backslash or escapes) and read them as nlohmann does.
        const bool compact = std::all_of(text.begin(), text.end(), [](char c) {
            return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f && c != '\\';
        });
        auto members = read_flat_object(text);
        CHECK(members.has_value() == compact);
        if (members) {
            ++fast;
            CHECK(as_json(*members) == reference);
        }
    }
    // Both paths were exercised (about a third of the objects are compact).
    CHECK(fast > 300);
    CHECK(fast < 2000);
}

TEST_CASE("FlatObjectWriter writes what dump() writes for the same sorted map", "[sync][flat_json]") {
    std::mt19937_64 rng(7);
    const std::string alphabet = "abcXYZ_09@-: ,{}[]\"\\\x01\x7f/";  // ASCII: "é" is added whole
    ubuzima::sync::FlatObjectWriter writer;
    for (int round = 0; round < 2000; ++round) {
        std::map<std::string, json> members;
        for (std::uint64_t n = rng() % 6; n > 0; --n) {
            std::string key;
            for (std::uint64_t k = rng() % 6; k > 0; --k) key += alphabet[rng() % alphabet.size()];
            if (rng() % 2) {
                std::string value;
                for (std::uint64_t k = rng() % 10; k > 0; --k) value += alphabet[rng() % alphabet.size()];
                if (rng() % 4 == 0) value += "\xc3\xa9";
                members[key] = value;
            } else {
                members[key] = static_cast<std::int64_t>(rng()) / 3;
            }
        }
        for (const auto& [key, value] : members) {
            if (value.is_string()) writer.add_string(key, value.get_ref<const std::string&>());
            else writer.add_integer(key, value.get<std::int64_t>());
        }
        const std::string text = writer.finish();
        CHECK(text == json(members).dump());
    }
}
