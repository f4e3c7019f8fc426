// Ubuzima Sync — MIT licence.
// Console commands: users, devices, the audit log.
#include "cli/admin_commands.hpp"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "audit/audit_log.hpp"
#include "cli/console_exit.hpp"
#include "auth/user_admin.hpp"
#include "cli/read_secret.hpp"
#include "storage/open_store.hpp"

namespace ubuzima::server {

namespace {

struct Parsed {
    std::string data_dir;
    std::optional<std::string> db_url;              ///< --db URL: the PostgreSQL store
    std::vector<std::string> positional;
    std::map<std::string, std::string> values;      ///< --name value
    std::vector<std::string> facilities;            ///< every --facility
    std::vector<std::string> flags;                 ///< --disable, --enable, --password
};

int usage(const std::string& why) { return console_usage(why); }
int fail(const Status& s) { return console_fail(s); }

bool parse(const std::vector<std::string>& args, Parsed& out, std::string& error) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--disable" || a == "--enable" || a == "--password") {
            out.flags.push_back(a);
        } else if (a.rfind("--", 0) == 0) {
            if (i + 1 >= args.size()) {
                error = a + " needs a value";
                return false;
            }
            const std::string& v = args[++i];
            if (a == "--data") out.data_dir = v;
            else if (a == "--db") out.db_url = v.empty() ? "postgresql://" : v;
            else if (a == "--facility") out.facilities.push_back(v);
            else out.values[a] = v;
        } else {
            out.positional.push_back(a);
        }
    }
    if (out.data_dir.empty() == !out.db_url) {
        error = out.db_url ? "give --data DIR or --db URL, not both" : "--data DIR (or --db URL) is required";
        return false;
    }
    return true;
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

std::string when(std::int64_t ms) {
    if (ms <= 0) return "-";
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    char buf[32];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

int user_command(const std::string& verb, const Parsed& p, UserAdmin& users) {
    if (verb == "list") {
        auto all = users.list_users();
        if (!all.ok()) return fail(all.status());
        std::printf("%-24s %-13s %-8s %s\n", "USERNAME", "ROLE", "STATE", "FACILITIES");
        for (const UserRecord& u : *all) {
            std::string facilities;
            for (const std::string& f : u.facilities) facilities += (facilities.empty() ? "" : ",") + f;
            std::printf("%-24s %-13s %-8s %s\n", u.username.c_str(), u.role.c_str(), u.disabled ? "disabled" : "active",
                        facilities.empty() ? "(all)" : facilities.c_str());
        }
        return 0;
    }
    if (p.positional.size() != 1) return usage("user " + verb + " takes one USERNAME");
    const std::string& username = p.positional[0];
    if (verb == "add") {
        auto role = p.values.find("--role");
        if (role == p.values.end()) return usage("user add needs --role");
        auto password = read_secret("password for " + username + ": ", true);
        if (!password.ok()) return fail(password.status());
        auto created = users.create_user(Actor::console(), username, *password, role->second, p.facilities);
        if (!created.ok()) return fail(created.status());
        std::printf("created %s (%s)\n", created->username.c_str(), created->role.c_str());
        return 0;
    }
    if (verb == "set") {
        UserPatch patch;
        if (auto r = p.values.find("--role"); r != p.values.end()) patch.role = r->second;
        if (auto f = p.values.find("--facilities"); f != p.values.end()) patch.facilities = split_commas(f->second);
        for (const std::string& flag : p.flags) {
            if (flag == "--disable") patch.disabled = true;
            if (flag == "--enable") patch.disabled = false;
            if (flag == "--password") {
                auto password = read_secret("new password for " + username + ": ", true);
                if (!password.ok()) return fail(password.status());
                patch.password = *password;
            }
        }
        auto updated = users.update_user(Actor::console(), username, patch);
        if (!updated.ok()) return fail(updated.status());
        std::printf("updated %s\n", updated->username.c_str());
        return 0;
    }
    return usage("unknown command user " + verb);
}

int device_command(const std::string& verb, const Parsed& p, UserAdmin& users) {
    if (verb == "list") {
        auto devices = users.list_devices();
        if (!devices.ok()) return fail(devices.status());
        auto all_users = users.list_users();
        if (!all_users.ok()) return fail(all_users.status());
        std::map<std::string, std::string> names;
        for (const UserRecord& u : *all_users) names[u.id] = u.username;
        std::printf("%-18s %-24s %-21s %-21s %-9s %s\n", "DEVICE", "USER", "LAST SEEN", "LAST SYNC", "STATE",
                    "PENDING/REJECTED");
        for (const DeviceRecord& d : *devices) {
            const std::string reported = d.reported_pending < 0 ? "-" : std::to_string(d.reported_pending) + "/" +
                                                                             std::to_string(d.reported_rejected);
            std::printf("%-18s %-24s %-21s %-21s %-9s %s\n", d.id.c_str(),
                        names.count(d.user_id) ? names[d.user_id].c_str() : d.user_id.c_str(), when(d.last_seen_ms).c_str(),
                        when(d.last_sync_ms).c_str(), d.revoked_at_ms ? "revoked" : "active", reported.c_str());
        }
        return 0;
    }
    if (verb == "revoke") {
        if (p.positional.size() != 1) return usage("device revoke takes one DEVICE_ID");
        const Status s = users.revoke_device(Actor::console(), p.positional[0]);
        if (!s.ok()) return fail(s);
        std::printf("revoked %s: its tokens are dead\n", p.positional[0].c_str());
        return 0;
    }
    return usage("unknown command device " + verb);
}

int audit_command(const std::string& verb, const Parsed& p, ServerStore& store) {
    std::optional<AuditHead> saved;
    if (auto h = p.values.find("--head"); h != p.values.end()) {
        saved = AuditHead::parse(h->second);
        if (!saved) return usage("--head wants 'ubuzima-audit-head SEQ HASH'");
    } else if (auto f = p.values.find("--head-file"); f != p.values.end()) {
        std::ifstream in(f->second);
        std::string line;
        if (!in || !std::getline(in, line) || !(saved = AuditHead::parse(line)))
            return usage("--head-file " + f->second + " does not hold 'ubuzima-audit-head SEQ HASH'");
    }
    auto verdict = verify_audit(store, saved);
    if (!verdict.ok()) return fail(verdict.status());
    if (verb == "head") {
        std::printf("%s\n", verdict->head.to_string().c_str());
        if (!verdict->intact) std::fprintf(stderr, "ubuzima-server: warning: %s\n", verdict->problem.c_str());
        return 0;
    }
    if (verb != "verify") return usage("unknown command audit " + verb);
    if (!verdict->intact) {
        std::printf("audit log NOT intact: %s\nfirst bad record: %lld\n", verdict->problem.c_str(),
                    static_cast<long long>(verdict->first_bad));
        return 1;
    }
    std::printf("audit log intact: %lld records%s\n%s\n", static_cast<long long>(verdict->records),
                saved ? ", matches the saved head" : "", verdict->head.to_string().c_str());
    return 0;
}

}  // namespace

bool is_admin_command(const std::string& command) {
    return command == "user" || command == "device" || command == "audit";
}

int run_admin_command(const std::string& command, const std::vector<std::string>& args) {
    if (args.empty()) return usage(command + " needs a subcommand");
    const std::string verb = args[0];
    Parsed p;
    std::string error;
    if (!parse(std::vector<std::string>(args.begin() + 1, args.end()), p, error)) return usage(error);
    auto store = open_server_store(p.data_dir, p.db_url, 1, nullptr, true);
    if (!store.ok()) return fail(store.status());
    if (command == "audit") return audit_command(verb, p, **store);
    ServerOptions options;
    AuthService auth(**store, options);
    UserAdmin users(**store, auth);
    return command == "user" ? user_command(verb, p, users) : device_command(verb, p, users);
}

}  // namespace ubuzima::server
