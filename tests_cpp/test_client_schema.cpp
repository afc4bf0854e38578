// llm::Client's check of structured answers against the in-process HTTP server: a
// mismatch fails the try with schema_mismatch and is retried at once, as a re-ask (the
// answer and the errors added to the conversation) or, with schema_retry off, as the
// same request; validate_schema off and calls without a schema are not checked; the
// warnings about schemas are noted once per text. Retry delays are read through
// ClientOptions::on_retry, never measured.
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <string>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/client.hpp"
#include "llmbridge/llm/json_writer.hpp"
#include "llmbridge/llm/schema_check.hpp"
#include "support/test_http_server.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;
using testing::ReceivedRequest;
using testing::Reply;
using testing::TestHttpServer;

namespace {

const char* kSchema =
    R"({"type":"object","properties":{"name":{"type":"string"}},"required":["name"]})";
const char* kReaskEnd = "Reply again with only JSON that matches the schema.";

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// A 200 answer with this content, in the shape of the path asked for.
Reply answer(const std::string& path, const std::string& content) {
  Reply r;
  r.headers.emplace_back("Content-Type", "application/json");
  if (path == "/api/chat") {
    r.body = R"({"model":"m","message":{"role":"assistant","content":)" + json_string(content) +
             R"(},"done":true,"done_reason":"stop"})";
  } else if (path == "/api/generate") {
    r.body = R"({"model":"m","response":)" + json_string(content) + R"(,"done":true,"done_reason":"stop"})";
  } else if (path == "/v1/completions") {
    r.body = R"({"model":"m","choices":[{"index":0,"text":)" + json_string(content) + R"(,"finish_reason":"stop"}]})";
  } else {
    r.body = R"({"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":)" +
             json_string(content) + R"(},"finish_reason":"stop"}]})";
  }
  return r;
}

// Answers the i-th generation request with contents[i] (the last one from then on).
void script(TestHttpServer& server, std::vector<std::string> contents) {
  auto next = std::make_shared<std::atomic<std::size_t>>(0);
  server.set_handler([contents = std::move(contents), next](const ReceivedRequest& req) {
    const std::size_t i = std::min(next->fetch_add(1), contents.size() - 1);
    return answer(req.path.substr(0, req.path.find('?')), contents[i]);
  });
}

template <class Config>
Config config_for(const TestHttpServer& server, int max_retries) {
  Config c;
  c.base_url = server.url("");
  c.model = "m";
  c.max_retries = max_retries;
  c.retry_base_delay = 5;  // a backoff would show in the retry log
  c.retry_max_delay = 5;
  c.timeout = 10;
  return c;
}

struct RetryLog {
  std::mutex mu;
  std::vector<long> delays;
  ClientOptions options() {
    ClientOptions o;
    o.jitter = [] { return 1.0; };
    o.on_retry = [this](int, long delay_ms) {
      std::lock_guard<std::mutex> lock(mu);
      delays.push_back(delay_ms);
    };
    return o;
  }
  std::vector<long> get() {
    std::lock_guard<std::mutex> lock(mu);
    return delays;
  }
};

ChatCall extraction(const char* schema = kSchema) {
  ChatCall c;
  c.prompts.system = "Extract.";
  c.prompts.user = "Text: {document_text}";
  c.document_text = "Ada Lovelace";
  c.schema_json = schema;
  return c;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("schema: a mismatch is re-asked at once with the answer and its errors, then succeeds",
          "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": 7})", R"({"name": "Ada"})"});
  RetryLog log;
  Client client(config_for<config::VLLMConfig>(server, 3), log.options());
  const Attempt a = client.call(extraction());
  CHECK(a.success);
  CHECK(a.error.empty());
  CHECK(a.attempts == 2);
  CHECK(a.schema_errors.empty());
  CHECK(a.data_json == R"({"name": "Ada"})");
  CHECK(log.get() == std::vector<long>{0});  // no backoff: the server is not overloaded

  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  const std::string& first = requests[0].body;
  const std::string& second = requests[1].body;
  CHECK_FALSE(contains(first, "assistant"));
  // The same conversation, then the answer and the errors.
  CHECK(contains(second, R"({"role":"system","content":"Extract."},{"role":"user","content":"Text: Ada Lovelace"},)"
                         R"({"role":"assistant","content":"{\"name\": 7}"},{"role":"user","content":"Your answer did not match the JSON schema:\n/name: )"));
  CHECK(contains(second, kReaskEnd));
  // The schema is still asked for, and the request id kept.
  CHECK(contains(second, std::string(R"("schema":)") + kSchema));
  CHECK(requests[0].header("x-request-id") == requests[1].header("x-request-id"));

  const StatsSnapshot stats = client.stats();
  CHECK(stats.successes == 1);
  CHECK(stats.retries == 1);
}

TEST_CASE("schema: with schema_retry off the retry is the identical request", "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": 7})", R"({"name": "Ada"})"});
  RetryLog log;
  auto config = config_for<config::VLLMConfig>(server, 3);
  config.schema_retry = false;
  Client client(config, log.options());
  const Attempt a = client.call(extraction());
  CHECK(a.success);
  CHECK(a.attempts == 2);
  CHECK(log.get() == std::vector<long>{0});
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].body == requests[1].body);
}

TEST_CASE("schema: with validate_schema off a mismatch is a success, as before", "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": 7})"});
  auto config = config_for<config::VLLMConfig>(server, 3);
  config.validate_schema = false;
  Client client(config);
  const Attempt a = client.call(extraction());
  CHECK(a.success);
  CHECK(a.attempts == 1);
  CHECK(a.data_json == R"({"name": 7})");
  CHECK(a.schema_errors.empty());
}

TEST_CASE("schema: retries spent, the call fails with schema_mismatch, its errors and the answer",
          "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": 7})", R"({"name": 8, "x": 1})", R"({"name": 9})"});
  RetryLog log;
  Client client(config_for<config::VLLMConfig>(server, 2), log.options());
  const Attempt a = client.call(extraction());
  CHECK_FALSE(a.success);
  CHECK(a.retryable);
  CHECK(a.attempts == 3);
  CHECK(a.error.rfind("schema_mismatch: /name: ", 0) == 0);
  REQUIRE(a.schema_errors.size() == 1);
  CHECK(a.schema_errors[0].pointer == "/name");
  CHECK(a.error == schema::mismatch_error(a.schema_errors));
  CHECK(a.data_json == R"({"name": 9})");  // the last answer, kept for the caller
  CHECK(a.raw_response == R"({"name": 9})");
  CHECK(log.get() == std::vector<long>{0, 0});
  // Every re-ask is the first conversation plus the latest answer: it does not grow.
  const auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  CHECK(contains(requests[2].body, R"({"role":"user","content":"Text: Ada Lovelace"},{"role":"assistant","content":"{\"name\": 8, \"x\": 1}"})"));
  CHECK_FALSE(contains(requests[2].body, R"(\"name\": 7)"));
  CHECK(client.stats().errors == std::map<std::string, std::uint64_t>{{"schema_mismatch", 1}});

  SECTION("max_retries 0: one try") {
    TestHttpServer one;
    script(one, {R"({"name": 7})"});
    Client c(config_for<config::VLLMConfig>(one, 0));
    const Attempt b = c.call(extraction());
    CHECK(b.attempts == 1);
    CHECK(b.error.rfind("schema_mismatch: ", 0) == 0);
  }
}

TEST_CASE("schema: no schema, no check", "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": 7})"});
  Client client(config_for<config::VLLMConfig>(server, 3));
  const Attempt a = client.call(extraction(""));
  CHECK(a.success);
  CHECK(a.attempts == 1);
  CHECK(a.schema_errors.empty());
  CHECK(client.pending_schema_warnings() == 0);
}

TEST_CASE("schema: at most kMaxSchemaErrors errors, and each quotes the answer only briefly", "[client][schema]") {
  TestHttpServer server;
  std::string items = "[";
  for (int i = 0; i < 30; ++i) items += std::string(i ? "," : "") + "\"" + std::string(200, 'x') + "\"";
  items += "]";
  script(server, {items});
  Client client(config_for<config::VLLMConfig>(server, 0));
  const Attempt a = client.call(extraction(R"({"type":"array","items":{"type":"integer"}})"));
  CHECK(a.error.rfind("schema_mismatch: /0: ", 0) == 0);
  CHECK(a.schema_errors.size() == kMaxSchemaErrors);
  CHECK(a.error.size() < 200);
  for (const auto& e : a.schema_errors) CHECK(e.message.size() < 200);
}

TEST_CASE("schema: chat and completions with json_schema, OpenAI and Ollama", "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": null})", R"({"name": "Ada"})"});
  const std::string provider = GENERATE("vllm", "ollama");
  const bool ollama = provider == "ollama";
  RetryLog log;
  GenerateCall call;
  call.options.json_schema = kSchema;
  SECTION("chat") {
    call.op = Operation::kChat;
    call.messages_json = R"([{"role":"user","content":"Who?"}])";
    ChatResult r = ollama ? Client(config_for<config::OllamaConfig>(server, 1), log.options()).generate(call)
                          : Client(config_for<config::VLLMConfig>(server, 1), log.options()).generate(call);
    CHECK(r.success);
    CHECK(r.attempts == 2);
    CHECK(r.data_json == R"({"name": "Ada"})");
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].path == (ollama ? "/api/chat" : "/v1/chat/completions"));
    CHECK(contains(requests[1].body, R"([{"role":"user","content":"Who?"},{"role":"assistant","content":"{\"name\": null}"},)"
                                     R"({"role":"user","content":"Your answer did not match the JSON schema:\n/name: )"));
  }
  SECTION("complete: the re-ask follows the prompt") {
    call.op = Operation::kCompletion;
    call.prompt = "Who?";
    ChatResult r = ollama ? Client(config_for<config::OllamaConfig>(server, 1), log.options()).generate(call)
                          : Client(config_for<config::VLLMConfig>(server, 1), log.options()).generate(call);
    CHECK(r.success);
    CHECK(r.attempts == 2);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].path == (ollama ? "/api/generate" : "/v1/completions"));
    CHECK(contains(requests[1].body, R"("prompt":"Who?\n\nYour answer did not match the JSON schema:\n/name: )"));
  }
  CHECK(log.get() == std::vector<long>{0});
}

TEST_CASE("schema: a generate call without json_schema is not checked", "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": 7})"});
  Client client(config_for<config::VLLMConfig>(server, 2));
  GenerateCall call;
  call.messages_json = R"([{"role":"user","content":"Who?"}])";
  call.options.response_format = R"({"type":"json_object"})";
  const ChatResult r = client.generate(call);
  CHECK(r.success);
  CHECK(r.attempts == 1);
  CHECK(r.data_json == R"({"name": 7})");
}

TEST_CASE("schema: a schema the validator cannot compile is sent, not checked, and warned about once",
          "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"name": 7})"});
  Client client(config_for<config::VLLMConfig>(server, 2));
  const char* broken = R"({"type":"object","properties":{"name":{"$ref":"#/$defs/missing"}}})";
  for (int i = 0; i < 3; ++i) {
    const Attempt a = client.call(extraction(broken));
    CHECK(a.success);
    CHECK(a.attempts == 1);
  }
  CHECK(server.request_count() == 3);
  const auto warnings = client.drain_schema_warnings();
  REQUIRE(warnings.size() == 1);
  CHECK(contains(warnings[0], "cannot be compiled"));
  CHECK(client.pending_schema_warnings() == 0);
  client.call(extraction(broken));
  CHECK(client.drain_schema_warnings().empty());
}

TEST_CASE("schema: keywords the validator cannot check are warned about once per schema, the rest is checked",
          "[client][schema]") {
  TestHttpServer server;
  script(server, {R"({"a": 1})"});
  Client client(config_for<config::VLLMConfig>(server, 0));
  const char* remote =
      R"({"type":"object","properties":{"a":{"$ref":"https://example.com/x.json"}},"required":["a","b"]})";
  const Attempt a = client.call(extraction(remote));
  CHECK(a.error.rfind("schema_mismatch: (root): ", 0) == 0);  // "b" is missing: still checked
  client.call(extraction(remote));
  const auto warnings = client.drain_schema_warnings();
  REQUIRE(warnings.size() == 1);
  CHECK(contains(warnings[0], "/properties/a"));
}
