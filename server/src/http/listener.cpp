// Ubuzima Sync — MIT licence.
// Listener helpers that need neither cpprestsdk nor Beast.
#include "http/listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ubuzima::server {

std::string HttpListener::url(const std::string& host) const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string(secure() ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port());
}

Result<std::unique_ptr<HttpListener>> open_listener(ListenerKind kind, const ListenOptions& options,
                                                    RequestHandler handler) {
    return kind == ListenerKind::Beast ? open_beast_listener(options, std::move(handler))
                                       : open_cpprest_listener(options, std::move(handler));
}

Result<int> pick_free_port(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), "0", &hints, &found) != 0 || !found)
        return Status(ErrorCode::InvalidArgument, "cannot resolve listen host " + host);
    int port = -1;
    const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd >= 0 && bind(fd, found->ai_addr, found->ai_addrlen) == 0) {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
            port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                              : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        }
    }
    if (fd >= 0) ::close(fd);
    freeaddrinfo(found);
    if (port <= 0) return Status(ErrorCode::IoError, "cannot find a free port on " + host);
    return port;
}

bool is_loopback_host(const std::string& host) {
    if (host == "localhost" || host == "::1" || host == "[::1]") return true;
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    return false;
}

}  // namespace ubuzima::server
