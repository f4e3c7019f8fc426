// Ubuzima Sync — MIT licence.
// Tests of version encoding and ordering, and of generated identifiers.
#include <catch2/catch.hpp>

#include <set>

#include "ubuzima/sync/ids.hpp"
#include "ubuzima/sync/version.hpp"

using namespace ubuzima::sync;

TEST_CASE("Versions round-trip through their 33-character form", "[sync][version]") {
    Version v{make_hlc(1'700'000'000'123, 42), 0x9f2c4e1a77b05d13ULL};
    const std::string s = v.to_string();
    CHECK(s.size() == 33);
    CHECK(s.substr(16) == "@9f2c4e1a77b05d13");
    auto back = Version::parse(s);
    REQUIRE(back);
    CHECK(*back == v);
}

TEST_CASE("Malformed versions are refused", "[sync][version]") {
    for (const char* bad : {"", "0190f3a2b4c10003", "0190f3a2b4c10003@9f2c4e1a77b05d1",
                            "0190F3A2B4C10003@9f2c4e1a77b05d13", "0190f3a2b4c10003#9f2c4e1a77b05d13",
                            "0190f3a2b4c1000g@9f2c4e1a77b05d13", "0190f3a2b4c10003@9f2c4e1a77b05d13x"}) {
        CAPTURE(bad);
        CHECK_FALSE(Version::parse(bad));
    }
}

TEST_CASE("String order of versions equals (hlc, node) order", "[sync][version]") {
    const Version a{make_hlc(1000, 0), 5};
    const Version b{make_hlc(1000, 0), 6};
    const Version c{make_hlc(1000, 1), 1};
    const Version d{make_hlc(1001, 0), 0};
    CHECK(a < b);
    CHECK(b < c);
    CHECK(c < d);
    CHECK(a.to_string() < b.to_string());
    CHECK(b.to_string() < c.to_string());
    CHECK(c.to_string() < d.to_string());
    CHECK(Version{}.is_null());
    CHECK(Version{} < a);
}

TEST_CASE("UUIDv7 ids are well formed, unique and time ordered", "[sync][ids]") {
    std::set<std::string> seen;
    std::string previous;
    for (int i = 0; i < 2000; ++i) {
        const std::string id = new_uuid_v7(1'700'000'000'000 + i);
        REQUIRE(id.size() == 36);
        CHECK(id[14] == '7');
        CHECK((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'));
        CHECK(id > previous);
        previous = id;
        seen.insert(id);
    }
    CHECK(seen.size() == 2000);
    CHECK(new_node_id() != 0);
    CHECK(new_node_id() != new_node_id());
}
