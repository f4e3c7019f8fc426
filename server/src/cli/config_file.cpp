// Ubuzima Sync — MIT licence.
#include "cli/config_file.hpp"

#include <fstream>
#include <regex>
#include <set>

#include "cli/server_args.hpp"

namespace ubuzima::server {

namespace {

// The keys are the flags the usage text documents, so a new flag is a config key at once and
// an undocumented one cannot be.
const std::set<std::string>& known_keys() {
    static const std::set<std::string> keys = [] {
        std::set<std::string> out;
        const std::string usage = kServeUsage;
        const std::string serve = usage.substr(0, usage.find("other commands"));
        const std::regex flag("--([a-z][a-z0-9-]*)");
        for (auto it = std::sregex_iterator(serve.begin(), serve.end(), flag); it != std::sregex_iterator(); ++it)
            out.insert((*it)[1]);
        out.erase("help");
        out.erase("config");
        return out;
    }();
    return keys;
}

// Flags that take no value: `true` gives the flag, `false` leaves it out.
bool is_switch(const std::string& key) { return key == "insecure-http"; }

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

Result<std::vector<std::string>> expand_config_file(const std::vector<std::string>& args) {
    std::vector<std::string> rest;
    std::string file;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] != "--config") {
            rest.push_back(args[i]);
            continue;
        }
        if (i + 1 >= args.size()) return Status(ErrorCode::InvalidArgument, "--config needs a FILE");
        if (!file.empty()) return Status(ErrorCode::InvalidArgument, "--config given twice");
        file = args[++i];
    }
    if (file.empty()) return rest;

    std::ifstream in(file);
    if (!in) return Status(ErrorCode::InvalidArgument, "cannot read the config file " + file);
    std::vector<std::string> out;
    std::set<std::string> seen;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        const std::string where = file + ":" + std::to_string(number) + ": ";
        if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
        line = trim(line);
        if (line.empty()) continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos) return Status(ErrorCode::InvalidArgument, where + "expected key = value");
        const std::string key = trim(line.substr(0, eq));
        const std::string value = trim(line.substr(eq + 1));
        if (!known_keys().count(key)) return Status(ErrorCode::InvalidArgument, where + "unknown key '" + key + "'");
        if (!seen.insert(key).second) return Status(ErrorCode::InvalidArgument, where + "'" + key + "' given twice");
        if (value.empty()) return Status(ErrorCode::InvalidArgument, where + "'" + key + "' has no value");
        if (is_switch(key)) {
            if (value != "true" && value != "false")
                return Status(ErrorCode::InvalidArgument, where + "'" + key + "' is true or false");
            if (value == "true") out.push_back("--" + key);
            continue;
        }
        out.push_back("--" + key);
        out.push_back(value);
    }
    if (in.bad()) return Status(ErrorCode::IoError, "cannot read the config file " + file);
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
}

}  // namespace ubuzima::server
