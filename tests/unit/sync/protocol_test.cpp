// Ubuzima Sync — MIT licence.
// Tests of the sync message codec: round trips and strict rejection of hostile input.
#include <catch2/catch.hpp>

#include "ubuzima/sync/protocol.hpp"

using namespace ubuzima;
using namespace ubuzima::sync;
using namespace std::string_literals;
using nlohmann::json;

namespace {
SyncRequest sample_request() {
    SyncRequest req;
    req.schema_version = 1;
    req.node = 0x9f2c4e1a77b05d13ULL;
    req.clock = make_hlc(1'700'000'000'000, 3);
    Change c;
    c.table = "needs_assessment";
    c.row_id = "0193a0c2-0000-7000-8000-000000000001";
    c.version = Version{make_hlc(1'700'000'000'000, 3), req.node};
    c.fields = {{"status", "draft"}, {"visit_date", "2026-11-20"}, {"facility_id", "fac-gisenyi"}};
    c.base = {{"status", Version{make_hlc(1'600'000'000'000, 0), 7}}};
    req.batch = PushBatch{"batch-1", {c}};
    req.cursor = "42";
    req.limit = 500;
    return req;
}
}  // namespace

TEST_CASE("Sync requests round-trip through JSON", "[sync][codec]") {
    const SyncRequest req = sample_request();
    auto back = decode_sync_request(encode_sync_request(req));
    REQUIRE(back.ok());
    CHECK(back->node == req.node);
    CHECK(back->clock == req.clock);
    CHECK(back->cursor == req.cursor);
    CHECK(back->limit == 500);
    REQUIRE(back->batch);
    REQUIRE(back->batch->changes.size() == 1);
    const Change& c = back->batch->changes[0];
    CHECK(c.table == "needs_assessment");
    CHECK(c.version == req.batch->changes[0].version);
    CHECK(c.fields.at("status") == "draft");
    CHECK(c.base_of("status") == req.batch->changes[0].base.at("status"));
    CHECK(c.base_of("visit_date").is_null());
}

TEST_CASE("Sync responses round-trip through JSON", "[sync][codec]") {
    SyncResponse resp;
    resp.server_clock = make_hlc(1'700'000'000'500, 0);
    PushResult push;
    push.batch = "batch-1";
    push.applied = 3;
    push.conflicts.push_back(ConflictReport{"need", "n1", "priority", {"high", Version{9, 1}}, {"low", Version{8, 2}}});
    Rejection rej;
    rej.index = 2;
    rej.code = ErrorCode::Sealed;
    rej.message = "submitted";
    rej.current = std::map<std::string, VersionedValue>{{"status", {"submitted", Version{5, 5}}}};
    push.rejected.push_back(rej);
    resp.push = push;
    resp.changes.push_back(RowChange{"facility", "fac-butaro", {{"name", {"Butaro District Hospital", Version{3, 4}}}}, false});
    resp.changes.push_back(RowChange{"need", "n9", {}, true});
    resp.cursor = "17";
    resp.more = true;

    auto back = decode_sync_response(encode_sync_response(resp));
    REQUIRE(back.ok());
    CHECK(back->server_clock == resp.server_clock);
    CHECK(back->cursor == "17");
    CHECK(back->more);
    REQUIRE(back->push);
    CHECK(back->push->applied == 3);
    REQUIRE(back->push->conflicts.size() == 1);
    CHECK(back->push->conflicts[0].lost.value == "low");
    REQUIRE(back->push->rejected.size() == 1);
    CHECK(back->push->rejected[0].code == ErrorCode::Sealed);
    REQUIRE(back->push->rejected[0].current);
    CHECK(back->push->rejected[0].current->at("status").value == "submitted");
    REQUIRE(back->changes.size() == 2);
    CHECK(back->changes[0].fields.at("name").version == Version{3, 4});
    CHECK_FALSE(back->changes[0].gone);
    CHECK(back->changes[1].gone);
    CHECK(back->changes[1].row_id == "n9");
    CHECK(back->changes[1].fields.empty());
    CHECK(encode_sync_response(*back).find(R"({"gone":true,"id":"n9","t":"need"})") != std::string::npos);
}

TEST_CASE("Malformed sync requests get a clear error, never a crash", "[sync][codec]") {
    struct Case {
        const char* body;
        ErrorCode code;
    };
    const Case cases[] = {
        {"", ErrorCode::InvalidJson},
        {"{", ErrorCode::InvalidJson},
        {"[1,2]", ErrorCode::BadRequest},
        {"{}", ErrorCode::BadRequest},
        {R"({"protocol":"1","schema_version":1,"node":"0000000000000001"})", ErrorCode::BadRequest},
        {R"({"protocol":2,"schema_version":1,"node":"0000000000000001"})", ErrorCode::ProtocolMismatch},
        {R"({"protocol":1,"schema_version":0,"node":"0000000000000001"})", ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"xyz"})", ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"0000000000000001","limit":-5})", ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"0000000000000001","cursor":7})", ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"0000000000000001","batch":[]})", ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"0000000000000001","batch":{"id":"b","changes":[{"t":"need"}]}})",
         ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"0000000000000001","batch":{"id":"b","changes":[{"t":"need","id":"x","v":"bad","f":{"a":1}}]}})",
         ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"0000000000000001","batch":{"id":"b","changes":[{"t":"need","id":"x","v":"0000000000000001@0000000000000001","f":{}}]}})",
         ErrorCode::BadRequest},
        {R"({"protocol":1,"schema_version":1,"node":"0000000000000001","batch":{"id":"b","changes":[{"t":"need","id":"x","v":"0000000000000001@0000000000000001","f":{"a":1},"b":{"a":12}}]}})",
         ErrorCode::BadRequest},
    };
    for (const Case& c : cases) {
        CAPTURE(c.body);
        auto r = decode_sync_request(c.body);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == c.code);
        CHECK_FALSE(r.status().message().empty());
    }
}

TEST_CASE("Limits are clamped and an absent batch is fine", "[sync][codec]") {
    auto r = decode_sync_request(R"({"protocol":1,"schema_version":1,"node":"0000000000000001","limit":1000000})");
    REQUIRE(r.ok());
    CHECK(r->limit == 5000);
    CHECK_FALSE(r->batch);
    CHECK_FALSE(r->cursor);
}

TEST_CASE("Error bodies encode and decode", "[sync][codec]") {
    const std::string body = encode_error(Status(ErrorCode::TokenExpired, "access token expired"));
    CHECK(body == R"({"error":{"code":"token_expired","message":"access token expired"}})");
    Status s = decode_error(body, ErrorCode::Internal);
    CHECK(s.code() == ErrorCode::TokenExpired);
    CHECK(s.message() == "access token expired");
    CHECK(decode_error("<html>bad gateway</html>", ErrorCode::Unavailable).code() == ErrorCode::Unavailable);
    CHECK(http_status(ErrorCode::TooLarge) == 413);
    CHECK(wire_code(ErrorCode::ClockSkew) == "clock_skew");
    CHECK(error_code_from_wire("sealed") == ErrorCode::Sealed);
}

TEST_CASE("Error bodies stay JSON when the message quotes bytes that are not UTF-8", "[sync][codec][fuzz]") {
    // Found by fuzz_server_request: a 404 for path "\xdd\xf0" threw in dump() and became a 500.
    const std::string body = encode_error(Status(ErrorCode::NotFound, "no route \xdd\xf0"));
    const auto j = nlohmann::json::parse(body, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["error"]["code"] == "not_found");
    CHECK(decode_error(body, ErrorCode::Internal).code() == ErrorCode::NotFound);
}

TEST_CASE("A rejection whose message is not a string decodes without throwing", "[sync][codec][fuzz]") {
    // Found by fuzz_client_response: json::value("message", "") threw on "message": null.
    const char* body = R"({"protocol":1,"server_clock":"0000000000000001","changes":[],"cursor":"1","more":false,
        "push":{"batch":"b","applied":0,"conflicts":[],"rejected":[{"index":0,"code":"sealed","message":null}]}})";
    auto r = decode_sync_response(body);
    REQUIRE(r.ok());
    REQUIRE(r->push);
    REQUIRE(r->push->rejected.size() == 1);
    CHECK(r->push->rejected[0].code == ErrorCode::Sealed);
    CHECK(r->push->rejected[0].message.empty());
}

TEST_CASE("A pulled change is either fields or gone, never half of each", "[sync][codec]") {
    auto body = [](const std::string& change) {
        return R"({"protocol":1,"server_clock":"0000000000000001","cursor":"1","more":false,"changes":[)" + change + "]}";
    };
    CHECK(decode_sync_response(body(R"({"t":"need","id":"n1","gone":true})")).ok());
    for (const char* bad : {R"({"t":"need","id":"n1"})", R"({"t":"need","id":"n1","gone":false})",
                            R"({"t":"need","id":"n1","gone":true,"d":{}})",
                            R"({"t":"need","id":"n1","gone":1})", R"({"t":"need","id":"n1","gone":true,"f":{}})",
                            R"({"t":"need","gone":true})"}) {
        INFO(bad);
        auto r = decode_sync_response(body(bad));
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == ErrorCode::BadRequest);
    }
}

TEST_CASE("A pulled row sends its common version once", "[sync][codec]") {
    SyncResponse resp;
    resp.server_clock = 9;
    resp.cursor = "3";
    const Version common{sync::make_hlc(1'700'000'000'000, 0), 0xabc}, other{sync::make_hlc(1'700'000'100'000, 0), 0xdef};
    resp.changes.push_back(RowChange{"need", "n1",
                                     {{"title", {"Mentoring", common}},
                                      {"priority", {"high", common}},
                                      {"facility_id", {"fac-butaro", common}},
                                      {"status", {"validated", other}},
                                      {"description", {"kept", common, other}}},
                                     false});
    resp.changes.push_back(RowChange{"need", "n2", {{"title", {"Alone", other}}}, false});
    const std::string wire = encode_sync_response(resp);
    const json j = json::parse(wire);
    const json& row = j["changes"][0];
    CHECK(row["v"] == common.to_string());
    CHECK(row["d"] == json{{"title", "Mentoring"}, {"priority", "high"}, {"facility_id", "fac-butaro"}});
    CHECK(row["f"]["status"] == json::array({"validated", other.to_string()}));
    CHECK(row["f"]["description"] == json::array({"kept", common.to_string(), other.to_string()}));
    CHECK_FALSE(j["changes"][1].contains("v"));  // one field: nothing to share
    std::size_t mentions = 0;  // "v", and the entry whose value overwrote another
    for (auto at = wire.find(common.to_string()); at != std::string::npos; at = wire.find(common.to_string(), at + 1))
        ++mentions;
    CHECK(mentions == 2);

    auto back = decode_sync_response(wire);
    REQUIRE(back.ok());
    REQUIRE(back->changes.size() == 2);
    const auto& f = back->changes[0].fields;
    REQUIRE(f.size() == 5);
    CHECK(f.at("title").value == "Mentoring");
    CHECK(f.at("title").version == common);
    CHECK(f.at("title").overwrote.is_null());
    CHECK(f.at("status").version == other);
    CHECK(f.at("description").overwrote == other);
    CHECK(back->changes[1].fields.at("title").version == other);

    auto body = [](const std::string& change) {
        return R"({"protocol":1,"server_clock":"0000000000000001","cursor":"1","more":false,"changes":[)" + change + "]}";
    };
    const std::string v = common.to_string();
    for (const std::string& bad : {R"({"t":"need","id":"n1","d":{"title":"x"}})"s,
                                   R"({"t":"need","id":"n1","v":")" + v + R"("})",
                                   R"({"t":"need","id":"n1","v":")" + v + R"(","d":[1]})",
                                   R"({"t":"need","id":"n1","v":"nope","d":{"title":"x"}})"s,
                                   R"({"t":"need","id":"n1","v":")" + v + R"(","d":{"title":"x"},"f":{"title":["y",")" + v + R"("]}})"}) {
        INFO(bad);
        auto r = decode_sync_response(body(bad));
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == ErrorCode::BadRequest);
    }
}
