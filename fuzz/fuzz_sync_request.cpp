// Ubuzima Sync — MIT licence.
// libFuzzer target: the server's first look at a /v1/sync body (decode + schema validation).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ubuzima/schema/schema.hpp"
#include "ubuzima/sync/protocol.hpp"

namespace {

namespace schema = ubuzima::schema;
namespace sync = ubuzima::sync;

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "fuzz_sync_request: %s: %s\n", what, detail.c_str());
    std::abort();
}

// Every field of a decoded change goes through the checks the server's push path applies.
void validate_change(const sync::Change& change) {
    const schema::TableDef* table = schema::Schema::builtin().table(change.table);
    if (!table) return;
    (void)schema::validate_fields(*table, change.fields, true);
    (void)schema::validate_fields(*table, change.fields, false);
    for (const auto& [name, value] : change.fields) {
        if (const schema::FieldDef* field = table->field(name)) (void)schema::validate_value(*field, value);
        if (table->seal && table->seal->field == name) (void)table->is_sealing_value(value);
        (void)schema::is_void_field(name);
    }
    for (const auto& [name, base] : change.base) (void)change.base_of(name), (void)base.to_string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    auto request = sync::decode_sync_request(body);
    if (!request.ok()) {
        // The error must be presentable as the JSON error body the server sends.
        (void)sync::encode_error(request.status());
        return 0;
    }
    if (request->batch)
        for (const sync::Change& change : request->batch->changes) validate_change(change);

    // What decodes must re-encode to a body that decodes to the same message: the client and
    // server rely on the codec being its own inverse.
    const std::string once = sync::encode_sync_request(*request);
    auto again = sync::decode_sync_request(once);
    if (!again.ok()) fail("re-encoded request does not decode", again.status().to_string() + " in " + once);
    const std::string twice = sync::encode_sync_request(*again);
    if (twice != once) fail("encode/decode is not stable", once + " vs " + twice);
    return 0;
}
