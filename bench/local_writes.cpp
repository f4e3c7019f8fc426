// Ubuzima Sync — MIT licence.
// Local writes through the client library (row + field versions + outbox) vs raw SQLite inserts
// of the same rows into tables of the same shape, same transaction size, same pragmas.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "common.hpp"
#include "ubuzima/database.hpp"
#include "ubuzima/schema/schema.hpp"
#include "ubuzima/schema/sqlite.hpp"

using namespace ubuzima;
using nlohmann::json;

namespace {

void check(const Status& s, const char* what) {
    if (!s.ok()) {
        std::fprintf(stderr, "bench_local_writes: %s: %s\n", what, s.to_string().c_str());
        std::exit(1);
    }
}

void remove_db(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
}

// The file's size once its WAL is checkpointed into it: the bytes the rows take on disk.
double bytes_on_disk(const std::string& path) {
    {
        auto db = sql::Database::open(path);
        check(db.status(), "reopen for checkpoint");
        check(db->exec("PRAGMA wal_checkpoint(TRUNCATE)"), "checkpoint");
    }
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    return ec ? 0.0 : static_cast<double>(size);
}

// The ceiling: one prepared INSERT per table, values bound with the library's own typed binding.
double raw_rows_per_s(const std::string& path, const std::string& synchronous, const std::vector<bench::Record>& rows,
                      std::size_t per_tx) {
    remove_db(path);
    sql::OpenOptions options;
    options.synchronous = synchronous;
    auto db = sql::Database::open(path, options);
    check(db.status(), "open raw");
    {
        auto tx = sql::Transaction::begin(*db);
        check(tx.status(), "begin");
        // Same shape as the device tables: every schema column plus the hidden _deleted/_v.
        check(sql::ensure_tables(*db, schema::Schema::builtin(),
                                 {"_deleted INTEGER NOT NULL DEFAULT 0", "_v TEXT NOT NULL DEFAULT '{}'"}),
              "tables");
        check(tx->commit(), "commit");
    }
    const double start = bench::now_s();
    for (std::size_t i = 0; i < rows.size(); i += per_tx) {
        auto tx = sql::Transaction::begin(*db);
        check(tx.status(), "begin");
        for (std::size_t j = i; j < rows.size() && j < i + per_tx; ++j) {
            const bench::Record& r = rows[j];
            const schema::TableDef* t = schema::Schema::builtin().table(r.table);
            std::string names = "id", params = "?";
            for (const auto& [name, value] : r.fields.items()) {
                names += ", " + sql::quote_ident(name);
                params += ", ?";
            }
            auto stmt = db->cached("INSERT INTO " + sql::quote_ident(r.table) + " (" + names + ") VALUES (" + params + ")");
            check(stmt.status(), "prepare");
            (*stmt)->bind(1, r.id);
            int index = 2;
            for (const auto& [name, value] : r.fields.items()) (*stmt)->bind_value(index++, t->field(name)->type, value);
            check((*stmt)->run(), "insert");
        }
        check(tx->commit(), "commit");
    }
    return static_cast<double>(rows.size()) / (bench::now_s() - start);
}

double library_rows_per_s(const std::string& path, Durability durability, const std::vector<bench::Record>& rows,
                          std::size_t per_tx) {
    remove_db(path);
    DatabaseOptions options;
    options.path = path;
    options.durability = durability;
    auto db = Database::open(options);
    check(db.status(), "open library");
    const double start = bench::now_s();
    if (per_tx == 1) {
        for (const bench::Record& r : rows) check(db->insert(r.table, r.fields).status(), "insert");
    } else {
        std::vector<BatchWrite> batch;
        for (std::size_t i = 0; i < rows.size(); i += per_tx) {
            batch.clear();
            for (std::size_t j = i; j < rows.size() && j < i + per_tx; ++j)
                batch.push_back({BatchWrite::Op::Insert, rows[j].table, "", rows[j].fields});
            check(db->write_batch(batch).status(), "write_batch");
        }
    }
    return static_cast<double>(rows.size()) / (bench::now_s() - start);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = ".";
    std::int64_t single_rows = 3000, batch_rows = 50000;
    int rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--dir") dir = argv[i + 1];
        else if (arg == "--single-rows") single_rows = std::atoll(argv[i + 1]);
        else if (arg == "--batch-rows") batch_rows = std::atoll(argv[i + 1]);
        else if (arg == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
    }
    std::filesystem::create_directories(dir);
    const std::string raw_path = dir + "/raw.db", lib_path = dir + "/lib.db";
    for (const std::string sync_mode : {"FULL", "NORMAL"}) {
        for (const std::size_t per_tx : {std::size_t{1}, std::size_t{1000}}) {
            const std::int64_t n = per_tx == 1 ? single_rows : batch_rows;
            std::vector<bench::Record> rows;
            rows.reserve(static_cast<std::size_t>(n));
            for (std::int64_t i = 0; i < n; ++i) rows.push_back(bench::make_record(i, "fac-gisenyi", "lw"));
            // Alternating rounds, median of each: on a shared machine one round's load swings a
            // single measurement by 2x, and the ratio is only meaningful between neighbours.
            std::vector<double> raws, libs;
            for (int round = 0; round < rounds; ++round) {
                raws.push_back(raw_rows_per_s(raw_path, sync_mode, rows, per_tx));
                libs.push_back(library_rows_per_s(
                    lib_path, sync_mode == "FULL" ? Durability::Full : Durability::Normal, rows, per_tx));
            }
            const double raw = median(raws), lib = median(libs);
            // Both files hold the last round's rows (and the schema's empty tables).
            const double raw_bytes = bytes_on_disk(raw_path) / static_cast<double>(n);
            const double lib_bytes = bytes_on_disk(lib_path) / static_cast<double>(n);
            bench::emit({{"bench", "local_writes"}, {"synchronous", sync_mode}, {"rows_per_tx", per_tx},
                         {"rows", n}, {"rounds", rounds}, {"raw_rows_per_s", raw}, {"lib_rows_per_s", lib}, {"ratio", lib / raw},
                         {"raw_bytes_per_row", raw_bytes}, {"lib_bytes_per_row", lib_bytes}});
        }
    }
    remove_db(raw_path);
    remove_db(lib_path);
    return 0;
}
