#include "runtime/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <list>
#include <mutex>
#include <future>
#include <optional>
#include <thread>

#include "core/error.h"
#include "runtime/json_writer.h"

namespace kiln::runtime {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class Session;

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  // One io_context per I/O thread, connections dealt round-robin: a connection's handlers always
  // run on its own thread, with no cross-thread wake-up per request (one shared io_context hands
  // every ready socket from the thread in epoll to another through a condition variable).
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<std::unique_ptr<std::atomic<int>>> ioc_sessions;  // open connections per io_context
  int64_t connections() const {
    int64_t n = 0;
    for (const auto& c : ioc_sessions) n += c->load();
    return n;
  }
  size_t next_ioc = 0;
  // Keep run() going while requests wait in a batcher with no socket operation pending (during
  // a drain the acceptor is closed and nothing else would hold an io_context open).
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> io_sleeps{0};  // times an I/O thread stopped polling to block in epoll
  std::atomic<bool> draining{false};
  bool accepting = true;  // touched on iocs[0] only, where the acceptor's handlers run
  std::mutex sessions_mutex;
  std::list<std::weak_ptr<Session>> sessions;
  int port = 0;

  void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server, size_t ioc)
      : stream_(std::move(socket)), server_(server), ioc_sessions_(*server.ioc_sessions[ioc]) {
    ++ioc_sessions_;
    // Reads fill what the buffer has room for, at least 512 bytes: room for a whole request of
    // a few KiB saves a read (and a trip through the reactor) per 512 bytes.
    buffer_.reserve(8192);
    // Synchronous writes (see write()) return would_block instead of waiting.
    beast::error_code ec;
    stream_.socket().non_blocking(true, ec);
  }
  ~Session() { --ioc_sessions_; }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // From shutdown(): a busy connection answers with "Connection: close"; an idle one may still
  // send one request within drain_idle (a client that wrote it as we closed would see a reset).
  void drain() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->arm(self->header_wait());
    });
  }

 private:
  std::chrono::milliseconds header_wait() const {
    return server_.draining ? std::min(server_.options.header_timeout, server_.options.drain_idle)
                            : server_.options.header_timeout;
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(static_cast<uint64_t>(server_.options.max_body_bytes));
    target_.clear();
    arm(header_wait());
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    disarm();
    // The parser takes the request line as soon as it is complete (so a 408 or 431 knows it too).
    target_ = std::string(parser_->get().target());
    if (ec && timed_out_) {
      // A client that sent part of a header and stalled gets 408; a silent idle one is closed.
      if (parser_->got_some() || buffer_.size() > 0) return reply_error(408, "the request header timed out");
      return close();
    }
    if (ec == http::error::header_limit) return reply_error(431, "the request header is too large");
    if (ec == http::error::body_limit)
      return reply_error(413, "the request body exceeds the limit of " + std::to_string(server_.options.max_body_bytes) +
                                  " bytes");
    if (ec) {
      if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
          ec == net::error::connection_reset)
        return close();
      return reply_error(400, "malformed HTTP request: " + ec.message());
    }
    busy_ = true;
    auto& req = parser_->get();
    if (auto length = parser_->content_length(); length && *length > static_cast<uint64_t>(server_.options.max_body_bytes))
      return reply_error(413, "the request body has " + std::to_string(*length) + " bytes, the limit is " +
                                  std::to_string(server_.options.max_body_bytes));
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    // A body that came with the header (the usual case) is parsed at once, without a read
    // operation whose completion would go through the reactor again.
    if (!parser_->is_done() && buffer_.size() > 0) {
      parser_->eager(true);
      beast::error_code pec;
      buffer_.consume(parser_->put(buffer_.data(), pec));
      if (pec != http::error::need_more && (pec || parser_->is_done())) return on_body(pec);
    }
    if (parser_->is_done()) return on_body({});
    read_body();
  }

  void read_body() {
    arm(server_.options.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    disarm();
    if (ec == http::error::body_limit)
      return reply_error(413, "the request body exceeds the limit of " + std::to_string(server_.options.max_body_bytes) +
                                  " bytes");
    if (ec && timed_out_) return reply_error(408, "the request body timed out");
    // A malformed body framing (a bad chunk size or extension) gets its 400; a client that went
    // away mid-body (partial message, reset) gets nothing.
    if (ec && ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
        ec != http::error::partial_message && ec != http::error::end_of_stream)
      return reply_error(400, "malformed HTTP request body: " + ec.message());
    if (ec) return close();
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.inference_header_length = std::string(req["Inference-Header-Content-Length"]);
    r.content_encoding = std::string(req[http::field::content_encoding]);
    r.body = std::move(req.body());
    r.arrival = std::chrono::steady_clock::now();
    ++server_.in_flight;
    auto self = shared_from_this();
    try {
      server_.handler(std::move(r), [self](HttpResponse&& resp) {
        auto shared = std::make_shared<HttpResponse>(std::move(resp));
        net::dispatch(self->stream_.get_executor(), [self, shared] { self->write(std::move(*shared), true); });
      });
    } catch (const std::exception& e) {
      HttpResponse resp;
      resp.status = 500;
      resp.body = json_error(std::string("internal error: ") + e.what());
      write(std::move(resp), true);
    }
  }

  void reply_error(int status, const std::string& message) {
    if (server_.options.on_rejected) server_.options.on_rejected(status, target_);
    busy_ = true;
    keep_alive_ = false;
    HttpResponse resp;
    resp.status = status;
    resp.body = json_error(message);
    write(std::move(resp), false);
  }

  // The response goes out in one send from the calling thread when the socket takes it whole
  // (nearly always); only the rest, if any, is written asynchronously.
  void write(HttpResponse&& r, bool counted) {
    const bool keep = keep_alive_ && !server_.draining;
    head_.clear();
    head_ += "HTTP/1.1 ";
    head_ += std::to_string(r.status);
    head_ += ' ';
    head_ += http::obsolete_reason(http::int_to_status(static_cast<unsigned>(r.status)));
    head_ += "\r\nServer: kiln\r\nContent-Type: ";
    head_ += r.content_type;
    for (const auto& [k, v] : r.headers) {
      head_ += "\r\n";
      head_ += k;
      head_ += ": ";
      head_ += v;
    }
    head_ += "\r\nContent-Length: ";
    head_ += std::to_string(r.body.size());
    if (!keep) head_ += "\r\nConnection: close";
    head_ += "\r\n\r\n";
    body_ = std::move(r.body);
    const std::array<net::const_buffer, 2> out{net::buffer(head_), net::buffer(body_)};
    beast::error_code ec;
    const size_t sent = stream_.socket().write_some(out, ec);
    if (!ec && sent == head_.size() + body_.size()) return written(ec, keep, counted);
    if (ec && ec != net::error::would_block && ec != net::error::try_again) return written(ec, keep, counted);
    beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(out);
    rest.consume(ec ? 0 : sent);
    arm(server_.options.body_timeout);  // a client that stops reading is dropped
    net::async_write(stream_.socket(), rest, [self = shared_from_this(), keep, counted](beast::error_code ec, size_t) {
      self->written(ec, keep, counted);
    });
  }

  void written(beast::error_code ec, bool keep, bool counted) {
    disarm();
    if (counted) --server_.in_flight;
    busy_ = false;
    if (ec || !keep) return close();
    read_header();
  }

  // Also stops the timer, whose pending wait would keep the connection alive until it fired.
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
    disarm();
    timer_.cancel();
  }

  // Timeouts run on our own timer rather than tcp_stream's, which closes the socket when it
  // fires: a stalled client gets a 408 answer before the close. One deadline per connection,
  // watched by a timer that is set again only when it fires before the deadline or must fire
  // sooner: setting it on every read and write cost a timerfd update and a cancelled handler each.
  void arm(std::chrono::milliseconds d) {
    timed_out_ = false;
    deadline_ = std::chrono::steady_clock::now() + d;
    if (!timer_waiting_ || deadline_ < timer_expiry_) wait_until(deadline_);
  }
  void disarm() { deadline_ = std::chrono::steady_clock::time_point::max(); }
  // `generation_` voids the handler of a wait that a later one replaced.
  void wait_until(std::chrono::steady_clock::time_point at) {
    const uint64_t gen = ++generation_;
    timer_waiting_ = true;
    timer_expiry_ = at;
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (gen != self->generation_) return;
      self->timer_waiting_ = false;
      if (ec || self->deadline_ == std::chrono::steady_clock::time_point::max()) return;
      if (std::chrono::steady_clock::now() < self->deadline_) return self->wait_until(self->deadline_);
      self->timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_{stream_.get_executor()};
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max(), timer_expiry_;
  bool timer_waiting_ = false;
  uint64_t generation_ = 0;
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  std::string head_, body_;  // the response being written
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl& server_;
  std::atomic<int>& ioc_sessions_;
  std::string target_;  // of the request being read, for on_rejected
  bool keep_alive_ = true;
  bool busy_ = false;
};

}  // namespace

namespace {
// Set on the I/O threads.
thread_local net::io_context* current_io_context = nullptr;
thread_local const std::atomic<int>* current_io_sessions = nullptr;
}  // namespace

bool defer_on_io_thread(std::function<void()>& f) {
  if (!current_io_context || current_io_sessions->load(std::memory_order_relaxed) < 2) return false;
  net::post(*current_io_context, std::move(f));
  return true;
}

namespace {
// io_context::run(), except that after its last handler the thread polls (poll() is a
// non-blocking epoll_wait) for `poll` before it blocks. It yields between polls so that a
// runnable thread on the same core (the client, another I/O thread) is not held up. `sleeps`
// counts the times it gives up polling and blocks.
void run_polling(net::io_context& io, std::chrono::microseconds poll, std::atomic<int64_t>& sleeps) {
  if (poll.count() <= 0) {
    io.run();
    return;
  }
  auto last = std::chrono::steady_clock::now();
  while (!io.stopped()) {
    if (io.poll() > 0) {
      last = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last < poll) {
      std::this_thread::yield();
    } else {
      sleeps.fetch_add(1, std::memory_order_relaxed);
      io.run_one();
      last = std::chrono::steady_clock::now();
    }
  }
}
}  // namespace

int io_threads_for(int configured) {
  return configured > 0 ? configured : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void HttpServer::Impl::accept() {
  const size_t index = next_ioc++ % iocs.size();
  acceptor->async_accept(iocs[index]->get_executor(), [this, index](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    // A connection accepted as the drain begins is served (its response says "Connection:
    // close"), not dropped: its client may already have sent a request.
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      auto s = std::make_shared<Session>(std::move(socket), *this, index);
      {
        std::lock_guard<std::mutex> lock(sessions_mutex);
        for (auto it = sessions.begin(); it != sessions.end();) it = it->expired() ? sessions.erase(it) : std::next(it);
        sessions.push_back(s);
      }
      s->start();
    }
    if (accepting) accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
  if (!impl_->threads.empty()) shutdown(std::chrono::milliseconds(0));
}

void HttpServer::start() {
  Impl& s = *impl_;
  beast::error_code ec;
  auto address = net::ip::make_address(s.options.host, ec);
  if (ec) fail("--host: '", s.options.host, "' is not an IP address");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(s.options.port));
  const int n = std::max(1, s.options.io_threads);
  for (int i = 0; i < n; ++i) {
    s.iocs.push_back(std::make_unique<net::io_context>(1));
    s.ioc_sessions.push_back(std::make_unique<std::atomic<int>>(0));
  }
  s.acceptor.emplace(*s.iocs[0]);
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec) s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on ", s.options.host, ":", s.options.port, ": ", ec.message());
  s.port = s.acceptor->local_endpoint().port();
  for (auto& ioc : s.iocs) s.work.push_back(net::make_work_guard(*ioc));
  s.accept();
  for (size_t i = 0; i < s.iocs.size(); ++i)
    s.threads.emplace_back([io = s.iocs[i].get(), sessions = s.ioc_sessions[i].get(), &s] {
      current_io_context = io;
      current_io_sessions = sessions;
      run_polling(*io, s.options.io_poll, s.io_sleeps);
    });
}

int HttpServer::port() const { return impl_->port; }
int64_t HttpServer::in_flight() const { return impl_->in_flight; }
int64_t HttpServer::connections() const { return impl_->connections(); }
int64_t HttpServer::io_sleeps() const { return impl_->io_sleeps; }

bool HttpServer::shutdown(std::chrono::milliseconds deadline) {
  Impl& s = *impl_;
  const auto until = std::chrono::steady_clock::now() + deadline;
  // The listener closes before any response says "Connection: close": a client reconnecting
  // after that is refused, never left in the accept backlog to be reset. Draining starts in the
  // same handler, at once: a client that has seen the refusal must not get a keep-alive answer
  // (this thread may be scheduled long after the handler, and the I/O threads answer meanwhile).
  std::promise<void> closed;
  net::post(*s.iocs[0], [&s, &closed] {
    s.accepting = false;
    beast::error_code ec;
    if (s.acceptor) s.acceptor->close(ec);
    s.draining = true;
    closed.set_value();
  });
  closed.get_future().wait();
  {
    std::lock_guard<std::mutex> lock(s.sessions_mutex);
    for (auto& w : s.sessions)
      if (auto session = w.lock()) session->drain();
  }
  bool drained = false;
  while (true) {
    if (s.in_flight == 0 && s.connections() == 0) {
      drained = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  s.work.clear();
  for (auto& ioc : s.iocs) ioc->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  return drained;
}

}  // namespace kiln::runtime
