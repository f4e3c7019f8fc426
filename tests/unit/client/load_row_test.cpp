// Ubuzima Sync — MIT licence.
// Store::load_row reads `_v` with a fast path for the library's own compact text: every other
// text must read exactly as nlohmann's parser reads it (and a non-object as no versions).
#include <catch2/catch.hpp>

#include "storage/store.hpp"
#include "support/temp_db.hpp"

using nlohmann::json;
using ubuzima::detail::Store;

namespace {

json reference(const std::string& text) {
    json parsed = json::parse(text, nullptr, false);
    return parsed.is_object() ? parsed : json::object();
}

}  // namespace

TEST_CASE("load_row reads every _v text as the JSON parser does", "[client]") {
    ubuzima::test::TempDbFile file("ubuzima_load_row");
    ubuzima::DatabaseOptions options;
    options.path = file.path.string();
    auto store = Store::open(options);
    REQUIRE(store.ok());
    std::lock_guard<std::mutex> lock((*store)->mutex());
    const ubuzima::schema::TableDef* need = (*store)->schema().table("need");
    REQUIRE(need);
    const std::string v = "0001234567890abc@00000000000000ff";
    const std::vector<std::string> texts = {
        "{}",
        R"({"title":")" + v + R"("})",
        R"({"description":")" + v + R"(","priority":"x","title":")" + v + R"("})",
        R"({"t\"itle":"a"})",          // an escaped key
        R"({"title":"a\u00e9"})",      // an escaped value
        R"({ "title" : "a" , "b":"c" })",  // whitespace
        R"({"b":"1","a":"2"})",        // unsorted keys
        R"({"title":1})",              // not a string
        R"({"title":null,"x":"y"})",
        R"({"title":"a"}trailing)",    // not JSON
        R"({"title":"a")",             // cut short
        R"({"title":"a",})",
        R"({"title")",
        R"({)",
        R"([])",
        R"("just a string")",
        "",
        R"({"":""})",
    };
    for (const std::string& text : texts) {
        INFO(text);
        auto set = (*store)->db().prepare(
            "INSERT INTO need (id, _v) VALUES ('n1', ?) ON CONFLICT(id) DO UPDATE SET _v = excluded._v");
        REQUIRE(set.ok());
        REQUIRE(set->bind(1, text).run().ok());
        auto row = (*store)->load_row(*need, "n1");
        REQUIRE(row.ok());
        REQUIRE(row->exists);
        CHECK(row->versions == reference(text));
        auto bare = (*store)->load_row(*need, "n1", /*with_versions=*/false);
        REQUIRE(bare.ok());
        CHECK(bare->versions == json::object());
    }
    // The compact form (a shared version written once under "@") reads back as the full map.
    auto set = (*store)->db().prepare("UPDATE need SET _v = ? WHERE id = 'n1'");
    REQUIRE(set.ok());
    REQUIRE(set->bind(1, R"({"@":")" + v + R"(","description":"","status":"x@y","title":""})").run().ok());
    auto row = (*store)->load_row(*need, "n1");
    REQUIRE(row.ok());
    CHECK(row->versions == json{{"description", v}, {"status", "x@y"}, {"title", v}});
}
