// Ubuzima Sync — MIT licence.
// Appending to and verifying the hash-chained audit log.
#include "audit/audit_log.hpp"

#include <charconv>

#include "auth/crypto.hpp"

namespace ubuzima::server {

namespace {

const std::string kZeroHash(64, '0');
constexpr int kVerifyPage = 1000;

std::string be64(std::int64_t v) {
    std::string out(8, '\0');
    for (int i = 7; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
        v >>= 8;
    }
    return out;
}

// The content a record's hash covers, in a fixed field order without whitespace. A JSON array
// so that no field can bleed into the next (every string is quoted and escaped).
std::string canonical_content(const AuditRecord& r) {
    const nlohmann::json content = {r.ts_ms, r.actor_user, r.actor_device, r.action, r.object, r.outcome, r.address};
    return content.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string audit_record_hash(const AuditRecord& r) {
    std::string prev_raw;
    if (!from_hex(r.prev_hash, prev_raw)) prev_raw = r.prev_hash;  // a damaged link still hashes (and then mismatches)
    std::string input("ubuzima-audit-v1", 16);
    input.push_back('\0');
    input += be64(r.seq);
    input += prev_raw;
    input += canonical_content(r);
    return sha256_hex(input);
}

Status append_audit(WriteTxn& tx, const AuditEvent& event, std::int64_t now_ms) {
    auto last = tx.last_audit();
    if (!last.ok()) return last.status();
    AuditRecord r;
    r.seq = *last ? (*last)->seq + 1 : 1;
    r.ts_ms = now_ms;
    r.actor_user = event.actor_user;
    r.actor_device = event.actor_device;
    r.action = event.action;
    r.object = event.object;
    r.outcome = event.outcome.is_object() ? event.outcome.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                          : std::string("{}");
    r.address = event.address;
    r.prev_hash = *last ? (*last)->hash : kZeroHash;
    r.hash = audit_record_hash(r);
    return tx.insert_audit(r);
}

std::string AuditHead::to_string() const { return "ubuzima-audit-head " + std::to_string(seq) + " " + hash; }

std::optional<AuditHead> AuditHead::parse(const std::string& text) {
    std::string_view s(text);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
    constexpr std::string_view kTag = "ubuzima-audit-head ";
    if (s.substr(0, kTag.size()) == kTag) s.remove_prefix(kTag.size());
    const std::size_t space = s.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    AuditHead head;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + space, head.seq);
    if (ec != std::errc() || end != s.data() + space || head.seq < 0) return std::nullopt;
    head.hash = std::string(s.substr(space + 1));
    std::string raw;
    if (head.hash.size() != 64 || !from_hex(head.hash, raw)) return std::nullopt;
    return head;
}

Result<AuditVerdict> verify_audit(ServerStore& store, const std::optional<AuditHead>& saved) {
    AuditVerdict v;
    v.head = AuditHead{0, kZeroHash};
    std::optional<std::string> hash_at_saved;
    auto fail = [&](std::int64_t seq, std::string problem) {
        if (!v.intact) return;
        v.intact = false;
        v.first_bad = seq;
        v.problem = std::move(problem);
    };
    const Status read = store.read([&](ReadTxn& tx) -> Status {
        std::int64_t after = 0;
        for (;;) {
            auto page = tx.audit_after(after, kVerifyPage);
            if (!page.ok()) return page.status();
            for (const AuditRecord& r : *page) {
                const std::int64_t expected = v.head.seq + 1;
                if (r.seq != expected) {
                    fail(expected, "record " + std::to_string(expected) + " is missing (the log goes from " +
                                       std::to_string(v.head.seq) + " to " + std::to_string(r.seq) +
                                       "): records were deleted");
                } else if (r.prev_hash != v.head.hash) {
                    fail(r.seq, "record " + std::to_string(r.seq) + " does not link to record " +
                                    std::to_string(v.head.seq) + ": records were reordered or inserted, or record " +
                                    std::to_string(v.head.seq) + " was rewritten");
                } else if (audit_record_hash(r) != r.hash) {
                    fail(r.seq, "record " + std::to_string(r.seq) + " does not match its hash: it was edited");
                }
                ++v.records;
                v.head = AuditHead{r.seq, r.hash};
                if (saved && r.seq == saved->seq) hash_at_saved = r.hash;
                after = r.seq;
            }
            if (page->size() < static_cast<std::size_t>(kVerifyPage)) return Status();
        }
    });
    if (!read.ok()) return read;
    if (saved && saved->seq > 0) {
        if (v.head.seq < saved->seq) {
            fail(v.head.seq + 1, "the log ends at record " + std::to_string(v.head.seq) + " but the saved head is record " +
                                     std::to_string(saved->seq) + ": records " + std::to_string(v.head.seq + 1) + " to " +
                                     std::to_string(saved->seq) + " were deleted from the end");
        } else if (!hash_at_saved || *hash_at_saved != saved->hash) {
            fail(saved->seq, "record " + std::to_string(saved->seq) +
                                 " differs from the saved head: the log was rewritten up to there");
        }
    }
    return v;
}

}  // namespace ubuzima::server
