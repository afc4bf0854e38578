// Health: model-list parsing for both APIs, the healthy/degraded/unhealthy rules, and
// check_health() against the in-process test server.
#include <catch2/catch.hpp>

#include <string>

#include "llmbridge/llm/client.hpp"
#include "llmbridge/llm/health.hpp"
#include "support/test_http_server.hpp"

using namespace llmbridge;
using llm::HealthStatus;

namespace {

http::Response ok(std::string body, double elapsed_ms = 5) {
  http::Response r;
  r.status = 200;
  r.body = std::move(body);
  r.elapsed_ms = elapsed_ms;
  return r;
}

const char* kOpenAIModels = R"({"object":"list","data":[{"id":"qwen2.5-7b","object":"model"},{"id":"llama"}]})";
const char* kOllamaTags =
    R"({"models":[{"name":"llama3.1:latest","model":"llama3.1:latest"},{"name":"qwen3:8b","model":"qwen3:8b-q4"}]})";

testing::Reply models_reply() {
  testing::Reply r;
  r.body = kOpenAIModels;
  r.headers.push_back({"Content-Type", "application/json"});
  return r;
}

}  // namespace

TEST_CASE("health: parse OpenAI-compatible /v1/models", "[health]") {
  auto list = llm::parse_models("vllm", ok(kOpenAIModels));
  REQUIRE(list.ok);
  CHECK(list.models == std::vector<std::string>{"qwen2.5-7b", "llama"});
  CHECK(llm::parse_models("openai", ok(R"({"data":[]})")).models.empty());
  CHECK(llm::parse_models("openai", ok(R"({"data":[]})")).ok);
}

TEST_CASE("health: parse Ollama /api/tags (name and model, no duplicates)", "[health]") {
  auto list = llm::parse_models("ollama", ok(kOllamaTags));
  REQUIRE(list.ok);
  CHECK(list.models == std::vector<std::string>{"llama3.1:latest", "qwen3:8b", "qwen3:8b-q4"});
}

TEST_CASE("health: what is not a model list", "[health]") {
  CHECK(llm::parse_models("vllm", ok("<html>")).error.rfind("invalid_json: ", 0) == 0);
  CHECK(llm::parse_models("vllm", ok(R"({"models":[]})")).error.rfind("invalid_json: ", 0) == 0);
  CHECK(llm::parse_models("ollama", ok(R"([1,2])")).error.rfind("invalid_json: ", 0) == 0);
  http::Response r = ok("{}");
  r.status = 503;
  CHECK(llm::parse_models("vllm", r).error == "http_503");
  http::Response t;
  t.error = http::TransportError::kTimeout;
  CHECK(llm::parse_models("vllm", t).error == "timeout");
  http::Response c;
  c.error = http::TransportError::kConnect;
  c.error_message = "Connection refused";
  CHECK(llm::parse_models("ollama", c).error == "connection_error: Connection refused");
}

TEST_CASE("health: Ollama model names without a tag mean :latest", "[health]") {
  CHECK(llm::model_matches("ollama", "llama3.1", "llama3.1:latest"));
  CHECK(llm::model_matches("ollama", "llama3.1:latest", "llama3.1"));
  CHECK_FALSE(llm::model_matches("ollama", "llama3.1", "llama3.1:8b"));
  CHECK(llm::model_matches("ollama", "reg:5000/ns/m", "reg:5000/ns/m:latest"));
  CHECK_FALSE(llm::model_matches("vllm", "llama3.1", "llama3.1:latest"));
}

TEST_CASE("health: evaluate", "[health]") {
  auto h = llm::evaluate_health("vllm", "llama", ok(kOpenAIModels));
  CHECK(h.status == HealthStatus::kHealthy);
  CHECK(h.reason.empty());
  CHECK(h.model == "llama");

  h = llm::evaluate_health("vllm", "", ok(kOpenAIModels));
  CHECK(h.status == HealthStatus::kHealthy);
  CHECK(h.model == "qwen2.5-7b");  // no model configured: the first listed

  h = llm::evaluate_health("vllm", "", ok(R"({"data":[]})"));
  CHECK(h.status == HealthStatus::kDegraded);
  CHECK(h.reason == "the server lists no models");

  h = llm::evaluate_health("ollama", "llama3.1", ok(kOllamaTags));
  CHECK(h.status == HealthStatus::kHealthy);

  h = llm::evaluate_health("ollama", "mistral", ok(kOllamaTags));
  CHECK(h.status == HealthStatus::kDegraded);
  CHECK(h.reason == "model 'mistral' is not served (served: llama3.1:latest, qwen3:8b, qwen3:8b-q4)");
  CHECK(h.models.size() == 3);

  h = llm::evaluate_health("vllm", "llama", ok(kOpenAIModels, 2500));
  CHECK(h.status == HealthStatus::kDegraded);
  CHECK(h.reason == "slow: answered in 2500 ms (threshold 2000 ms)");
  llm::HealthOptions lenient;
  lenient.slow_threshold_ms = 5000;
  CHECK(llm::evaluate_health("vllm", "llama", ok(kOpenAIModels, 2500), lenient).status == HealthStatus::kHealthy);

  http::Response down;
  down.error = http::TransportError::kConnect;
  h = llm::evaluate_health("vllm", "llama", down);
  CHECK(h.status == HealthStatus::kUnhealthy);
  CHECK(h.reason.rfind("connection_error: ", 0) == 0);
  CHECK(std::string(llm::to_string(h.status)) == "unhealthy");
}

TEST_CASE("health: the request", "[health]") {
  auto r = llm::models_request("vllm", "http://h:8000/v1/", "sk-1", 2.5);
  CHECK(r.method == "GET");
  CHECK(r.url == "http://h:8000/v1/models");
  CHECK(r.timeout_ms == 2500);
  bool auth = false;
  for (const auto& h : r.headers) auth = auth || (h.name == "Authorization" && h.value == "Bearer sk-1");
  CHECK(auth);
  CHECK(llm::models_request("ollama", "http://h:11434", "", 1).url == "http://h:11434/api/tags");
  for (const auto& h : llm::models_request("ollama", "http://h", "", 1).headers) CHECK(h.name != "Authorization");
}

TEST_CASE("health: check_health against a real server", "[health]") {
  testing::TestHttpServer server;
  server.route("/v1/models", models_reply());
  auto h = llm::check_health("vllm", server.url(""), "llama", "", 5);
  CHECK(h.status == HealthStatus::kHealthy);
  CHECK(h.latency_ms > 0);
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].method == "GET");
  CHECK(server.requests()[0].path == "/v1/models");
}

TEST_CASE("health: a client's check uses its model, and set_model changes it", "[health]") {
  testing::TestHttpServer server;
  config::VLLMConfig c;
  c.base_url = server.url("");
  server.route("/v1/models", models_reply());
  llm::Client client(c);
  auto h = client.check_health(5);
  CHECK(h.status == HealthStatus::kHealthy);
  CHECK(h.model == "qwen2.5-7b");
  client.set_model("nope");
  CHECK(client.current_model() == "nope");
  CHECK(client.model().empty());  // model() stays the configured one
  CHECK(client.check_health(5).status == HealthStatus::kDegraded);
}

TEST_CASE("client: close_when_idle closes now when idle", "[health]") {
  config::VLLMConfig c;
  llm::Client client(c);
  client.close_when_idle();
  CHECK(client.closed());
}

TEST_CASE("health: max_model_len per listed model (vLLM lists it)", "[health][context]") {
  const auto body =
      R"({"object":"list","data":[{"id":"tiny","max_model_len":8192},{"id":"other"},)"
      R"({"id":"neg","max_model_len":-1},{"id":"tiny","max_model_len":5}]})";
  const llm::ModelList list = llm::parse_models("vllm", ok(body));
  REQUIRE(list.ok);
  CHECK(list.models == std::vector<std::string>{"tiny", "other", "neg"});
  CHECK(list.max_model_len("tiny") == 8192);  // the first listing wins
  CHECK(list.max_model_len("other") == 0);
  CHECK(list.max_model_len("neg") == 0);
  CHECK(list.max_model_len("absent") == 0);
  CHECK(llm::evaluate_health("vllm", "tiny", ok(body)).max_model_len == 8192);
  CHECK(llm::evaluate_health("vllm", "", ok(body)).max_model_len == 8192);  // auto-picked
  CHECK(llm::evaluate_health("vllm", "other", ok(body)).max_model_len == 0);
  const auto tags = R"({"models":[{"name":"llama3:latest","max_model_len":99}]})";
  CHECK(llm::evaluate_health("ollama", "llama3", ok(tags)).max_model_len == 0);
}
