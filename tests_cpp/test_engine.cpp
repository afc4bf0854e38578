// Engine tests against a real in-process HTTP/1.1 server on 127.0.0.1. Every wait is
// bounded, so a broken engine fails a test instead of hanging the suite.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "llmbridge/http/engine.hpp"
#include "support/test_http_server.hpp"

using namespace llmbridge::http;
using llmbridge::testing::closed_port;
using llmbridge::testing::Reply;
using llmbridge::testing::TestHttpServer;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Collects completions by tag and counts how often each tag's callback ran.
class Completions {
 public:
  Callback callback(int tag) {
    return [this, tag](Response&& r) {
      std::lock_guard<std::mutex> lk(mu_);
      ++calls_[tag];
      responses_[tag] = std::move(r);
      threads_[tag] = std::this_thread::get_id();
      cv_.notify_all();  // under the lock: the waiter may destroy us once it returns
    };
  }
  // Waits until `n` callbacks ran in total; false on timeout.
  bool wait(std::size_t n, milliseconds timeout = milliseconds(3000)) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return total_locked() >= n; });
  }
  std::size_t total() {
    std::lock_guard<std::mutex> lk(mu_);
    return total_locked();
  }
  int calls(int tag) {
    std::lock_guard<std::mutex> lk(mu_);
    return calls_[tag];
  }
  Response get(int tag) {
    std::lock_guard<std::mutex> lk(mu_);
    return responses_[tag];
  }
  std::thread::id thread(int tag) {
    std::lock_guard<std::mutex> lk(mu_);
    return threads_[tag];
  }

 private:
  std::size_t total_locked() const {
    std::size_t n = 0;
    for (const auto& entry : calls_) n += static_cast<std::size_t>(entry.second);
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, int> calls_;
  std::map<int, Response> responses_;
  std::map<int, std::thread::id> threads_;
};

Request get(const std::string& url) {
  Request r;
  r.method = "GET";
  r.url = url;
  r.timeout_ms = 5000;
  return r;
}

Request post(const std::string& url, std::string body) {
  Request r;
  r.method = "POST";
  r.url = url;
  r.body = std::move(body);
  r.headers.push_back({"Content-Type", "application/json"});
  r.timeout_ms = 5000;
  return r;
}

Reply slow(int delay_ms) {
  Reply r;
  r.delay_ms = delay_ms;
  r.body = "late";
  return r;
}

// Polls `pred` until true or the timeout passes.
template <class Pred>
bool eventually(Pred pred, milliseconds timeout = milliseconds(3000)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return pred();
}

}  // namespace

TEST_CASE("GET round trip returns status, headers and body", "[engine]") {
  TestHttpServer server;
  Reply hello;
  hello.body = "hello there";
  hello.headers = {{"X-Test", "Yes"}, {"Content-Type", "text/plain"}};
  server.route("/hello", hello);
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  Request req = get(server.url("/hello?x=1"));
  req.headers.push_back({"Authorization", "Bearer secret"});
  engine.submit(req, done.callback(0));
  REQUIRE(done.wait(1));
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kNone);
  CHECK(r.error_message.empty());
  CHECK(r.status == 200);
  CHECK(r.body == "hello there");
  CHECK(r.header("x-test") == std::optional<std::string_view>("Yes"));
  CHECK(r.header("content-type") == std::optional<std::string_view>("text/plain"));
  CHECK(r.elapsed_ms > 0.0);
  CHECK(done.thread(0) != std::this_thread::get_id());

  const auto seen = server.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].path == "/hello?x=1");
  CHECK(seen[0].header("authorization") == std::optional<std::string>("Bearer secret"));
  CHECK(seen[0].header("user-agent") == std::optional<std::string>("llmbridge/0.1"));
  CHECK(engine.in_flight() == 0);
}

TEST_CASE("POST sends the body and headers, without Expect", "[engine]") {
  TestHttpServer server;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  // Large enough that curl would use Expect: 100-continue if we let it.
  const std::string body = "{\"doc\":\"" + std::string(200000, 'a') + "\"}";
  Request req = post(server.url("/v1/chat/completions"), body);
  req.headers.push_back({"X-Empty", ""});
  engine.submit(req, done.callback(0));
  REQUIRE(done.wait(1));
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kNone);
  CHECK(r.status == 200);
  CHECK(r.body == body);  // the default handler echoes
  CHECK(r.header("x-path") == std::optional<std::string_view>("/v1/chat/completions"));
  const auto seen = server.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].body == body);
  CHECK(seen[0].header("content-type") == std::optional<std::string>("application/json"));
  CHECK(seen[0].header("x-empty") == std::optional<std::string>(""));
  CHECK_FALSE(seen[0].header("expect").has_value());
}

TEST_CASE("HTTP error statuses are values, not transport errors", "[engine]") {
  TestHttpServer server;
  Reply missing;
  missing.status = 404;
  missing.body = "nope";
  server.route("/missing", missing);
  Reply busy;
  busy.status = 503;
  busy.headers = {{"Retry-After", "2"}};
  server.route("/busy", busy);
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  engine.submit(get(server.url("/missing")), done.callback(0));
  engine.submit(post(server.url("/busy"), "{}"), done.callback(1));
  REQUIRE(done.wait(2));
  CHECK(done.get(0).error == TransportError::kNone);
  CHECK(done.get(0).status == 404);
  CHECK(done.get(0).body == "nope");
  CHECK(done.get(1).error == TransportError::kNone);
  CHECK(done.get(1).status == 503);
  CHECK(done.get(1).header("retry-after") == std::optional<std::string_view>("2"));
}

TEST_CASE("Interim 100 responses: only the final header block is kept", "[engine]") {
  TestHttpServer server;
  Reply reply;
  reply.interim_100 = true;
  reply.headers = {{"X-Final", "1"}};
  reply.body = "done";
  server.route("/interim", reply);
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  engine.submit(post(server.url("/interim"), "{}"), done.callback(0));
  REQUIRE(done.wait(1));
  const Response r = done.get(0);
  CHECK(r.status == 200);
  CHECK(r.body == "done");
  CHECK(r.header("x-final") == std::optional<std::string_view>("1"));
  CHECK_FALSE(r.header("x-interim").has_value());
}

TEST_CASE("Connection refused is kConnect", "[engine]") {
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  engine.submit(get("http://127.0.0.1:" + std::to_string(closed_port()) + "/"),
                done.callback(0));
  REQUIRE(done.wait(1));
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kConnect);
  CHECK(r.status == 0);
  CHECK_FALSE(r.error_message.empty());
  CHECK(r.elapsed_ms >= 0.0);
}

TEST_CASE("A server slower than timeout_ms gives kTimeout quickly", "[engine]") {
  TestHttpServer server;
  server.route("/slow", slow(3000));
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  Request req = post(server.url("/slow"), "{}");
  req.timeout_ms = 200;
  const auto t0 = Clock::now();
  engine.submit(req, done.callback(0));
  REQUIRE(done.wait(1));
  CHECK(ms_since(t0) < 1500);
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kTimeout);
  CHECK(r.elapsed_ms >= 150);
  CHECK(r.error_message.find("Bearer") == std::string::npos);
}

TEST_CASE("Bodies over max_response_bytes give kTooLarge naming the limit", "[engine]") {
  TestHttpServer server;
  Reply big;
  big.body = std::string(10000, 'x');
  server.route("/big", big);  // announced by Content-Length
  Reply stream = big;
  stream.close_delimited = true;  // only the write callback can notice
  server.route("/stream", stream);
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  Request req = get(server.url("/big"));
  req.max_response_bytes = 1000;
  engine.submit(req, done.callback(0));
  req.url = server.url("/stream");
  engine.submit(req, done.callback(1));
  req.max_response_bytes = 10000;  // exactly the limit is fine
  engine.submit(req, done.callback(2));
  REQUIRE(done.wait(3));
  for (int tag : {0, 1}) {
    const Response r = done.get(tag);
    CHECK(r.error == TransportError::kTooLarge);
    CHECK(r.error_message.find("1000") != std::string::npos);
  }
  CHECK(done.get(2).error == TransportError::kNone);
  CHECK(done.get(2).body.size() == 10000);
}

TEST_CASE("Partial body then close is kConnect; so is a reset", "[engine]") {
  TestHttpServer server;
  Reply partial;
  partial.action = Reply::Action::kPartialBody;
  partial.body = std::string(4000, 'p');
  server.route("/partial", partial);
  Reply reset;
  reset.action = Reply::Action::kReset;
  server.route("/reset", reset);
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  engine.submit(get(server.url("/partial")), done.callback(0));
  engine.submit(post(server.url("/reset"), "{}"), done.callback(1));
  REQUIRE(done.wait(2));
  CHECK(done.get(0).error == TransportError::kConnect);
  CHECK(done.get(0).status == 200);
  CHECK(done.get(1).error == TransportError::kConnect);
}

TEST_CASE("Keep-alive: 20 sequential requests use one connection", "[engine]") {
  TestHttpServer server;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  for (int i = 0; i < 20; ++i) {
    engine.submit(post(server.url("/seq"), std::to_string(i)), done.callback(i));
    REQUIRE(done.wait(static_cast<std::size_t>(i) + 1));
    CHECK(done.get(i).body == std::to_string(i));
  }
  CHECK(server.connections_accepted() == 1);
  CHECK(server.request_count() == 20);
}

TEST_CASE("200 concurrent requests each get their own answer", "[engine]") {
  TestHttpServer server;
  EngineOptions options;
  options.max_connections = 16;
  Completions done;
  Engine engine(options);
  constexpr int kCount = 200;
  // Submit from several threads at once to exercise the command queue.
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = t; i < kCount; i += 4)
        engine.submit(post(server.url("/c"), "body-" + std::to_string(i)), done.callback(i));
    });
  }
  for (auto& t : submitters) t.join();
  REQUIRE(done.wait(kCount, milliseconds(5000)));
  for (int i = 0; i < kCount; ++i) {
    const Response r = done.get(i);
    CHECK(r.error == TransportError::kNone);
    CHECK(r.body == "body-" + std::to_string(i));
    CHECK(done.calls(i) == 1);
  }
  CHECK(server.connections_accepted() <= 16);
  CHECK(engine.in_flight() == 0);
}

TEST_CASE("Waiting for a free connection does not count against timeout_ms", "[engine]") {
  // One connection, four requests of 300 ms each with a 500 ms timeout: the last one
  // waits ~900 ms for the connection, then gets its full 500 ms.
  TestHttpServer server;
  server.route("/slow", slow(300));
  EngineOptions options;
  options.max_connections = 1;
  Completions done;
  Engine engine(options);
  for (int i = 0; i < 4; ++i) {
    Request req = post(server.url("/slow"), "{}");
    req.timeout_ms = 500;
    engine.submit(req, done.callback(i));
  }
  REQUIRE(done.wait(4, milliseconds(5000)));
  for (int i = 0; i < 4; ++i) {
    const Response r = done.get(i);
    CHECK(r.error == TransportError::kNone);
    CHECK(r.body == "late");
    CHECK(r.elapsed_ms < 500);  // measured from admission, not from submit
  }
  CHECK(server.connections_accepted() == 1);
}

TEST_CASE("A request cancelled while it waits for a connection never starts", "[engine]") {
  TestHttpServer server;
  server.route("/slow", slow(300));
  EngineOptions options;
  options.max_connections = 1;
  Completions done;
  Engine engine(options);
  engine.submit(post(server.url("/slow"), "first"), done.callback(0));
  const RequestId queued = engine.submit(post(server.url("/slow"), "second"), done.callback(1));
  engine.cancel(queued);
  REQUIRE(done.wait(2));
  CHECK(done.get(1).error == TransportError::kCancelled);
  CHECK(done.get(0).error == TransportError::kNone);
  CHECK(server.request_count() == 1);
  CHECK(done.calls(1) == 1);
}

TEST_CASE("Cancel mid-flight completes promptly with kCancelled, once", "[engine]") {
  TestHttpServer server;
  server.route("/slow", slow(3000));
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  const RequestId id = engine.submit(post(server.url("/slow"), "{}"), done.callback(0));
  REQUIRE(eventually([&] { return server.request_count() == 1; }));
  CHECK(engine.in_flight() == 1);
  const auto t0 = Clock::now();
  engine.cancel(id);
  REQUIRE(done.wait(1, milliseconds(1000)));
  CHECK(ms_since(t0) < 500);
  CHECK(done.get(0).error == TransportError::kCancelled);
  engine.cancel(id);  // already completed: no-op
  engine.cancel(id + 1000);  // unknown: no-op
  std::this_thread::sleep_for(milliseconds(50));
  CHECK(done.calls(0) == 1);
  CHECK(engine.in_flight() == 0);

  // The engine still works afterwards.
  engine.submit(post(server.url("/after"), "ok"), done.callback(1));
  REQUIRE(done.wait(2));
  CHECK(done.get(1).body == "ok");
}

TEST_CASE("Cancel a delayed submit before it starts", "[engine]") {
  TestHttpServer server;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  const RequestId id = engine.submit(post(server.url("/later"), "{}"), done.callback(0), 5000);
  const auto t0 = Clock::now();
  engine.cancel(id);
  REQUIRE(done.wait(1, milliseconds(1000)));
  CHECK(ms_since(t0) < 500);
  CHECK(done.get(0).error == TransportError::kCancelled);
  CHECK(server.request_count() == 0);
}

TEST_CASE("Submit and cancel racing from many threads: one callback each", "[engine]") {
  TestHttpServer server;
  server.route("/slow", slow(200));
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  constexpr int kCount = 100;
  std::vector<RequestId> ids(kCount);
  for (int i = 0; i < kCount; ++i)
    ids[i] = engine.submit(post(server.url("/slow"), "{}"), done.callback(i));
  std::thread a([&] {
    for (int i = 0; i < kCount; i += 2) engine.cancel(ids[i]);
  });
  std::thread b([&] {
    for (int i = 1; i < kCount; i += 2) engine.cancel(ids[i]);
  });
  a.join();
  b.join();
  REQUIRE(done.wait(kCount));
  std::this_thread::sleep_for(milliseconds(50));
  for (int i = 0; i < kCount; ++i) {
    CHECK(done.calls(i) == 1);
    CHECK(done.get(i).error == TransportError::kCancelled);
  }
  CHECK(engine.in_flight() == 0);
}

TEST_CASE("A delayed submit waits roughly the delay", "[engine]") {
  TestHttpServer server;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  const auto t0 = Clock::now();
  engine.submit(get(server.url("/delayed")), done.callback(0), 300);
  engine.submit(get(server.url("/now")), done.callback(1));
  REQUIRE(done.wait(1));
  CHECK(done.calls(0) == 0);  // the immediate one finished first
  CHECK(done.calls(1) == 1);
  REQUIRE(done.wait(2));
  const double waited = ms_since(t0);
  CHECK(waited >= 290);
  CHECK(waited < 1500);
  CHECK(done.get(0).error == TransportError::kNone);
}

TEST_CASE("Submit from inside a callback (retry chain)", "[engine]") {
  TestHttpServer server;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> bodies;
  Engine engine;
  std::function<void(int)> chain = [&](int n) {
    engine.submit(post(server.url("/chain"), "try-" + std::to_string(n)),
                  [&, n](Response&& r) {
                    {
                      std::lock_guard<std::mutex> lk(mu);
                      bodies.push_back(r.body);
                      cv.notify_all();
                    }
                    if (n < 3) chain(n + 1);
                  },
                  n == 0 ? 0 : 20);
  };
  chain(0);
  std::unique_lock<std::mutex> lk(mu);
  REQUIRE(cv.wait_for(lk, milliseconds(3000), [&] { return bodies.size() == 4; }));
  CHECK(bodies == std::vector<std::string>{"try-0", "try-1", "try-2", "try-3"});
}

TEST_CASE("Shutdown with 50 in flight cancels them all and returns promptly", "[engine]") {
  TestHttpServer server;
  server.route("/slow", slow(5000));
  Completions done;
  Engine engine;
  for (int i = 0; i < 50; ++i) engine.submit(post(server.url("/slow"), "{}"), done.callback(i));
  engine.submit(post(server.url("/slow"), "{}"), done.callback(50), 10000);  // delayed
  bool posted_ran = false;
  engine.post([&] { posted_ran = true; }, 10000);
  REQUIRE(eventually([&] { return server.request_count() >= 10; }));
  const auto t0 = Clock::now();
  engine.shutdown();
  CHECK(ms_since(t0) < 1000);
  REQUIRE(done.total() == 51);  // all completed before shutdown() returned
  for (int i = 0; i <= 50; ++i) {
    CHECK(done.calls(i) == 1);
    CHECK(done.get(i).error == TransportError::kCancelled);
  }
  CHECK_FALSE(posted_ran);
  CHECK(engine.in_flight() == 0);

  // After shutdown: the callback runs at once, on this thread.
  engine.submit(get(server.url("/x")), done.callback(99));
  CHECK(done.calls(99) == 1);
  CHECK(done.thread(99) == std::this_thread::get_id());
  CHECK(done.get(99).error == TransportError::kCancelled);
  engine.shutdown();  // idempotent
}

TEST_CASE("Shutdown from inside a callback does not deadlock", "[engine]") {
  TestHttpServer server;
  server.route("/slow", slow(5000));
  Completions done;
  auto engine = std::make_unique<Engine>();
  engine->submit(post(server.url("/slow"), "{}"), done.callback(1));
  engine->submit(get(server.url("/fast")), [&](Response&&) {
    engine->shutdown();  // on the I/O thread: marks the stop, cannot join itself
    done.callback(0)(Response{});
  });
  REQUIRE(done.wait(2));
  CHECK(done.get(1).error == TransportError::kCancelled);
  const auto t0 = Clock::now();
  engine.reset();  // joins the finished thread
  CHECK(ms_since(t0) < 1000);
}

TEST_CASE("Engine destroyed from inside its own callback", "[engine]") {
  TestHttpServer server;
  std::atomic<bool> finished{false};
  auto* engine = new Engine();
  engine->submit(get(server.url("/x")), [&](Response&&) {
    delete engine;  // the thread detaches and exits on its own
    finished = true;
  });
  REQUIRE(eventually([&] { return finished.load(); }));
  std::this_thread::sleep_for(milliseconds(50));  // let the detached thread exit
}

TEST_CASE("post() runs functions on the I/O thread after the delay", "[engine]") {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> order;
  std::thread::id ran_on;
  double late_ms = 0;
  Engine engine;
  const auto t0 = Clock::now();
  engine.post(
      [&] {
        std::lock_guard<std::mutex> lk(mu);
        late_ms = ms_since(t0);
        order.push_back(2);
        cv.notify_all();
      },
      150);
  engine.post([&] {
    std::lock_guard<std::mutex> lk(mu);
    ran_on = std::this_thread::get_id();
    order.push_back(1);
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lk(mu);
  REQUIRE(cv.wait_for(lk, milliseconds(3000), [&] { return order.size() == 2; }));
  CHECK(order == std::vector<int>{1, 2});
  CHECK(ran_on != std::this_thread::get_id());
  CHECK(late_ms >= 140);
  CHECK(late_ms < 1500);
}

TEST_CASE("Header values with line breaks are refused without echoing them", "[engine]") {
  TestHttpServer server;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  Request req = get(server.url("/x"));
  req.headers.push_back({"Authorization", "Bearer sk-secret\r\nX-Injected: 1"});
  engine.submit(req, done.callback(0));
  REQUIRE(done.wait(1));
  CHECK(done.get(0).error == TransportError::kOther);
  CHECK(done.get(0).error_message.find("sk-secret") == std::string::npos);
  CHECK(server.request_count() == 0);
}

TEST_CASE("Unsupported schemes are refused", "[engine]") {
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  engine.submit(get("file:///etc/passwd"), done.callback(0));
  REQUIRE(done.wait(1));
  CHECK(done.get(0).error == TransportError::kOther);
  CHECK(done.get(0).body.empty());
}

TEST_CASE("A forked child abandons the inherited engine and builds a fresh one", "[engine]") {
#if defined(__SANITIZE_THREAD__)
  WARN("skipped: ThreadSanitizer does not support fork() in a multi-threaded process");
  return;
#endif
  TestHttpServer server;
  Completions done;
  auto engine = std::make_unique<Engine>();
  engine->submit(post(server.url("/parent"), "p"), done.callback(0));
  REQUIRE(done.wait(1));
  REQUIRE(done.get(0).body == "p");

  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Only async-signal-safe-ish work and no Catch2 here; report through the exit code.
    int code = 0;
    std::atomic<int> cancelled{0};
    engine->submit(get(server.url("/x")), [&](Response&& r) {
      if (r.error == TransportError::kCancelled) ++cancelled;
    });
    if (cancelled != 1) code |= 1;
    engine.reset();  // must neither join nor touch the parent's handles
    Engine fresh;
    std::mutex mu;
    std::condition_variable cv;
    bool got = false;
    std::string body;
    fresh.submit(post(server.url("/child"), "c"), [&](Response&& r) {
      std::lock_guard<std::mutex> lk(mu);
      body = r.body;
      got = true;
      cv.notify_all();
    });
    {
      std::unique_lock<std::mutex> lk(mu);
      if (!cv.wait_for(lk, milliseconds(3000), [&] { return got; })) code |= 2;
      if (body != "c") code |= 4;
    }
    fresh.shutdown();
    _exit(code);
  }
  int status = 0;
  const auto deadline = Clock::now() + milliseconds(5000);
  pid_t waited = 0;
  while ((waited = waitpid(child, &status, WNOHANG)) == 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(5));
  if (waited == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL("forked child hung");
  }
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  // The parent's engine is unaffected.
  engine->submit(post(server.url("/parent"), "again"), done.callback(1));
  REQUIRE(done.wait(2));
  CHECK(done.get(1).body == "again");
}

// ---- hostile replies (issue: hostile replies, bad input and secrets) ----

TEST_CASE("libcurl's re-send on a dead reused connection is counted, and max_sends bounds it",
          "[engine][hostile]") {
  TestHttpServer server;
  Reply reset;
  reset.action = Reply::Action::kReset;
  server.route("/reset", reset);
  Completions done;  // declared first: outlives the engine's thread
  EngineOptions options;
  options.max_connections = 1;  // the request after /warm must reuse its connection
  Engine engine(options);
  engine.submit(post(server.url("/warm"), "w"), done.callback(0));
  REQUIRE(done.wait(1));
  REQUIRE(done.get(0).status == 200);
  CHECK(done.get(0).sends == 1);

  SECTION("no limit: libcurl sends twice (reused connection, then a fresh one)") {
    engine.submit(post(server.url("/reset"), "r"), done.callback(1));
    REQUIRE(done.wait(2));
    const Response r = done.get(1);
    CHECK(r.error == TransportError::kConnect);
    CHECK(r.sends == 2);
    CHECK(server.request_count() == 3);
  }
  SECTION("max_sends = 1: the re-send is refused and the message says why") {
    Request req = post(server.url("/reset"), "r");
    req.max_sends = 1;
    engine.submit(req, done.callback(1));
    REQUIRE(done.wait(2));
    const Response r = done.get(1);
    CHECK(r.error == TransportError::kConnect);
    CHECK(r.sends == 1);
    CHECK(r.error_message.find("not re-sent") != std::string::npos);
    CHECK(server.request_count() == 2);
  }
}

TEST_CASE("A response header line over libcurl's limit is named, not 'Out of memory'",
          "[engine][hostile]") {
  TestHttpServer server;
  Reply big;
  big.headers.push_back({"X-Big", std::string(1 << 20, 'a')});
  big.body = "{}";
  server.route("/big", big);
  Reply many;  // 3,000 small headers (~90 KB): accepted
  for (int i = 0; i < 3000; ++i) many.headers.push_back({"X-H" + std::to_string(i), "value-value-value"});
  many.body = "ok";
  server.route("/many", many);
  Completions done;
  Engine engine;
  engine.submit(get(server.url("/big")), done.callback(0));
  engine.submit(get(server.url("/many")), done.callback(1));
  REQUIRE(done.wait(2));
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kConnect);
  CHECK(r.error_message.find("response header too large") == 0);
  CHECK(r.error_message.find("memory") == std::string::npos);
  CHECK(done.get(1).error == TransportError::kNone);
  CHECK(done.get(1).body == "ok");
  CHECK(done.get(1).headers.size() >= 3000);
}

TEST_CASE("Compressed bodies are decoded; Accept-Encoding is sent", "[engine][hostile]") {
  static const char kGzip[] =  // gzip of {"a":1}
      "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\x4a\x54\xb2\x32\xac\x05\x00\xaf\xac\x1b\x56"
      "\x07\x00\x00\x00";
  static const char kDeflate[] =  // zlib stream of {"b":2}
      "\x78\x9c\xab\x56\x4a\x52\xb2\x32\xaa\x05\x00\x08\x31\x02\x0b";
  TestHttpServer server;
  Reply gz;
  gz.headers.push_back({"Content-Encoding", "gzip"});
  gz.body.assign(kGzip, sizeof kGzip - 1);
  server.route("/gzip", gz);
  Reply df;
  df.headers.push_back({"Content-Encoding", "deflate"});
  df.body.assign(kDeflate, sizeof kDeflate - 1);
  server.route("/deflate", df);
  Reply bad;  // says gzip, is not
  bad.headers.push_back({"Content-Encoding", "gzip"});
  bad.body = "{\"plain\": true}";
  server.route("/bad", bad);
  Reply undeclared;  // gzip bytes without Content-Encoding: passed through as they are
  undeclared.body.assign(kGzip, sizeof kGzip - 1);
  server.route("/undeclared", undeclared);
  Completions done;
  Engine engine;
  engine.submit(get(server.url("/gzip")), done.callback(0));
  engine.submit(get(server.url("/deflate")), done.callback(1));
  engine.submit(get(server.url("/bad")), done.callback(2));
  engine.submit(get(server.url("/undeclared")), done.callback(3));
  REQUIRE(done.wait(4));
  CHECK(done.get(0).body == "{\"a\":1}");
  CHECK(done.get(1).body == "{\"b\":2}");
  CHECK(done.get(2).error == TransportError::kOther);
  CHECK(done.get(2).error_message.find("encoding") != std::string::npos);
  CHECK(done.get(3).error == TransportError::kNone);
  CHECK(done.get(3).body == std::string(kGzip, sizeof kGzip - 1));
  for (const auto& req : server.requests()) {
    auto ae = req.header("accept-encoding");
    REQUIRE(ae);
    CHECK(ae->find("gzip") != std::string::npos);
  }
}

namespace {

// Records body pieces as on_body_chunk sees them, with when and on which thread.
struct ChunkLog {
  std::mutex mu;
  std::vector<std::string> pieces;
  std::vector<Clock::time_point> times;
  std::vector<std::thread::id> threads;
  std::function<ChunkAction(std::string_view)> recorder(bool keep_going = true) {
    return [this, keep_going](std::string_view bytes) {
      std::lock_guard<std::mutex> lk(mu);
      pieces.emplace_back(bytes);
      times.push_back(Clock::now());
      threads.push_back(std::this_thread::get_id());
      return keep_going ? ChunkAction::kContinue : ChunkAction::kAbort;
    };
  }
  std::string joined() {
    std::lock_guard<std::mutex> lk(mu);
    std::string all;
    for (const auto& p : pieces) all += p;
    return all;
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lk(mu);
    return pieces.size();
  }
};

Reply sse_in_pieces(int delay_ms) {
  Reply r;
  r.headers = {{"Content-Type", "text/event-stream"}};
  r.pieces = {{0, "data: {\"n\":1}\n\n"},
              {delay_ms, "data: {\"n\":2}\n\n"},
              {delay_ms, "data: [DONE]\n\n"}};
  return r;
}

}  // namespace

TEST_CASE("on_body_chunk gets a streamed body piece by piece as it arrives",
          "[engine][stream]") {
  TestHttpServer server;
  server.route("/stream", sse_in_pieces(150));
  ChunkLog log;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  Request req = post(server.url("/stream"), "{}");
  req.on_body_chunk = log.recorder();
  const auto t0 = Clock::now();
  engine.submit(std::move(req), done.callback(0));
  // The first piece arrives long before the transfer ends.
  REQUIRE(eventually([&] { return log.count() >= 1; }, milliseconds(2000)));
  CHECK(done.total() == 0);
  REQUIRE(done.wait(1));
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kNone);
  CHECK(r.status == 200);
  CHECK(r.body.empty());  // the bytes went to the chunk function instead
  CHECK(r.header("content-type") == std::optional<std::string_view>("text/event-stream"));
  CHECK(log.joined() == "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n");
  CHECK(log.count() >= 3);
  CHECK(ms_since(t0) >= 250);
  std::lock_guard<std::mutex> lk(log.mu);
  // One piece per server write here (loopback, 150 ms apart), each on the I/O thread.
  CHECK(std::chrono::duration<double, std::milli>(log.times.back() - log.times.front()).count() >=
        250);
  for (const auto& id : log.threads) CHECK(id == done.thread(0));
}

TEST_CASE("on_body_chunk returning false aborts the transfer with a clear error",
          "[engine][stream]") {
  TestHttpServer server;
  server.route("/stream", sse_in_pieces(1000));
  ChunkLog log;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  Request req = post(server.url("/stream"), "{}");
  req.on_body_chunk = log.recorder(false);
  const auto t0 = Clock::now();
  engine.submit(std::move(req), done.callback(0));
  REQUIRE(done.wait(1));
  CHECK(ms_since(t0) < 800);  // did not wait for the later pieces
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kCancelled);
  CHECK(r.error_message == "transfer aborted: the body chunk callback returned false");
  CHECK(log.count() == 1);
  CHECK(engine.in_flight() == 0);

  SECTION("a throwing chunk function aborts the same way, naming the exception") {
    Request again = post(server.url("/stream"), "{}");
    again.on_body_chunk = [](std::string_view) -> ChunkAction { throw std::runtime_error("bad chunk"); };
    engine.submit(std::move(again), done.callback(1));
    REQUIRE(done.wait(2));
    CHECK(done.get(1).error == TransportError::kCancelled);
    CHECK(done.get(1).error_message ==
          "transfer aborted: the body chunk callback threw: bad chunk");
  }
  SECTION("the engine still works afterwards") {
    engine.submit(post(server.url("/after"), "ok"), done.callback(1));
    REQUIRE(done.wait(2));
    CHECK(done.get(1).body == "ok");
  }
}

TEST_CASE("on_body_chunk: an error status keeps its body in Response::body",
          "[engine][stream]") {
  TestHttpServer server;
  Reply error;
  error.status = 500;
  error.headers = {{"Content-Type", "application/json"}};
  error.body = "{\"error\":{\"message\":\"boom\"}}";
  server.route("/stream", error);
  ChunkLog log;
  Completions done;  // declared first: outlives the engine's thread
  Engine engine;
  Request req = post(server.url("/stream"), "{}");
  req.on_body_chunk = log.recorder();
  engine.submit(std::move(req), done.callback(0));
  REQUIRE(done.wait(1));
  const Response r = done.get(0);
  CHECK(r.error == TransportError::kNone);
  CHECK(r.status == 500);
  CHECK(r.body == "{\"error\":{\"message\":\"boom\"}}");
  CHECK(log.count() == 0);
}
