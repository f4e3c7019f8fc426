// Ubuzima Sync — MIT licence.
// Sync round trips, pull pages, seeds and conflict resolution.
#include "sync/sync_service.hpp"

#include <charconv>

namespace ubuzima::server {

using sync::Value;

namespace {

bool parse_seq(std::string_view text, std::int64_t& out) {
    if (text.empty() || text.size() > 19) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size() && out >= 0;
}

}  // namespace

Result<PullCursor> PullCursor::parse(const std::optional<std::string>& text) {
    PullCursor c;
    if (!text || text->empty()) return c;
    const std::string_view s(*text);
    const std::size_t colon = s.find(':');
    bool ok = false;
    if (colon == std::string_view::npos) {
        ok = parse_seq(s, c.pos);
        c.since = c.pos;
    } else {
        ok = parse_seq(s.substr(0, colon), c.since) && parse_seq(s.substr(colon + 1), c.pos);
    }
    if (!ok || c.since > c.pos)
        return Status(ErrorCode::BadRequest, "cursor is malformed; send back the cursor the server gave, or null");
    return c;
}

std::string PullCursor::to_string() const {
    return since == pos ? std::to_string(pos) : std::to_string(since) + ":" + std::to_string(pos);
}

Status SyncService::apply_seeds() {
    const sync::NodeId node = m_store.node_id();
    return m_store.write([&](WriteTxn& tx) -> Status {
        for (const schema::SeedTable& seed : schema::builtin_seed()) {
            const schema::TableDef* t = schema::Schema::builtin().table(seed.table);
            if (!t) continue;
            for (const Value& r : seed.rows) {
                if (!r.is_object() || !r.contains("id") || !r["id"].is_string()) continue;
                const std::string id = r["id"].get<std::string>();
                auto row = tx.read_row(*t, id);
                if (!row.ok()) return row.status();
                if (*row) continue;  // already there (maybe edited since): never overwrite
                sync::Change ch;
                ch.table = t->name;
                ch.row_id = id;
                ch.version = sync::Version{m_clock.now(), node};
                for (auto it = r.begin(); it != r.end(); ++it)
                    if (it.key() != "id" && t->field(it.key())) ch.fields.emplace(it.key(), it.value());
                if (ch.fields.empty()) continue;
                auto applied = apply_change(tx, *t, std::nullopt, ch, m_options.wall());
                if (!applied.ok()) return applied.status();
            }
        }
        return tx.save_clock(m_clock.last());
    });
}

Result<sync::SyncResponse> SyncService::sync(const AuthUser& user, const sync::SyncRequest& request) {
    auto cursor = PullCursor::parse(request.cursor);
    if (!cursor.ok()) return cursor.status();
    // A clock too far ahead is not absorbed: one bad device must not drag the server's time along.
    if (request.clock) m_clock.observe(request.clock, m_options.clock_skew_ms);

    sync::SyncResponse response;
    WrittenRows written;
    if (request.batch) {
        sync::PushResult result;
        const Status pushed_ok = m_store.write([&](WriteTxn& tx) -> Status {
            written.clear();  // a retried transaction starts over
            auto pushed = push(tx, user, *request.batch, &written);
            if (!pushed.ok()) return pushed.status();
            result = std::move(*pushed);
            return tx.save_clock(m_clock.last());
        });
        if (!pushed_ok.ok()) return pushed_ok;
        response.push = std::move(result);
    }
    UBUZIMA_TRY(pull(user, request, response, &written));
    response.server_clock = m_clock.now();
    return response;
}

Status SyncService::pull(const AuthUser& user, const sync::SyncRequest& request, sync::SyncResponse& response,
                         const WrittenRows* written) {
    auto parsed = PullCursor::parse(request.cursor);
    if (!parsed.ok()) return parsed.status();
    const PullCursor in = *parsed;
    const int limit = request.limit < 1 ? 1 : request.limit;
    return m_store.read([&](ReadTxn& tx) -> Status {
        auto entries = tx.feed_after(in.pos, user.sees_all() ? nullptr : &user.facilities, limit + 1);
        if (!entries.ok()) return entries.status();
        response.more = entries->size() > static_cast<std::size_t>(limit);
        if (response.more) entries->resize(static_cast<std::size_t>(limit));
        for (const FeedEntry& e : *entries) {
            const schema::TableDef* t = schema::Schema::builtin().table(e.table);
            if (!t) continue;
            if (!e.gone && written) {
                auto w = written->find({e.table, e.row_id});
                if (w != written->end() && w->second.seq == e.seq) {
                    bool any = false;
                    for (const auto& [field, version] : w->second.versions) {
                        auto seq = w->second.seqs.find(field);
                        if (seq != w->second.seqs.end() && seq->second > in.since && version.node != request.node) any = true;
                    }
                    if (!any) continue;  // the device wrote every field it lacks: no need to read it back
                }
            }
            auto row = tx.read_row(*t, e.row_id);
            if (!row.ok()) return row.status();
            if (!*row) continue;
            if (e.gone) {
                // The row left a facility this user sees; it is gone for them unless they see
                // where it went too (then its live entry carries it).
                const std::optional<std::string> now_in = row_scope(*t, **row);
                if (!user.sees_all() && now_in && !user.may_see(*now_in))
                    response.changes.push_back(sync::RowChange{e.table, e.row_id, {}, true});
                continue;
            }
            sync::RowChange rc{e.table, e.row_id, {}, false};
            for (const auto& [field, version] : (*row)->versions) {
                auto seq = (*row)->seqs.find(field);
                if (seq == (*row)->seqs.end() || seq->second <= in.since) continue;
                // The requesting device wrote the current value itself: it has it already.
                if (version.node == request.node) continue;
                auto value = (*row)->values.find(field);
                auto overwrote = (*row)->overwrote.find(field);
                rc.fields[field] = {value == (*row)->values.end() ? Value() : value->second, version,
                                    overwrote == (*row)->overwrote.end() ? sync::Version{} : overwrote->second};
            }
            if (!rc.fields.empty()) response.changes.push_back(std::move(rc));
        }
        PullCursor out{in.since, entries->empty() ? in.pos : entries->back().seq};
        // Once caught up the next pull starts afresh from here.
        if (!response.more) out.since = out.pos;
        response.cursor = out.to_string();
        return Status();
    });
}

Result<sync::Version> SyncService::resolve_conflict(const AuthUser& user, std::int64_t conflict_id, const Value& value) {
    sync::Version written;
    const Status done = m_store.write([&](WriteTxn& tx) -> Status {
        auto conflict = tx.find_conflict(conflict_id);
        if (!conflict.ok()) return conflict.status();
        if (!*conflict) return Status(ErrorCode::NotFound, "no conflict " + std::to_string(conflict_id));
        const ConflictRecord& c = **conflict;
        if (c.status != "open") return Status(ErrorCode::Conflict, "conflict " + std::to_string(conflict_id) + " is already resolved");
        const schema::TableDef* t = schema::Schema::builtin().table(c.table);
        if (!t) return Status(ErrorCode::Internal, "conflict names unknown table " + c.table);
        std::map<std::string, Value> fields{{c.field, value}};
        UBUZIMA_TRY(schema::validate_fields(*t, fields, /*creating=*/false));
        auto row = tx.read_row(*t, c.row_id);
        if (!row.ok()) return row.status();
        sync::Version stored;
        if (*row && (*row)->versions.count(c.field)) stored = (*row)->versions.at(c.field);
        // The decision must win over whatever is stored, even a version from a device whose clock
        // runs (within tolerance) ahead of ours.
        m_clock.observe(stored.hlc, INT64_MAX / 2);
        sync::Change ch;
        ch.table = c.table;
        ch.row_id = c.row_id;
        ch.version = sync::Version{m_clock.now(), m_store.node_id()};
        ch.fields = std::move(fields);
        ch.base[c.field] = stored;  // the reviewer saw the stored value: not a new conflict
        auto applied = apply_change(tx, *t, std::move(*row), ch, m_options.wall());
        if (!applied.ok()) return applied.status();
        UBUZIMA_TRY(tx.mark_conflict_resolved(conflict_id, user.username, ch.version.to_string()));
        written = ch.version;
        return tx.save_clock(m_clock.last());
    });
    if (!done.ok()) return done;
    return written;
}

}  // namespace ubuzima::server
