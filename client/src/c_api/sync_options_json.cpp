// Ubuzima Sync — MIT licence.
// Sync options from JSON, with every key, type and range checked.
#include "c_api/sync_options_json.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace ubuzima::detail {

namespace {

using nlohmann::json;

Status invalid(const std::string& key, const std::string& why) {
    return Status(ErrorCode::InvalidArgument, "sync option " + key + " " + why);
}

/// An integer in [min, max] (JSON numbers with a fraction are refused).
Status integer(const json& value, const std::string& key, std::int64_t min, std::int64_t max, std::int64_t& out) {
    if (!value.is_number_integer()) return invalid(key, "must be an integer");
    if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(max))
        return invalid(key, "must be at most " + std::to_string(max));
    const std::int64_t v = value.get<std::int64_t>();
    if (v < min || v > max) return invalid(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    out = v;
    return {};
}

Status small_integer(const json& value, const std::string& key, int min, int& out) {
    std::int64_t v = 0;
    UBUZIMA_TRY(integer(value, key, min, std::numeric_limits<int>::max(), v));
    out = static_cast<int>(v);
    return {};
}

constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;  // a day: anything longer is a mistake

Status apply_retry(const json& r, RetryPolicy& retry) {
    if (!r.is_object()) return invalid("retry", "must be an object");
    for (auto it = r.begin(); it != r.end(); ++it) {
        const std::string key = "retry." + it.key();
        if (it.key() == "max_attempts") {
            UBUZIMA_TRY(small_integer(it.value(), key, 1, retry.max_attempts));
        } else if (it.key() == "initial_backoff_ms") {
            UBUZIMA_TRY(integer(it.value(), key, 0, kMaxMs, retry.initial_backoff_ms));
        } else if (it.key() == "max_backoff_ms") {
            UBUZIMA_TRY(integer(it.value(), key, 0, kMaxMs, retry.max_backoff_ms));
        } else if (it.key() == "jitter") {
            if (!it.value().is_number() || it.value().get<double>() < 0 || it.value().get<double>() > 1)
                return invalid(key, "must be a number between 0 and 1");
            retry.jitter = it.value().get<double>();
        } else {
            return invalid(key, "is unknown");
        }
    }
    return {};
}

/// "sha256//a;sha256//b" or ["sha256//a", "sha256//b"]: each a base64 SHA-256 (44 characters).
Status apply_pins(const json& v, std::string& out) {
    std::vector<std::string> pins;
    if (v.is_string()) {
        std::string all = v.get<std::string>();
        for (std::size_t start = 0; start <= all.size();) {
            const std::size_t semi = all.find(';', start);
            pins.push_back(all.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
            if (semi == std::string::npos) break;
            start = semi + 1;
        }
    } else if (v.is_array()) {
        for (const json& p : v) {
            if (!p.is_string()) return invalid("pins", "must be a string or an array of strings");
            pins.push_back(p.get<std::string>());
        }
    } else {
        return invalid("pins", "must be \"sha256//...;sha256//...\" or an array of such pins");
    }
    out.clear();
    for (const std::string& p : pins) {
        if (p.size() != 52 || p.compare(0, 8, "sha256//") != 0)
            return invalid("pins", "entry '" + p + "' is not sha256//<44 base64 characters>");
        out += (out.empty() ? "" : ";") + p;
    }
    return {};
}

}  // namespace

Result<SyncOptions> sync_options_from_json(std::string_view text, SyncOptions base) {
    const json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return Status(ErrorCode::InvalidJson, "sync options are not valid JSON");
    if (!j.is_object()) return Status(ErrorCode::InvalidArgument, "sync options must be a JSON object");
    SyncOptions o = std::move(base);
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& key = it.key();
        const json& v = it.value();
        if (key == "server_url") {
            if (!v.is_string()) return invalid(key, "must be a string");
            o.server_url = v.get<std::string>();
        } else if (key == "connect_timeout_ms") {
            UBUZIMA_TRY(integer(v, key, 1, kMaxMs, o.timeouts.connect_timeout_ms));
        } else if (key == "timeout_ms") {
            UBUZIMA_TRY(integer(v, key, 1, kMaxMs, o.timeouts.timeout_ms));
        } else if (key == "batch_size") {
            UBUZIMA_TRY(small_integer(v, key, 1, o.batch_size));
        } else if (key == "page_limit") {
            UBUZIMA_TRY(small_integer(v, key, 1, o.page_limit));
        } else if (key == "max_round_trips") {
            UBUZIMA_TRY(small_integer(v, key, 1, o.max_round_trips));
        } else if (key == "retry") {
            UBUZIMA_TRY(apply_retry(v, o.retry));
        } else if (key == "ca_file") {
            if (!v.is_string()) return invalid(key, "must be a string (a PEM file path)");
            o.timeouts.ca_file = v.get<std::string>();
        } else if (key == "ca_pem") {
            if (!v.is_string() || v.get_ref<const std::string&>().find("-----BEGIN CERTIFICATE-----") == std::string::npos)
                return invalid(key, "must be PEM text holding at least one CERTIFICATE");
            o.timeouts.ca_pem = v.get<std::string>();
        } else if (key == "pins") {
            UBUZIMA_TRY(apply_pins(v, o.timeouts.pinned_public_keys));
        } else {
            return invalid(key, "is unknown");
        }
    }
    // A transport built for the old timeouts would ignore the new ones.
    o.transport = nullptr;
    return o;
}

}  // namespace ubuzima::detail
