// Providers without a network: request bodies per provider (parsed back with simdjson),
// headers, prompt rendering, status and transport classification, response parsing,
// content post-processing, error bodies, the JSON writer.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <set>
#include <string>
#include <string_view>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/content.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/json_writer.hpp"
#include "llmbridge/llm/provider.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;

namespace {

// Owns the parser so elements stay valid for the test's lifetime.
struct Json {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  explicit Json(const std::string& text) {
    auto err = parser.parse(text).get(root);
    INFO(text);
    REQUIRE(err == simdjson::SUCCESS);
  }
  simdjson::dom::object object() const {
    simdjson::dom::object o;
    REQUIRE(root.get(o) == simdjson::SUCCESS);
    return o;
  }
};

std::set<std::string> keys(simdjson::dom::object o) {
  std::set<std::string> out;
  for (auto field : o) out.emplace(field.key);
  return out;
}

std::string str(simdjson::simdjson_result<simdjson::dom::element> v) {
  std::string_view s;
  REQUIRE(v.get(s) == simdjson::SUCCESS);
  return std::string(s);
}

std::string minify(simdjson::simdjson_result<simdjson::dom::element> v) {
  simdjson::dom::element e;
  REQUIRE(v.get(e) == simdjson::SUCCESS);
  return simdjson::minify(e);
}

simdjson::dom::element_type type_of(simdjson::simdjson_result<simdjson::dom::element> v) {
  simdjson::dom::element e;
  REQUIRE(v.get(e) == simdjson::SUCCESS);
  return e.type();
}

std::optional<std::string> header(const http::Request& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value;
  return std::nullopt;
}

const std::set<std::string> kOllamaOnly = {"options", "format", "keep_alive", "stream", "num_predict", "num_ctx"};
const std::set<std::string> kOpenAIOnly = {"response_format", "max_tokens", "max_completion_tokens"};

const char* kSchema = R"({"type":"object","properties":{"name":{"type":"string"}},"required":["name"]})";

ChatCall simple_call(std::string schema = "") {
  ChatCall c;
  c.prompts.system = "You extract data.";
  c.prompts.user = "Extract from: {document_text}";
  c.document_text = "Alice, 30";
  c.schema_json = std::move(schema);
  return c;
}

http::Response ok_response(std::string body) {
  http::Response r;
  r.status = 200;
  r.body = std::move(body);
  r.elapsed_ms = 12.5;
  return r;
}

std::string openai_body(std::string_view content_json, std::string_view finish = "\"stop\"") {
  return R"({"id":"chatcmpl-1","object":"chat.completion","model":"served-model","choices":[{"index":0,"message":{"role":"assistant","content":)" +
         std::string(content_json) + R"(},"finish_reason":)" + std::string(finish) +
         R"(}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}})";
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- JSON writer

TEST_CASE("json writer: escapes per RFC 8259 and round-trips every byte", "[providers][json]") {
  CHECK(json_string("") == "\"\"");
  CHECK(json_string("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json_string("\b\f\n\r\t") == R"("\b\f\n\r\t")");
  CHECK(json_string(std::string_view("\0\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(json_string("/") == "\"/\"");
  CHECK(json_string("\x7f") == "\"\x7f\"");
  CHECK(json_string("héllo ✓ 😀") == "\"héllo ✓ 😀\"");  // UTF-8 passes through
  std::string all;
  for (int c = 1; c < 0x80; ++c) all += char(c);
  all += "日本語";
  all += std::string(1, '\0');
  Json j(json_string(all));
  std::string_view back;
  REQUIRE(j.root.get(back) == simdjson::SUCCESS);
  CHECK(back == all);
}

TEST_CASE("json writer: commas, nesting, numbers, raw", "[providers][json]") {
  JsonWriter w;
  w.begin_object()
      .key("a")
      .value(1)
      .key("b")
      .begin_array()
      .value(true)
      .value(false)
      .null()
      .value("x")
      .begin_object()
      .end_object()
      .begin_array()
      .end_array()
      .end_array()
      .key("c")
      .raw(R"({"k":[1,2]})")
      .key("d")
      .value(0.0)
      .key("e")
      .value(0.7)
      .key("f")
      .value(std::numeric_limits<double>::quiet_NaN())
      .key("g")
      .value(1e300)
      .key("h")
      .value(std::int64_t(-9007199254740993))
      .end_object();
  CHECK(w.str() ==
        R"({"a":1,"b":[true,false,null,"x",{},[]],"c":{"k":[1,2]},"d":0.0,"e":0.7,"f":null,"g":1e+300,"h":-9007199254740993})");
  Json j(w.str());
  CHECK(j.object().size() == 8);
}

// ---------------------------------------------------------------- prompts

TEST_CASE("prompts: placeholder replaced, else document appended", "[providers]") {
  CHECK(render_user_prompt("Doc: {document_text}", "D") == "Doc: D");
  CHECK(render_user_prompt("{document_text}|{document_text}", "D") == "D|D");
  CHECK(render_user_prompt("{document_text}", "") == "");
  CHECK(render_user_prompt("A {document_text} B", "") == "A  B");
  CHECK(render_user_prompt("X {document_text}", "has {document_text} inside") == "X has {document_text} inside");
  CHECK(render_user_prompt("Extract.", "D") == "Extract.\n\nD");
  CHECK(render_user_prompt("", "D") == "\n\nD");
  CHECK(render_user_prompt("Extract.", "") == "Extract.");
  CHECK(render_user_prompt("{document}", "D") == "{document}\n\nD");  // not the placeholder
  CHECK(render_user_prompt("{Document_Text}", "D") == "{Document_Text}\n\nD");
}

TEST_CASE("prompts: check_chat_call validates what is spliced raw", "[providers]") {
  ChatCall c = simple_call(kSchema);
  CHECK_FALSE(check_chat_call(c).has_value());
  c.schema_json = "[1]";
  CHECK(check_chat_call(c) == std::string("json_schema must be a JSON object"));
  c.schema_json = "{broken";
  REQUIRE(check_chat_call(c).has_value());
  CHECK(check_chat_call(c)->find("json_schema is not valid JSON") == 0);
  c.schema_json = "";
  c.prompts.messages_json = R"({"role":"user"})";
  CHECK(check_chat_call(c) == std::string("prompts['messages'] must be a JSON array"));
  c.prompts.messages_json = "[";
  CHECK(check_chat_call(c)->find("prompts['messages'] is not valid JSON") == 0);
  config::VLLMConfig v;
  CHECK_THROWS_AS(build_openai_request(v, c, "id"), std::invalid_argument);
  CHECK_THROWS_AS(build_ollama_request(config::OllamaConfig{}, c, "id"), std::invalid_argument);
}

// ---------------------------------------------------------------- OpenAI-compatible requests

TEST_CASE("openai request: URL from every base_url form", "[providers][openai]") {
  for (const char* base : {"http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/"}) {
    config::VLLMConfig c;
    c.base_url = base;
    INFO(base);
    CHECK(build_openai_request(c, simple_call(), "r1").url == "http://h:8000/v1/chat/completions");
  }
  CHECK(build_openai_request(config::OpenAIConfig{}, simple_call(), "r").url ==
        "https://api.openai.com/v1/chat/completions");
}

TEST_CASE("openai request: headers, Authorization only with a key, timeouts", "[providers][openai]") {
  config::VLLMConfig c;
  c.timeout = 2.5;
  c.connect_timeout = 0.25;
  http::Request r = build_openai_request(c, simple_call(), "req-42");
  CHECK(r.method == "POST");
  CHECK(header(r, "Content-Type") == std::string("application/json"));
  CHECK(header(r, "Accept") == std::string("application/json"));
  CHECK(header(r, "X-Request-Id") == std::string("req-42"));
  CHECK_FALSE(header(r, "Authorization").has_value());
  CHECK(r.timeout_ms == 2500);
  CHECK(r.connect_timeout_ms == 250);
  c.api_key = "sk-abc";
  r = build_openai_request(c, simple_call(), "req-42");
  CHECK(header(r, "Authorization") == std::string("Bearer sk-abc"));
  CHECK(r.body.find("sk-abc") == std::string::npos);  // never in the body
}

TEST_CASE("openai request: body without schema", "[providers][openai]") {
  config::VLLMConfig c;
  c.model = "qwen";
  c.max_tokens = 512;
  c.temperature = 0.2;
  http::Request r = build_openai_request(c, simple_call(), "r");
  Json j(r.body);
  auto o = j.object();
  CHECK(keys(o) == std::set<std::string>{"model", "messages", "max_tokens", "temperature", "response_format"});
  CHECK(str(o["model"]) == "qwen");
  CHECK(int64_t(o["max_tokens"]) == 512);
  CHECK(double(o["temperature"]) == 0.2);
  CHECK(minify(o["response_format"]) == R"({"type":"json_object"})");
  simdjson::dom::array msgs = o["messages"];
  REQUIRE(msgs.size() == 2);
  CHECK(str(msgs.at(0)["role"]) == "system");
  CHECK(str(msgs.at(0)["content"]) == "You extract data.");
  CHECK(str(msgs.at(1)["role"]) == "user");
  CHECK(str(msgs.at(1)["content"]) == "Extract from: Alice, 30");
  for (const auto& k : kOllamaOnly) CHECK(keys(o).count(k) == 0);
}

TEST_CASE("openai request: schema embedded as an object, strict", "[providers][openai]") {
  config::OpenAIConfig c;
  ChatCall call = simple_call(kSchema);
  Json j(build_openai_request(c, call, "r").body);
  auto o = j.object();
  auto rf = o["response_format"];
  CHECK(str(rf["type"]) == "json_schema");
  CHECK(keys(rf["json_schema"].get_object().value()) == std::set<std::string>{"name", "schema", "strict"});
  CHECK(str(rf["json_schema"]["name"]) == "extraction");
  CHECK(bool(rf["json_schema"]["strict"]) == true);
  CHECK(type_of(rf["json_schema"]["schema"]) == simdjson::dom::element_type::OBJECT);
  CHECK(minify(rf["json_schema"]["schema"]) == kSchema);
  for (const auto& k : kOllamaOnly) CHECK(keys(o).count(k) == 0);

  call.schema_name = "person";
  call.schema_json = std::string("\n  ") + kSchema + "  \n";
  Json j2(build_openai_request(c, call, "r").body);
  CHECK(str(j2.object()["response_format"]["json_schema"]["name"]) == "person");
  CHECK(minify(j2.object()["response_format"]["json_schema"]["schema"]) == kSchema);
}

TEST_CASE("openai request: system omitted when empty, model omitted when empty", "[providers][openai]") {
  config::VLLMConfig c;  // model empty: vLLM uses its served model
  ChatCall call = simple_call();
  call.prompts.system = "";
  call.prompts.user = "Extract.";
  Json j(build_openai_request(c, call, "r").body);
  auto o = j.object();
  CHECK(keys(o).count("model") == 0);
  simdjson::dom::array msgs = o["messages"];
  REQUIRE(msgs.size() == 1);
  CHECK(str(msgs.at(0)["role"]) == "user");
  CHECK(str(msgs.at(0)["content"]) == "Extract.\n\nAlice, 30");
}

TEST_CASE("openai request: messages_json passes through untouched", "[providers][openai]") {
  config::VLLMConfig c;
  ChatCall call = simple_call();
  call.prompts.messages_json =
      R"([{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}])";
  Json j(build_openai_request(c, call, "r").body);
  auto o = j.object();
  CHECK(minify(o["messages"]) == call.prompts.messages_json);
  CHECK(std::string(j.root["messages"].at(0)["content"].get_string().value()) == "s");
  // The document is not added when messages are given.
  CHECK(build_openai_request(c, call, "r").body.find("Alice") == std::string::npos);
}

TEST_CASE("openai request: awkward text is escaped into valid JSON", "[providers][openai]") {
  config::VLLMConfig c;
  ChatCall call;
  call.prompts.system = "quote \" backslash \\ tab \t";
  call.prompts.user = "ctrl \x01 nl \n {document_text}";
  call.document_text = "ünïcödé \"doc\" \r\n end";
  Json j(build_openai_request(c, call, "r").body);
  simdjson::dom::array msgs = j.object()["messages"];
  CHECK(str(msgs.at(0)["content"]) == call.prompts.system);
  CHECK(str(msgs.at(1)["content"]) == "ctrl \x01 nl \n ünïcödé \"doc\" \r\n end");
}

// ---------------------------------------------------------------- Ollama requests

TEST_CASE("ollama request: URL, headers, Authorization only with a key", "[providers][ollama]") {
  config::OllamaConfig c;
  http::Request r = build_ollama_request(c, simple_call(), "rid");
  CHECK(r.url == "http://localhost:11434/api/chat");
  CHECK(header(r, "Content-Type") == std::string("application/json"));
  CHECK(header(r, "X-Request-Id") == std::string("rid"));
  CHECK_FALSE(header(r, "Authorization").has_value());
  CHECK(r.timeout_ms == 120000);
  CHECK(r.connect_timeout_ms == 10000);
  c.api_key = "ollama-key";
  c.base_url = "http://gpu:11434/";
  r = build_ollama_request(c, simple_call(), "rid");
  CHECK(header(r, "Authorization") == std::string("Bearer ollama-key"));
  CHECK(r.url == "http://gpu:11434/api/chat");
}

TEST_CASE("ollama request: body without schema", "[providers][ollama]") {
  config::OllamaConfig c;
  c.max_tokens = 300;
  c.temperature = 0.5;
  Json j(build_ollama_request(c, simple_call(), "r").body);
  auto o = j.object();
  CHECK(keys(o) == std::set<std::string>{"model", "messages", "stream", "format", "options"});
  CHECK(str(o["model"]) == "llama3.1");
  CHECK(bool(o["stream"]) == false);
  CHECK(str(o["format"]) == "json");
  CHECK(keys(o["options"].get_object().value()) == std::set<std::string>{"temperature", "num_predict"});
  CHECK(double(o["options"]["temperature"]) == 0.5);
  CHECK(int64_t(o["options"]["num_predict"]) == 300);
  simdjson::dom::array msgs = o["messages"];
  REQUIRE(msgs.size() == 2);
  CHECK(str(msgs.at(1)["content"]) == "Extract from: Alice, 30");
  for (const auto& k : kOpenAIOnly) CHECK(keys(o).count(k) == 0);
}

TEST_CASE("ollama request: schema raw in format, num_ctx and keep_alive when set", "[providers][ollama]") {
  config::OllamaConfig c;
  c.num_ctx = 8192;
  c.keep_alive = "5m";
  Json j(build_ollama_request(c, simple_call(kSchema), "r").body);
  auto o = j.object();
  CHECK(type_of(o["format"]) == simdjson::dom::element_type::OBJECT);
  CHECK(minify(o["format"]) == kSchema);
  CHECK(int64_t(o["options"]["num_ctx"]) == 8192);
  CHECK(str(o["keep_alive"]) == "5m");
  for (const auto& k : kOpenAIOnly) CHECK(keys(o).count(k) == 0);

  c.keep_alive = "300";
  Json j2(build_ollama_request(c, simple_call(), "r").body);
  CHECK(int64_t(j2.object()["keep_alive"]) == 300);
  c.keep_alive = "-1";
  Json j3(build_ollama_request(c, simple_call(), "r").body);
  CHECK(int64_t(j3.object()["keep_alive"]) == -1);
  c.keep_alive = "1.5";
  Json j4(build_ollama_request(c, simple_call(), "r").body);
  CHECK(double(j4.object()["keep_alive"]) == 1.5);
  c.keep_alive = "  ";
  c.num_ctx = 0;
  Json j5(build_ollama_request(c, simple_call(), "r").body);
  CHECK(keys(j5.object()).count("keep_alive") == 0);
  CHECK(keys(j5.object()["options"].get_object().value()).count("num_ctx") == 0);
}

TEST_CASE("ollama request: messages_json passes through", "[providers][ollama]") {
  ChatCall call = simple_call();
  call.prompts.messages_json = R"([{"role":"user","content":"x","images":["AAAA"]}])";
  Json j(build_ollama_request(config::OllamaConfig{}, call, "r").body);
  CHECK(minify(j.object()["messages"]) == call.prompts.messages_json);
}

// ---------------------------------------------------------------- classification

TEST_CASE("errors: every status 100..599 classified", "[providers][errors]") {
  for (int s = 100; s <= 599; ++s) {
    const bool expected = s == 408 || s == 409 || s == 425 || s == 429 || s >= 500;
    INFO("status " << s);
    CHECK(is_retryable_status(s) == expected);
    CHECK(is_auth_refused_status(s) == (s == 401 || s == 403));

    http::Response r = ok_response(openai_body("\"{\\\"a\\\":1}\""));
    r.status = s;
    for (const Attempt& a : {parse_openai_response(r, kProviderVLLM, "m"), parse_ollama_response(r, "m")}) {
      CHECK(a.status_code == s);
      CHECK(a.attempts == 1);
      if (s >= 200 && s < 300) {
        CHECK(a.error != http_error(s));
      } else {
        CHECK_FALSE(a.success);
        CHECK(a.error == "http_" + std::to_string(s));
        CHECK(a.retryable == (s >= 400 && expected));
        CHECK(a.auth_refused == (s == 401 || s == 403));
        CHECK(a.raw_response == r.body);
      }
    }
  }
}

TEST_CASE("errors: exact contract strings", "[providers][errors]") {
  CHECK(http_error(500) == "http_500");
  CHECK(http_error(400) == "http_400");
  CHECK(connection_error("refused") == "connection_error: refused");
  CHECK(invalid_json_error("x") == "invalid_json: x");
  CHECK(kErrorTimeout == "timeout");
  CHECK(kErrorEmptyModelResponse == "empty_model_response");
  CHECK(kErrorCancelled == "cancelled");
}

TEST_CASE("errors: transport failures mapped", "[providers][errors]") {
  using http::TransportError;
  struct Case {
    TransportError e;
    const char* message;
    const char* error;
    bool retryable;
  };
  const Case cases[] = {
      {TransportError::kTimeout, "Operation timed out after 5000 ms", "timeout", true},
      {TransportError::kConnect, "Connection refused", "connection_error: Connection refused", true},
      {TransportError::kConnect, "", "connection_error: could not connect", true},
      {TransportError::kCancelled, "aborted", "cancelled", false},
      {TransportError::kTooLarge, "whatever", "connection_error: response body exceeds 1024 bytes", false},
      {TransportError::kTls, "SSL certificate problem", "connection_error: SSL certificate problem", false},
      {TransportError::kOther, "Recv failure", "connection_error: Recv failure", true},
  };
  for (const auto& k : cases) {
    INFO(http::to_string(k.e) << " " << k.message);
    ErrorClass c = classify_transport_error(k.e, k.message, 1024);
    CHECK(c.error == k.error);
    CHECK(c.retryable == k.retryable);

    http::Response r;
    r.error = k.e;
    r.error_message = k.message;
    r.elapsed_ms = 7;
    Attempt a = parse_openai_response(r, kProviderOpenAI, "gpt", 1024);
    CHECK_FALSE(a.success);
    CHECK(a.error == k.error);
    CHECK(a.retryable == k.retryable);
    CHECK(a.provider == "openai");
    CHECK(a.model == "gpt");
    CHECK(a.latency_ms == 7);
    CHECK(a.status_code == 0);
    Attempt b = parse_ollama_response(r, "llama", 1024);
    CHECK(b.error == k.error);
    CHECK(b.retryable == k.retryable);
    CHECK(b.provider == "ollama");
  }
  http::Response nothing;  // no error, no status: nothing came back
  Attempt a = parse_openai_response(nothing, kProviderVLLM, "m");
  CHECK(a.error == "connection_error: no HTTP response received");
  CHECK(a.retryable);
}

TEST_CASE("errors: message from every error body shape", "[providers][errors]") {
  CHECK(error_message_from_body(
            R"({"error":{"message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}})") ==
        "The model `x` does not exist.");
  CHECK(error_message_from_body(R"({"error":"Unauthorized"})") == "Unauthorized");
  CHECK(error_message_from_body(R"({"error":"model 'x' not found"})") == "model 'x' not found");
  CHECK(error_message_from_body(R"({"object":"error","message":"bad","type":"BadRequestError","code":400})") ==
        "bad");
  CHECK(error_message_from_body(R"({"detail":"Not Found"})") == "Not Found");
  CHECK(error_message_from_body(
            R"({"detail":[{"loc":["body","x"],"msg":"field required","type":"missing"},{"msg":"too long"}]})") ==
        "field required; too long");
  CHECK(error_message_from_body(R"({"error":{"type":"x"},"message":"flat"})") == "flat");
  CHECK(error_message_from_body("<html>502 Bad Gateway</html>\n") == "<html>502 Bad Gateway</html>");
  CHECK(error_message_from_body(R"({"other":1})") == R"({"other":1})");
  CHECK(error_message_from_body("[1,2]") == "[1,2]");
  CHECK(error_message_from_body("") == "");
  CHECK(error_message_from_body("   ") == "");
}

TEST_CASE("errors: describe says the key was refused and never shows it", "[providers][errors]") {
  http::Response r;
  r.status = 401;
  r.body = R"({"error":{"message":"Incorrect API key provided: sk-live-SECRET.","code":"invalid_api_key"}})";
  Attempt a = parse_openai_response(r, kProviderOpenAI, "gpt-4o-mini");
  CHECK(a.error == "http_401");
  CHECK(a.auth_refused);
  CHECK_FALSE(a.retryable);
  const std::string d = describe(a);
  CHECK(d.find("the server refused the API key (HTTP 401)") == 0);
  CHECK(d.find("SECRET") == std::string::npos);
  r.status = 403;
  const std::string d403 = describe(parse_openai_response(r, kProviderOpenAI, "m"));
  CHECK(d403.find("HTTP 403") != std::string::npos);
  CHECK(d403.find("SECRET") == std::string::npos);

  r.status = 404;
  r.body = R"({"error":{"message":"The model `x` does not exist."}})";
  CHECK(describe(parse_openai_response(r, kProviderVLLM, "x")) ==
        "the server answered HTTP 404: The model `x` does not exist. (vllm, model x, 1 try)");
  Attempt t;
  t.error = "timeout";
  t.attempts = 4;
  CHECK(describe(t) == "the request timed out (4 tries)");
  Attempt ok;
  ok.success = true;
  CHECK(describe(ok) == "the call succeeded");
}

// ---------------------------------------------------------------- OpenAI responses

TEST_CASE("openai response: success with usage, model, request id", "[providers][openai]") {
  http::Response r = ok_response(openai_body(json_string(R"({"name":"Alice","age":30})")));
  r.headers.push_back({"x-request-id", "req_abc"});
  Attempt a = parse_openai_response(r, kProviderVLLM, "configured");
  CHECK(a.success);
  CHECK(a.error.empty());
  CHECK_FALSE(a.retryable);
  CHECK(a.data_json == R"({"name":"Alice","age":30})");
  CHECK(a.raw_response == R"({"name":"Alice","age":30})");
  CHECK_FALSE(a.repaired);
  CHECK_FALSE(a.truncated);
  CHECK(a.finish_reason == "stop");
  CHECK(a.prompt_tokens == 11);
  CHECK(a.completion_tokens == 7);
  CHECK(a.model == "served-model");
  CHECK(a.provider == "vllm");
  CHECK(a.request_id == "req_abc");
  CHECK(a.status_code == 200);
  CHECK(a.attempts == 1);
  CHECK(a.latency_ms == 12.5);
  CHECK(a.retry_after_s == -1);
}

TEST_CASE("openai response: usage and model absent", "[providers][openai]") {
  Attempt a = parse_openai_response(
      ok_response(R"({"choices":[{"message":{"content":"[1,2]"},"finish_reason":null}]})"), kProviderOpenAI, "cfg");
  CHECK(a.success);
  CHECK(a.data_json == "[1,2]");
  CHECK(a.prompt_tokens == -1);
  CHECK(a.completion_tokens == -1);
  CHECK(a.model == "cfg");
  CHECK(a.finish_reason.empty());
  Attempt b = parse_openai_response(
      ok_response(R"({"usage":{"prompt_tokens":null,"completion_tokens":-3},"choices":[{"message":{"content":"{}"}}]})"),
      kProviderOpenAI, "cfg");
  CHECK(b.prompt_tokens == -1);
  CHECK(b.completion_tokens == -1);
}

TEST_CASE("openai response: no choices or no content is empty_model_response", "[providers][openai]") {
  for (const char* body : {
           R"({"choices":[]})",
           R"({"object":"chat.completion"})",
           R"({"choices":null})",
           R"({"choices":[1]})",
           R"({"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"stop"}]})",
           R"({"choices":[{"message":{"role":"assistant"},"finish_reason":"stop"}]})",
           R"({"choices":[{"finish_reason":"stop"}]})",
           R"({"choices":[{"message":{"content":""}}]})",
           R"({"choices":[{"message":{"content":"   \n\t  "}}]})",
           R"({"choices":[{"message":{"content":null,"reasoning":"{\"a\":1}"}}]})",
           R"({"choices":[{"message":{"content":null,"reasoning_content":"{\"a\":1}"}}]})",
           R"({"choices":[{"message":{"content":"","refusal":"I can't"},"finish_reason":"content_filter"}]})",
           R"({"error":{"message":"upstream failed"}})",
       }) {
    INFO(body);
    Attempt a = parse_openai_response(ok_response(body), kProviderVLLM, "m");
    CHECK_FALSE(a.success);
    CHECK(a.error == "empty_model_response");
    CHECK(a.retryable);
    CHECK(a.data_json.empty());
    CHECK(a.raw_response == body);
  }
}

TEST_CASE("openai response: a 2xx body that is not a JSON object is invalid_json", "[providers][openai]") {
  for (const char* body : {"", "  ", "not json", "{\"choices\":[", "[1,2]", "\"str\"", "<html>ok</html>"}) {
    INFO("'" << body << "'");
    Attempt a = parse_openai_response(ok_response(body), kProviderVLLM, "m");
    CHECK_FALSE(a.success);
    CHECK(a.error.rfind("invalid_json: response body is not JSON (", 0) == 0);
    CHECK(a.retryable);
    CHECK(a.raw_response == body);
  }
}

TEST_CASE("openai response: content given as text parts", "[providers][openai]") {
  Attempt a = parse_openai_response(
      ok_response(
          R"({"choices":[{"message":{"content":[{"type":"text","text":"{\"a\":"},{"type":"text","text":"1}"}]}}]})"),
      kProviderOpenAI, "m");
  CHECK(a.success);
  CHECK(a.data_json == R"({"a":1})");
}

TEST_CASE("openai response: fences and think blocks are stripped, and count as repaired", "[providers][openai]") {
  struct Case {
    const char* content;
    const char* json;
    bool repaired;
  };
  const Case cases[] = {
      {"{\"a\":1}", "{\"a\":1}", false},
      {"  \n{\"a\":1}\n  ", "{\"a\":1}", false},  // surrounding whitespace is not a repair
      {"```json\n{\"a\":1}\n```", "{\"a\":1}", true},
      {"Here you go:\n```\n[1,2]\n```\nDone.", "[1,2]", true},
      {"<think>hmm, {\"no\":0}</think>\n{\"a\":1}", "{\"a\":1}", true},
      {"<think>x</think>```json\n{\"a\":1}\n```", "{\"a\":1}", true},
  };
  for (const auto& k : cases) {
    INFO(k.content);
    Attempt a = parse_openai_response(ok_response(openai_body(json_string(k.content))), kProviderVLLM, "m");
    CHECK(a.success);
    CHECK(a.data_json == k.json);
    CHECK(a.repaired == k.repaired);
    CHECK(a.raw_response == k.content);
  }
  // Nothing left once the reasoning is removed: the model gave no answer.
  Attempt t = parse_openai_response(ok_response(openai_body(json_string("<think>only thoughts</think>  "))),
                                    kProviderVLLM, "m");
  CHECK(t.error == "empty_model_response");
  CHECK(t.retryable);
}

TEST_CASE("openai response: content that is not JSON is invalid_json", "[providers][openai]") {
  for (const char* content : {"Sorry, I cannot help with that.", "```json\nnot json\n```", "<think>unclosed"}) {
    INFO(content);
    Attempt a = parse_openai_response(ok_response(openai_body(json_string(content))), kProviderVLLM, "m");
    CHECK_FALSE(a.success);
    CHECK(a.error.rfind("invalid_json: ", 0) == 0);
    CHECK(a.retryable);
    CHECK(a.raw_response == content);
    CHECK(a.data_json.empty());
  }
}

TEST_CASE("openai response: finish_reason length marks truncation", "[providers][openai]") {
  // Complete JSON despite "length": success, truncated, the caller decides.
  Attempt a = parse_openai_response(ok_response(openai_body(json_string("{\"a\":1}"), "\"length\"")),
                                    kProviderVLLM, "m");
  CHECK(a.success);
  CHECK(a.truncated);
  CHECK(a.finish_reason == "length");
  CHECK(a.data_json == "{\"a\":1}");
  Attempt s = parse_openai_response(ok_response(openai_body(json_string("{\"a\":1}"), "\"stop\"")), kProviderVLLM,
                                    "m");
  CHECK_FALSE(s.truncated);
}

TEST_CASE("openai response: error statuses keep headers and body", "[providers][openai]") {
  http::Response r;
  r.status = 429;
  r.body = R"({"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}})";
  r.headers = {{"x-request-id", "req_9"}, {"retry-after", "3"}};
  Attempt a = parse_openai_response(r, kProviderOpenAI, "m");
  CHECK(a.error == "http_429");
  CHECK(a.retryable);
  CHECK(a.status_code == 429);
  CHECK(a.request_id == "req_9");
  CHECK(a.retry_after_s == 3.0);
  CHECK(a.raw_response == r.body);
  CHECK_FALSE(a.auth_refused);
  r.headers.push_back({"retry-after-ms", "1500"});
  CHECK(parse_openai_response(r, kProviderOpenAI, "m").retry_after_s == 1.5);
  r.status = 503;
  r.headers = {{"retry-after", "soon"}};
  Attempt b = parse_openai_response(r, kProviderOpenAI, "m");
  CHECK(b.retry_after_s == -1);
  CHECK(b.error == "http_503");
  CHECK(b.retryable);
}

// ---------------------------------------------------------------- Ollama responses

TEST_CASE("ollama response: success with counts and done_reason", "[providers][ollama]") {
  const std::string body =
      R"({"model":"llama3.1:latest","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"{\"name\":\"Bob\"}"},"done":true,"done_reason":"stop","total_duration":100,"prompt_eval_count":26,"eval_count":9})";
  Attempt a = parse_ollama_response(ok_response(body), "llama3.1");
  CHECK(a.success);
  CHECK(a.provider == "ollama");
  CHECK(a.model == "llama3.1:latest");
  CHECK(a.data_json == R"({"name":"Bob"})");
  CHECK(a.raw_response == R"({"name":"Bob"})");
  CHECK(a.finish_reason == "stop");
  CHECK_FALSE(a.truncated);
  CHECK(a.prompt_tokens == 26);
  CHECK(a.completion_tokens == 9);
}

TEST_CASE("ollama response: counts absent, length, fenced", "[providers][ollama]") {
  Attempt a = parse_ollama_response(
      ok_response(R"({"message":{"role":"assistant","content":"```json\n[1]\n```"},"done":true,"done_reason":"length"})"),
      "llama3.1");
  CHECK(a.success);
  CHECK(a.truncated);
  CHECK(a.finish_reason == "length");
  CHECK(a.repaired);
  CHECK(a.data_json == "[1]");
  CHECK(a.prompt_tokens == -1);
  CHECK(a.completion_tokens == -1);
  CHECK(a.model == "llama3.1");
}

TEST_CASE("ollama response: empty answers and bad bodies", "[providers][ollama]") {
  for (const char* body : {R"({"message":{"role":"assistant","content":""},"done":true,"done_reason":"load"})",
                           R"({"message":{"role":"assistant","content":"  "}})",
                           R"({"message":{"role":"assistant","content":"","thinking":"{\"a\":1}"}})",
                           R"({"done":true})", R"({"message":null})"}) {
    INFO(body);
    Attempt a = parse_ollama_response(ok_response(body), "m");
    CHECK(a.error == "empty_model_response");
    CHECK(a.retryable);
  }
  Attempt b = parse_ollama_response(ok_response("{\"message\""), "m");
  CHECK(b.error.rfind("invalid_json: response body is not JSON", 0) == 0);
  CHECK(b.retryable);
  Attempt c = parse_ollama_response(ok_response(R"({"message":{"content":"no json here"}})"), "m");
  CHECK(c.error.rfind("invalid_json: ", 0) == 0);
  CHECK(c.retryable);
  http::Response r;
  r.status = 404;
  r.body = R"({"error":"model 'nope' not found"})";
  Attempt d = parse_ollama_response(r, "nope");
  CHECK(d.error == "http_404");
  CHECK_FALSE(d.retryable);
  CHECK(error_message_from_body(d.raw_response) == "model 'nope' not found");
  r.status = 503;
  CHECK(parse_ollama_response(r, "m").retryable);
}

// ---------------------------------------------------------------- content

TEST_CASE("content: think block stripping", "[providers][content]") {
  CHECK(strip_think_block("<think>a</think>{}") == "{}");
  CHECK(strip_think_block("  \n<think>a</think>\n{}") == "\n{}");
  CHECK(strip_think_block("<think>unclosed {}") == "<think>unclosed {}");
  CHECK(strip_think_block("{} <think>a</think>") == "{} <think>a</think>");
  CHECK(strip_think_block("") == "");
}

TEST_CASE("content: process_content outcomes", "[providers][content]") {
  ContentResult ok = process_content(" {\"a\": [1, 2]} ");
  CHECK(ok.ok);
  CHECK(ok.json == "{\"a\": [1, 2]}");
  CHECK_FALSE(ok.repaired);
  CHECK(ok.error.empty());
  ContentResult empty = process_content("```json\n\n```");
  CHECK_FALSE(empty.ok);
  CHECK(empty.error == "empty_model_response");
  ContentResult bad = process_content("nope");
  CHECK_FALSE(bad.ok);
  CHECK(bad.error.rfind("invalid_json: ", 0) == 0);
}

// ---------------------------------------------------------------- repair (text::repair_json)

TEST_CASE("openai response: broken JSON is repaired", "[providers][repair]") {
  struct Case {
    const char* content;
    const char* json;
  };
  const Case cases[] = {
      {"{\"a\": 1,}", "{\"a\":1}"},
      {"{'a': 'b'}", "{\"a\":\"b\"}"},
      {"Sure! Here is the data: {\"a\": 1} Hope it helps.", "{\"a\":1}"},
      {"```json\n{\"a\": [1, 2,]}\n```", "{\"a\":[1,2]}"},
      {"{a: True, b: None}", "{\"a\":true,\"b\":null}"},
      {"<think>let me see</think>\n{\"a\": 1 // one\n}", "{\"a\":1}"},
  };
  for (const auto& k : cases) {
    INFO(k.content);
    Attempt a = parse_openai_response(ok_response(openai_body(json_string(k.content))), kProviderVLLM, "m");
    CHECK(a.success);
    CHECK(a.repaired);
    CHECK_FALSE(a.truncated);
    CHECK(a.data_json == k.json);
    CHECK(a.raw_response == k.content);
    Json parsed(a.data_json);  // always valid JSON
  }
}

TEST_CASE("openai response: cut-off JSON with finish_reason length is a truncated success",
          "[providers][repair]") {
  Attempt a = parse_openai_response(
      ok_response(openai_body(json_string("{\"items\": [{\"name\": \"Al"), "\"length\"")), kProviderVLLM, "m");
  CHECK(a.success);
  CHECK(a.truncated);
  CHECK(a.repaired);
  CHECK(a.finish_reason == "length");
  CHECK(a.data_json == R"({"items":[{"name":"Al"}]})");
  // Cut JSON is flagged even when the server said "stop" (a proxy cut the stream, say).
  Attempt b = parse_ollama_response(ok_response(R"({"message":{"content":"[1, 2"},"done_reason":"stop"})"), "m");
  CHECK(b.success);
  CHECK(b.truncated);
  CHECK(b.data_json == "[1,2]");
}

TEST_CASE("openai response: unrepairable content names the reason and position", "[providers][repair]") {
  Attempt a = parse_openai_response(ok_response(openai_body(json_string("Sorry, I cannot help."))),
                                    kProviderVLLM, "m");
  CHECK_FALSE(a.success);
  CHECK(a.retryable);
  CHECK(a.error.rfind("invalid_json: no JSON value found", 0) == 0);
  CHECK(a.error.find(" at position 0") != std::string::npos);
  Attempt b = parse_openai_response(ok_response(openai_body(json_string("<think>a</think>\nnope"))),
                                    kProviderVLLM, "m");
  CHECK(b.error.rfind("invalid_json: ", 0) == 0);
  CHECK(b.error.find(" at position 17") != std::string::npos);  // offset in the raw content
}

TEST_CASE("max_tokens: fitted to what the prompt leaves of a known context", "[providers][context]") {
  ChatCall c;
  c.prompts.system = std::string(300, 's');
  c.prompts.user = std::string(300, 'u');
  c.document_text = std::string(2400, 'd');  // 3000 bytes: estimate 1000 + 16 tokens
  CHECK(fitted_max_tokens(4096, 0, c) == 4096);        // context unknown: as configured
  CHECK(fitted_max_tokens(4096, 8192, c) == 4096);     // fits
  CHECK(fitted_max_tokens(4096, 4096, c) == 4096 - 1016);
  CHECK(fitted_max_tokens(500, 2048, c) == 500);       // never raised
  CHECK(fitted_max_tokens(4096, 1000, c) == 1);        // the prompt alone does not fit: the server says so
  c.prompts.messages_json = std::string(3000, 'm');
  CHECK(fitted_max_tokens(4096, 4096, c) == 4096 - 2016);
}
