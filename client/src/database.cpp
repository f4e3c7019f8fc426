// Ubuzima Sync — MIT licence.
// The public Database: locks, delegates to the store/session, and stops every exception here.
#include "ubuzima/database.hpp"

#include <new>

#include "storage/store.hpp"
#include "sync/session.hpp"
#include "ubuzima/sync/ids.hpp"

namespace ubuzima {

struct Database::Impl {
    std::unique_ptr<detail::Store> store;
    std::unique_ptr<detail::SyncSession> session;
};

namespace {

// The edge of the C++ API: std/json/bad_alloc exceptions become a Status.
template <typename F>
auto guard(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return Status(ErrorCode::Internal, "out of memory");
    } catch (const std::exception& e) {
        return Status(ErrorCode::Internal, e.what());
    } catch (...) {
        return Status(ErrorCode::Internal, "unknown exception");
    }
}

Status closed() { return Status(ErrorCode::InvalidArgument, "database is closed (moved from)"); }

}  // namespace

Database::Database(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Database::Database(Database&& other) noexcept = default;
Database& Database::operator=(Database&& other) noexcept = default;
Database::~Database() = default;

Result<Database> Database::open(const DatabaseOptions& options) {
    return guard([&]() -> Result<Database> {
        auto store = detail::Store::open(options);
        if (!store.ok()) return store.status();
        auto impl = std::make_unique<Impl>();
        impl->store = std::move(*store);
        impl->session = std::make_unique<detail::SyncSession>(*impl->store, options.sync);
        return Database(std::move(impl));
    });
}

Result<std::string> Database::insert(std::string_view table, const nlohmann::json& fields) {
    return guard([&]() -> Result<std::string> {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        std::string id = sync::new_uuid_v7(m_impl->store->clock().wall_ms());
        UBUZIMA_TRY(m_impl->store->write(detail::Store::WriteMode::Insert, table, id, fields));
        return id;
    });
}

Status Database::update(std::string_view table, std::string_view id, const nlohmann::json& fields) {
    return guard([&]() -> Status {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->write(detail::Store::WriteMode::Update, table, id, fields);
    });
}

Status Database::put(std::string_view table, std::string_view id, const nlohmann::json& fields) {
    return guard([&]() -> Status {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->write(detail::Store::WriteMode::Put, table, id, fields);
    });
}

Result<std::vector<std::string>> Database::write_batch(const std::vector<BatchWrite>& writes) {
    return guard([&]() -> Result<std::vector<std::string>> {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        detail::Store& store = *m_impl->store;
        auto tx = sql::Transaction::begin(store.db());
        if (!tx.ok()) return tx.status();
        std::vector<std::string> ids;
        ids.reserve(writes.size());
        for (const BatchWrite& w : writes) {
            using Mode = detail::Store::WriteMode;
            const Mode mode = w.op == BatchWrite::Op::Insert   ? Mode::Insert
                              : w.op == BatchWrite::Op::Update ? Mode::Update
                              : w.op == BatchWrite::Op::Put    ? Mode::Put
                                                               : Mode::Remove;
            std::string id = w.op == BatchWrite::Op::Insert && w.id.empty() ? sync::new_uuid_v7(store.clock().wall_ms()) : w.id;
            // By reference: a conditional with a null json copied every record (remove ignores fields).
            Status s = store.write_in_transaction(mode, w.table, id, w.fields);
            if (!s.ok()) return Status(s.code(), "write " + std::to_string(ids.size()) + ": " + s.message());
            ids.push_back(std::move(id));
        }
        UBUZIMA_TRY(tx->commit());
        return ids;
    });
}

Status Database::remove(std::string_view table, std::string_view id) {
    return guard([&]() -> Status {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->write(detail::Store::WriteMode::Remove, table, id, nullptr);
    });
}

Result<std::optional<nlohmann::json>> Database::get(std::string_view table, std::string_view id) const {
    return guard([&]() -> Result<std::optional<nlohmann::json>> {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->get(table, id);
    });
}

Result<std::vector<nlohmann::json>> Database::query(std::string_view table, const nlohmann::json& equals,
                                                    std::optional<std::int64_t> limit, std::int64_t offset) const {
    return guard([&]() -> Result<std::vector<nlohmann::json>> {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->query(table, equals, limit, offset);
    });
}

Result<std::int64_t> Database::pending_changes() const {
    return guard([&]() -> Result<std::int64_t> {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->pending_count();
    });
}

Result<nlohmann::json> Database::conflicts() const {
    return guard([&]() -> Result<nlohmann::json> {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->journal();
    });
}

Result<nlohmann::json> Database::rejected() const {
    return guard([&]() -> Result<nlohmann::json> {
        if (!m_impl) return closed();
        std::lock_guard<std::mutex> lock(m_impl->store->mutex());
        return m_impl->store->rejected();
    });
}

std::string Database::node_id() const {
    try {
        return m_impl ? sync::to_hex16(m_impl->store->node()) : std::string();
    } catch (...) {
        return {};
    }
}

void Database::set_sync_options(SyncOptions options) {
    try {
        if (m_impl) m_impl->session->set_options(std::move(options));
    } catch (...) {
        // Only allocation can fail here; the old options stay in force.
    }
}

Status Database::login(std::string_view server_url, std::string_view username, std::string_view password) {
    return guard([&]() -> Status {
        if (!m_impl) return closed();
        return m_impl->session->login(std::string(server_url), std::string(username), std::string(password));
    });
}

Status Database::logout() {
    return guard([&]() -> Status {
        if (!m_impl) return closed();
        return m_impl->session->logout();
    });
}

Status Database::reset() {
    return guard([&]() -> Status {
        if (!m_impl) return closed();
        return m_impl->session->reset();
    });
}

Result<SyncReport> Database::sync(const SyncProgress& progress) {
    return guard([&]() -> Result<SyncReport> {
        if (!m_impl) return closed();
        return m_impl->session->sync(progress);
    });
}

}  // namespace ubuzima
