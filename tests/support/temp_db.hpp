// Ubuzima Sync — MIT licence.
// A SQLite file path in the temp directory, unique per process and object, removed with its WAL
// and shared-memory files when the object goes. For tests that need a real file.
#pragma once

#include <atomic>
#include <filesystem>
#include <random>
#include <string>

namespace ubuzima::test {

struct TempDbFile {
    std::filesystem::path path;
    explicit TempDbFile(const std::string& prefix = "ubuzima_test") {
        static std::atomic<int> counter{0};
        path = std::filesystem::temp_directory_path() /
               (prefix + "_" + std::to_string(std::random_device{}()) + "_" + std::to_string(counter++) + ".db");
    }
    ~TempDbFile() {
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
    }
    TempDbFile(const TempDbFile&) = delete;
    TempDbFile& operator=(const TempDbFile&) = delete;
};

}  // namespace ubuzima::test
