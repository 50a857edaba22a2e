// The HTTP server on its own, with a handler of the test's: a response larger than the socket
// takes in one send goes out in part at once and the rest asynchronously, whole and in order;
// I/O threads that poll after their last work answer requests inside and after the polling
// window, and sleep once it has passed.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "runtime/http_server.h"
#include "tests/e2e/http_client.h"

namespace kiln::runtime {
namespace {

TEST(HttpServer, AResponseLargerThanTheSocketBufferArrivesWholeToALateReader) {
  // 24 MiB, more than Linux lets a TCP socket buffer (tcp_wmem's maximum is 4 MiB by default).
  std::string big(24 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  HttpServerOptions options;
  options.port = 0;
  HttpServer server(options, [&big](HttpRequest&& request, Responder respond) {
    HttpResponse r;
    r.content_type = "text/plain";
    r.body = request.target == "/big" ? big : "small";
    respond(std::move(r));
  });
  server.start();
  int fd = e2e::connect_local(server.port());
  ASSERT_GE(fd, 0);
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(e2e::send_all(fd, e2e::http_request_text("GET", "/big", "", "", /*keep_alive=*/true)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server's first send fills the buffers
    e2e::HttpReply r = e2e::read_reply(fd);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.body.size(), big.size());
    EXPECT_TRUE(r.body == big);
  }
  ASSERT_TRUE(e2e::send_all(fd, e2e::http_request_text("GET", "/small", "", "", /*keep_alive=*/true)));
  EXPECT_EQ(e2e::read_reply(fd).body, "small");
  ::close(fd);
  EXPECT_TRUE(server.shutdown(std::chrono::milliseconds(2000)));
}

TEST(HttpServer, IoThreadsPollingAfterTheirLastWorkServeEveryRequestAndThenSleep) {
  HttpServerOptions options;
  options.port = 0;
  options.io_threads = 2;
  options.io_poll = std::chrono::milliseconds(20);
  HttpServer server(options, [](HttpRequest&& request, Responder respond) {
    HttpResponse r;
    r.content_type = "text/plain";
    r.body = request.target;
    respond(std::move(r));
  });
  server.start();
  int fd = e2e::connect_local(server.port());
  ASSERT_GE(fd, 0);
  // Requests inside the polling window and after it (the thread asleep in epoll).
  int64_t before = 0;  // sleeps counted before the last request was sent
  for (int pause_ms : {0, 5, 60, 0, 120}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    before = server.io_sleeps();
    const std::string target = "/after" + std::to_string(pause_ms);
    ASSERT_TRUE(e2e::send_all(fd, e2e::http_request_text("GET", target, "", "", /*keep_alive=*/true)));
    EXPECT_EQ(e2e::read_reply(fd).body, target);
  }
  // Idle: the thread that answered the last request gives up polling and blocks. A loop that
  // never blocked would never count a sleep, however long the test waited.
  bool slept = false;
  for (int i = 0; i < 1000 && !slept; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    slept = server.io_sleeps() > before;
  }
  EXPECT_TRUE(slept);
  ::close(fd);
  EXPECT_TRUE(server.shutdown(std::chrono::milliseconds(2000)));
}

}  // namespace
}  // namespace kiln::runtime
