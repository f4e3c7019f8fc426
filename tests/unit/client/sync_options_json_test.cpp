// Ubuzima Sync — MIT licence.
// The sync options a binding passes as JSON: every key applied, every mistake refused by name.
#include <catch2/catch.hpp>

#include "c_api/sync_options_json.hpp"

using ubuzima::ErrorCode;
using ubuzima::SyncOptions;
using ubuzima::detail::sync_options_from_json;

TEST_CASE("Sync options from JSON apply every key and keep the defaults of the others", "[client][c_api]") {
    auto o = sync_options_from_json(R"({"server_url":"https://moh.example","connect_timeout_ms":2500,
        "timeout_ms":15000,"batch_size":50,"page_limit":200,"max_round_trips":30,
        "retry":{"max_attempts":3,"initial_backoff_ms":100,"max_backoff_ms":4000,"jitter":0.25}})",
                                    SyncOptions{});
    REQUIRE(o.ok());
    CHECK(o->server_url == "https://moh.example");
    CHECK(o->timeouts.connect_timeout_ms == 2500);
    CHECK(o->timeouts.timeout_ms == 15000);
    CHECK(o->batch_size == 50);
    CHECK(o->page_limit == 200);
    CHECK(o->max_round_trips == 30);
    CHECK(o->retry.max_attempts == 3);
    CHECK(o->retry.initial_backoff_ms == 100);
    CHECK(o->retry.max_backoff_ms == 4000);
    CHECK(o->retry.jitter == 0.25);

    auto partial = sync_options_from_json(R"({"batch_size":7})", SyncOptions{});
    REQUIRE(partial.ok());
    CHECK(partial->batch_size == 7);
    CHECK(partial->page_limit == SyncOptions{}.page_limit);
    CHECK(partial->retry.max_attempts == SyncOptions{}.retry.max_attempts);
    CHECK(sync_options_from_json("{}", SyncOptions{}).ok());
}

TEST_CASE("Sync options from JSON refuse mistakes with the key's name", "[client][c_api]") {
    struct Case {
        const char* json;
        ErrorCode code;
        const char* names;
    };
    const Case cases[] = {
        {"", ErrorCode::InvalidJson, "JSON"},
        {"{", ErrorCode::InvalidJson, "JSON"},
        {"[1]", ErrorCode::InvalidArgument, "object"},
        {R"({"batch":5})", ErrorCode::InvalidArgument, "batch"},
        {R"({"batch_size":0})", ErrorCode::InvalidArgument, "batch_size"},
        {R"({"batch_size":-3})", ErrorCode::InvalidArgument, "batch_size"},
        {R"({"batch_size":2.5})", ErrorCode::InvalidArgument, "batch_size"},
        {R"({"batch_size":"10"})", ErrorCode::InvalidArgument, "batch_size"},
        {R"({"page_limit":99999999999})", ErrorCode::InvalidArgument, "page_limit"},
        {R"({"timeout_ms":18446744073709551615})", ErrorCode::InvalidArgument, "timeout_ms"},
        {R"({"timeout_ms":0})", ErrorCode::InvalidArgument, "timeout_ms"},
        {R"({"server_url":7})", ErrorCode::InvalidArgument, "server_url"},
        {R"({"retry":3})", ErrorCode::InvalidArgument, "retry"},
        {R"({"retry":{"max_attempts":0}})", ErrorCode::InvalidArgument, "retry.max_attempts"},
        {R"({"retry":{"jitter":1.5}})", ErrorCode::InvalidArgument, "retry.jitter"},
        {R"({"retry":{"backoff":1}})", ErrorCode::InvalidArgument, "retry.backoff"},
    };
    for (const Case& c : cases) {
        INFO(c.json);
        auto o = sync_options_from_json(c.json, SyncOptions{});
        REQUIRE_FALSE(o.ok());
        CHECK(o.status().code() == c.code);
        CHECK(o.status().message().find(c.names) != std::string::npos);
    }
}
