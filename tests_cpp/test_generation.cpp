// The generation surface without a network: the provider table, chat/completion request
// bodies for every provider and option (compared as exact JSON text), the refusals of
// check_generate_call, and parse_generate_response for both dialects.
#include <catch2/catch.hpp>

#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/generation.hpp"
#include "llmbridge/llm/provider_table.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;

namespace {

const char* kMessages = R"([{"role":"user","content":"hi"}])";
const char* kTools =
    R"([{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])";
const char* kSchema = R"({"type":"object","properties":{"a":{"type":"integer"}}})";

std::optional<std::string> header(const http::Request& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value;
  return std::nullopt;
}

GenerateCall chat(std::string messages = kMessages) {
  GenerateCall c;
  c.op = Operation::kChat;
  c.messages_json = std::move(messages);
  return c;
}

GenerateCall completion(std::string prompt = "Once upon") {
  GenerateCall c;
  c.op = Operation::kCompletion;
  c.prompt = std::move(prompt);
  return c;
}

// The request for `call` with a default config of the provider and model "m".
http::Request build(std::string_view provider, const GenerateCall& call, std::string_view model = "m",
                    int num_ctx = 0, std::string_view keep_alive = "") {
  const ProviderSpec& spec = provider_spec(provider);
  config::VLLMConfig vllm;
  config::OpenAIConfig openai;
  config::OllamaConfig ollama;
  const config::ProviderConfig& cfg = provider == "ollama"   ? static_cast<const config::ProviderConfig&>(ollama)
                                      : provider == "openai" ? static_cast<const config::ProviderConfig&>(openai)
                                                             : static_cast<const config::ProviderConfig&>(vllm);
  RequestContext ctx{cfg, model, num_ctx, keep_alive, "req-1"};
  return build_generate_request(spec, ctx, call);
}

std::string body(std::string_view provider, const GenerateCall& call, std::string_view model = "m") {
  return build(provider, call, model).body;
}

// check_generate_call's message, or "" when the call is fine.
std::string refusal(std::string_view provider, const GenerateCall& call) {
  auto m = check_generate_call(provider_spec(provider), call);
  return m ? *m : std::string();
}

http::Response reply(std::string body, long status = 200) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.elapsed_ms = 3;
  return r;
}

ChatResult parse(std::string_view provider, Operation op, const std::string& body, bool want_json = false,
                 long status = 200) {
  return parse_generate_response(provider_spec(provider), op, reply(body, status), "m", want_json);
}

// An OpenAI chat completion whose message is `message_json`.
std::string openai_chat(std::string_view message_json, std::string_view finish = "stop") {
  return R"({"id":"c1","object":"chat.completion","model":"served","choices":[{"index":0,"message":)" +
         std::string(message_json) + R"(,"finish_reason":")" + std::string(finish) +
         R"("}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}})";
}

}  // namespace

// ---------------------------------------------------------------- provider table

TEST_CASE("provider table: names, dialects and paths per operation", "[generation][providers]") {
  std::size_t n = 0;
  const ProviderSpec* t = provider_table(n);
  REQUIRE(n == 3);
  CHECK(t[0].name == "vllm");
  CHECK(t[1].name == "openai");
  CHECK(t[2].name == "ollama");
  CHECK(provider_names() == "vllm, openai or ollama");

  for (std::string_view name : {"vllm", "openai"}) {
    const ProviderSpec& s = provider_spec(name);
    INFO(name);
    CHECK(s.name == name);
    CHECK(s.dialect == Dialect::kOpenAI);
    CHECK(s.stream_format == StreamFormat::kSse);
    CHECK(s.model_optional);
    CHECK(s.path(Operation::kChat) == "/v1/chat/completions");
    CHECK(s.path(Operation::kCompletion) == "/v1/completions");
    CHECK(s.path(Operation::kEmbeddings) == "/v1/embeddings");
    CHECK(s.path(Operation::kModels) == "/v1/models");
    CHECK(s.path(Operation::kHealth) == "/v1/models");
  }
  const ProviderSpec& o = provider_spec("ollama");
  CHECK(o.dialect == Dialect::kOllama);
  CHECK(o.stream_format == StreamFormat::kNdjson);
  CHECK_FALSE(o.model_optional);
  CHECK(o.path(Operation::kChat) == "/api/chat");
  CHECK(o.path(Operation::kCompletion) == "/api/generate");
  CHECK(o.path(Operation::kEmbeddings) == "/api/embed");
  CHECK(o.path(Operation::kModels) == "/api/tags");
  CHECK(o.path(Operation::kHealth) == "/api/tags");

  CHECK(find_provider("vllm") == &t[0]);
  CHECK(find_provider("ollama") == &t[2]);
  CHECK(find_provider("VLLM") == nullptr);  // names are exact
  CHECK(find_provider("") == nullptr);
}

TEST_CASE("provider table: an unknown name throws invalid_argument naming the known ones", "[generation][providers]") {
  try {
    provider_spec("x");
    FAIL("no throw");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == "unknown provider 'x' (expected vllm, openai or ollama)");
  }
  // A long (or hostile) name is quoted as a short excerpt, cut on a code point boundary.
  const std::string long_name = std::string(100, 'a') + "é";
  try {
    provider_spec(long_name);
    FAIL("no throw");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find(std::string(100, 'a')) == std::string::npos);
    CHECK(what.find("...") != std::string::npos);
    CHECK(what.size() < 120);
    CHECK(what.find("(expected vllm, openai or ollama)") != std::string::npos);
  }
  CHECK_THROWS_AS(provider_spec(""), std::invalid_argument);
}

// ---------------------------------------------------------------- request bodies

TEST_CASE("generate request: minimal chat and completion bodies, defaults from the config",
          "[generation][request]") {
  CHECK(body("vllm", chat()) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4096,"temperature":0.0})");
  CHECK(body("openai", chat()) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4096,"temperature":0.0})");
  CHECK(body("vllm", completion()) == R"({"model":"m","prompt":"Once upon","max_tokens":4096,"temperature":0.0})");
  CHECK(body("ollama", chat()) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,)"
        R"("options":{"temperature":0.0,"num_predict":4096}})");
  CHECK(body("ollama", completion()) ==
        R"({"model":"m","prompt":"Once upon","stream":false,"options":{"temperature":0.0,"num_predict":4096}})");

  // vLLM may leave the model out (it uses its served model); Ollama always names it.
  CHECK(body("vllm", chat(), "") ==
        R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4096,"temperature":0.0})");

  // Messages pass through untouched apart from surrounding white space.
  CHECK(body("vllm", chat("  \n[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]\n")) ==
        R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"max_tokens":4096,"temperature":0.0})");
  // The prompt is a JSON string, escaped.
  CHECK(body("vllm", completion("a \"q\"\n\\")) ==
        R"({"model":"m","prompt":"a \"q\"\n\\","max_tokens":4096,"temperature":0.0})");
}

TEST_CASE("generate request: URL, headers and timeout", "[generation][request]") {
  http::Request r = build("vllm", chat());
  CHECK(r.method == "POST");
  CHECK(r.url == "http://localhost:8000/v1/chat/completions");
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "Accept") == "application/json");
  CHECK(header(r, "X-Request-Id") == "req-1");
  CHECK_FALSE(header(r, "Authorization"));
  CHECK(r.timeout_ms == 120000);
  CHECK(build("vllm", completion()).url == "http://localhost:8000/v1/completions");
  CHECK(build("openai", chat()).url == "https://api.openai.com/v1/chat/completions");
  CHECK(build("ollama", chat()).url == "http://localhost:11434/api/chat");
  CHECK(build("ollama", completion()).url == "http://localhost:11434/api/generate");

  GenerateCall c = chat();
  c.options.timeout_s = 2.5;
  CHECK(build("vllm", c).timeout_ms == 2500);
  CHECK(build("ollama", c).timeout_ms == 2500);

  // Streams ask for their media type.
  c.stream = true;
  CHECK(header(build("vllm", c), "Accept") == "text/event-stream");
  CHECK(header(build("openai", c), "Accept") == "text/event-stream");
  CHECK(header(build("ollama", c), "Accept") == "application/x-ndjson");
}

TEST_CASE("generate request: every option, OpenAI-compatible chat", "[generation][request]") {
  for (std::string_view provider : {"vllm", "openai"}) {
    INFO(provider);
    GenerateCall c = chat();
    c.options.max_tokens = 100;
    c.options.temperature = 0.5;
    c.options.top_p = 0.9;
    c.options.stop = {"END"};
    c.options.seed = 42;
    c.options.json_schema = std::string("  ") + kSchema + "\n";
    c.options.tools = kTools;
    c.options.tool_choice = R"("auto")";
    CHECK(body(provider, c) ==
          std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":100,)"
                      R"("temperature":0.5,"top_p":0.9,"stop":"END","seed":42,)"
                      R"("response_format":{"type":"json_schema","json_schema":{"name":"response","schema":)") +
              kSchema + R"(,"strict":true}},"tools":)" + kTools + R"(,"tool_choice":"auto"})");

    // Several stop strings are a list; a named tool choice passes through as an object.
    c.options.stop = {"a", "b\"c"};
    c.options.json_schema.clear();
    c.options.tool_choice = R"({"type":"function","function":{"name":"weather"}})";
    c.options.seed = -7;
    CHECK(body(provider, c) ==
          std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":100,)"
                      R"("temperature":0.5,"top_p":0.9,"stop":["a","b\"c"],"seed":-7,"tools":)") +
              kTools + R"(,"tool_choice":{"type":"function","function":{"name":"weather"}}})");
  }
}

TEST_CASE("generate request: every option, OpenAI-compatible completion", "[generation][request]") {
  GenerateCall c = completion();
  c.options.max_tokens = 16;
  c.options.temperature = 1.25;
  c.options.top_p = 0.0;
  c.options.stop = {"\n\n"};
  c.options.seed = 0;
  c.options.json_schema = kSchema;
  CHECK(body("vllm", c) ==
        std::string(R"({"model":"m","prompt":"Once upon","max_tokens":16,"temperature":1.25,"top_p":0.0,)"
                    R"("stop":"\n\n","seed":0,"response_format":{"type":"json_schema","json_schema":{"name":"response","schema":)") +
            kSchema + R"(,"strict":true}}})");
}

TEST_CASE("generate request: response_format raw (OpenAI) and translated (Ollama)", "[generation][request]") {
  GenerateCall c = chat();
  c.options.response_format = R"( {"type": "json_object"} )";
  CHECK(body("vllm", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4096,"temperature":0.0,"response_format":{"type": "json_object"}})");
  CHECK(body("ollama", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,"format":"json",)"
        R"("options":{"temperature":0.0,"num_predict":4096}})");

  c.options.response_format = R"({"type":"text"})";  // Ollama's default: no format at all
  CHECK(body("ollama", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,)"
        R"("options":{"temperature":0.0,"num_predict":4096}})");

  c.options.response_format =
      R"({"type":"json_schema","json_schema":{"name":"x","schema":{ "type" : "object" },"strict":true}})";
  CHECK(body("ollama", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,"format":{"type":"object"},)"
        R"("options":{"temperature":0.0,"num_predict":4096}})");
  CHECK(body("openai", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4096,"temperature":0.0,)"
        R"("response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{ "type" : "object" },"strict":true}}})");
}

TEST_CASE("generate request: every option, Ollama chat and generate", "[generation][request]") {
  GenerateCall c = chat();
  c.options.max_tokens = 100;
  c.options.temperature = 0.5;
  c.options.top_p = 0.9;
  c.options.stop = {"END"};  // Ollama's stop is always a list
  c.options.seed = 42;
  c.options.json_schema = kSchema;  // the schema object itself, raw: never a string
  c.options.tools = kTools;
  const std::string expected =
      std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,"format":)") + kSchema +
      R"(,"options":{"temperature":0.5,"top_p":0.9,"seed":42,"stop":["END"],"num_predict":100,"num_ctx":8192},"tools":)" +
      kTools + R"(,"keep_alive":"5m"})";
  CHECK(build("ollama", c, "m", 8192, "5m").body == expected);

  // keep_alive as a number of seconds when numeric.
  CHECK(build("ollama", chat(), "m", 0, "-1").body ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,)"
        R"("options":{"temperature":0.0,"num_predict":4096},"keep_alive":-1})");

  GenerateCall g = completion();
  g.options.stop = {"x", "y"};
  g.options.max_tokens = 5;
  g.options.json_schema = kSchema;
  CHECK(body("ollama", g) ==
        std::string(R"({"model":"m","prompt":"Once upon","stream":false,"format":)") + kSchema +
            R"(,"options":{"temperature":0.0,"stop":["x","y"],"num_predict":5}})");
}

TEST_CASE("generate request: extra_body is merged last and overrides keys", "[generation][request]") {
  GenerateCall c = chat();
  c.options.top_p = 0.5;
  c.options.extra_body = R"({"temperature": 1.5, "top_k": 20, "chat_template_kwargs": {"enable_thinking": false}})";
  // Overridden keys leave their place; extra keys come last, minified.
  CHECK(body("vllm", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4096,"top_p":0.5,)"
        R"("temperature":1.5,"top_k":20,"chat_template_kwargs":{"enable_thinking":false}})");

  c.options.extra_body = R"({"model":"other","max_tokens":7,"stop":["z"]})";
  c.options.stop = {"a"};
  CHECK(body("vllm", c) ==
        R"({"messages":[{"role":"user","content":"hi"}],"temperature":0.0,"top_p":0.5,)"
        R"("model":"other","max_tokens":7,"stop":["z"]})");

  // Ollama: a whole key is replaced (options included).
  GenerateCall o = chat();
  o.options.extra_body = R"({"options":{"num_ctx":4},"think":true})";
  CHECK(body("ollama", o) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_ctx":4},"think":true})");

  // An empty object changes nothing.
  GenerateCall e = chat();
  e.options.extra_body = "{}";
  CHECK(body("vllm", e) == body("vllm", chat()));
}

TEST_CASE("generate request: stream flags", "[generation][request]") {
  GenerateCall c = chat();
  c.stream = true;
  CHECK(body("vllm", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4096,"temperature":0.0,)"
        R"("stream":true,"stream_options":{"include_usage":true}})");
  CHECK(body("ollama", c) ==
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,)"
        R"("options":{"temperature":0.0,"num_predict":4096}})");
  GenerateCall g = completion();
  g.stream = true;
  CHECK(body("openai", g) ==
        R"({"model":"m","prompt":"Once upon","max_tokens":4096,"temperature":0.0,)"
        R"("stream":true,"stream_options":{"include_usage":true}})");
  CHECK(body("ollama", g) ==
        R"({"model":"m","prompt":"Once upon","stream":true,"options":{"temperature":0.0,"num_predict":4096}})");
  // Not streaming: no stream keys at all for the OpenAI dialect (stream_options with
  // stream false is a 400 on vLLM).
  CHECK(body("vllm", chat()).find("stream") == std::string::npos);
}

// ---------------------------------------------------------------- refusals

TEST_CASE("check_generate_call: each refusal names the option", "[generation][check]") {
  CHECK(refusal("vllm", chat()).empty());
  CHECK(refusal("ollama", completion()).empty());

  GenerateCall c = chat();
  c.options.tool_choice = R"("auto")";
  CHECK(refusal("vllm", c).empty());
  CHECK(refusal("ollama", c) == "tool_choice is not supported by ollama (its API has no such field)");
  CHECK_THROWS_WITH(build("ollama", c), "tool_choice is not supported by ollama (its API has no such field)");

  GenerateCall t = completion();
  t.options.tools = kTools;
  CHECK(refusal("vllm", t) == "tools are not supported by complete() (/v1/completions takes no tools); use chat()");
  CHECK(refusal("ollama", t) == "tools are not supported by complete() (/api/generate takes no tools); use chat()");
  GenerateCall tc = completion();
  tc.options.tool_choice = R"("none")";
  CHECK(refusal("openai", tc) == "tool_choice is not supported by complete(); use chat()");

  GenerateCall both = chat();
  both.options.json_schema = kSchema;
  both.options.response_format = R"({"type":"json_object"})";
  CHECK(refusal("vllm", both) == "give json_schema or response_format, not both");
  CHECK(refusal("ollama", both) == "give json_schema or response_format, not both");

  struct Bad {
    std::string GenerateOptions::*field;
    const char* text;
    const char* message;
  };
  for (const Bad& b : {
           Bad{&GenerateOptions::json_schema, "[1]", "json_schema must be a JSON object (a JSON Schema)"},
           Bad{&GenerateOptions::json_schema, "{\"type\":", "json_schema must be a JSON object (a JSON Schema)"},
           Bad{&GenerateOptions::response_format, "\"json\"", "response_format must be a JSON object"},
           Bad{&GenerateOptions::tools, "{\"type\":\"function\"}", "tools must be a JSON array of tool definitions"},
           Bad{&GenerateOptions::tools, "[{]", "tools must be a JSON array of tool definitions"},
           Bad{&GenerateOptions::tool_choice, "auto", "tool_choice is not valid JSON"},
           Bad{&GenerateOptions::extra_body, "[]", "extra_body must be a JSON object"},
           Bad{&GenerateOptions::extra_body, "{\"a\":1", "extra_body must be a JSON object"},
       }) {
    GenerateCall x = chat();
    x.options.*(b.field) = b.text;
    INFO(b.text);
    CHECK(refusal("vllm", x) == b.message);
    CHECK_THROWS_AS(build("vllm", x), std::invalid_argument);
  }
  for (const char* m : {"", "{}", "[", "not json", "[1,]"}) {
    INFO(m);
    CHECK(refusal("vllm", chat(m)) == "messages must be a JSON array of messages");
    CHECK(refusal("ollama", chat(m)) == "messages must be a JSON array of messages");
  }

  GenerateCall unexpressible = chat();
  unexpressible.options.response_format = R"({"type":"json_schema"})";  // no schema
  CHECK(refusal("vllm", unexpressible).empty());
  CHECK(refusal("ollama", unexpressible) ==
        "response_format cannot be expressed for ollama (it takes type text, json_object, or json_schema with a schema)");
  unexpressible.options.response_format = R"({"type":"structural_tag"})";
  CHECK(refusal("ollama", unexpressible).rfind("response_format cannot be expressed for ollama", 0) == 0);

  GenerateCall n = chat();
  for (int bad : {0, -1}) {
    n.options.max_tokens = bad;
    CHECK(refusal("vllm", n) == "max_tokens must be >= 1");
  }
  n.options.max_tokens = 1;
  CHECK(refusal("vllm", n).empty());
  for (double bad : {1.0001, -0.1, std::numeric_limits<double>::quiet_NaN()}) {
    n.options.top_p = bad;
    CHECK(refusal("vllm", n) == "top_p must be between 0 and 1");
  }
  n.options.top_p = 1.0;
  CHECK(refusal("vllm", n).empty());
  for (double bad : {-0.5, 100.5, std::numeric_limits<double>::quiet_NaN()}) {
    n.options.temperature = bad;
    CHECK(refusal("vllm", n) == "temperature must be between 0 and 100");
  }
  n.options.temperature = 100.0;
  CHECK(refusal("vllm", n).empty());
  n.options.temperature = 0.0;
  n.options.timeout_s = -1;
  CHECK(refusal("vllm", n) == "timeout must be >= 0");
  n.options.timeout_s = 0;
  n.options.stream_idle_timeout_s = 0;
  CHECK(refusal("vllm", n) == "stream_idle_timeout must be > 0");

  GenerateCall embed = chat();
  embed.op = Operation::kEmbeddings;
  CHECK(refusal("vllm", embed) == "only chat and completion calls are generation calls");
}

// ---------------------------------------------------------------- responses

TEST_CASE("generate response: OpenAI chat content as a string, as parts, and null", "[generation][response]") {
  ChatResult r = parse("vllm", Operation::kChat, openai_chat(R"({"role":"assistant","content":"Hello there"})"));
  CHECK(r.success);
  CHECK(r.error.empty());
  CHECK_FALSE(r.retryable);
  CHECK(r.text == "Hello there");
  CHECK(r.raw_response == "Hello there");
  CHECK(r.reasoning.empty());
  CHECK(r.tool_calls.empty());
  CHECK(r.data_json.empty());  // no JSON asked for
  CHECK(r.model == "served");
  CHECK(r.provider == "vllm");
  CHECK(r.finish_reason == "stop");
  CHECK_FALSE(r.truncated);
  CHECK(r.prompt_tokens == 9);
  CHECK(r.completion_tokens == 4);
  CHECK(r.status_code == 200);

  ChatResult parts = parse("openai", Operation::kChat,
                           openai_chat(R"({"content":[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]})"));
  CHECK(parts.success);
  CHECK(parts.text == "Hello");

  // An empty answer the server says it finished (a stop string at the first token) is
  // an answer, as the stream of it is; without a finish reason it is not.
  ChatResult null = parse("vllm", Operation::kChat, openai_chat(R"({"role":"assistant","content":null})"));
  CHECK(null.success);
  CHECK(null.text.empty());
  CHECK(null.finish_reason == "stop");

  for (const char* b : {R"({"choices":[]})", R"({"choices":[{"message":{"content":"  "}}]})", R"({"model":"x"})",
                        R"({"choices":[{"message":{"content":null,"reasoning":"only thoughts"}}]})"}) {
    INFO(b);
    ChatResult e = parse("vllm", Operation::kChat, b);
    CHECK_FALSE(e.success);
    CHECK(e.error == "empty_model_response");
    CHECK(e.raw_response == b);
  }
}

TEST_CASE("generate response: reasoning, then reasoning_content", "[generation][response]") {
  ChatResult r = parse("vllm", Operation::kChat,
                       openai_chat(R"({"content":"42","reasoning":"new field","reasoning_content":"old field"})"));
  CHECK(r.reasoning == "new field");
  CHECK(r.text == "42");
  ChatResult old = parse("vllm", Operation::kChat, openai_chat(R"({"content":"42","reasoning_content":"old field"})"));
  CHECK(old.reasoning == "old field");
  ChatResult empty_new =
      parse("vllm", Operation::kChat, openai_chat(R"({"content":"42","reasoning":"","reasoning_content":"old"})"));
  CHECK(empty_new.reasoning == "old");
  ChatResult null_new =
      parse("vllm", Operation::kChat, openai_chat(R"({"content":"42","reasoning":null,"reasoning_content":"old"})"));
  CHECK(null_new.reasoning == "old");
}

TEST_CASE("generate response: a leading think block becomes the reasoning", "[generation][response]") {
  ChatResult r =
      parse("vllm", Operation::kChat, openai_chat(R"({"content":"  <think>\n let me see \n</think>\n\nThe answer."})"));
  CHECK(r.success);
  CHECK(r.reasoning == "let me see");
  CHECK(r.text.find("<think>") == std::string::npos);
  CHECK(r.text.find("The answer.") != std::string::npos);

  // The server's own reasoning wins; the text is then left as it came.
  ChatResult split = parse("vllm", Operation::kChat,
                           openai_chat(R"({"content":"<think>a</think>b","reasoning":"server"})"));
  CHECK(split.reasoning == "server");
  CHECK(split.text == "<think>a</think>b");

  // An unclosed block (cut off) is not split.
  ChatResult open = parse("vllm", Operation::kChat, openai_chat(R"({"content":"<think>still thinking"})", "length"));
  CHECK(open.reasoning.empty());
  CHECK(open.text == "<think>still thinking");
  CHECK(open.truncated);

  // Only a think block and nothing after it: empty.
  ChatResult only = parse("vllm", Operation::kChat, openai_chat(R"({"content":"<think>x</think>  "})"));
  CHECK(only.success);
  CHECK(only.reasoning == "x");
  CHECK(only.text == "  ");

  // Ollama: message.thinking, else a think block too.
  ChatResult ol = parse("ollama", Operation::kChat,
                        R"({"model":"q","message":{"role":"assistant","content":"<think>hm</think>ok"},"done":true})");
  CHECK(ol.reasoning == "hm");
  CHECK(ol.text == "ok");
}

TEST_CASE("generate response: OpenAI tool calls", "[generation][response][tools]") {
  const std::string message = R"({"role":"assistant","content":null,"tool_calls":[)"
                              R"({"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\": \"Paris\"}"}},)"
                              R"({"id":"call_2","type":"function","function":{"name":"obj","arguments":{"a":[1, 2]}}},)"
                              R"({"id":"call_3","type":"function","function":{"name":"broken","arguments":"{\"city\": \"Par"}},)"
                              R"({"id":"call_4","type":"function","function":{"name":"noargs","arguments":""}},)"
                              R"({"id":"call_5","type":"function","function":{"name":"prose","arguments":"no json here"}}]})";
  ChatResult r = parse("vllm", Operation::kChat, openai_chat(message, "tool_calls"));
  REQUIRE(r.success);  // tool calls alone are an answer
  CHECK(r.text.empty());
  CHECK(r.finish_reason == "tool_calls");
  REQUIRE(r.tool_calls.size() == 5);

  const ToolCall& a = r.tool_calls[0];
  CHECK(a.index == 0);
  CHECK(a.id == "call_1");
  CHECK(a.name == "weather");
  CHECK(a.arguments_text == R"({"city": "Paris"})");
  CHECK(a.arguments_json == R"({"city": "Paris"})");
  CHECK_FALSE(a.arguments_repaired);

  const ToolCall& b = r.tool_calls[1];  // a gateway that sends an object
  CHECK(b.index == 1);
  CHECK(b.arguments_text == R"({"a":[1,2]})");
  CHECK(b.arguments_json == R"({"a":[1,2]})");

  const ToolCall& c = r.tool_calls[2];  // cut off: closed by the repairer
  CHECK(c.arguments_text == R"({"city": "Par)");
  CHECK(c.arguments_json == R"({"city":"Par"})");  // the repairer writes compact JSON
  CHECK(c.arguments_repaired);

  const ToolCall& d = r.tool_calls[3];  // a tool without parameters
  CHECK(d.arguments_text.empty());
  CHECK(d.arguments_json == "{}");
  CHECK_FALSE(d.arguments_repaired);

  const ToolCall& e = r.tool_calls[4];  // nothing to find
  CHECK(e.arguments_text == "no json here");
  CHECK(e.arguments_json.empty());

  bool repaired = true;
  CHECK(repair_arguments("  ", repaired) == "{}");
  CHECK_FALSE(repaired);
  CHECK(repair_arguments("{'a': 1,}", repaired) == R"({"a":1})");
  CHECK(repaired);
}

TEST_CASE("generate response: finish_reason length is truncation", "[generation][response]") {
  ChatResult r = parse("vllm", Operation::kChat, openai_chat(R"({"content":"Once upon a"})", "length"));
  CHECK(r.success);
  CHECK(r.truncated);
  CHECK(r.finish_reason == "length");
  ChatResult o = parse("ollama", Operation::kCompletion, R"({"response":"abc","done":true,"done_reason":"length"})");
  CHECK(o.success);
  CHECK(o.truncated);
}

TEST_CASE("generate response: want_json goes through fences, think block and repair", "[generation][response]") {
  ChatResult fenced =
      parse("vllm", Operation::kChat, openai_chat(R"({"content":"```json\n{\"a\": 1}\n```"})"), true);
  CHECK(fenced.success);
  CHECK(fenced.data_json == R"({"a": 1})");
  CHECK(fenced.repaired);
  CHECK(fenced.text == "```json\n{\"a\": 1}\n```");  // the text stays as the model wrote it

  ChatResult plain = parse("vllm", Operation::kChat, openai_chat(R"({"content":"{\"a\":1}"})"), true);
  CHECK(plain.data_json == R"({"a":1})");
  CHECK_FALSE(plain.repaired);

  ChatResult cut = parse("vllm", Operation::kChat, openai_chat(R"({"content":"{\"a\":[1,2"})", "length"), true);
  CHECK(cut.success);
  CHECK(cut.truncated);
  CHECK(cut.repaired);
  CHECK(cut.data_json == R"({"a":[1,2]})");

  ChatResult think =
      parse("vllm", Operation::kChat, openai_chat(R"({"content":"<think>hm</think>{\"a\":2}"})"), true);
  CHECK(think.success);
  CHECK(think.reasoning == "hm");
  CHECK(think.data_json == R"({"a":2})");

  ChatResult prose = parse("vllm", Operation::kChat, openai_chat(R"({"content":"I cannot do that."})"), true);
  CHECK_FALSE(prose.success);
  CHECK(prose.error.rfind("invalid_json: ", 0) == 0);
  CHECK(prose.retryable);
  CHECK(prose.text == "I cannot do that.");

  // Without want_json the same text is a plain success.
  CHECK(parse("vllm", Operation::kChat, openai_chat(R"({"content":"I cannot do that."})")).success);
}

TEST_CASE("generate response: HTTP and transport errors", "[generation][response]") {
  const std::string err = R"({"error":{"message":"The model `x` does not exist.","type":"NotFoundError","code":404}})";
  ChatResult nf = parse("vllm", Operation::kChat, err, false, 404);
  CHECK_FALSE(nf.success);
  CHECK(nf.error == "http_404");
  CHECK_FALSE(nf.retryable);
  CHECK(nf.status_code == 404);
  CHECK(nf.raw_response == err);

  ChatResult busy = parse("ollama", Operation::kChat, R"({"error":"server busy"})", false, 503);
  CHECK(busy.error == "http_503");
  CHECK(busy.retryable);

  ChatResult auth = parse("openai", Operation::kChat, R"({"error":"Unauthorized"})", false, 401);
  CHECK(auth.error == "http_401");
  CHECK(auth.auth_refused);
  CHECK_FALSE(auth.retryable);

  http::Response t;
  t.error = http::TransportError::kTimeout;
  t.error_message = "Operation timed out";
  ChatResult to = parse_generate_response(provider_spec("vllm"), Operation::kChat, t, "m", false);
  CHECK(to.error == "timeout");
  CHECK(to.retryable);

  ChatResult notjson = parse("vllm", Operation::kChat, "<html>", false, 200);
  CHECK(notjson.error.rfind("invalid_json: response body is not JSON", 0) == 0);
  CHECK(notjson.retryable);

  // Ollama may answer 200 with an error object.
  ChatResult ol = parse("ollama", Operation::kChat, R"({"error":"model runner crashed"})");
  CHECK_FALSE(ol.success);
  CHECK(ol.error == "http_500");
  CHECK(ol.retryable);
}

TEST_CASE("generate response: Ollama chat, thinking and tool calls with object arguments",
          "[generation][response][tools]") {
  const std::string b =
      R"({"model":"qwen3:8b","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"",)"
      R"("thinking":"need weather","tool_calls":[{"function":{"index":0,"name":"weather","arguments":{"city":"Paris"}}},)"
      R"({"id":"t2","function":{"index":1,"name":"time","arguments":{}}}]},)"
      R"("done":true,"done_reason":"stop","prompt_eval_count":20,"eval_count":11})";
  ChatResult r = parse("ollama", Operation::kChat, b);
  REQUIRE(r.success);
  CHECK(r.model == "qwen3:8b");
  CHECK(r.provider == "ollama");
  CHECK(r.text.empty());
  CHECK(r.reasoning == "need weather");
  CHECK(r.finish_reason == "stop");
  CHECK(r.prompt_tokens == 20);
  CHECK(r.completion_tokens == 11);
  REQUIRE(r.tool_calls.size() == 2);
  CHECK(r.tool_calls[0].index == 0);
  CHECK(r.tool_calls[0].name == "weather");
  CHECK(r.tool_calls[0].arguments_text == R"({"city":"Paris"})");
  CHECK(r.tool_calls[0].arguments_json == R"({"city":"Paris"})");
  CHECK(r.tool_calls[1].index == 1);
  CHECK(r.tool_calls[1].id == "t2");
  CHECK(r.tool_calls[1].arguments_json == "{}");

  ChatResult text = parse("ollama", Operation::kChat,
                          R"({"model":"m","message":{"role":"assistant","content":"{\"a\":1}"},"done":true})", true);
  CHECK(text.success);
  CHECK(text.data_json == R"({"a":1})");
  CHECK(text.prompt_tokens == -1);  // absent when zero or cached
}

TEST_CASE("generate response: Ollama generate and OpenAI completions", "[generation][response]") {
  ChatResult g = parse("ollama", Operation::kCompletion,
                       R"({"model":"m","response":" there was","thinking":"t","done":true,"done_reason":"stop","eval_count":3})");
  CHECK(g.success);
  CHECK(g.text == " there was");
  CHECK(g.reasoning == "t");
  CHECK(g.completion_tokens == 3);

  ChatResult c = parse("vllm", Operation::kCompletion,
                       R"({"id":"cmpl-1","object":"text_completion","model":"tiny","choices":[{"index":0,"text":" a time",)"
                       R"("logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":2,"completion_tokens":3}})");
  CHECK(c.success);
  CHECK(c.text == " a time");
  CHECK(c.model == "tiny");
  CHECK(c.prompt_tokens == 2);

  // A completion reads text, not message.
  ChatResult wrong = parse("vllm", Operation::kCompletion, openai_chat(R"({"content":"x"})"));
  CHECK(wrong.text.empty());
}
