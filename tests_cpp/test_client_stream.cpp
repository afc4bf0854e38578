// llm::Client against the in-process test server: token streams (SSE and NDJSON) with
// retries before the first byte, cut bodies, errors sent mid-stream, the first-byte and
// idle clocks, back-pressure through a tiny channel, cancel; and the non-streaming
// generate() with its retries. Every wait is bounded ("within 5 s"), never a tight
// wall-clock assertion.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/client.hpp"
#include "llmbridge/llm/stream.hpp"
#include "llmbridge/text/utf8.hpp"
#include "support/test_http_server.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;
using testing::Reply;
using testing::TestHttpServer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kBound = 5.0;  // seconds: a generous bound for anything that should be quick

config::VLLMConfig vllm_config(const TestHttpServer& server) {
  config::VLLMConfig c;
  c.base_url = server.url("");
  c.model = "tiny";
  c.retry_base_delay = 0.01;
  c.retry_max_delay = 0.05;
  c.max_retries = 2;
  c.timeout = 10;
  return c;
}

GenerateCall chat_call() {
  GenerateCall c;
  c.op = Operation::kChat;
  c.messages_json = R"([{"role":"user","content":"count"}])";
  return c;
}

std::string token_chunk(const std::string& text) {
  return "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"tiny\","
         "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
         text + "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
}

const std::string kRoleChunk =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"tiny\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const std::string kFinishChunk =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"tiny\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n";
const std::string kUsageChunk =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"tiny\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n";
const std::string kDone = "data: [DONE]\n\n";

Reply sse_reply(std::vector<std::pair<int, std::string>> pieces) {
  Reply r;
  r.headers.push_back({"Content-Type", "text/event-stream; charset=utf-8"});
  r.pieces = std::move(pieces);
  return r;
}

// A complete stream of tokens "a", "b", "c".
Reply good_stream() {
  return sse_reply({{0, kRoleChunk},
                    {5, token_chunk("a")},
                    {5, token_chunk("b") + token_chunk("c")},
                    {5, kFinishChunk + kUsageChunk},
                    {0, kDone}});
}

Reply json_reply(int status, std::string body) {
  Reply r;
  r.status = status;
  r.headers.push_back({"Content-Type", "application/json"});
  r.body = std::move(body);
  return r;
}

bool is_last(const StreamEvent& e) {
  return std::holds_alternative<StreamEndEvent>(e) || std::holds_alternative<StreamErrorEvent>(e);
}

// Every event up to and including the last one (End or Error), waiting at most kBound.
std::vector<StreamEvent> collect(StreamChannel& ch, double bound_s = kBound) {
  std::vector<StreamEvent> out;
  const auto deadline = Clock::now() + std::chrono::duration<double>(bound_s);
  while (Clock::now() < deadline) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    for (auto& e : ch.wait_take(left > 0 ? left : 0)) out.push_back(std::move(e));
    if (!out.empty() && is_last(out.back())) break;
  }
  return out;
}

std::vector<std::string> tokens_of(const std::vector<StreamEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    if (auto* t = std::get_if<Token>(&e)) out.push_back(t->text);
  return out;
}

const StreamErrorEvent* error_of(const std::vector<StreamEvent>& events) {
  return events.empty() ? nullptr : std::get_if<StreamErrorEvent>(&events.back());
}

const StreamEndEvent* end_of(const std::vector<StreamEvent>& events) {
  return events.empty() ? nullptr : std::get_if<StreamEndEvent>(&events.back());
}

// Waits (bounded) until the client has no call in flight.
bool drains(const Client& client, double bound_s = kBound) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(bound_s);
  while (Clock::now() < deadline) {
    if (client.in_flight() == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return client.in_flight() == 0;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

TEST_CASE("client stream: Started, Tokens in order, End with usage", "[client][stream]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", good_stream());
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  REQUIRE(events.size() == 5);
  const auto* started = std::get_if<StreamStarted>(&events.front());
  REQUIRE(started);
  CHECK(started->model == "tiny");
  CHECK(started->request_id.rfind("llmb-", 0) == 0);
  for (std::size_t i = 1; i <= 3; ++i) {
    const auto* t = std::get_if<Token>(&events[i]);
    REQUIRE(t);
    CHECK(t->index == long(i - 1));
  }
  CHECK(tokens_of(events) == std::vector<std::string>{"a", "b", "c"});
  const StreamEndEvent* end = end_of(events);
  REQUIRE(end);
  CHECK(end->finish_reason == "stop");
  CHECK(end->model == "tiny");
  CHECK(end->tool_calls.empty());
  CHECK(end->metrics.tokens == 3);
  CHECK(end->metrics.prompt_tokens == 7);
  CHECK(end->metrics.completion_tokens == 3);
  CHECK(end->metrics.ttft_ms >= 0);
  CHECK(end->metrics.total_ms >= end->metrics.ttft_ms);
  CHECK(end->metrics.tokens_per_s >= 0);
  CHECK(ch->closed());
  CHECK(drains(client));

  REQUIRE(server.requests().size() == 1);
  const auto req = server.requests()[0];
  CHECK(req.path == "/v1/chat/completions");
  CHECK(req.header("accept") == "text/event-stream");
  CHECK(req.header("x-request-id") == started->request_id);
  CHECK(req.body ==
        R"({"model":"tiny","messages":[{"role":"user","content":"count"}],"max_tokens":4096,"temperature":0.0,)"
        R"("stream":true,"stream_options":{"include_usage":true}})");
}

TEST_CASE("client stream: Ollama NDJSON chat", "[client][stream][ollama]") {
  TestHttpServer server;
  Reply r;
  r.headers.push_back({"Content-Type", "application/x-ndjson"});
  r.pieces = {
      {0, "{\"model\":\"llama3.1\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n"},
      {5, "{\"model\":\"llama3.1\",\"message\":{\"role\":\"assistant\",\"content\":\"lo\"},\"done\":false}\n{\"model\":\"ll"},
      {5, "ama3.1\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\","
          "\"prompt_eval_count\":4,\"eval_count\":2}\n"},
  };
  server.route("/api/chat", r);
  config::OllamaConfig c;
  c.base_url = server.url("");
  c.retry_base_delay = 0.01;
  Client client(c);
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  CHECK(tokens_of(events) == std::vector<std::string>{"Hel", "lo"});
  const StreamEndEvent* end = end_of(events);
  REQUIRE(end);
  CHECK(end->finish_reason == "stop");
  CHECK(end->metrics.prompt_tokens == 4);
  CHECK(end->metrics.completion_tokens == 2);
  CHECK(end->model == "llama3.1");
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].header("accept") == "application/x-ndjson");
  CHECK(server.requests()[0].body.find("\"stream\":true") != std::string::npos);
  CHECK(drains(client));
}

TEST_CASE("client stream: a body that ends before [DONE] is a connection_error", "[client][stream]") {
  TestHttpServer server;
  SECTION("the chunked body ends cleanly, without [DONE]") {
    server.route("/v1/chat/completions", sse_reply({{0, kRoleChunk}, {5, token_chunk("a") + token_chunk("b")}}));
  }
  SECTION("the connection is cut mid-body") {
    Reply r = sse_reply({{0, kRoleChunk}, {5, token_chunk("a") + token_chunk("b")}, {5, "data: {\"choi"}});
    r.cut_after_pieces = true;
    server.route("/v1/chat/completions", r);
  }
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  CHECK(tokens_of(events) == std::vector<std::string>{"a", "b"});
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  INFO(err->error);
  CHECK(err->error.rfind("connection_error: ", 0) == 0);
  CHECK(err->retryable);
  CHECK(server.request_count() == 1);  // after the first byte: never retried
  CHECK(drains(client));
}

TEST_CASE("client stream: a 503 before the first byte is retried, then the stream completes",
          "[client][stream][retry]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    if (seen.fetch_add(1) == 0) return json_reply(503, R"({"error":{"message":"loading","code":503}})");
    return good_stream();
  });
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  REQUIRE(end_of(events));
  CHECK(tokens_of(events) == std::vector<std::string>{"a", "b", "c"});
  CHECK(server.request_count() == 2);
  // Exactly one Started, first.
  int started = 0;
  for (const auto& e : events) started += std::holds_alternative<StreamStarted>(e) ? 1 : 0;
  CHECK(started == 1);
  CHECK(std::holds_alternative<StreamStarted>(events.front()));
  // Both tries carry the call's request id.
  const auto reqs = server.requests();
  CHECK(reqs[0].header("x-request-id") == reqs[1].header("x-request-id"));
  CHECK(drains(client));
}

TEST_CASE("client stream: an error status that is not retried ends the stream with it", "[client][stream]") {
  TestHttpServer server;
  server.route("/v1/chat/completions",
               json_reply(400, R"({"error":{"message":"max_tokens is too large","type":"BadRequestError","code":400}})"));
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  REQUIRE(events.size() == 2);
  CHECK(std::holds_alternative<StreamStarted>(events[0]));
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  CHECK(err->error == "http_400");
  CHECK(err->status_code == 400);
  CHECK_FALSE(err->retryable);
  CHECK(err->message == "max_tokens is too large");
  CHECK(server.request_count() == 1);
  CHECK(drains(client));
}

TEST_CASE("client stream: an error event mid-stream ends it with the server's status and message",
          "[client][stream]") {
  TestHttpServer server;
  server.route("/v1/chat/completions",
               sse_reply({{0, kRoleChunk + token_chunk("a")},
                          {5, "data: {\"error\":{\"message\":\"out of memory\",\"type\":\"InternalServerError\",\"param\":null,\"code\":503}}\n\n"},
                          {0, kDone}}));
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  CHECK(tokens_of(events) == std::vector<std::string>{"a"});
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  CHECK(err->error == "http_503");
  CHECK(err->status_code == 503);
  CHECK(err->retryable);
  CHECK(err->message == "out of memory");
  CHECK(server.request_count() == 1);
  CHECK(drains(client));
}

TEST_CASE("client stream: a server that stalls mid-stream hits the idle clock", "[client][stream][timeout]") {
  TestHttpServer server;
  server.route("/v1/chat/completions",
               sse_reply({{0, kRoleChunk + token_chunk("a")}, {0, ": keep-alive\n\n"}, {200, ": keep-alive\n\n"},
                          {20000, token_chunk("late") + kDone}}));
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  GenerateCall call = chat_call();
  call.options.stream_idle_timeout_s = 0.3;
  const auto t0 = Clock::now();
  client.start_stream(call, ch);
  const auto events = collect(*ch);
  CHECK(seconds_since(t0) < kBound);
  CHECK(tokens_of(events) == std::vector<std::string>{"a"});
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  CHECK(err->error == "timeout");
  CHECK(server.request_count() == 1);  // started: not retried
  CHECK(drains(client));
}

TEST_CASE("client stream: no first byte within the call's timeout is a timeout", "[client][stream][timeout]") {
  TestHttpServer server;
  Reply slow = good_stream();
  slow.delay_ms = 20000;  // before the status line
  server.route("/v1/chat/completions", slow);
  config::VLLMConfig c = vllm_config(server);
  c.max_retries = 1;
  Client client(c);
  auto ch = std::make_shared<StreamChannel>();
  GenerateCall call = chat_call();
  call.options.timeout_s = 0.3;
  const auto t0 = Clock::now();
  client.start_stream(call, ch);
  const auto events = collect(*ch);
  CHECK(seconds_since(t0) < kBound);
  REQUIRE(events.size() == 2);
  CHECK(std::holds_alternative<StreamStarted>(events[0]));
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  CHECK(err->error == "timeout");
  CHECK(err->retryable);
  // Before the first byte a timeout is retried like any retryable failure.
  CHECK(server.request_count() == 2);
  CHECK(drains(client));
}

TEST_CASE("client stream: a tiny channel pauses the transfer and still delivers every token in order",
          "[client][stream][backpressure]") {
  TestHttpServer server;
  constexpr int kTokens = 300;
  std::vector<std::pair<int, std::string>> pieces{{0, kRoleChunk}};
  std::string piece;
  for (int i = 0; i < kTokens; ++i) {
    piece += token_chunk("t" + std::to_string(i));
    if (i % 10 == 9) {
      pieces.emplace_back(1, piece);
      piece.clear();
    }
  }
  pieces.emplace_back(0, kFinishChunk + kUsageChunk + kDone);
  server.route("/v1/chat/completions", sse_reply(pieces));
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>(4);
  client.start_stream(chat_call(), ch);

  std::vector<StreamEvent> events;
  int pauses_seen = 0, held_checks = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a slow consumer
    if (ch->paused()) {
      ++pauses_seen;
      if (held_checks < 3 && !ch->closed()) {
        // While paused the producer adds nothing: the transfer really stopped reading
        // (the piece being handed over when the pause began is given time to land).
        ++held_checks;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const std::size_t before = ch->buffered();
        std::this_thread::sleep_for(std::chrono::milliseconds(40));
        if (!ch->closed()) CHECK(ch->buffered() == before);
      }
    }
    for (auto& e : ch->wait_take(1.0)) events.push_back(std::move(e));
    if (!events.empty() && is_last(events.back())) break;
  }
  REQUIRE(end_of(events));
  const auto tokens = tokens_of(events);
  REQUIRE(tokens.size() == std::size_t(kTokens));
  for (int i = 0; i < kTokens; ++i) {
    if (tokens[std::size_t(i)] != "t" + std::to_string(i)) {
      FAIL("token " << i << " is " << tokens[std::size_t(i)]);
    }
  }
  long expected_index = 0;
  for (const auto& e : events)
    if (auto* t = std::get_if<Token>(&e)) CHECK(t->index == expected_index++);
  CHECK(pauses_seen >= 1);
  CHECK(held_checks >= 1);
  CHECK(end_of(events)->metrics.tokens == kTokens);
  CHECK(drains(client));
}

TEST_CASE("client stream: cancel while the channel is full and the transfer paused", "[client][stream][backpressure]") {
  TestHttpServer server;
  std::string all = kRoleChunk;
  for (int i = 0; i < 20; ++i) all += token_chunk("t" + std::to_string(i));
  server.route("/v1/chat/completions", sse_reply({{0, all}, {20000, kDone}}));
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>(2);
  const auto id = client.start_stream(chat_call(), ch);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline && !ch->paused()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(ch->paused());
  client.cancel(id);
  const auto events = collect(*ch);
  REQUIRE(error_of(events));
  CHECK(error_of(events)->error == "cancelled");
  CHECK(drains(client));
}

TEST_CASE("client stream: cancel mid-stream ends it with cancelled and frees the call", "[client][stream]") {
  TestHttpServer server;
  server.route("/v1/chat/completions",
               sse_reply({{0, kRoleChunk + token_chunk("a")}, {20000, token_chunk("late") + kDone}}));
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  const auto id = client.start_stream(chat_call(), ch);
  // Wait for the first token, then cancel.
  std::vector<StreamEvent> events;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline && tokens_of(events).empty())
    for (auto& e : ch->wait_take(0.5)) events.push_back(std::move(e));
  REQUIRE(tokens_of(events) == std::vector<std::string>{"a"});
  CHECK(client.in_flight() == 1);
  const auto t0 = Clock::now();
  client.cancel(id);
  for (auto& e : collect(*ch)) events.push_back(std::move(e));
  CHECK(seconds_since(t0) < kBound);
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  CHECK(err->error == "cancelled");
  CHECK_FALSE(err->retryable);
  CHECK(drains(client));
  CHECK(server.request_count() == 1);
  client.cancel(id);  // a finished call: no-op
}

TEST_CASE("client stream: cancel before the first byte, and a stream on a closed client",
          "[client][stream]") {
  TestHttpServer server;
  Reply slow = good_stream();
  slow.delay_ms = 20000;
  server.route("/v1/chat/completions", slow);
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  const auto id = client.start_stream(chat_call(), ch);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  client.cancel(id);
  auto events = collect(*ch);
  REQUIRE(error_of(events));
  CHECK(error_of(events)->error == "cancelled");
  CHECK(std::holds_alternative<StreamStarted>(events.front()));
  CHECK(drains(client));

  client.close();
  auto closed = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), closed);
  events = collect(*closed);
  REQUIRE(events.size() == 2);
  CHECK(std::holds_alternative<StreamStarted>(events[0]));
  REQUIRE(error_of(events));
  CHECK(error_of(events)->error == "cancelled");
}

TEST_CASE("client stream: bad input throws before anything is sent", "[client][stream]") {
  TestHttpServer server;
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  GenerateCall bad = chat_call();
  bad.messages_json = "not json";
  CHECK_THROWS_AS(client.start_stream(bad, ch), std::invalid_argument);
  CHECK_THROWS_AS(client.start_generate(bad, [](ChatResult&&) {}), std::invalid_argument);
  CHECK(client.in_flight() == 0);
  CHECK(ch->buffered() == 0);
  CHECK(server.request_count() == 0);
}

// ---------------------------------------------------------------- non-streaming

TEST_CASE("client generate: result fields from a real server", "[client][generation]") {
  TestHttpServer server;
  server.route("/v1/chat/completions",
               json_reply(200, R"({"id":"c1","object":"chat.completion","model":"tiny-served","choices":[{"index":0,)"
                               R"("message":{"role":"assistant","content":"{\"a\": 1}","reasoning":"easy"},)"
                               R"("finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}})"));
  Client client(vllm_config(server));
  GenerateCall call = chat_call();
  call.options.json_schema = R"({"type":"object"})";
  call.options.model = "other-model";
  const ChatResult r = client.generate(call);
  CHECK(r.success);
  CHECK(r.error.empty());
  CHECK(r.text == "{\"a\": 1}");
  CHECK(r.data_json == "{\"a\": 1}");
  CHECK(r.reasoning == "easy");
  CHECK(r.model == "tiny-served");
  CHECK(r.provider == "vllm");
  CHECK(r.finish_reason == "stop");
  CHECK(r.prompt_tokens == 5);
  CHECK(r.completion_tokens == 6);
  CHECK(r.attempts == 1);
  CHECK(r.status_code == 200);
  CHECK(r.latency_ms > 0);
  CHECK(r.request_id.rfind("llmb-", 0) == 0);
  REQUIRE(server.request_count() == 1);
  const auto req = server.requests()[0];
  CHECK(req.header("x-request-id") == r.request_id);
  CHECK(req.header("accept") == "application/json");
  CHECK(req.body.rfind(R"({"model":"other-model",)", 0) == 0);  // the call's model wins
  CHECK(req.body.find("stream") == std::string::npos);
  CHECK(client.in_flight() == 0);
}

TEST_CASE("client generate: a 500 is retried, a 400 is not", "[client][generation][retry]") {
  TestHttpServer server;
  std::atomic<int> seen{0};
  server.set_handler([&](const testing::ReceivedRequest&) {
    if (seen.fetch_add(1) == 0) return json_reply(500, R"({"error":{"message":"boom"}})");
    return json_reply(200, R"({"choices":[{"index":0,"text":" done","finish_reason":"stop"}]})");
  });
  Client client(vllm_config(server));
  GenerateCall call;
  call.op = Operation::kCompletion;
  call.prompt = "Once";
  const ChatResult r = client.generate(call);
  CHECK(r.success);
  CHECK(r.text == " done");
  CHECK(r.attempts == 2);
  CHECK(server.request_count() == 2);
  CHECK(server.requests()[1].path == "/v1/completions");

  TestHttpServer bad;
  bad.route("/v1/chat/completions", json_reply(400, R"({"error":{"message":"nope"}})"));
  Client c2(vllm_config(bad));
  const ChatResult e = c2.generate(chat_call());
  CHECK_FALSE(e.success);
  CHECK(e.error == "http_400");
  CHECK(e.attempts == 1);
  CHECK(e.raw_response == R"({"error":{"message":"nope"}})");

  // start_generate: the callback runs once, on the I/O thread.
  std::promise<ChatResult> p;
  auto f = p.get_future();
  std::atomic<int> calls{0};
  c2.start_generate(chat_call(), [&](ChatResult&& res) {
    if (calls.fetch_add(1) == 0) p.set_value(std::move(res));
  });
  REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(f.get().error == "http_400");
  CHECK(drains(c2));
  CHECK(calls.load() == 1);
}

TEST_CASE("client stream: End comes at [DONE] even when the server lingers; the call is then freed",
          "[client][stream]") {
  TestHttpServer server;
  server.route("/v1/chat/completions",
               sse_reply({{0, kRoleChunk + token_chunk("a") + kFinishChunk + kDone}, {20000, ": still here\n\n"}}));
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  const auto t0 = Clock::now();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  REQUIRE(end_of(events));
  CHECK(tokens_of(events) == std::vector<std::string>{"a"});
  CHECK(seconds_since(t0) < kBound);
  CHECK(drains(client));  // the lingering body is cut after a grace period
}

TEST_CASE("client stream: Ollama's last line without its LF still ends the stream", "[client][stream][ollama]") {
  TestHttpServer server;
  Reply r;
  r.headers.push_back({"Content-Type", "application/x-ndjson"});
  r.pieces = {
      {0, "{\"model\":\"m\",\"response\":\"Once\",\"done\":false}\n"},
      {5, "{\"model\":\"m\",\"response\":\" upon\",\"done\":false}\n{\"model\":\"m\",\"response\":\"\",\"done\":true,"
          "\"done_reason\":\"stop\",\"eval_count\":2}"},
  };
  server.route("/api/generate", r);
  config::OllamaConfig c;
  c.base_url = server.url("");
  Client client(c);
  auto ch = std::make_shared<StreamChannel>();
  GenerateCall call;
  call.op = Operation::kCompletion;
  call.prompt = "Tell";
  client.start_stream(call, ch);
  const auto events = collect(*ch);
  CHECK(tokens_of(events) == std::vector<std::string>{"Once", " upon"});
  const StreamEndEvent* end = end_of(events);
  if (const StreamErrorEvent* err = error_of(events)) UNSCOPED_INFO("ended with " << err->error);
  REQUIRE(end);
  CHECK(end->finish_reason == "stop");
  CHECK(end->metrics.completion_tokens == 2);
  CHECK(drains(client));
}

TEST_CASE("client stream: an Ollama body cut mid-line ends before done:true", "[client][stream][ollama]") {
  TestHttpServer server;
  Reply r;
  r.headers.push_back({"Content-Type", "application/x-ndjson"});
  SECTION("a last line that is not whole JSON") {
    r.pieces = {{0, "{\"response\":\"a\",\"done\":false}\n{\"response\":\"b\",\"do"}};
  }
  SECTION("whole lines, but no done:true") {
    r.pieces = {{0, "{\"response\":\"a\",\"done\":false}\n"}};
  }
  SECTION("a last line without its LF and without done:true") {
    r.pieces = {{0, "{\"response\":\"a\",\"done\":false}"}};
  }
  server.route("/api/generate", r);
  config::OllamaConfig c;
  c.base_url = server.url("");
  Client client(c);
  auto ch = std::make_shared<StreamChannel>();
  GenerateCall call;
  call.op = Operation::kCompletion;
  call.prompt = "Tell";
  client.start_stream(call, ch);
  const auto events = collect(*ch);
  CHECK(tokens_of(events) == std::vector<std::string>{"a"});
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  CHECK(err->error == "connection_error: the stream ended before done:true (1 tokens received)");
  CHECK(err->retryable);
  CHECK(drains(client));
}

TEST_CASE("client stream: an error message quoting invalid UTF-8 is made valid", "[client][stream][utf8]") {
  TestHttpServer server;
  SECTION("a payload that is not JSON, mid-stream") {
    server.route("/v1/chat/completions",
                 sse_reply({{0, kRoleChunk + token_chunk("a")}, {5, "data: <h1>Erreur \xe9lev\xe9" "e</h1>\n\n"}}));
  }
  SECTION("an error body before the stream") {
    server.route("/v1/chat/completions", json_reply(400, "{\"error\":{\"message\":\"mod\xe8le inconnu\"}}"));
  }
  Client client(vllm_config(server));
  auto ch = std::make_shared<StreamChannel>();
  client.start_stream(chat_call(), ch);
  const auto events = collect(*ch);
  const StreamErrorEvent* err = error_of(events);
  REQUIRE(err);
  INFO(err->error);
  CHECK_FALSE(err->message.empty());
  CHECK(text::is_valid_utf8(err->message));
  CHECK(err->message.find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD where the bad byte was
  CHECK(drains(client));
}

TEST_CASE("client stream: destroying the client mid-stream ends the stream with cancelled", "[client][stream]") {
  TestHttpServer server;
  server.route("/v1/chat/completions", sse_reply({{0, kRoleChunk + token_chunk("a")}, {20000, kDone}}));
  auto ch = std::make_shared<StreamChannel>();
  std::vector<StreamEvent> events;
  {
    Client client(vllm_config(server));
    client.start_stream(chat_call(), ch);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && tokens_of(events).empty())
      for (auto& e : ch->wait_take(0.5)) events.push_back(std::move(e));
    REQUIRE(tokens_of(events) == std::vector<std::string>{"a"});
  }
  CHECK(ch->closed());
  for (auto& e : ch->take()) events.push_back(std::move(e));
  REQUIRE(error_of(events));
  CHECK(error_of(events)->error == "cancelled");
}

TEST_CASE("client generate: Ollama chat, not streamed", "[client][generation][ollama]") {
  TestHttpServer server;
  server.route("/api/chat", json_reply(200, R"({"model":"llama3.1","message":{"role":"assistant","content":"hi","thinking":"t"},)"
                                            R"("done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":1})"));
  config::OllamaConfig c;
  c.base_url = server.url("");
  Client client(c);
  const ChatResult r = client.generate(chat_call());
  CHECK(r.success);
  CHECK(r.text == "hi");
  CHECK(r.reasoning == "t");
  CHECK(r.provider == "ollama");
  CHECK(r.completion_tokens == 1);
  REQUIRE(server.request_count() == 1);
  CHECK(server.requests()[0].body.find("\"stream\":false") != std::string::npos);
}
