// TEMPORARY placeholder while the Beast listener is written (not to be committed).
#include "http/listener.hpp"
namespace ubuzima::server {
Result<std::unique_ptr<HttpListener>> open_beast_listener(const ListenOptions&, RequestHandler) {
    return Status(ErrorCode::Unavailable, "beast listener not built");
}
}  // namespace ubuzima::server
