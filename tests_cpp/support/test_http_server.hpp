// A small, real HTTP/1.1 server for the engine tests: 127.0.0.1 on an ephemeral port,
// one thread per connection, keep-alive with Content-Length bodies, and scripted
// replies (status, headers, body, delay, reset, partial body, close-delimited body,
// a chunked body written in delayed pieces, optionally cut off before its end).
// Header-only so tests_cpp/CMakeLists.txt needs no change.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace llmbridge::testing {

struct ReceivedRequest {
  std::string method;
  std::string path;  // as sent, query included
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  int connection = 0;  // 1-based number of the connection it arrived on

  std::optional<std::string> header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers)
      if (name == lower_name) return value;
    return std::nullopt;
  }
};

struct Reply {
  enum class Action {
    kRespond,      // send the reply
    kReset,        // close the connection with an RST, without responding
    kPartialBody,  // announce the full Content-Length, send half the body, close
  };
  Action action = Action::kRespond;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int delay_ms = 0;              // wait before acting (cut short when the server stops)
  bool interim_100 = false;      // send "100 Continue" (with a header) before the reply
  bool close_delimited = false;  // no Content-Length: the body ends when we close
  // A chunked body written piece by piece, as a streaming server does: before each
  // piece wait its delay (ms), then send it as one HTTP chunk. Replaces `body`.
  std::vector<std::pair<int, std::string>> pieces;
  // With pieces: close the connection after the last piece instead of sending the
  // terminating zero-size chunk (a body cut off mid-stream).
  bool cut_after_pieces = false;
};

using Handler = std::function<Reply(const ReceivedRequest&)>;

class TestHttpServer {
 public:
  TestHttpServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket() failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 512) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error("bind/listen on 127.0.0.1 failed");
    }
    port_ = ntohs(addr.sin_port);
    if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error("pipe2() failed");
    }
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~TestHttpServer() { stop(); }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // A fixed reply for one path (query ignored). Other paths go to the handler, which
  // by default echoes the request body with status 200.
  void route(const std::string& path, Reply reply) {
    std::lock_guard<std::mutex> lk(mu_);
    routes_[path] = std::move(reply);
  }
  void set_handler(Handler handler) {
    std::lock_guard<std::mutex> lk(mu_);
    handler_ = std::move(handler);
  }

  int connections_accepted() const { return accepted_.load(); }
  std::size_t request_count() const {
    std::lock_guard<std::mutex> lk(mu_);
    return requests_.size();
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard<std::mutex> lk(mu_);
    return requests_;
  }

  // Stops accepting, interrupts delays and open connections, joins every thread.
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopped_) return;
      stopped_ = true;
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    stop_cv_.notify_all();
    char byte = 1;
    [[maybe_unused]] auto n = ::write(wake_pipe_[1], &byte, 1);
    if (accept_thread_.joinable()) accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lk(mu_);
      threads.swap(connection_threads_);
    }
    for (auto& t : threads) t.join();
    ::close(listen_fd_);
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
  }

 private:
  void accept_loop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lk(mu_);
      if (stopped_) {
        ::close(fd);
        return;
      }
      open_fds_.insert(fd);
      const int number = ++accepted_;
      connection_threads_.emplace_back([this, fd, number] { serve(fd, number); });
    }
  }

  void serve(int fd, int number) {
    std::string buffer;
    ReceivedRequest req;
    bool keep_open = true;
    while (keep_open && read_request(fd, buffer, req)) {
      req.connection = number;
      std::optional<Reply> routed;
      {
        std::lock_guard<std::mutex> lk(mu_);
        requests_.push_back(req);
        auto it = routes_.find(req.path.substr(0, req.path.find('?')));
        if (it != routes_.end()) routed = it->second;
      }
      const Reply reply = routed ? *routed : call_handler(req);
      if (reply.delay_ms > 0 && !sleep_unless_stopped(reply.delay_ms)) break;
      keep_open = act(fd, reply);
    }
    std::lock_guard<std::mutex> lk(mu_);
    open_fds_.erase(fd);
    ::close(fd);
  }

  Reply call_handler(const ReceivedRequest& req) {
    Handler handler;
    {
      std::lock_guard<std::mutex> lk(mu_);
      handler = handler_;
    }
    if (handler) return handler(req);
    Reply echo;
    echo.body = req.body;
    echo.headers.emplace_back("X-Path", req.path);
    return echo;
  }

  // False when the connection must be closed afterwards.
  bool act(int fd, const Reply& reply) {
    if (reply.action == Reply::Action::kReset) {
      linger hard{1, 0};  // close() then sends RST instead of FIN
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
      return false;
    }
    if (reply.interim_100 && !send_all(fd, "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"))
      return false;
    std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                       reason(reply.status) + "\r\n";
    for (const auto& [name, value] : reply.headers) head += name + ": " + value + "\r\n";
    if (!reply.pieces.empty()) {
      head += "Transfer-Encoding: chunked\r\n\r\n";
      if (!send_all(fd, head)) return false;
      for (const auto& [delay_ms, bytes] : reply.pieces) {
        if (delay_ms > 0 && !sleep_unless_stopped(delay_ms)) return false;
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
        if (!send_all(fd, std::string(size) + bytes + "\r\n")) return false;
      }
      if (reply.cut_after_pieces) return false;
      return send_all(fd, "0\r\n\r\n");
    }
    if (reply.close_delimited)
      head += "Connection: close\r\n";
    else
      head += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
    head += "\r\n";
    if (reply.action == Reply::Action::kPartialBody) {
      send_all(fd, head + reply.body.substr(0, reply.body.size() / 2));
      return false;
    }
    if (!send_all(fd, head + reply.body)) return false;
    return !reply.close_delimited;
  }

  static const char* reason(int status) {
    switch (status) {
      case 200: return "OK";
      case 404: return "Not Found";
      case 500: return "Internal Server Error";
      case 503: return "Service Unavailable";
      default: return "Status";
    }
  }

  static bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads one request (head + Content-Length body); bytes past it stay in `buffer`.
  static bool read_request(int fd, std::string& buffer, ReceivedRequest& out) {
    std::size_t head_end;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more(fd, buffer)) return false;
    }
    out = ReceivedRequest{};
    std::string_view head(buffer.data(), head_end);
    std::size_t line_end = head.find("\r\n");
    std::string_view request_line = head.substr(0, line_end);
    const auto sp1 = request_line.find(' ');
    const auto sp2 = request_line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return false;
    out.method.assign(request_line.substr(0, sp1));
    out.path.assign(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
    std::size_t content_length = 0;
    while (line_end != std::string_view::npos && line_end < head.size()) {
      const std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      std::string_view line = head.substr(start, line_end == std::string_view::npos
                                                     ? std::string_view::npos
                                                     : line_end - start);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-length") content_length = std::stoul(std::string(value));
      out.headers.emplace_back(std::move(name), std::string(value));
    }
    const std::size_t body_start = head_end + 4;
    while (buffer.size() < body_start + content_length) {
      if (!read_more(fd, buffer)) return false;
    }
    out.body = buffer.substr(body_start, content_length);
    buffer.erase(0, body_start + content_length);
    return true;
  }

  static bool read_more(int fd, std::string& buffer) {
    char chunk[16384];
    for (;;) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
  }

  // False when the server is stopping.
  bool sleep_unless_stopped(int ms) {
    std::unique_lock<std::mutex> lk(mu_);
    return !stop_cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stopped_; });
  }

  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;
  std::set<int> open_fds_;
  std::vector<std::thread> connection_threads_;
  std::map<std::string, Reply> routes_;
  Handler handler_;
  std::vector<ReceivedRequest> requests_;
};

// A port on 127.0.0.1 with nothing listening: bound once, then released.
inline int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace llmbridge::testing
