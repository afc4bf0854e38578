// llm::Client's retry loop against the in-process HTTP server: the schedule of retries
// (backoff, cap, Retry-After), what is never retried, cancel during a backoff wait, and
// close_when_idle. The delays are checked as the client asked the engine for them
// (ClientOptions::on_retry, with the jitter fixed by ClientOptions::jitter), never by
// measuring time, so the tests hold on a loaded machine.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/client.hpp"
#include "support/test_http_server.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;
using testing::Reply;
using testing::TestHttpServer;

namespace {

constexpr auto kBound = std::chrono::seconds(10);  // generous: for what should be quick

Reply json_reply(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", "application/json");
  return r;
}

const std::string kOk =
    R"({"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"{\"ok\": true}"},"finish_reason":"stop"}]})";

config::VLLMConfig config_for(const TestHttpServer& server, int max_retries, double base, double mult, double cap) {
  config::VLLMConfig c;
  c.base_url = server.url("");
  c.model = "tiny";
  c.max_retries = max_retries;
  c.retry_base_delay = base;
  c.retry_backoff_multiplier = mult;
  c.retry_max_delay = cap;
  c.timeout = 10;
  return c;
}

// The retries a client schedules: (retry number, delay in ms), in order.
struct RetryLog {
  std::mutex mu;
  std::vector<std::pair<int, long>> entries;
  std::promise<void> first;
  bool first_set = false;

  ClientOptions options(double jitter) {
    ClientOptions o;
    o.jitter = [jitter] { return jitter; };
    o.on_retry = [this](int retry, long delay_ms) {
      std::lock_guard<std::mutex> lock(mu);
      entries.emplace_back(retry, delay_ms);
      if (!first_set) {
        first_set = true;
        first.set_value();
      }
    };
    return o;
  }
  std::vector<std::pair<int, long>> get() {
    std::lock_guard<std::mutex> lock(mu);
    return entries;
  }
};

ChatCall extraction_call() {
  ChatCall c;
  c.prompts.system = "s";
  c.prompts.user = "u";
  c.document_text = "d";
  return c;
}

using Schedule = std::vector<std::pair<int, long>>;

}  // namespace

TEST_CASE("retry: exponential backoff, scaled by the jitter into [0.75, 1] x the nominal delay",
          "[client][retry]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(500, R"({"error":{"message":"boom"}})"));
  SECTION("jitter 1: the nominal delays") {
    RetryLog log;
    Client client(config_for(server, 3, 0.01, 2.0, 10.0), log.options(1.0));
    const Attempt a = client.call(extraction_call());
    CHECK(a.error == "http_500");
    CHECK(a.retryable);
    CHECK(a.attempts == 4);
    CHECK(server.request_count() == 4);
    CHECK(log.get() == Schedule{{0, 10}, {1, 20}, {2, 40}});
  }
  SECTION("jitter 0: three quarters of them") {
    RetryLog log;
    Client client(config_for(server, 3, 0.04, 2.0, 10.0), log.options(0.0));
    const Attempt a = client.call(extraction_call());
    CHECK(a.attempts == 4);
    CHECK(log.get() == Schedule{{0, 30}, {1, 60}, {2, 120}});
  }
}

TEST_CASE("retry: the delay is capped by retry_max_delay", "[client][retry]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(502, "{}"));
  RetryLog log;
  Client client(config_for(server, 3, 0.004, 10.0, 0.05), log.options(1.0));
  const Attempt a = client.call(extraction_call());
  CHECK(a.error == "http_502");
  CHECK(a.attempts == 4);
  // 4 ms, 40 ms, then 400 ms uncapped: the cap keeps it at 50 ms.
  CHECK(log.get() == Schedule{{0, 4}, {1, 40}, {2, 50}});
}

TEST_CASE("retry: the server's Retry-After wins over the backoff", "[client][retry]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    const int n = seen.fetch_add(1);
    if (n == 0) return json_reply(503, "{}", {{"Retry-After-Ms", "120"}});
    if (n == 1) return json_reply(429, "{}", {{"Retry-After", "1"}});
    return json_reply(200, kOk);
  });
  RetryLog log;
  Client client(config_for(server, 3, 0.001, 2.0, 0.002), log.options(1.0));
  const Attempt a = client.call(extraction_call());
  CHECK(a.success);
  CHECK(a.attempts == 3);
  CHECK(log.get() == Schedule{{0, 120}, {1, 1000}});
}

TEST_CASE("retry: never for a 4xx that stays wrong, an auth refusal, or max_retries 0", "[client][retry]") {
  for (int status : {400, 401, 403, 404, 422}) {
    INFO(status);
    TestHttpServer server;
    server.route("/v1/chat/completions", json_reply(status, R"({"error":"nope"})"));
    RetryLog log;
    Client client(config_for(server, 3, 0.001, 2.0, 0.01), log.options(1.0));
    const Attempt a = client.call(extraction_call());
    CHECK(a.error == "http_" + std::to_string(status));
    CHECK_FALSE(a.retryable);
    CHECK(a.attempts == 1);
    CHECK(a.auth_refused == (status == 401 || status == 403));
    CHECK(server.request_count() == 1);
    CHECK(log.get().empty());
  }
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(503, "{}"));
  RetryLog log;
  Client client(config_for(server, 0, 0.001, 2.0, 0.01), log.options(1.0));
  const Attempt a = client.call(extraction_call());
  CHECK(a.error == "http_503");
  CHECK(a.retryable);
  CHECK(a.attempts == 1);
  CHECK(log.get().empty());
}

TEST_CASE("retry: a 5xx then a success is one call with two attempts", "[client][retry]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    return seen.fetch_add(1) == 0 ? json_reply(500, "{}") : json_reply(200, kOk);
  });
  RetryLog log;
  Client client(config_for(server, 3, 0.001, 2.0, 0.01), log.options(0.5));
  const Attempt a = client.call(extraction_call());
  CHECK(a.success);
  CHECK(a.data_json == R"({"ok": true})");
  CHECK(a.attempts == 2);
  CHECK(log.get().size() == 1);
}

TEST_CASE("retry: cancel during a backoff wait ends the call at once, without another try",
          "[client][retry][cancel]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(500, "{}"));
  RetryLog log;
  // A 60 s backoff: the call can only end soon if the cancel cuts the wait short.
  Client client(config_for(server, 3, 60.0, 2.0, 120.0), log.options(1.0));
  std::promise<Attempt> done;
  auto result = done.get_future();
  auto first = log.first.get_future();
  const auto id = client.start(extraction_call(), [&](Attempt&& a) { done.set_value(std::move(a)); });
  REQUIRE(first.wait_for(kBound) == std::future_status::ready);  // the backoff began
  CHECK(log.get() == Schedule{{0, 60000}});
  client.cancel(id);
  REQUIRE(result.wait_for(kBound) == std::future_status::ready);
  const Attempt a = result.get();
  CHECK(a.error == "cancelled");
  CHECK(a.attempts == 1);  // the cancelled wait was not a try
  CHECK(server.request_count() == 1);
  CHECK(client.in_flight() == 0);
}

TEST_CASE("close_when_idle: the call in flight finishes normally, then the client closes",
          "[client][close]") {
  TestHttpServer server;
  Reply slow = json_reply(200, kOk);
  slow.delay_ms = 200;
  server.route("/v1/chat/completions", slow);
  Client client(config_for(server, 0, 0.001, 2.0, 0.01));
  std::promise<Attempt> done;
  auto result = done.get_future();
  client.start(extraction_call(), [&](Attempt&& a) { done.set_value(std::move(a)); });
  client.close_when_idle();
  CHECK(client.closing_when_idle());
  CHECK_FALSE(client.closed());  // one call in flight keeps it open
  REQUIRE(result.wait_for(kBound) == std::future_status::ready);
  const Attempt a = result.get();
  CHECK(a.success);
  // close() runs on the I/O thread right after the callback returned.
  for (int i = 0; i < 1000 && !client.closed(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(client.closed());
  // A call on the closed client completes at once with "cancelled".
  const Attempt late = client.call(extraction_call());
  CHECK(late.error == "cancelled");
  CHECK(server.request_count() == 1);
}

TEST_CASE("close_when_idle: with nothing in flight the client closes at once", "[client][close]") {
  TestHttpServer server;
  Client client(config_for(server, 0, 0.001, 2.0, 0.01));
  client.close_when_idle();
  CHECK(client.closed());
}
