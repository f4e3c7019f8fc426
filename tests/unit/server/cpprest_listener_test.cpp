// Ubuzima Sync — MIT licence.
// The cpprestsdk listener behind the listener interface: every method reaches the handler (TRACE
// and OPTIONS too, not cpprestsdk's own answers), requests are converted faithfully, streamed
// bodies arrive whole, and a producer that gives up cuts the body instead of ending it.
#include <catch2/catch.hpp>
#include <curl/curl.h>

#include <string>

#include "http/listener.hpp"

using namespace ubuzima::server;

namespace {

struct Fetched {
    CURLcode rc = CURLE_OK;
    long status = 0;
    std::string body;
};

extern "C" size_t keep(char* data, size_t size, size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
}

Fetched fetch(const std::string& method, const std::string& url, const std::string& header = "") {
    Fetched out;
    CURL* h = curl_easy_init();
    curl_slist* headers = header.empty() ? nullptr : curl_slist_append(nullptr, header.c_str());
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    out.rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return out;
}

}  // namespace

TEST_CASE("cpprest listener: every method reaches the handler, converted faithfully", "[server][cpprest]") {
    init_http_threads(4);
    ListenOptions o;
    auto listener = open_cpprest_listener(o, [](const http::Request& r) {
        http::Response out;
        out.headers["Content-Type"] = "text/plain";
        out.body = r.method + " " + r.raw_path + " q=" + (r.query.count("q") ? r.query.at("q") : "") +
                   " h=" + r.header("x-test") + " from=" + r.remote_address;
        return out;
    });
    REQUIRE(listener.ok());
    const std::string base = (*listener)->url("127.0.0.1");
    for (const char* method : {"GET", "TRACE", "OPTIONS", "DELETE"}) {
        Fetched f = fetch(method, base + "/v1/a%2Fb?q=x%20y", "X-Test: 42");
        INFO(method << " -> " << f.body);
        CHECK(f.status == 200);
        CHECK(f.body == std::string(method) + " /v1/a%2Fb q=x y h=42 from=127.0.0.1");
    }
    (*listener)->close();
}

TEST_CASE("cpprest listener: a streamed body arrives whole; a producer that gives up cuts it", "[server][cpprest]") {
    init_http_threads(4);
    ListenOptions o;
    auto listener = open_cpprest_listener(o, [](const http::Request& r) {
        http::Response out;
        const bool give_up = r.raw_path == "/stop";
        out.stream = [give_up](http::BodyWriter& w) {
            const std::string chunk(64 * 1024, 'z');
            for (int i = 0; i < 48; ++i) {  // 3 MiB
                if (give_up && i == 10) return false;
                if (!w.write(chunk)) return false;
            }
            return true;
        };
        return out;
    });
    REQUIRE(listener.ok());
    const std::string base = (*listener)->url("127.0.0.1");
    Fetched whole = fetch("GET", base + "/all");
    CHECK(whole.rc == CURLE_OK);
    CHECK(whole.body.size() == 48u * 64 * 1024);
    Fetched cut = fetch("GET", base + "/stop");
    CHECK(cut.rc != CURLE_OK);  // not a clean end: the client cannot take it for the whole
    CHECK(cut.body.size() < 48u * 64 * 1024);
    (*listener)->close();
}
