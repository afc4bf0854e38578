// The per-try records a Client keeps (Attempt::tries, StreamEndEvent::tries,
// StreamErrorEvent::tries) against the in-process HTTP server: one record per try, in
// order, with its attempt number, HTTP status, error, replica URL (never its userinfo)
// and times. Times are only checked to be ordered and plausible, never measured.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
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
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kBound = std::chrono::seconds(10);

Reply json_reply(int status, std::string body) {
  Reply r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

const std::string kOk =
    R"({"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"{\"ok\": true}"},"finish_reason":"stop"}]})";

config::VLLMConfig config_for(const std::string& base_url, int max_retries, double base_delay = 0.001) {
  config::VLLMConfig c;
  c.base_url = base_url;
  c.model = "tiny";
  c.max_retries = max_retries;
  c.retry_base_delay = base_delay;
  c.retry_max_delay = std::max(0.01, base_delay * 2);
  c.timeout = 10;
  return c;
}

ChatCall extraction_call() {
  ChatCall c;
  c.prompts.system = "s";
  c.prompts.user = "u";
  c.document_text = "d";
  return c;
}

double unix_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Records are in order, numbered from 1, and their times lie within [before, after].
void check_times(const std::vector<TryRecord>& tries, double before, double after) {
  double last_start = before;
  for (const auto& t : tries) {
    CHECK(t.start_ms >= last_start);
    CHECK(t.start_ms <= after);
    CHECK(t.elapsed_ms >= 0);
    CHECK(t.start_ms + t.elapsed_ms <= after + 1.0);  // clocks read at different moments
    last_start = t.start_ms;
  }
}

std::string sse_body() {
  const std::string chunk =
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]})";
  const std::string finish =
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})";
  return "data: " + chunk + "\n\ndata: " + finish + "\n\ndata: [DONE]\n\n";
}

Reply sse_reply() {
  Reply r;
  r.headers.emplace_back("Content-Type", "text/event-stream");
  r.pieces = {{0, sse_body()}};
  return r;
}

GenerateCall chat_call() {
  GenerateCall c;
  c.op = Operation::kChat;
  c.messages_json = R"([{"role":"user","content":"hi"}])";
  return c;
}

// The stream's events up to its last one, waiting at most kBound.
StreamEvent last_event(StreamChannel& ch) {
  const auto deadline = Clock::now() + kBound;
  while (Clock::now() < deadline) {
    for (auto& e : ch.wait_take(0.5))
      if (std::holds_alternative<StreamEndEvent>(e) || std::holds_alternative<StreamErrorEvent>(e)) return e;
  }
  FAIL("the stream did not end");
  return StreamEvent{};
}

// A port nothing listens on: a server's, after it stopped.
int dead_port() {
  TestHttpServer s;
  return s.port();
}

}  // namespace

TEST_CASE("tries: a 500 then a success are two records, numbered, with statuses and the replica",
          "[client][tries]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    return seen.fetch_add(1) == 0 ? json_reply(500, "{}") : json_reply(200, kOk);
  });
  Client client(config_for(server.url(""), 3));
  const double before = unix_ms();
  const Attempt a = client.call(extraction_call());
  const double after = unix_ms();
  REQUIRE(a.success);
  CHECK(a.attempts == 2);
  REQUIRE(a.tries.size() == 2);
  CHECK(a.tries[0].attempt == 1);
  CHECK(a.tries[0].status == 500);
  CHECK(a.tries[0].error == "http_500");
  CHECK(a.tries[1].attempt == 2);
  CHECK(a.tries[1].status == 200);
  CHECK(a.tries[1].error.empty());
  for (const auto& t : a.tries) CHECK(t.replica == config::normalized_base_url(server.url("")));
  check_times(a.tries, before, after);
  CHECK(a.tries[1].start_ms >= a.tries[0].start_ms + a.tries[0].elapsed_ms - 1.0);  // after the first ended
}

TEST_CASE("tries: the replica URL never carries the URL's user and password", "[client][tries]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(200, kOk));
  const std::string url = "http://someone:s3cret-pw@127.0.0.1:" + std::to_string(server.port());
  Client client(config_for(url, 0));
  const Attempt a = client.call(extraction_call());
  REQUIRE(a.success);
  REQUIRE(a.tries.size() == 1);
  CHECK(a.tries[0].replica.find("s3cret-pw") == std::string::npos);
  CHECK(a.tries[0].replica.find("someone") == std::string::npos);
  CHECK(a.tries[0].replica.find("127.0.0.1:" + std::to_string(server.port())) != std::string::npos);
}

TEST_CASE("tries: two replicas, the first dead: the records say which one each try went to", "[client][tries]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(200, kOk));
  const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port());
  Client client(config_for(dead + "," + server.url(""), 2));
  // Least-outstanding routing starts anywhere: call until a call's first try hit the dead one.
  bool seen_failover = false;
  for (int i = 0; i < 20 && !seen_failover; ++i) {
    const Attempt a = client.call(extraction_call());
    REQUIRE(a.success);
    REQUIRE(!a.tries.empty());
    CHECK(a.tries.back().status == 200);
    CHECK(a.tries.back().replica == config::normalized_base_url(server.url("")));
    if (a.tries.size() == 2) {
      seen_failover = true;
      CHECK(a.tries[0].replica == config::normalized_base_url(dead));
      CHECK(a.tries[0].status == 0);
      CHECK(a.tries[0].error.rfind("connection_error", 0) == 0);
    }
  }
  CHECK(seen_failover);
}

TEST_CASE("tries: connection errors have no status; the last record is the call's error", "[client][tries]") {
  Client client(config_for("http://127.0.0.1:" + std::to_string(dead_port()), 1));
  const Attempt a = client.call(extraction_call());
  CHECK(a.error.rfind("connection_error", 0) == 0);
  REQUIRE(a.tries.size() == 2);
  for (const auto& t : a.tries) {
    CHECK(t.status == 0);
    CHECK(t.error.rfind("connection_error", 0) == 0);
  }
  CHECK(a.tries.back().error == a.error);
}

TEST_CASE("tries: a cancel during the backoff wait adds no record", "[client][tries][cancel]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(500, "{}"));
  std::promise<void> retrying;
  std::atomic<bool> once{false};
  ClientOptions o;
  o.on_retry = [&](int, long) {
    if (!once.exchange(true)) retrying.set_value();
  };
  Client client(config_for(server.url(""), 3, 60.0), o);  // a 60 s backoff
  std::promise<Attempt> done;
  auto result = done.get_future();
  const auto id = client.start(extraction_call(), [&](Attempt&& a) { done.set_value(std::move(a)); });
  REQUIRE(retrying.get_future().wait_for(kBound) == std::future_status::ready);
  client.cancel(id);
  REQUIRE(result.wait_for(kBound) == std::future_status::ready);
  const Attempt a = result.get();
  CHECK(a.error == "cancelled");
  REQUIRE(a.tries.size() == 1);
  CHECK(a.tries[0].status == 500);
  CHECK(a.tries[0].error == "http_500");
}

TEST_CASE("tries: a call on a closed client has none", "[client][tries]") {
  TestHttpServer server;
  Client client(config_for(server.url(""), 0));
  client.close();
  const Attempt a = client.call(extraction_call());
  CHECK(a.error == "cancelled");
  CHECK(a.tries.empty());
}

TEST_CASE("tries: generate keeps them like call", "[client][tries][generation]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    return seen.fetch_add(1) == 0 ? json_reply(503, "{}") : json_reply(200, kOk);
  });
  Client client(config_for(server.url(""), 2));
  const ChatResult r = client.generate(chat_call());
  REQUIRE(r.success);
  REQUIRE(r.tries.size() == 2);
  CHECK((r.tries[0].status == 503 && r.tries[1].status == 200));
  CHECK((r.tries[0].attempt == 1 && r.tries[1].attempt == 2));
}

TEST_CASE("tries: a stream retried before its first byte lists both tries in its end event",
          "[client][tries][stream]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    return seen.fetch_add(1) == 0 ? json_reply(503, "{}") : sse_reply();
  });
  Client client(config_for(server.url(""), 2));
  auto ch = std::make_shared<StreamChannel>();
  const double before = unix_ms();
  client.start_stream(chat_call(), ch);
  const StreamEvent last = last_event(*ch);
  const double after = unix_ms();
  const auto* end = std::get_if<StreamEndEvent>(&last);
  REQUIRE(end);
  REQUIRE(end->tries.size() == 2);
  CHECK((end->tries[0].attempt == 1 && end->tries[0].status == 503 && end->tries[0].error == "http_503"));
  CHECK((end->tries[1].attempt == 2 && end->tries[1].status == 200 && end->tries[1].error.empty()));
  check_times(end->tries, before, after);
}

TEST_CASE("tries: a stream that fails lists its tries in its error event", "[client][tries][stream]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", json_reply(400, R"({"error":{"message":"no"}})"));
  Client client(config_for(server.url(""), 2));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const StreamEvent last = last_event(*ch);
  const auto* err = std::get_if<StreamErrorEvent>(&last);
  REQUIRE(err);
  CHECK(err->error == "http_400");
  REQUIRE(err->tries.size() == 1);
  CHECK((err->tries[0].attempt == 1 && err->tries[0].status == 400 && err->tries[0].error == "http_400"));
}

TEST_CASE("tries: a stream cut after its first byte records the try with the stream's error",
          "[client][tries][stream]") {
  TestHttpServer server;
  Reply cut = sse_reply();
  const std::string body = sse_body();
  cut.pieces = {{0, body.substr(0, body.find("data: [DONE]"))}};
  cut.cut_after_pieces = true;
  server.route("/v1/chat/completions", cut);
  Client client(config_for(server.url(""), 2));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const StreamEvent last = last_event(*ch);
  const auto* err = std::get_if<StreamErrorEvent>(&last);
  REQUIRE(err);
  REQUIRE(err->tries.size() == 1);  // never retried after the first byte
  CHECK(err->tries[0].status == 200);
  CHECK(err->tries[0].error == err->error);
}

TEST_CASE("tries: embed lists every batch's tries in input order", "[client][tries][embeddings]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    // The first request to arrive fails once; each batch has one row.
    if (seen.fetch_add(1) == 0) return json_reply(500, "{}");
    return json_reply(200, R"({"model":"tiny","data":[{"index":0,"embedding":[0.5,0.25]}],"usage":{"prompt_tokens":1}})");
  });
  Client client(config_for(server.url(""), 2));
  EmbedCall call;
  call.texts = {"one", "two"};
  call.batch_size = 1;
  const EmbeddingResult r = client.embed(call);
  REQUIRE(r.success);
  CHECK(r.attempts == 3);
  REQUIRE(r.tries.size() == 3);
  int failed = 0;
  for (const auto& t : r.tries) failed += t.status == 500 ? 1 : 0;
  CHECK(failed == 1);
  // Per batch, numbered from 1: one batch has (1), the other (1, 2).
  std::vector<int> numbers;
  for (const auto& t : r.tries) numbers.push_back(t.attempt);
  CHECK((numbers == std::vector<int>{1, 2, 1} || numbers == std::vector<int>{1, 1, 2}));
}
