// Ubuzima Sync — MIT licence.
// The Boost.Beast listener: HTTP/1.1 and HTTPS with header/body/idle/write deadlines, size limits
// and connection caps, so a slow or hostile client costs a bounded slot instead of a thread.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "http/listener.hpp"
#include "http/tls_server.hpp"

namespace ubuzima::server {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using std::chrono::milliseconds;

constexpr std::size_t kReadSize = 8 * 1024;
constexpr std::size_t kMaxQueuedChunks = 4;            // a producer runs at most this far ahead
constexpr std::size_t kMaxQueuedBytes = 1024 * 1024;
constexpr int kLingerMs = 1000;                         // for the peer to read our last bytes
constexpr std::size_t kMaxDrainBytes = 4 * 1024 * 1024; // of an unread body, while lingering
constexpr auto kHandlerWait = std::chrono::seconds(30);
constexpr auto kFlushWait = std::chrono::seconds(5);
constexpr auto kAcceptRetry = milliseconds(100);

void log_line(const std::string& what) { std::fprintf(stderr, "ubuzima-server: %s\n", what.c_str()); }

// Exceptions must not escape a pool task (asio's pool threads would terminate) nor an accept
// callback (the accept loop would stop). Logging here allocates nothing.
template <class Job>
void guarded(const char* what, Job&& job) noexcept {
    try {
        job();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ubuzima-server: %s: %s\n", what, e.what());
    } catch (...) {
        std::fprintf(stderr, "ubuzima-server: %s: unknown exception\n", what);
    }
}

std::string str(beast::string_view s) { return std::string(s.data(), s.size()); }

std::string lower(beast::string_view s) {
    std::string out = str(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// At most one line a second, so a persistent failure (EMFILE) cannot flood the log.
class LogThrottle {
public:
    void log(const std::string& what) {
        const auto now = std::chrono::steady_clock::now();
        if (m_logged && now - m_last < std::chrono::seconds(1)) return;
        m_logged = true;
        m_last = now;
        log_line(what);
    }

private:
    bool m_logged = false;
    std::chrono::steady_clock::time_point m_last;
};

class SessionBase {
public:
    virtual ~SessionBase() = default;
    /// The listener is closing: drop the connection unless a request is being answered. I/O thread.
    virtual void on_listener_closing() = 0;
    /// Closes the socket now, whatever is in progress. I/O thread.
    virtual void abort() = 0;
};

// State shared by the listener and its connections. Connections hold it by shared_ptr: the
// last of them die inside the listener's destructor, with its io_context.
struct Shared {
    ListenerLimits limits;
    RequestHandler handler;
    net::thread_pool* pool = nullptr;  // outlives every post: joined only after the I/O thread
    std::atomic<bool> closing{false};

    std::mutex mutex;
    std::condition_variable changed;  // open or in_flight dropped
    int open = 0;
    int in_flight = 0;
    std::map<std::string, int> per_address;
    std::map<std::uint64_t, std::weak_ptr<SessionBase>> sessions;
    std::uint64_t next_id = 0;

    std::vector<std::shared_ptr<SessionBase>> live_sessions() {
        std::vector<std::shared_ptr<SessionBase>> out;
        std::lock_guard<std::mutex> lock(mutex);
        for (auto& entry : sessions)
            if (auto s = entry.second.lock()) out.push_back(std::move(s));
        return out;  // released outside the lock: a last reference runs a destructor that locks
    }
};

// One admitted connection: counted against the caps from accept until the connection dies.
class Ticket {
public:
    static std::optional<Ticket> admit(const std::shared_ptr<Shared>& shared, const std::string& ip) {
        const ListenerLimits& l = shared->limits;
        std::lock_guard<std::mutex> lock(shared->mutex);
        int& from_ip = shared->per_address[ip];
        if ((l.max_connections > 0 && shared->open >= l.max_connections) ||
            (l.max_connections_per_address > 0 && from_ip >= l.max_connections_per_address)) {
            if (from_ip == 0) shared->per_address.erase(ip);
            return std::nullopt;
        }
        ++shared->open;
        ++from_ip;
        return Ticket(shared, ip, ++shared->next_id);
    }
    Ticket(Ticket&& other) noexcept
        : m_shared(std::move(other.m_shared)), m_ip(std::move(other.m_ip)), m_id(other.m_id) {}
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
        if (!m_shared) return;
        std::lock_guard<std::mutex> lock(m_shared->mutex);
        --m_shared->open;
        if (--m_shared->per_address[m_ip] <= 0) m_shared->per_address.erase(m_ip);
        m_shared->sessions.erase(m_id);
        m_shared->changed.notify_all();
    }
    std::uint64_t id() const { return m_id; }

private:
    Ticket(std::shared_ptr<Shared> shared, std::string ip, std::uint64_t id)
        : m_shared(std::move(shared)), m_ip(std::move(ip)), m_id(id) {}
    std::shared_ptr<Shared> m_shared;
    std::string m_ip;
    std::uint64_t m_id = 0;
};

// A request between "handed to the pool" and "response produced"; close() waits for these.
class InFlight {
public:
    InFlight() = default;
    explicit InFlight(std::shared_ptr<Shared> shared) : m_shared(std::move(shared)) {
        std::lock_guard<std::mutex> lock(m_shared->mutex);
        ++m_shared->in_flight;
    }
    InFlight(InFlight&&) noexcept = default;
    InFlight& operator=(InFlight&&) = delete;
    ~InFlight() {
        if (!m_shared) return;
        std::lock_guard<std::mutex> lock(m_shared->mutex);
        --m_shared->in_flight;
        m_shared->changed.notify_all();
    }

private:
    std::shared_ptr<Shared> m_shared;
};

// Chunks from a producer (pool thread) to its connection (I/O thread). Bounded, so a slow
// client blocks the producer instead of growing memory.
class ChunkQueue {
public:
    enum class Next { Chunk, Wait, End, Abort };

    /// Blocks while full. False once the connection failed. `wake`: the I/O side is parked and
    /// must be told (by the caller, outside the lock).
    bool push(std::string_view data, bool& wake) {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_space.wait(lock, [&] { return m_failed || (m_chunks.size() < kMaxQueuedChunks && m_bytes < kMaxQueuedBytes); });
        if (m_failed) return false;
        m_chunks.emplace_back(data);
        m_bytes += data.size();
        wake = std::exchange(m_parked, false);
        return true;
    }
    /// The producer returned; true when the I/O side must be woken.
    bool finish(bool ok) {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_finished = true;
        m_ok = ok;
        return std::exchange(m_parked, false);
    }
    /// Wait means "parked": the next push or finish reports wake.
    Next pop(std::string& out) {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (m_failed) return Next::Abort;
        if (!m_chunks.empty()) {
            out = std::move(m_chunks.front());
            m_chunks.pop_front();
            m_bytes -= out.size();
            m_space.notify_all();
            return Next::Chunk;
        }
        if (m_finished) return m_ok ? Next::End : Next::Abort;
        m_parked = true;
        return Next::Wait;
    }
    void fail() {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_failed = true;
        m_space.notify_all();
    }
    bool failed() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_failed;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_space;
    std::deque<std::string> m_chunks;
    std::size_t m_bytes = 0;
    bool m_parked = false;
    bool m_finished = false;
    bool m_ok = false;
    bool m_failed = false;
};

http::Response json_error(int status, const std::string& code, const std::string& message) {
    http::Response r;
    r.status = status;
    r.headers["Content-Type"] = "application/json";
    r.body = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}";
    return r;
}

http::Response call_handler(const RequestHandler& handler, const http::Request& req) {
    try {
        return handler(req);
    } catch (const std::exception& e) {
        log_line("request handler threw: " + std::string(e.what()));
    } catch (...) {
        log_line("request handler threw");
    }
    return json_error(500, "internal", "internal error");
}

http::Request to_request(bhttp::request<bhttp::string_body>& in, const std::string& peer, bool secure) {
    http::Request out;
    out.method = str(in.method_string());
    const beast::string_view target = in.target();
    const std::size_t q = target.find('?');
    out.raw_path = str(target.substr(0, q));
    if (q != beast::string_view::npos)
        out.query = http::parse_query(std::string_view(target.data() + q + 1, target.size() - q - 1));
    for (const auto& field : in) {
        auto [it, fresh] = out.headers.emplace(lower(field.name_string()), str(field.value()));
        if (!fresh) it->second += ", " + str(field.value());
    }
    out.body = std::move(in.body());
    out.remote_address = peer;
    out.secure = secure;
    return out;
}

bool clean(const std::string& s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos; }

// The handler's headers, minus the framing ones this listener owns (a CR or LF would let a
// header value inject more headers, so such headers are dropped).
template <class Message>
void copy_headers(const std::map<std::string, std::string>& headers, Message& out, bool keep_length) {
    for (const auto& [name, value] : headers) {
        if (name.empty() || !clean(name) || !clean(value)) continue;
        const std::string key = lower(name);
        if (key == "transfer-encoding" || key == "connection" || (key == "content-length" && !keep_length)) continue;
        out.set(name, value);
    }
}

bool asks_close(const std::map<std::string, std::string>& headers) {
    for (const auto& [name, value] : headers)
        if (lower(name) == "connection" && lower(value).find("close") != std::string::npos) return true;
    return false;
}

unsigned final_status(int status) { return status < 200 || status > 999 ? 500u : static_cast<unsigned>(status); }

bhttp::response<bhttp::string_body> buffered(http::Response&& res, unsigned version, bool head, bool close) {
    bhttp::response<bhttp::string_body> out;
    out.version(version);
    out.result(final_status(res.status));
    copy_headers(res.headers, out, head);  // HEAD: the handler may announce the GET's length
    const bool no_body = out.result_int() == 204 || out.result_int() == 304;
    if (no_body)
        out.erase(bhttp::field::content_length);
    else if (!head || out.find(bhttp::field::content_length) == out.end())
        out.content_length(res.body.size());
    if (!no_body && !head) out.body() = std::move(res.body);
    out.keep_alive(!close);
    return out;
}

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

public:
    Session(tcp::socket socket, std::shared_ptr<net::ssl::context> ssl, Ticket ticket, std::shared_ptr<Shared> shared,
            std::string peer)
        : m_shared(std::move(shared)),
          m_ticket(std::move(ticket)),
          m_ssl(std::move(ssl)),
          m_executor(socket.get_executor()),
          m_stream(open_stream(std::move(socket), m_ssl.get())),
          m_peer(std::move(peer)) {}

    void start() {
        {
            std::lock_guard<std::mutex> lock(m_shared->mutex);
            m_shared->sessions[m_ticket.id()] = this->weak_from_this();
        }
        // A new connection gets one header budget from accept, not an idle wait first: a client
        // that connects and says nothing must not hold its slot for the (longer) idle timeout.
        arm(limits().header_timeout_ms);
        if constexpr (kTls) {
            m_stream.async_handshake(net::ssl::stream_base::server,
                                     [self = this->shared_from_this()](const beast::error_code& ec) {
                                         if (ec) return self->abort();
                                         self->arm(self->limits().header_timeout_ms);
                                         self->read_header();
                                     });
        } else {
            read_header();
        }
    }

    void on_listener_closing() override {
        // Handling and Writing finish their response (sent with Connection: close).
        if (m_phase == Phase::Reading) abort();
    }

    void abort() override {
        m_phase = Phase::Closed;
        if (m_queue) m_queue->fail();
        beast::get_lowest_layer(m_stream).close();
    }

private:
    enum class Phase { Reading, Handling, Writing, Closing, Closed };

    // Hands a producer's chunks to the connection; runs on the producer's pool thread.
    class Writer final : public http::BodyWriter {
    public:
        Writer(Session& session, ChunkQueue& queue) : m_session(session), m_queue(queue) {}
        bool write(std::string_view chunk) override {
            if (chunk.empty()) return !m_queue.failed();  // an empty chunk would end the body
            bool wake = false;
            if (!m_queue.push(chunk, wake)) return false;
            if (wake) m_session.wake();
            return true;
        }

    private:
        Session& m_session;
        ChunkQueue& m_queue;
    };

    static Stream open_stream(tcp::socket socket, net::ssl::context* ssl) {
        if constexpr (kTls)
            return Stream(std::move(socket), *ssl);
        else
            return Stream(std::move(socket));
    }

    const ListenerLimits& limits() const { return m_shared->limits; }

    void arm(int ms) {
        if (ms > 0)
            beast::get_lowest_layer(m_stream).expires_after(milliseconds(ms));
        else
            beast::get_lowest_layer(m_stream).expires_never();
    }

    // Keep-alive: the idle deadline covers the silence, the header deadline starts at the first byte.
    void next_request() {
        if (m_shared->closing) return graceful_close();
        m_phase = Phase::Reading;
        if (m_buffer.size() > 0) {  // pipelined
            arm(limits().header_timeout_ms);
            return read_header();
        }
        arm(limits().idle_timeout_ms);
        m_stream.async_read_some(m_buffer.prepare(kReadSize),
                                 [self = this->shared_from_this()](const beast::error_code& ec, std::size_t n) {
                                     if (ec) return self->abort();
                                     self->m_buffer.commit(n);
                                     self->arm(self->limits().header_timeout_ms);
                                     self->read_header();
                                 });
    }

    void read_header() {
        m_phase = Phase::Reading;
        m_version = 11;
        m_is_head = false;
        m_keep_alive = false;
        m_must_close = false;
        m_parser.emplace();
        m_parser->header_limit(static_cast<std::uint32_t>(
            std::min<std::size_t>(limits().max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
        // Checked by hand after the headers: Beast would fail the header read, and the handler
        // must still see the headers to answer 413 itself. (Not boost::none: Beast 1.74 compares
        // the length with the optional, and every length is greater than none.)
        m_parser->body_limit(std::numeric_limits<std::uint64_t>::max());
        bhttp::async_read_header(m_stream, m_buffer, *m_parser,
                                 [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
                                     self->on_header(ec);
                                 });
    }

    void on_header(const beast::error_code& ec) {
        if (ec) return on_read_error(ec);
        const auto& req = m_parser->get();
        m_version = req.version();
        m_is_head = req.method() == bhttp::verb::head;
        m_keep_alive = req.keep_alive();
        const auto length = m_parser->content_length();
        if (req.find(bhttp::field::transfer_encoding) != req.end() || (length && *length > limits().max_body_bytes)) {
            m_must_close = true;  // the body stays unread, so nothing after it can be parsed
            return dispatch();
        }
        if (m_parser->is_done()) return dispatch();
        m_parser->body_limit(limits().max_body_bytes);
        if (beast::iequals(req[bhttp::field::expect], "100-continue")) return send_continue();
        read_body();
    }

    // Without it curl waits a second before sending a large body.
    void send_continue() {
        m_continue.emplace(bhttp::status::continue_, m_version);
        arm(limits().write_timeout_ms);
        bhttp::async_write(m_stream, *m_continue,
                           [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
                               self->m_continue.reset();
                               if (ec) return self->abort();
                               self->read_body();
                           });
    }

    void read_body() {
        arm(limits().body_timeout_ms);
        bhttp::async_read(m_stream, m_buffer, *m_parser,
                          [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
                              if (ec) return self->on_read_error(ec);
                              self->dispatch();
                          });
    }

    void on_read_error(const beast::error_code& ec) {
        if (ec == bhttp::error::header_limit)
            return send_error(431, "header_too_large", "the request headers exceed the limit");
        if (ec == bhttp::error::body_limit) return send_error(413, "too_large", "the request body exceeds the limit");
        const bool parse_error = ec.category() == beast::error_code(bhttp::error::bad_target).category() &&
                                 ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
        if (parse_error) return send_error(400, "bad_request", "malformed HTTP request");
        abort();  // timeout, reset, end of stream: nobody to answer
    }

    void send_error(int status, const std::string& code, const std::string& message) {
        m_must_close = true;
        send(json_error(status, code, message), InFlight());
    }

    void dispatch() {
        m_phase = Phase::Handling;
        http::Request req = to_request(m_parser->get(), m_peer, kTls);
        m_parser.reset();
        // The handler blocks (SQLite, PBKDF2): never on the I/O thread.
        net::post(*m_shared->pool, [self = this->shared_from_this(), req = std::move(req),
                                    token = InFlight(m_shared)]() mutable {
            guarded("request handler", [&] {
                http::Response res = call_handler(self->m_shared->handler, req);
                const net::any_io_executor ex = self->m_executor;
                net::post(ex, [self = std::move(self), res = std::move(res), token = std::move(token)]() mutable {
                    self->send(std::move(res), std::move(token));
                });
            });
        });
    }

    void send(http::Response res, InFlight token) {
        if (m_phase == Phase::Closed) return;
        m_phase = Phase::Writing;
        const bool close = m_must_close || !m_keep_alive || m_shared->closing || asks_close(res.headers);
        if (res.stream) return start_stream(std::move(res), close, std::move(token));
        m_response.emplace(buffered(std::move(res), m_version, m_is_head, close));
        arm(limits().write_timeout_ms);
        bhttp::async_write(m_stream, *m_response,
                           [self = this->shared_from_this(), close](const beast::error_code& ec, std::size_t) {
                               self->on_written(ec, close);
                           });
    }

    void on_written(const beast::error_code& ec, bool close) {
        m_response.reset();
        m_serializer.reset();
        m_head.reset();
        m_queue.reset();
        if (ec) return abort();
        if (close || m_shared->closing) return graceful_close();
        next_request();
    }

    void start_stream(http::Response res, bool close, InFlight token) {
        m_chunked = m_version >= 11;
        m_close_after = close || !m_chunked;  // an unchunked body ends where the connection does
        m_head.emplace();
        m_head->version(m_version);
        m_head->result(final_status(res.status));
        copy_headers(res.headers, *m_head, false);
        if (m_chunked) m_head->chunked(true);
        m_head->keep_alive(!m_close_after);
        m_serializer.emplace(*m_head);
        arm(limits().write_timeout_ms);
        bhttp::async_write_header(
            m_stream, *m_serializer,
            [self = this->shared_from_this(), producer = std::move(res.stream), token = std::move(token)](
                const beast::error_code& ec, std::size_t) mutable {
                if (ec) return self->abort();
                if (self->m_is_head) return self->on_written({}, self->m_close_after);
                self->run_producer(std::move(producer), std::move(token));
            });
    }

    void run_producer(std::function<bool(http::BodyWriter&)> producer, InFlight token) {
        m_queue = std::make_shared<ChunkQueue>();
        net::post(*m_shared->pool, [self = this->shared_from_this(), queue = m_queue, producer = std::move(producer),
                                    token = std::move(token)]() mutable {
            bool ok = false;
            guarded("response producer", [&] {
                Writer writer(*self, *queue);
                ok = producer(writer);
            });
            guarded("response producer", [&] {
                if (queue->finish(ok)) self->wake();
                // The last reference is dropped on the I/O thread, where the socket lives.
                const net::any_io_executor ex = self->m_executor;
                net::post(ex, [self = std::move(self)] {});
            });
        });
        pump();
    }

    // Any thread: the producer queued something while the connection was parked.
    void wake() {
        net::post(m_executor, [self = this->shared_from_this()] { self->pump(); });
    }

    // Exactly one pump runs at a time: it is re-entered only from a finished write or from a
    // wake, and a wake is only reported after pop() returned Wait.
    void pump() {
        if (m_phase == Phase::Closed || !m_queue) return;
        switch (m_queue->pop(m_chunk)) {
            case ChunkQueue::Next::Chunk: return write_chunk();
            case ChunkQueue::Next::Wait: return;
            case ChunkQueue::Next::End: return finish_stream();
            case ChunkQueue::Next::Abort: return abort();  // no last chunk: the client sees a truncated body
        }
    }

    void write_chunk() {
        arm(limits().write_timeout_ms);
        auto done = [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
            if (ec) return self->abort();
            self->pump();
        };
        if (m_chunked)
            net::async_write(m_stream, bhttp::make_chunk(net::buffer(m_chunk)), std::move(done));
        else
            net::async_write(m_stream, net::buffer(m_chunk), std::move(done));
    }

    void finish_stream() {
        if (!m_chunked) return on_written({}, true);
        arm(limits().write_timeout_ms);
        net::async_write(m_stream, bhttp::make_chunk_last(),
                         [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
                             self->on_written(ec, self->m_close_after);
                         });
    }

    // Closing right after the response with unread input makes the kernel send RST, which can
    // destroy the response before the client reads it: send FIN first, then read and discard
    // for a moment.
    void graceful_close() {
        m_phase = Phase::Closing;
        arm(kLingerMs);
        if constexpr (kTls) {
            m_stream.async_shutdown([self = this->shared_from_this()](const beast::error_code&) { self->abort(); });
        } else {
            beast::error_code ignored;
            m_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
            m_drained = 0;
            drain();
        }
    }

    void drain() {
        m_stream.async_read_some(m_buffer.prepare(kReadSize),
                                 [self = this->shared_from_this()](const beast::error_code& ec, std::size_t n) {
                                     self->m_drained += n;
                                     if (ec || self->m_drained > kMaxDrainBytes) return self->abort();
                                     self->drain();
                                 });
    }

    const std::shared_ptr<Shared> m_shared;
    Ticket m_ticket;
    std::shared_ptr<net::ssl::context> m_ssl;  // before m_stream, which refers to it
    const net::any_io_executor m_executor;     // read from pool threads
    Stream m_stream;
    const std::string m_peer;
    beast::flat_buffer m_buffer;
    std::optional<bhttp::request_parser<bhttp::string_body>> m_parser;
    std::optional<bhttp::response<bhttp::empty_body>> m_continue;
    std::optional<bhttp::response<bhttp::string_body>> m_response;
    std::optional<bhttp::response<bhttp::empty_body>> m_head;  // of a streamed response
    std::optional<bhttp::response_serializer<bhttp::empty_body>> m_serializer;
    std::shared_ptr<ChunkQueue> m_queue;
    std::string m_chunk;  // being written
    Phase m_phase = Phase::Reading;
    unsigned m_version = 11;
    bool m_is_head = false;
    bool m_keep_alive = false;
    bool m_must_close = false;
    bool m_chunked = true;
    bool m_close_after = false;
    std::size_t m_drained = 0;
};

std::string peer_ip(const net::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).to_string();
    return a.to_string();
}

class BeastListener final : public HttpListener {
public:
    BeastListener(const ListenOptions& options, RequestHandler handler)
        : m_shared(std::make_shared<Shared>()),
          m_tls(options.tls),
          m_acceptor(m_io),
          m_retry(m_io),
          m_pool(std::max<std::size_t>(1, options.limits.handler_threads)) {
        m_shared->limits = options.limits;
        m_shared->handler = std::move(handler);
        m_shared->pool = &m_pool;
    }
    ~BeastListener() override { close(); }
    BeastListener(const BeastListener&) = delete;
    BeastListener& operator=(const BeastListener&) = delete;

    Status listen(const std::string& host, int port) {
        const std::string where = host + ":" + std::to_string(port);
        beast::error_code ec;
        const tcp::endpoint endpoint = resolve(host, port, ec);
        if (!ec) m_acceptor.open(endpoint.protocol(), ec);
        if (!ec) m_acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec) m_acceptor.bind(endpoint, ec);
        if (!ec) m_acceptor.listen(net::socket_base::max_listen_connections, ec);
        if (!ec) m_port = m_acceptor.local_endpoint(ec).port();
        if (ec) return Status(ErrorCode::IoError, "cannot listen on " + where + ": " + ec.message());
        return {};
    }

    void start() {
        m_work.emplace(m_io.get_executor());
        accept();
        m_thread = std::thread([this] { run_io(); });
    }

    void close() override {
        if (m_closed.exchange(true)) return;
        try {
            shut_down();
        } catch (const std::exception& e) {
            log_line("closing the listener: " + std::string(e.what()));
        } catch (...) {
            log_line("closing the listener failed");
        }
    }

    int port() const override { return m_port; }
    bool secure() const override { return m_tls != nullptr; }

private:
    tcp::endpoint resolve(std::string host, int port, beast::error_code& ec) {
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        if (port < 0 || port > 65535) {
            ec = net::error::invalid_argument;
            return {};
        }
        const auto literal = net::ip::make_address(host, ec);
        if (!ec) return tcp::endpoint(literal, static_cast<unsigned short>(port));
        tcp::resolver resolver(m_io);
        const auto found = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
        if (!ec && found.empty()) ec = net::error::host_not_found;
        return ec ? tcp::endpoint() : found.begin()->endpoint();
    }

    void run_io() {
        for (;;) {
            try {
                m_io.run();
                return;
            } catch (const std::exception& e) {
                log_line("listener I/O thread: " + std::string(e.what()));
            } catch (...) {
                log_line("listener I/O thread: unknown exception");
            }
        }
    }

    void accept() {
        m_acceptor.async_accept([this](const beast::error_code& ec, tcp::socket socket) {
            if (m_shared->closing || ec == net::error::operation_aborted) return;
            guarded("accepting a connection", [&] { ec ? retry_accept(ec) : admit(std::move(socket)); });
            if (!ec) accept();
        });
    }

    // EMFILE and friends leave the connection in the backlog: retrying at once would spin.
    void retry_accept(const beast::error_code& ec) {
        m_accept_log.log("accept failed (" + ec.message() + "); retrying");
        m_retry.expires_after(kAcceptRetry);
        m_retry.async_wait([this](const beast::error_code& e) {
            if (!e && !m_shared->closing) accept();
        });
    }

    void admit(tcp::socket socket) {
        beast::error_code ec;
        const tcp::endpoint peer = socket.remote_endpoint(ec);
        if (ec) return;  // already gone
        const std::string ip = peer_ip(peer.address());
        std::optional<Ticket> ticket = Ticket::admit(m_shared, ip);
        if (!ticket) return;  // over a cap: the socket closes unread
        socket.set_option(tcp::no_delay(true), ec);
        if (!m_tls) {
            std::make_shared<Session<PlainStream>>(std::move(socket), nullptr, std::move(*ticket), m_shared, ip)->start();
            return;
        }
        std::shared_ptr<net::ssl::context> ssl = tls_context();
        if (!ssl) return;
        std::make_shared<Session<TlsStream>>(std::move(socket), std::move(ssl), std::move(*ticket), m_shared, ip)->start();
    }

    // One SSL_CTX for all connections (so sessions resume), rebuilt after a certificate reload;
    // open connections keep the context they started with.
    std::shared_ptr<net::ssl::context> tls_context() {
        const std::uint64_t generation = m_tls->generation();
        if (m_ssl && generation == m_ssl_generation) return m_ssl;
        std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> raw(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
        if (!raw) {
            m_tls_log.log("cannot create a TLS context");
            return nullptr;
        }
        auto ssl = std::make_shared<net::ssl::context>(raw.get());
        raw.release();  // the asio context owns it now
        const Status configured = m_tls->configure(ssl->native_handle());
        if (!configured.ok()) {
            m_tls_log.log("cannot configure TLS: " + configured.to_string());
            return nullptr;
        }
        m_ssl = std::move(ssl);
        m_ssl_generation = generation;
        return m_ssl;
    }

    template <class Predicate, class Duration>
    bool wait_for(Predicate done, Duration limit) {
        std::unique_lock<std::mutex> lock(m_shared->mutex);
        return m_shared->changed.wait_for(lock, limit, done);
    }

    // Runs `job` on the I/O thread and waits for it.
    template <class Job>
    void on_io_thread(Job job) {
        auto ran = std::make_shared<std::promise<void>>();
        std::future<void> done = ran->get_future();
        net::post(m_io, [job = std::move(job), ran]() mutable {
            guarded("closing the listener", job);
            ran->set_value();
        });
        done.wait_for(kFlushWait);
    }

    void shut_down() {
        if (m_thread.joinable()) {
            on_io_thread([this] {
                m_shared->closing = true;
                beast::error_code ec;
                m_acceptor.close(ec);
                m_retry.cancel();
                for (const auto& s : m_shared->live_sessions()) s->on_listener_closing();
            });
            if (!wait_for([this] { return m_shared->in_flight == 0; }, kHandlerWait))
                log_line("closing the listener: requests still running after 30 s");
            wait_for([this] { return m_shared->open == 0; }, kFlushWait);  // last responses go out
            net::post(m_io, [this] {
                for (const auto& s : m_shared->live_sessions()) s->abort();
                m_io.stop();  // what is left is destroyed with the io_context
            });
            m_thread.join();
        }
        m_pool.stop();
        m_pool.join();  // a handler that never returns blocks here
    }

    const std::shared_ptr<Shared> m_shared;
    const std::shared_ptr<TlsServerContext> m_tls;
    net::io_context m_io{1};  // one I/O thread, so connections need no strands
    // Keeps run() going while the only work left is in the pool (a handler's response to come).
    std::optional<net::executor_work_guard<net::io_context::executor_type>> m_work;
    tcp::acceptor m_acceptor;
    net::steady_timer m_retry;
    net::thread_pool m_pool;
    std::thread m_thread;
    int m_port = 0;
    std::atomic<bool> m_closed{false};
    // I/O thread only:
    std::shared_ptr<net::ssl::context> m_ssl;
    std::uint64_t m_ssl_generation = 0;
    LogThrottle m_accept_log;
    LogThrottle m_tls_log;
};

}  // namespace

Result<std::unique_ptr<HttpListener>> open_beast_listener(const ListenOptions& options, RequestHandler handler) {
    if (!handler) return Status(ErrorCode::InvalidArgument, "open_beast_listener: no request handler");
    try {
        auto listener = std::make_unique<BeastListener>(options, std::move(handler));
        UBUZIMA_TRY(listener->listen(options.host, options.port));
        listener->start();
        return std::unique_ptr<HttpListener>(std::move(listener));
    } catch (const std::exception& e) {
        return Status(ErrorCode::Internal, "cannot start the listener: " + std::string(e.what()));
    } catch (...) {
        return Status(ErrorCode::Internal, "cannot start the listener");
    }
}

}  // namespace ubuzima::server
