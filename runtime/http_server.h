#pragma once
// HTTP/1.1 server on Boost.Beast/Asio: N I/O threads, each running its own io_context; a
// connection is a chain of asynchronous reads and writes on one of them (no thread per
// connection, no hand-off between threads within a request). Keep-alive,
// a header and a body timeout, a body size limit (413 before the body is read), a header size
// limit (431), "Expect: 100-continue", and graceful shutdown: stop accepting, let in-flight
// requests (also those still uploading) answer with "Connection: close", give idle keep-alive
// connections a moment for a last request, return when drained or at the deadline.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::runtime {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string inference_header_length;  // Inference-Header-Content-Length (KServe binary data)
  std::string content_encoding;
  std::chrono::steady_clock::time_point arrival;  // when the header was complete
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once per request, from any thread.
using Responder = std::function<void(HttpResponse&&)>;
using HttpHandler = std::function<void(HttpRequest&&, Responder)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8501;  // 0 picks a free port
  int io_threads = 1;
  // ServeConfig's io_poll_us: how long an I/O thread polls after its last work before sleeping.
  std::chrono::microseconds io_poll{0};
  int64_t max_body_bytes = 16 << 20;
  int64_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  // Once shutdown() closes the listener, an idle keep-alive connection may still send one request
  // (answered with "Connection: close") for this long before it is closed.
  std::chrono::milliseconds drain_idle{1000};
  // Told of each error the server answers itself (400 malformed, 408, 413, 431), with the request
  // target when the request line was read ("" otherwise), so metrics can name the model.
  std::function<void(int status, std::string_view target)> on_rejected;
};

// ServeConfig's io_threads: 0 means one per hardware thread.
int io_threads_for(int configured);

// Called from a request handler: runs `f` on this I/O thread after the handlers that are already
// ready there (the other requests read in the same round). false, and `f` not taken, on any other
// thread, and on an I/O thread serving one connection, where no other request can come in the
// round (the caller runs `f` at once, without a trip through the reactor).
bool defer_on_io_thread(std::function<void()>& f);

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  // Binds and starts the I/O threads; kiln::Error naming host:port when the bind fails.
  void start();
  int port() const;
  // Graceful stop: closes the listener; a request being received or answered completes and its
  // response says "Connection: close"; idle connections get `drain_idle` to send one last request.
  // True when every connection drained before the deadline.
  bool shutdown(std::chrono::milliseconds deadline);
  int64_t in_flight() const;
  int64_t connections() const;
  // Times an I/O thread stopped polling (io_poll) and blocked in epoll; 0 with io_poll 0.
  int64_t io_sleeps() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::runtime
