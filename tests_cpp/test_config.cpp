// Provider configs: defaults, validation problems (field, value, allowed; never the
// key), base URL normalisation.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "llmbridge/config/provider_config.hpp"

using namespace llmbridge::config;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

const ConfigProblem* find_problem(const std::vector<ConfigProblem>& problems, const std::string& field) {
  for (const auto& p : problems)
    if (p.field == field) return &p;
  return nullptr;
}

}  // namespace

TEST_CASE("config: defaults match the Python configs", "[config]") {
  VLLMConfig v;
  CHECK(v.base_url == "http://localhost:8000");
  CHECK(v.model.empty());
  CHECK(v.timeout == 120.0);
  CHECK(v.max_retries == 3);
  CHECK(v.retry_base_delay == 1.0);
  CHECK(v.retry_max_delay == 30.0);
  CHECK(v.retry_backoff_multiplier == 2.0);
  CHECK(v.max_tokens == 4096);
  CHECK(v.temperature == 0.0);
  CHECK(v.api_key.empty());
  CHECK(v.text_model.empty());
  CHECK(v.vision_model.empty());
  CHECK(v.embedding_model.empty());
  CHECK(v.embedding_dimensions == 0);
  CHECK(v.connect_timeout == 10.0);

  OpenAIConfig o;
  CHECK(o.base_url == "https://api.openai.com");
  CHECK(o.model == "gpt-4o-mini");
  CHECK(o.timeout == 120.0);
  CHECK(o.max_retries == 3);

  OllamaConfig l;
  CHECK(l.base_url == "http://localhost:11434");
  CHECK(l.model == "llama3.1");
  CHECK(l.timeout == 120.0);
  CHECK(l.max_retries == 3);
  CHECK(l.retry_base_delay == 1.0);
  CHECK(l.retry_max_delay == 30.0);
  CHECK(l.retry_backoff_multiplier == 2.0);
  CHECK(l.max_tokens == 4096);
  CHECK(l.temperature == 0.0);
  CHECK(l.api_key.empty());
  CHECK(l.num_ctx == 0);
  CHECK(l.keep_alive.empty());
  CHECK(l.connect_timeout == 10.0);
}

TEST_CASE("config: defaults are valid", "[config]") {
  CHECK(validate(VLLMConfig{}).empty());
  CHECK(validate(OpenAIConfig{}).empty());
  CHECK(validate(OllamaConfig{}).empty());
}

TEST_CASE("config: each bad field is named with its value and what is allowed", "[config]") {
  struct Case {
    const char* field;
    void (*mutate)(VLLMConfig&);
    const char* value;
  };
  const Case cases[] = {
      {"timeout", [](VLLMConfig& c) { c.timeout = 0; }, "0"},
      {"timeout", [](VLLMConfig& c) { c.timeout = -1; }, "-1"},
      {"timeout", [](VLLMConfig& c) { c.timeout = kNaN; }, "nan"},
      {"timeout", [](VLLMConfig& c) { c.timeout = kInf; }, "inf"},
      {"connect_timeout", [](VLLMConfig& c) { c.connect_timeout = 0; }, "0"},
      {"max_retries", [](VLLMConfig& c) { c.max_retries = -1; }, "-1"},
      {"retry_base_delay", [](VLLMConfig& c) { c.retry_base_delay = -0.5; }, "-0.5"},
      {"retry_base_delay", [](VLLMConfig& c) { c.retry_base_delay = kNaN; }, "nan"},
      {"retry_max_delay", [](VLLMConfig& c) { c.retry_max_delay = 0.5; }, "0.5"},
      {"retry_max_delay", [](VLLMConfig& c) { c.retry_max_delay = kInf; }, "inf"},
      {"retry_backoff_multiplier", [](VLLMConfig& c) { c.retry_backoff_multiplier = 0.9; }, "0.9"},
      {"retry_backoff_multiplier", [](VLLMConfig& c) { c.retry_backoff_multiplier = kNaN; }, "nan"},
      {"max_tokens", [](VLLMConfig& c) { c.max_tokens = 0; }, "0"},
      {"max_tokens", [](VLLMConfig& c) { c.max_tokens = -5; }, "-5"},
      {"temperature", [](VLLMConfig& c) { c.temperature = -0.1; }, "-0.1"},
      {"temperature", [](VLLMConfig& c) { c.temperature = 2.5; }, "2.5"},
      {"temperature", [](VLLMConfig& c) { c.temperature = kNaN; }, "nan"},
      {"embedding_dimensions", [](VLLMConfig& c) { c.embedding_dimensions = -1; }, "-1"},
      {"base_url", [](VLLMConfig& c) { c.base_url = "localhost:8000"; }, "'localhost:8000'"},
  };
  for (const auto& k : cases) {
    VLLMConfig c;
    k.mutate(c);
    auto problems = validate(c);
    INFO(k.field << " = " << k.value);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].field == k.field);
    CHECK(problems[0].value == k.value);
    CHECK_FALSE(problems[0].allowed.empty());
    const std::string m = problems[0].message();
    CHECK(m.find(k.field) != std::string::npos);
    CHECK(m.find(k.value) != std::string::npos);
  }
}

TEST_CASE("config: boundaries that are allowed", "[config]") {
  VLLMConfig c;
  c.max_retries = 0;
  c.retry_base_delay = 0;
  c.retry_max_delay = 0;
  c.retry_backoff_multiplier = 1;
  c.temperature = 2;
  c.max_tokens = 1;
  c.timeout = 0.001;
  CHECK(validate(c).empty());
  c.temperature = 0;
  CHECK(validate(c).empty());
}

TEST_CASE("config: every problem is reported, in field order", "[config]") {
  VLLMConfig c;
  c.base_url = "nope";
  c.timeout = -1;
  c.max_tokens = 0;
  auto problems = validate(c);
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].field == "base_url");
  CHECK(problems[1].field == "timeout");
  CHECK(problems[2].field == "max_tokens");
}

TEST_CASE("config: the api_key never appears in a problem", "[config]") {
  const std::string secret = "sk-very-secret-123";
  VLLMConfig c;
  c.api_key = secret + "\n";  // a line break would corrupt the header: rejected
  c.timeout = -1;
  c.base_url = "ftp://x";
  auto problems = validate(c);
  REQUIRE(problems.size() == 3);
  for (const auto& p : problems) {
    CHECK(p.value.find(secret) == std::string::npos);
    CHECK(p.allowed.find(secret) == std::string::npos);
    CHECK(p.message().find(secret) == std::string::npos);
  }
  const auto* key = find_problem(problems, "api_key");
  REQUIRE(key != nullptr);
  CHECK(key->value == "<redacted>");

  c = VLLMConfig{};
  c.api_key = secret;
  CHECK(validate(c).empty());
}

TEST_CASE("config: model is required for OpenAI and Ollama, optional for vLLM", "[config]") {
  VLLMConfig v;
  v.model = "";
  CHECK(validate(v).empty());
  OpenAIConfig o;
  o.model = "  ";
  auto po = validate(o);
  REQUIRE(po.size() == 1);
  CHECK(po[0].field == "model");
  CHECK(po[0].value == "'  '");
  OllamaConfig l;
  l.model = "";
  auto pl = validate(l);
  REQUIRE(pl.size() == 1);
  CHECK(pl[0].field == "model");
}

TEST_CASE("config: Ollama-only fields", "[config]") {
  OllamaConfig l;
  l.num_ctx = -1;
  auto p = validate(l);
  REQUIRE(p.size() == 1);
  CHECK(p[0].field == "num_ctx");
  CHECK(p[0].value == "-1");
  l.num_ctx = 8192;
  l.keep_alive = "5m";
  CHECK(validate(l).empty());
  l.temperature = 3;
  l.api_key = "secret-ollama";
  p = validate(l);
  REQUIRE(p.size() == 1);
  CHECK(p[0].field == "temperature");
  CHECK(p[0].message().find("secret-ollama") == std::string::npos);
}

TEST_CASE("config: base URL validation", "[config]") {
  for (const char* good : {"http://localhost:8000", "https://api.openai.com", "HTTP://H", "Https://h:443/v1",
                           "http://[::1]:8000", "http://user:pw@host", "http://10.0.0.1", "http://h:65535/",
                           "http://h/prefix/v1/", "http://h?x=1"}) {
    INFO(good);
    CHECK(is_valid_base_url(good));
  }
  for (const char* bad : {"", "localhost:8000", "ftp://h", "http://", "https://", "http:///path", "http://:80",
                          "http://h:", "http://h:abc", "http://h:0", "http://h:65536", "http://h:123456",
                          "http://a b", " http://h", "http://h\n", "http://[::1", "http://[]:80",
                          "http://[::1]x", "//h", "http:/h"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_base_url(bad));
  }
}

TEST_CASE("config: normalized_base_url strips trailing slashes and /v1", "[config]") {
  CHECK(normalized_base_url("http://h:8000") == "http://h:8000");
  CHECK(normalized_base_url("http://h:8000/") == "http://h:8000");
  CHECK(normalized_base_url("http://h:8000//") == "http://h:8000");
  CHECK(normalized_base_url("http://h:8000/v1") == "http://h:8000");
  CHECK(normalized_base_url("http://h:8000/v1/") == "http://h:8000");
  CHECK(normalized_base_url("  http://h:8000/v1/  ") == "http://h:8000");
  CHECK(normalized_base_url("http://h/proxy/v1") == "http://h/proxy");
  CHECK(normalized_base_url("http://h/proxy/") == "http://h/proxy");
  CHECK(normalized_base_url("http://h/v1/v1") == "http://h/v1");  // one /v1 only
  CHECK(normalized_base_url("http://h/api/v10") == "http://h/api/v10");
  CHECK(normalized_base_url("http://hv1") == "http://hv1");
  CHECK(normalized_base_url("") == "");
}
