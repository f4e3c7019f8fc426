// Ubuzima Sync — MIT licence.
// Disk full on a size-capped tmpfs: clean DiskFull errors, nothing lost, normal service once space returns.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "server_counts.hpp"
#include "support/server_process.hpp"
#include "ubuzima/database.hpp"
#include "ubuzima/schema/sqlite.hpp"

using nlohmann::json;
using namespace ubuzima;
using namespace ubuzima::test;

namespace {

constexpr const char* kPassword = "field-work-2026";
constexpr int kSkip = 77;  // ctest SKIP_RETURN_CODE

bool write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    return static_cast<bool>(out.flush());
}

/// Moves this process into a private mount namespace, so the tmpfs mounts vanish with it and
/// never touch the host's mount table. Must run before any thread starts (unshare(CLONE_NEWNS)
/// also unshares the file-system attributes, which a multithreaded process cannot do).
/// @return "" on success, else why not.
std::string enter_private_mounts() {
    if (::unshare(CLONE_NEWNS) == 0) {
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            return std::string("making / private failed: ") + std::strerror(errno);
        return "";
    }
    const std::string as_root = std::strerror(errno);
    // Not root: a user namespace maps us to root inside it (what `unshare -rm` does).
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return "unshare(CLONE_NEWNS): " + as_root + "; unshare(CLONE_NEWUSER|CLONE_NEWNS): " + std::strerror(errno);
    if (!write_file("/proc/self/setgroups", "deny") ||
        !write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
        !write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
        return "writing the user namespace id maps failed";
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return std::string("making / private failed: ") + std::strerror(errno);
    return "";
}

/// A size-capped tmpfs at a fresh folder (in our private mount namespace).
class SmallTmpfs {
public:
    explicit SmallTmpfs(const std::string& size) {
        static const std::string ns_error = enter_private_mounts();
        if (!ns_error.empty()) skip("no private mount namespace (" + ns_error + ")");
        m_path = m_parent.file("mnt");
        std::filesystem::create_directory(m_path);
        if (::mount("tmpfs", m_path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0)
            skip(std::string("mount -t tmpfs failed: ") + std::strerror(errno));
    }
    ~SmallTmpfs() { ::umount2(m_path.c_str(), MNT_DETACH); }
    SmallTmpfs(const SmallTmpfs&) = delete;
    SmallTmpfs& operator=(const SmallTmpfs&) = delete;
    std::string file(const std::string& name) const { return m_path + "/" + name; }
    std::int64_t free_bytes() const {
        struct statvfs s {};
        ::statvfs(m_path.c_str(), &s);
        return static_cast<std::int64_t>(s.f_bavail) * static_cast<std::int64_t>(s.f_frsize);
    }
    /// A file of `bytes` real (allocated) bytes, deleted later to free the space.
    void fill(const std::string& name, std::int64_t bytes) const {
        std::ofstream out(file(name), std::ios::binary);
        const std::string block(4096, 'x');
        for (std::int64_t done = 0; done < bytes && out; done += 4096) out << block;
        out.flush();
    }

private:
    [[noreturn]] static void skip(const std::string& why) {
        // Catch2 v2 has no SKIP: say so loudly and let ctest report the test as skipped.
        std::printf("SKIPPED: the disk-full tests need a small tmpfs: %s\n", why.c_str());
        std::fflush(stdout);
        std::_Exit(kSkip);
    }
    TempDir m_parent;
    std::string m_path;
};

json need(const std::string& title) {
    return {{"facility_id", "fac-gisenyi"}, {"need_type", "skills_training"}, {"specialty_code", "anaesthesiology"}, {"title", title},
            {"description", std::string(1000, 'd')}, {"priority", "high"}, {"status", "identified"}};
}

std::string integrity(const std::string& path) {
    auto raw = sql::Database::open(path);
    REQUIRE(raw.ok());
    auto stmt = raw->prepare("PRAGMA integrity_check");
    REQUIRE(stmt.ok());
    REQUIRE(stmt->step().ok());
    return stmt->column_text(0);
}

/// Server with alice and coord; returns nothing, REQUIREs success.
void create_users(ServerProcess& server) {
    const std::string admin = login_token(server.url(), "admin", server.admin_password());
    create_user(server.url(), admin, "alice", kPassword, "assessor", {"fac-gisenyi"});
    create_user(server.url(), admin, "coord", kPassword, "coordinator", {});
}

std::map<std::string, int> server_titles(ServerProcess& server, const std::string& path) {
    return need_titles_on_server(server.url(), path, "coord", kPassword);
}

}  // namespace

TEST_CASE("A device that fills its disk reports DiskFull, keeps its data and syncs once space is freed", "[diskfull]") {
    SmallTmpfs disk("4m");  // first: enters the mount namespace before any thread exists
    TempDir dir;
    ServerProcess server(dir.file("server"));
    server.start();
    create_users(server);

    disk.fill("filler", 1 << 20);
    DatabaseOptions options;
    options.path = disk.file("device.db");
    options.durability = Durability::Full;
    options.sync.retry.max_attempts = 1;
    auto db = Database::open(options);
    REQUIRE(db.ok());
    REQUIRE(db->login(server.url(), "alice", kPassword).ok());

    const std::int64_t free_before = disk.free_bytes();
    std::vector<std::string> ids;
    Status failure;
    for (int i = 0; i < 100'000; ++i) {
        auto id = db->insert("need", need("full-" + std::to_string(i)));
        if (!id.ok()) {
            failure = id.status();
            break;
        }
        ids.push_back(*id);
    }
    INFO(failure.to_string());
    REQUIRE_FALSE(failure.ok());
    CHECK(failure.code() == ErrorCode::DiskFull);
    CHECK(failure.message().find("full") != std::string::npos);
    CHECK(disk.free_bytes() < 64 * 1024);
    // A second write fails the same clean way, and reads still work.
    CHECK(db->insert("need", need("one-more")).status().code() == ErrorCode::DiskFull);
    CHECK(*db->pending_changes() == static_cast<std::int64_t>(ids.size()));
    CHECK(integrity(options.path) == "ok");
    for (const std::string& id : ids) REQUIRE(db->get("need", id).value().has_value());

    std::filesystem::remove(disk.file("filler"));
    auto r = db->sync();
    INFO((r.ok() ? "ok" : r.status().to_string()));
    REQUIRE(r.ok());
    CHECK(r->pushed == static_cast<std::int64_t>(ids.size()));
    CHECK(*db->pending_changes() == 0);
    REQUIRE(db->insert("need", need("after-space-freed")).ok());
    REQUIRE(db->sync().ok());
    const auto titles = server_titles(server, dir.file("coord.db"));
    CHECK(titles.size() == ids.size() + 1);
    WARN("device disk full: " << ids.size() << " rows of ~1 KB fitted in the " << free_before / 1024
                              << " KiB left on a 4 MB tmpfs (1 MB filler); error: " << failure.to_string());
}

TEST_CASE("A server whose disk fills answers 507 disk_full, loses nothing and recovers", "[diskfull]") {
    SmallTmpfs disk("8m");
    TempDir dir;
    ServerProcess server(disk.file("server"));
    server.start();
    create_users(server);
    // Leave ~1.5 MB for rows: the rest is a filler file we delete later.
    disk.fill("filler", disk.free_bytes() - 1'500'000);

    DatabaseOptions options;
    options.path = dir.file("device.db");
    options.durability = Durability::Normal;
    options.sync.retry.max_attempts = 1;
    auto db = Database::open(options);
    REQUIRE(db.ok());
    REQUIRE(db->login(server.url(), "alice", kPassword).ok());

    std::set<std::string> acknowledged;
    std::vector<std::string> written;
    Status failure;
    for (int batch = 0; batch < 200 && failure.ok(); ++batch) {
        for (int i = 0; i < 20; ++i) {
            written.push_back("srv-full-" + std::to_string(batch) + "-" + std::to_string(i));
            REQUIRE(db->insert("need", need(written.back())).ok());
        }
        auto r = db->sync();
        if (r.ok()) {
            acknowledged.insert(written.begin(), written.end());
        } else {
            failure = r.status();
        }
    }
    INFO(failure.to_string());
    REQUIRE_FALSE(failure.ok());
    CHECK(failure.code() == ErrorCode::DiskFull);  // 507 disk_full, a JSON error the client decoded
    const HttpResult health = http_request("GET", server.url() + "/v1/health");
    CHECK(health.status == 200);  // still serving
    // Still full: a second push fails the same way.
    CHECK(db->sync().status().code() == ErrorCode::DiskFull);

    std::filesystem::remove(disk.file("filler"));
    auto r = db->sync();
    INFO((r.ok() ? "ok" : r.status().to_string()));
    REQUIRE(r.ok());
    CHECK(*db->pending_changes() == 0);
    const auto titles = server_titles(server, dir.file("coord.db"));
    for (const std::string& t : written) {
        INFO(t);
        REQUIRE(titles.count(t) == 1);
        CHECK(titles.at(t) == 1);
    }
    CHECK(titles.size() == written.size());
    CHECK(server.stop() == 0);
    CHECK(integrity(disk.file("server") + "/ubuzima.db") == "ok");
    WARN("server disk full: " << acknowledged.size() << " rows acknowledged before the disk filled, "
                              << written.size() << " written in all; error: " << failure.to_string());
}
