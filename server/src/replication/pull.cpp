// Ubuzima Sync — MIT licence.
// The pull path: cursors, scope fingerprints and one page of the feed, filtered by what the
// caller may see (in SQL: a forged cursor can only move within the caller's own rows).
#include <algorithm>
#include <charconv>
#include <map>

#include "auth/crypto.hpp"
#include "replication/sync_service.hpp"

namespace ubuzima::server {

using sync::Value;

namespace {

bool parse_seq(std::string_view text, std::int64_t& out) {
    if (text.empty() || text.size() > 19) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size() && out >= 0;
}

bool valid_fingerprint(std::string_view s) {
    return !s.empty() && s.size() <= 16 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

}  // namespace

Result<PullCursor> PullCursor::parse(const std::optional<std::string>& text) {
    PullCursor c;
    if (!text || text->empty()) return c;
    std::string_view s(*text);
    const Status malformed(ErrorCode::BadRequest, "cursor is malformed; send back the cursor the server gave, or null");
    if (const std::size_t slash = s.find('/'); slash != std::string_view::npos) {
        std::string_view fp = s.substr(slash + 1);
        if (!fp.empty() && fp.back() == '+') {
            c.full = true;
            fp.remove_suffix(1);
        }
        if (!valid_fingerprint(fp)) return malformed;
        c.scope = std::string(fp);
        s = s.substr(0, slash);
    }
    const std::size_t colon = s.find(':');
    bool ok = false;
    if (colon == std::string_view::npos) {
        ok = parse_seq(s, c.pos);
        c.since = c.pos;
    } else {
        ok = parse_seq(s.substr(0, colon), c.since) && parse_seq(s.substr(colon + 1), c.pos);
    }
    if (!ok || c.since > c.pos) return malformed;
    return c;
}

std::string PullCursor::to_string() const {
    std::string out = since == pos ? std::to_string(pos) : std::to_string(since) + ":" + std::to_string(pos);
    if (!scope.empty()) out += "/" + scope + (full ? "+" : "");
    return out;
}

std::string scope_fingerprint(const AuthUser& user, const std::string& feed_epoch) {
    if (user.sees_all() && feed_epoch.empty()) return "all";
    std::string joined = feed_epoch.empty() ? "" : "epoch " + feed_epoch + "\n";
    if (user.sees_all()) {
        joined += "*";
    } else {
        std::vector<std::string> facilities = user.facilities;
        std::sort(facilities.begin(), facilities.end());
        for (const std::string& f : facilities) joined += f + "\n";
    }
    return sha256_hex(joined).substr(0, 12);
}

namespace {

/// Whether a pull from `since` may leave out a field this device wrote itself: only while the
/// row has not moved since. A move away sent the device a `gone` entry and it dropped its copy
/// (if it did not see where the row went); a move back re-sends the whole row, and the device's
/// own fields are part of what it no longer has. A device that kept its copy (it sees both
/// facilities) gets its own values again: a no-op merge, on the rare path of a move.
bool device_holds_own_fields(std::int64_t moved_seq, std::int64_t since) { return moved_seq <= since; }

}  // namespace

Status SyncService::pull(const AuthUser& user, const sync::SyncRequest& request, sync::SyncResponse& response,
                         const WrittenRows* written) {
    auto parsed = PullCursor::parse(request.cursor);
    if (!parsed.ok()) return parsed.status();
    PullCursor in = *parsed;
    const std::string scope = scope_fingerprint(user, m_store.feed_epoch());
    if (!in.scope.empty() && in.scope != scope) {
        // What the user may see changed since this cursor was made: rows that became visible may
        // sit anywhere behind it, and rows that are no longer visible are on the device. Start
        // over, and tell the device what it may keep (it drops the rest first).
        in = PullCursor{};
        in.full = true;
        sync::ScopeNotice notice;
        notice.all = user.sees_all();
        if (!notice.all) notice.facilities = user.facilities;
        response.scope = std::move(notice);
    }
    // A full pull (after a scope change, until it has caught up) sends the device's own writes
    // too: it may have dropped them with a facility that is now visible again.
    const bool full = in.full;
    if (full) written = nullptr;
    const int limit = std::clamp(request.limit, 1, std::max(1, m_options.max_page));
    return m_store.read([&](ReadTxn& tx) -> Status {
        auto entries = tx.feed_after(in.pos, user.sees_all() ? nullptr : &user.facilities, limit + 1);
        if (!entries.ok()) return entries.status();
        response.more = entries->size() > static_cast<std::size_t>(limit);
        if (response.more) entries->resize(static_cast<std::size_t>(limit));
        // The device wrote every field of the row it lacks: no need to read it back.
        auto only_own_writes = [&](const FeedEntry& e) {
            if (e.gone || !written) return false;
            auto w = written->find({e.table, e.row_id});
            if (w == written->end() || w->second.seq != e.seq) return false;
            const bool holds_own = device_holds_own_fields(w->second.moved_seq, in.since);
            for (const auto& [field, version] : w->second.versions) {
                auto seq = w->second.seqs.find(field);
                if (seq != w->second.seqs.end() && seq->second > in.since && (version.node != request.node || !holds_own))
                    return false;
            }
            return true;
        };
        // The page's rows, with one read per table (one statement each on PostgreSQL).
        std::vector<bool> skip(entries->size());
        std::map<std::string, std::vector<std::string>> wanted;
        for (std::size_t i = 0; i < entries->size(); ++i) {
            skip[i] = only_own_writes((*entries)[i]);
            if (!skip[i]) wanted[(*entries)[i].table].push_back((*entries)[i].row_id);
        }
        auto rows = read_rows_by_table(tx, m_schema, std::move(wanted));
        if (!rows.ok()) return rows.status();
        for (std::size_t i = 0; i < entries->size(); ++i) {
            const FeedEntry& e = (*entries)[i];
            const schema::TableDef* t = m_schema.table(e.table);
            if (!t || skip[i]) continue;
            const std::map<std::string, StoredRow>& table_rows = (*rows)[e.table];
            auto found = table_rows.find(e.row_id);
            if (found == table_rows.end()) continue;
            const StoredRow* row = &found->second;
            if (e.gone) {
                // The row left a facility this user sees; it is gone for them unless they see
                // where it went too (then its live entry carries it).
                const std::optional<std::string> now_in = row_scope(*t, *row);
                if (!user.sees_all() && now_in && !user.may_see(*now_in))
                    response.changes.push_back(sync::RowChange{e.table, e.row_id, {}, true});
                continue;
            }
            sync::RowChange rc{e.table, e.row_id, {}, false};
            const bool skip_own = !full && device_holds_own_fields(row->moved_seq, in.since);
            for (const auto& [field, version] : row->versions) {
                auto seq = row->seqs.find(field);
                if (seq == row->seqs.end() || seq->second <= in.since) continue;
                // The requesting device wrote the current value itself: it has it already.
                if (skip_own && version.node == request.node) continue;
                auto value = row->values.find(field);
                auto overwrote = row->overwrote.find(field);
                rc.fields[field] = {value == row->values.end() ? Value() : value->second, version,
                                    overwrote == row->overwrote.end() ? sync::Version{} : overwrote->second};
            }
            if (!rc.fields.empty()) response.changes.push_back(std::move(rc));
        }
        PullCursor out{in.since, entries->empty() ? in.pos : entries->back().seq, scope, full};
        // Once caught up the next pull starts afresh from here.
        if (!response.more) {
            out.since = out.pos;
            out.full = false;
        }
        response.cursor = out.to_string();
        return Status();
    });
}

}  // namespace ubuzima::server
