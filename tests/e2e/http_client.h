#pragma once
// A blocking HTTP/1.1 client on a plain socket, for end-to-end tests that must also send what a
// well-behaved client never would (partial headers, garbage, oversized bodies).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace kiln::e2e {

struct HttpReply {
  int status = 0;  // 0: no response (connection refused or closed early)
  std::string headers, body;
};

inline int connect_local(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

inline bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;  // a child process of the test exited (SIGCHLD)
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads one response (Content-Length framed, or until EOF).
inline HttpReply read_reply(int fd) {
  HttpReply r;
  std::string data;
  char buf[65536];
  size_t header_end = std::string::npos, need = std::string::npos;
  while (true) {
    if (header_end == std::string::npos && (header_end = data.find("\r\n\r\n")) != std::string::npos) {
      r.headers = data.substr(0, header_end);
      if (r.headers.size() > 12) r.status = std::stoi(r.headers.substr(9, 3));
      size_t cl = r.headers.find("Content-Length: ");
      if (cl == std::string::npos) cl = r.headers.find("content-length: ");
      if (cl != std::string::npos) need = header_end + 4 + std::stoul(r.headers.substr(cl + 16));
      if (r.status == 100) {  // interim response: drop it and read on
        data.erase(0, header_end + 4);
        header_end = need = std::string::npos;
        r.status = 0;
        continue;
      }
    }
    if (need != std::string::npos && data.size() >= need) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  if (header_end != std::string::npos) r.body = data.substr(header_end + 4, need == std::string::npos ? std::string::npos : need - header_end - 4);
  return r;
}

inline std::string http_request_text(const std::string& method, const std::string& path, const std::string& body,
                                     const std::string& extra_headers = "", bool keep_alive = false) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!keep_alive) req += "Connection: close\r\n";
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return req + extra_headers + "\r\n" + body;
}

inline HttpReply http(int port, const std::string& method, const std::string& path, const std::string& body = "",
                      const std::string& extra_headers = "") {
  int fd = connect_local(port);
  HttpReply r;
  if (fd < 0) {
    r.body = "connect failed: " + std::string(std::strerror(errno));
    return r;
  }
  if (send_all(fd, http_request_text(method, path, body, extra_headers))) {
    r = read_reply(fd);
    if (r.status == 0) r.body = "no response: " + std::string(std::strerror(errno)) + " " + r.headers;
  } else {
    r.body = "send failed: " + std::string(std::strerror(errno));
  }
  ::close(fd);
  return r;
}

}  // namespace kiln::e2e
