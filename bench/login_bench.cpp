// Ubuzima Sync — MIT licence.
// Login timing at the production PBKDF2 cost: a wrong password for a known user against any
// password for an unknown one (the two must cost the same, or usernames can be enumerated), and
// a successful login. Medians over many attempts; each known user gets fewer failures than the
// throttle allows, and the bench runs on loopback (not throttled per address).
#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "common.hpp"
#include "ubuzima/sync/ids.hpp"

using nlohmann::json;
using namespace ubuzima;

namespace {

double login_ms(const std::string& url, const std::string& user, const std::string& password, long expect) {
    const double start = bench::now_s();
    const bench::SimpleResponse r = bench::http_post(
        url + "/v1/auth/login",
        json{{"username", user}, {"password", password}, {"device_id", "bench-login-" + user}}.dump());  // one account per device id
    const double ms = (bench::now_s() - start) * 1000;
    if (r.status != expect) throw std::runtime_error(user + ": HTTP " + std::to_string(r.status) + " " + r.body);
    return ms;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string url, admin_password;
    int samples = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--url") url = argv[i + 1];
        else if (a == "--admin-password") admin_password = argv[i + 1];
        else if (a == "--samples") samples = std::stoi(argv[i + 1]);
    }
    try {
        const std::string admin = bench::admin_token(url, admin_password);
        const std::string password = "bench-login-password-1";
        std::vector<double> known_wrong, unknown, success;
        for (int i = 0; i < samples; ++i) {
            const std::string user = "login-bench-" + std::to_string(i);
            bench::ensure_user(url, admin, user, password, "assessor", {"fac-gisenyi"});
            // Interleaved, so that load drifts hit both series alike.
            known_wrong.push_back(login_ms(url, user, "not-the-password", 401));
            unknown.push_back(login_ms(url, "nobody-" + sync::new_uuid_v7(0).substr(24), "not-the-password", 401));
            success.push_back(login_ms(url, user, password, 200));
        }
        const double k = median(known_wrong), u = median(unknown);
        bench::emit({{"bench", "login"},
                     {"samples", samples},
                     {"known_wrong_ms", k},
                     {"unknown_ms", u},
                     {"success_ms", median(success)},
                     {"unknown_over_known", u / k}});
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_login: %s\n", e.what());
        return 1;
    }
}
