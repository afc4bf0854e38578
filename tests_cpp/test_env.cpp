// Environment loading: every variable, every kind of bad value (all reported at once,
// never an API key), OLLAMA_HOST forms, provider selection and routing.
#include <catch2/catch.hpp>

#include <string>

#include "llmbridge/config/env.hpp"

using namespace llmbridge::config;

namespace {

AppConfig load_ok(const Environment& env) {
  AppConfigResult r = load_app_config(env);
  INFO((r.problems.empty() ? std::string() : r.problems.front().message()));
  REQUIRE(r.ok());
  REQUIRE(r.config.has_value());
  return *r.config;
}

std::vector<EnvProblem> load_bad(const Environment& env) {
  AppConfigResult r = load_app_config(env);
  REQUIRE_FALSE(r.ok());
  REQUIRE_FALSE(r.config.has_value());
  return r.problems;
}

}  // namespace

TEST_CASE("env: nothing set gives the defaults", "[env]") {
  AppConfig c = load_ok({});
  CHECK(c.vllm.base_url == VLLMConfig{}.base_url);
  CHECK(c.ollama.base_url == OllamaConfig{}.base_url);
  CHECK(c.openai.base_url == OpenAIConfig{}.base_url);
  CHECK(c.ollama.model == "llama3.1");
  CHECK(c.llm_provider == "ollama");
  CHECK(c.embedding_provider == "ollama");
}

TEST_CASE("env: every vLLM variable", "[env]") {
  AppConfig c = load_ok({{"VLLM_BASE_URL", "http://gpu:8001/v1"},
                         {"VLLM_MODEL", "qwen2.5-7b"},
                         {"VLLM_TIMEOUT", "30.5"},
                         {"VLLM_CONNECT_TIMEOUT", "2"},
                         {"VLLM_MAX_RETRIES", "0"},
                         {"VLLM_RETRY_BASE_DELAY", "0.5"},
                         {"VLLM_RETRY_MAX_DELAY", "8"},
                         {"VLLM_RETRY_BACKOFF_MULTIPLIER", "3"},
                         {"VLLM_TEMPERATURE", "0.7"},
                         {"VLLM_MAX_TOKENS", "512"},
                         {"VLLM_API_KEY", "sk-vllm"},
                         {"VLLM_TEXT_MODEL", "t"},
                         {"VLLM_VISION_MODEL", "v"},
                         {"VLLM_EMBEDDING_MODEL", "e"},
                         {"VLLM_EMBEDDING_DIMENSIONS", "768"}});
  CHECK(c.vllm.base_url == "http://gpu:8001/v1");
  CHECK(c.vllm.model == "qwen2.5-7b");
  CHECK(c.vllm.timeout == 30.5);
  CHECK(c.vllm.connect_timeout == 2.0);
  CHECK(c.vllm.max_retries == 0);
  CHECK(c.vllm.retry_base_delay == 0.5);
  CHECK(c.vllm.retry_max_delay == 8.0);
  CHECK(c.vllm.retry_backoff_multiplier == 3.0);
  CHECK(c.vllm.temperature == 0.7);
  CHECK(c.vllm.max_tokens == 512);
  CHECK(c.vllm.api_key == "sk-vllm");
  CHECK(c.vllm.text_model == "t");
  CHECK(c.vllm.vision_model == "v");
  CHECK(c.vllm.embedding_model == "e");
  CHECK(c.vllm.embedding_dimensions == 768);
}

TEST_CASE("env: every Ollama and OpenAI variable", "[env]") {
  AppConfig c = load_ok({{"OLLAMA_BASE_URL", "http://ollama:11434"},
                         {"OLLAMA_MODEL", "qwen3:8b"},
                         {"OLLAMA_TIMEOUT", "60"},
                         {"OLLAMA_MAX_RETRIES", "5"},
                         {"OLLAMA_TEMPERATURE", "1"},
                         {"OLLAMA_MAX_TOKENS", "100"},
                         {"OLLAMA_NUM_CTX", "8192"},
                         {"OLLAMA_KEEP_ALIVE", "1h30m"},
                         {"OLLAMA_API_KEY", "ok"},
                         {"OPENAI_API_KEY", "sk-x"},
                         {"OPENAI_BASE_URL", "https://openrouter.ai/api/v1"},
                         {"OPENAI_MODEL", "gpt-4.1"},
                         {"OPENAI_TIMEOUT", "9"},
                         {"OPENAI_MAX_RETRIES", "1"},
                         {"OPENAI_TEMPERATURE", "2"},
                         {"OPENAI_MAX_TOKENS", "7"}});
  CHECK(c.ollama.base_url == "http://ollama:11434");
  CHECK(c.ollama.model == "qwen3:8b");
  CHECK(c.ollama.timeout == 60.0);
  CHECK(c.ollama.max_retries == 5);
  CHECK(c.ollama.temperature == 1.0);
  CHECK(c.ollama.max_tokens == 100);
  CHECK(c.ollama.num_ctx == 8192);
  CHECK(c.ollama.keep_alive == "1h30m");
  CHECK(c.ollama.api_key == "ok");
  CHECK(c.openai.api_key == "sk-x");
  CHECK(c.openai.base_url == "https://openrouter.ai/api/v1");
  CHECK(c.openai.model == "gpt-4.1");
  CHECK(c.openai.timeout == 9.0);
  CHECK(c.openai.max_retries == 1);
  CHECK(c.openai.temperature == 2.0);
  CHECK(c.openai.max_tokens == 7);
}

TEST_CASE("env: empty and blank values mean unset; surrounding spaces are trimmed", "[env]") {
  AppConfig c = load_ok({{"VLLM_TIMEOUT", ""}, {"OLLAMA_MODEL", "   "}, {"VLLM_MAX_TOKENS", " 64 "}});
  CHECK(c.vllm.timeout == 120.0);
  CHECK(c.ollama.model == "llama3.1");
  CHECK(c.vllm.max_tokens == 64);
}

TEST_CASE("env: bad values name the variable, the value and what is allowed", "[env]") {
  using Row = std::pair<std::string, std::string>;
  auto [variable, value] = GENERATE(Row{"VLLM_TIMEOUT", "abc"}, Row{"VLLM_TIMEOUT", "-1"},
                                    Row{"VLLM_TIMEOUT", "nan"}, Row{"VLLM_TIMEOUT", "0"},
                                    Row{"VLLM_TIMEOUT", "inf"}, Row{"VLLM_MAX_RETRIES", "1.5"},
                                    Row{"VLLM_MAX_RETRIES", "-2"}, Row{"VLLM_BASE_URL", "localhost:8000"},
                                    Row{"VLLM_TEMPERATURE", "3"}, Row{"VLLM_MAX_TOKENS", "0"},
                                    Row{"VLLM_RETRY_BACKOFF_MULTIPLIER", "0.5"},
                                    Row{"VLLM_RETRY_BASE_DELAY", "-1"}, Row{"VLLM_CONNECT_TIMEOUT", "x"},
                                    Row{"VLLM_EMBEDDING_DIMENSIONS", "-5"}, Row{"OLLAMA_NUM_CTX", "big"},
                                    Row{"OLLAMA_KEEP_ALIVE", "5 minutes"}, Row{"OLLAMA_HOST", "ftp://x"},
                                    Row{"OLLAMA_BASE_URL", "ollama:11434"}, Row{"OPENAI_TIMEOUT", "1e999"},
                                    Row{"OPENAI_MAX_TOKENS", "99999999999"}, Row{"OLLAMA_TEMPERATURE", "-0.1"},
                                    Row{"VLLM_VALIDATE_SCHEMA", "maybe"}, Row{"OLLAMA_SCHEMA_RETRY", "2"});
  auto problems = load_bad({{variable, value}});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].variable == variable);
  const std::string m = problems[0].message();
  CHECK(m.rfind(variable + "='" + value + "': must be ", 0) == 0);
}

TEST_CASE("env: the issue's example message", "[env]") {
  auto problems = load_bad({{"VLLM_TIMEOUT", "abc"}});
  CHECK(problems[0].message() == "VLLM_TIMEOUT='abc': must be a number of seconds > 0");
}

TEST_CASE("env: every bad variable is reported at once, in catalogue order", "[env]") {
  auto problems = load_bad({{"VLLM_TIMEOUT", "abc"},
                            {"VLLM_MAX_RETRIES", "1.5"},
                            {"OPENAI_TEMPERATURE", "3"},
                            {"VLLM_MODEL", "fine"}});
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].variable == "VLLM_TIMEOUT");
  CHECK(problems[1].variable == "VLLM_MAX_RETRIES");
  CHECK(problems[2].variable == "OPENAI_TEMPERATURE");
}

TEST_CASE("env: an API key's value never appears in a problem", "[env]") {
  const std::string secret = "sk-secret\nline";
  auto problems = load_bad({{"OPENAI_API_KEY", secret}, {"VLLM_API_KEY", "sk-a\x01"}});
  REQUIRE(problems.size() == 2);
  for (const auto& p : problems) {
    CHECK(p.value == "<redacted>");
    CHECK(p.message().find("sk-") == std::string::npos);
  }
}

TEST_CASE("env: retry delays are checked against each other", "[env]") {
  auto problems = load_bad({{"VLLM_RETRY_BASE_DELAY", "5"}, {"VLLM_RETRY_MAX_DELAY", "1"}});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].variable == "VLLM_RETRY_MAX_DELAY");
  CHECK(problems[0].message() == "VLLM_RETRY_MAX_DELAY='1': must be a number of seconds >= VLLM_RETRY_BASE_DELAY (5)");
  problems = load_bad({{"VLLM_RETRY_BASE_DELAY", "60"}});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].variable == "VLLM_RETRY_BASE_DELAY");
  CHECK(problems[0].allowed.find("VLLM_RETRY_MAX_DELAY (30, the default)") != std::string::npos);
}

TEST_CASE("env: control characters in a value are shown escaped", "[env]") {
  auto problems = load_bad({{"VLLM_TIMEOUT", "1\x07"}});
  CHECK(problems[0].value == "'1\\x07'");
}

TEST_CASE("env: OLLAMA_HOST as Ollama reads it", "[env]") {
  CHECK(ollama_host_to_base_url("0.0.0.0") == "http://0.0.0.0:11434");
  CHECK(ollama_host_to_base_url("ollama:11500") == "http://ollama:11500");
  CHECK(ollama_host_to_base_url("ollama") == "http://ollama:11434");
  CHECK(ollama_host_to_base_url(":11434") == "http://127.0.0.1:11434");
  CHECK(ollama_host_to_base_url("::1") == "http://[::1]:11434");
  CHECK(ollama_host_to_base_url("[::1]:9000") == "http://[::1]:9000");
  CHECK(ollama_host_to_base_url("\"0.0.0.0:11434\"") == "http://0.0.0.0:11434");
  CHECK(ollama_host_to_base_url("https://ollama.example.com") == "https://ollama.example.com");
  CHECK(ollama_host_to_base_url("HTTP://h:1") == "http://h:1");
  CHECK(ollama_host_to_base_url("h:1/prefix") == "http://h:1/prefix");
  CHECK_FALSE(ollama_host_to_base_url("h:99999"));
  CHECK_FALSE(ollama_host_to_base_url("h:port"));
  CHECK_FALSE(ollama_host_to_base_url("ftp://h"));
  CHECK_FALSE(ollama_host_to_base_url("a b"));
  CHECK_FALSE(ollama_host_to_base_url(""));

  CHECK(load_ok({{"OLLAMA_HOST", "0.0.0.0"}}).ollama.base_url == "http://0.0.0.0:11434");
  // OLLAMA_BASE_URL wins, and a then-unused OLLAMA_HOST is not checked.
  CHECK(load_ok({{"OLLAMA_HOST", "h:bad"}, {"OLLAMA_BASE_URL", "http://b:1"}}).ollama.base_url ==
        "http://b:1");
}

TEST_CASE("env: keep-alive forms", "[env]") {
  for (const char* ok : {"5m", "24h", "300", "-1", "0", "1h30m", "1.5h", "10s", "-1s", "500ms"})
    CHECK(load_ok({{"OLLAMA_KEEP_ALIVE", ok}}).ollama.keep_alive == ok);
  for (const char* bad : {"5 m", "m", "forever", "1d", "1.", "--1"}) {
    INFO(bad);
    CHECK_FALSE(load_app_config({{"OLLAMA_KEEP_ALIVE", bad}}).ok());
  }
}

TEST_CASE("env: provider selection", "[env]") {
  CHECK(load_ok({{"AI_PROVIDER", "vllm"}}).llm_provider == "vllm");
  CHECK(load_ok({{"AI_PROVIDER", "vllm"}}).embedding_provider == "vllm");
  AppConfig c = load_ok({{"AI_PROVIDER", "vllm"}, {"LLM_PROVIDER", " OpenAI "}});
  CHECK(c.llm_provider == "openai");
  CHECK(c.embedding_provider == "openai");
  c = load_ok({{"LLM_PROVIDER", "vllm"}, {"EMBEDDING_PROVIDER", "Ollama"}});
  CHECK(c.llm_provider == "vllm");
  CHECK(c.embedding_provider == "ollama");
  // Names are not checked here: a registered provider may use any name.
  CHECK(load_ok({{"LLM_PROVIDER", "openrouter"}}).llm_provider == "openrouter");
}

TEST_CASE("env: the catalogue's defaults are the configs' defaults", "[env]") {
  Environment env;
  for (const auto& v : env_variables())
    if (!v.default_value.empty()) env[std::string(v.name)] = std::string(v.default_value);
  env.erase("OLLAMA_BASE_URL");  // so that OLLAMA_HOST's default is the one used
  AppConfig c = load_ok(env);
  CHECK(c.ollama.base_url == "http://127.0.0.1:11434");  // OLLAMA_HOST's default, as Ollama writes it
  c.ollama.base_url = OllamaConfig{}.base_url;
  AppConfig d;
  CHECK(c.vllm.base_url == d.vllm.base_url);
  CHECK(c.vllm.timeout == d.vllm.timeout);
  CHECK(c.vllm.connect_timeout == d.vllm.connect_timeout);
  CHECK(c.vllm.max_retries == d.vllm.max_retries);
  CHECK(c.vllm.retry_base_delay == d.vllm.retry_base_delay);
  CHECK(c.vllm.retry_max_delay == d.vllm.retry_max_delay);
  CHECK(c.vllm.retry_backoff_multiplier == d.vllm.retry_backoff_multiplier);
  CHECK(c.vllm.temperature == d.vllm.temperature);
  CHECK(c.vllm.max_tokens == d.vllm.max_tokens);
  CHECK(c.vllm.embedding_dimensions == d.vllm.embedding_dimensions);
  CHECK(c.ollama.model == d.ollama.model);
  CHECK(c.ollama.timeout == d.ollama.timeout);
  CHECK(c.ollama.max_retries == d.ollama.max_retries);
  CHECK(c.ollama.max_tokens == d.ollama.max_tokens);
  CHECK(c.ollama.num_ctx == d.ollama.num_ctx);
  CHECK(c.openai.base_url == d.openai.base_url);
  CHECK(c.openai.model == d.openai.model);
  CHECK(c.openai.timeout == d.openai.timeout);
  CHECK(c.openai.max_tokens == d.openai.max_tokens);
  CHECK(c.llm_provider == d.llm_provider);
  CHECK(c.vllm.validate_schema == d.vllm.validate_schema);
  CHECK(c.vllm.schema_retry == d.vllm.schema_retry);
  CHECK(c.ollama.validate_schema == d.ollama.validate_schema);
  CHECK(c.openai.schema_retry == d.openai.schema_retry);
}

TEST_CASE("env: booleans take true/false, 1/0, yes/no, on/off in any case", "[env]") {
  for (const char* yes : {"true", "TRUE", "1", "yes", "On"}) {
    AppConfig c = load_ok({{"VLLM_VALIDATE_SCHEMA", yes}, {"OPENAI_SCHEMA_RETRY", yes}});
    CHECK(c.vllm.validate_schema);
    CHECK(c.openai.schema_retry);
  }
  for (const char* no : {"false", "False", "0", "no", "OFF"}) {
    AppConfig c = load_ok({{"VLLM_VALIDATE_SCHEMA", no}, {"OLLAMA_SCHEMA_RETRY", no}});
    CHECK_FALSE(c.vllm.validate_schema);
    CHECK(c.vllm.schema_retry);  // untouched
    CHECK_FALSE(c.ollama.schema_retry);
  }
  auto problems = load_bad({{"OPENAI_VALIDATE_SCHEMA", "yep"}});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message() == "OPENAI_VALIDATE_SCHEMA='yep': must be true or false (also 1/0, yes/no, on/off)");
}

TEST_CASE("env: route_provider trims, ignores case, defaults to ollama", "[env]") {
  CHECK(route_provider("vllm").provider == "vllm");
  CHECK(route_provider(" VLLM ").provider == "vllm");
  CHECK(route_provider(" Ollama ").provider == "ollama");
  CHECK(route_provider("OpenAI").provider == "openai");
  ProviderRoute r = route_provider("");
  CHECK((r.provider == "ollama" && r.known && r.requested.empty()));
  r = route_provider("  ");
  CHECK((r.provider == "ollama" && r.known));
  r = route_provider("Bedrock");
  CHECK((r.provider == "ollama" && !r.known && r.requested == "bedrock"));
  r = route_provider("OpenRouter", {"ollama", "vllm", "openai", "openrouter"});
  CHECK((r.provider == "openrouter" && r.known));
}
