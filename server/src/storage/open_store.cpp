// Ubuzima Sync — MIT licence.
#include "storage/open_store.hpp"

#include <filesystem>

#include "storage/sqlite_store.hpp"
#ifdef UBUZIMA_WITH_POSTGRESQL
#include "storage/pg_store.hpp"
#endif

namespace ubuzima::server {

Result<std::unique_ptr<ServerStore>> open_server_store(const std::string& data_dir,
                                                       const std::optional<std::string>& db_url, int pool_size,
                                                       const schema::Schema* schema, bool must_exist) {
    if (db_url) {
#ifdef UBUZIMA_WITH_POSTGRESQL
        PgStoreOptions options;
        options.pool_size = pool_size;
        auto store = PgStore::open(*db_url, options, schema);
        if (!store.ok()) return store.status();
        return std::unique_ptr<ServerStore>(std::move(*store));
#else
        (void)pool_size;
        return Status(ErrorCode::InvalidArgument,
                      "--db: this ubuzima-server was built without PostgreSQL support "
                      "(install libpq-dev and configure with -DUBUZIMA_WITH_POSTGRESQL=ON)");
#endif
    }
    const std::string path = (std::filesystem::path(data_dir) / "ubuzima.db").string();
    if (must_exist) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec))
            return Status(ErrorCode::NotFound, "no server store in " + data_dir + " (start the server on it once first)");
    }
    auto store = SqliteStore::open(path, 0, "", schema);
    if (!store.ok()) return store.status();
    return std::unique_ptr<ServerStore>(std::move(*store));
}

}  // namespace ubuzima::server
