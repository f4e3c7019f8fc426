// Ubuzima Sync — MIT licence.
// A device row's `_v`: the shared version is written once, and every text reads back as the
// field -> version map it was written from (older plain maps too).
#include <catch2/catch.hpp>

#include <random>

#include "ubuzima/sync/field_versions.hpp"

using nlohmann::json;
using ubuzima::sync::decode_field_versions;
using ubuzima::sync::encode_field_versions;

TEST_CASE("a row written in one go stores its version once", "[sync][versions]") {
    const std::string v = "0193a0c200000000@9f2c4e1a77b05d13";
    const json versions{{"facility_id", v}, {"status", v}, {"title", v}};
    const std::string text = encode_field_versions(versions);
    CHECK(text == R"({"@":")" + v + R"(","facility_id":"","status":"","title":""})");
    CHECK(decode_field_versions(text) == versions);
}

TEST_CASE("the most common version is the shared one; single versions stay plain", "[sync][versions]") {
    const std::string a = "0000000000000001@0000000000000001", b = "0000000000000002@0000000000000002";
    const json mixed{{"f1", a}, {"f2", b}, {"f3", b}};
    CHECK(encode_field_versions(mixed) == R"({"@":")" + b + R"(","f1":")" + a + R"(","f2":"","f3":""})");
    CHECK(decode_field_versions(encode_field_versions(mixed)) == mixed);
    const json one{{"f1", a}};
    CHECK(encode_field_versions(one) == one.dump());
    const json distinct{{"f1", a}, {"f2", b}};
    CHECK(encode_field_versions(distinct) == distinct.dump());
    CHECK(encode_field_versions(json::object()) == "{}");
}

TEST_CASE("older plain maps and odd texts read as the parser reads them", "[sync][versions]") {
    for (const std::string text : {R"({"a":"x@y","b":"x@y"})", R"({ "a" : "v" })", R"({"a":1})", R"({"a":""})", "[]",
                                   "", "not json", R"({"t\"x":"v"})"}) {
        INFO(text);
        json expected = json::parse(text, nullptr, false);
        if (!expected.is_object()) expected = json::object();
        CHECK(decode_field_versions(text) == expected);
    }
    // The compact form through the full parser (a key with an escape) expands the same way.
    CHECK(decode_field_versions(R"({"@":"v1","a\"b":"","c":"v2"})") == json{{"a\"b", "v1"}, {"c", "v2"}});
}

TEST_CASE("random version maps round-trip", "[sync][versions]") {
    std::mt19937_64 rng(42);
    const std::vector<std::string> pool = {"0000000000000001@00000000000000aa", "0000000000000002@00000000000000aa",
                                           "0000000000000003@00000000000000bb"};
    for (int round = 0; round < 1000; ++round) {
        json versions = json::object();
        for (std::uint64_t n = rng() % 8; n > 0; --n)
            versions["f" + std::to_string(rng() % 12)] = pool[rng() % pool.size()];
        const std::string text = encode_field_versions(versions);
        INFO(text);
        CHECK(decode_field_versions(text) == versions);
        CHECK(json::parse(text).dump() == text);  // canonical JSON ("@" sorts before field names)
    }
}
