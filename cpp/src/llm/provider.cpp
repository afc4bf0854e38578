// Request building and response parsing for the OpenAI-compatible (vLLM, OpenAI) and
// Ollama native chat APIs. Pure functions: no I/O, no clock except Retry-After dates.
#include "strings.hpp"
#include "wire.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/llm/provider_table.hpp"

#include <simdjson.h>

#include "llmbridge/text/repair.hpp"
#include "llmbridge/text/utf8.hpp"

#include <charconv>
#include <climits>
#include <cmath>
#include <ctime>
#include <stdexcept>

#include "llmbridge/llm/content.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/json_writer.hpp"
#include "llmbridge/llm/retry.hpp"

namespace llmbridge::llm {
namespace detail {

long to_ms(double seconds, long fallback) { return http::seconds_to_ms(seconds, fallback); }

http::Request base_request(const config::ProviderConfig& config, std::string_view path,
                           std::string_view request_id) {
  http::Request req;
  req.method = "POST";
  req.url = config::normalized_base_url(config.base_url) + std::string(path);
  req.headers.push_back({"Content-Type", "application/json"});
  req.headers.push_back({"Accept", "application/json"});
  if (!request_id.empty()) req.headers.push_back({"X-Request-Id", std::string(request_id)});
  if (!config.api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + config.api_key});
  req.timeout_ms = to_ms(config.timeout, req.timeout_ms);
  req.connect_timeout_ms = to_ms(config.connect_timeout, req.connect_timeout_ms);
  return req;
}

void write_messages(JsonWriter& w, const ChatCall& call) {
  w.key("messages");
  if (!trim(call.prompts.messages_json).empty()) {
    w.raw(trim(call.prompts.messages_json));
    return;
  }
  w.begin_array();
  if (!call.prompts.system.empty()) {
    w.begin_object().key("role").value("system").key("content").value(call.prompts.system).end_object();
  }
  w.begin_object()
      .key("role")
      .value("user")
      .key("content")
      .value(render_user_prompt(call.prompts.user, call.document_text))
      .end_object();
  w.end_array();
}

void require_valid(const ChatCall& call) {
  if (auto problem = check_chat_call(call)) throw std::invalid_argument(*problem);
}

// Attempt fields every response fills, whatever its outcome.
Attempt start_attempt(const http::Response& r, std::string_view provider, std::string_view model) {
  Attempt a;
  a.provider = std::string(provider);
  a.model = std::string(model);
  a.attempts = 1;
  a.latency_ms = r.elapsed_ms;
  a.status_code = static_cast<int>(r.status);
  if (auto id = r.header("x-request-id")) a.request_id = std::string(trim(*id));
  if (auto delay = parse_retry_after(r.header("retry-after-ms"), r.header("retry-after"), std::time(nullptr)))
    a.retry_after_s = *delay;
  return a;
}

// Handles everything but a 2xx answer; returns true when `a` is final.
bool classify_non_success(const http::Response& r, std::size_t max_response_bytes, Attempt& a) {
  if (r.error != http::TransportError::kNone) {
    ErrorClass e = classify_transport_error(r.error, r.error_message, max_response_bytes);
    a.error = std::move(e.error);
    a.retryable = e.retryable;
    return true;
  }
  if (r.status == 0) {
    a.error = connection_error("no HTTP response received");
    a.retryable = true;
    return true;
  }
  if (r.status < 200 || r.status >= 300) {
    a.error = http_error(static_cast<int>(r.status));
    a.retryable = is_retryable_status(static_cast<int>(r.status));
    a.auth_refused = is_auth_refused_status(static_cast<int>(r.status));
    a.raw_response = r.body;
    return true;
  }
  return false;
}

void fail(Attempt& a, std::string error, std::string_view raw) {
  a.success = false;
  a.error = std::move(error);
  a.retryable = true;  // every 2xx failure kind (empty, invalid JSON) is retryable
  a.raw_response = std::string(raw);
}

// Parses a 2xx body into an object, or fails the attempt.
bool parse_body(simdjson::dom::parser& parser, const std::string& body, simdjson::dom::object& obj,
                Attempt& a) {
  if (trim(body).empty()) {
    fail(a, invalid_json_error("response body is not JSON (empty body)"), body);
    return false;
  }
  simdjson::dom::element doc;
  auto err = parser.parse(body).get(doc);
  if (err == simdjson::UTF8_ERROR) {
    // Invalid bytes in the body (in the answer's text, most likely): they become U+FFFD,
    // as Python's errors="replace" would do, and the answer counts as repaired. The DOM
    // keeps its own copy of every string, so `clean` may go when this returns.
    const std::string clean = text::replace_invalid_utf8(body);
    err = parser.parse(clean).get(doc);
    a.repaired = true;
  }
  if (err != simdjson::SUCCESS) {
    fail(a, invalid_json_error(std::string("response body is not JSON (") + simdjson::error_message(err) + ")"),
         body);
    return false;
  }
  if (doc.get(obj) != simdjson::SUCCESS) {
    fail(a, invalid_json_error("response body is not JSON (not an object)"), body);
    return false;
  }
  return true;
}

int token_count(simdjson::simdjson_result<simdjson::dom::element> v) {
  std::int64_t n = 0;
  if (v.get(n) != simdjson::SUCCESS) {
    double d = 0;  // some gateways send 12.0
    if (v.get(d) != simdjson::SUCCESS || !std::isfinite(d) || d < 0) return -1;
    if (d >= double(INT_MAX)) return INT_MAX;  // before the cast: a larger double is UB to cast
    n = static_cast<std::int64_t>(d);
  }
  if (n < 0) return -1;
  return n > INT_MAX ? INT_MAX : static_cast<int>(n);
}

std::string string_field(simdjson::simdjson_result<simdjson::dom::element> v) {
  std::string_view s;
  if (v.get(s) == simdjson::SUCCESS) return std::string(s);
  return {};
}

// The last step of every 2xx answer: the model's text -> data_json.
void finish_with_content(Attempt& a, std::string_view content, const std::string& body) {
  if (trim(content).empty()) {
    fail(a, std::string(kErrorEmptyModelResponse), body);
    return;
  }
  a.raw_response = std::string(content);
  ContentResult c = process_content(content);
  if (c.truncated) a.truncated = true;
  if (!c.ok) {
    a.error = std::move(c.error);
    a.retryable = true;
    return;
  }
  a.success = true;
  a.retryable = false;
  a.error.clear();
  a.data_json = std::move(c.json);
  a.repaired = a.repaired || c.repaired;  // already set when the body held invalid UTF-8
}

// OpenAI message content: a string, or (some gateways) a list of {type:"text", text} parts.
std::string message_content(simdjson::simdjson_result<simdjson::dom::element> v) {
  std::string_view s;
  if (v.get(s) == simdjson::SUCCESS) return std::string(s);
  simdjson::dom::array parts;
  if (v.get(parts) != simdjson::SUCCESS) return {};
  std::string out;
  for (simdjson::dom::element part : parts) {
    std::string_view text;
    if (part["text"].get(text) == simdjson::SUCCESS) out.append(text);
  }
  return out;
}

std::string tool_arguments_text(simdjson::dom::element call) {
  std::string_view s;
  if (call["function"]["arguments"].get(s) == simdjson::SUCCESS) return std::string(s);
  simdjson::dom::element a;
  if (call["function"]["arguments"].get(a) == simdjson::SUCCESS && !a.is_null()) return simdjson::minify(a);
  return {};
}

void write_keep_alive(JsonWriter& w, std::string_view keep_alive) {
  std::string_view keep = trim(keep_alive);
  if (keep.empty()) return;
  // Ollama reads a JSON number as seconds but parses a string as a Go duration, where
  // "300" is an error; so numeric text goes out as a number.
  double seconds = 0;
  auto res = std::from_chars(keep.data(), keep.data() + keep.size(), seconds);
  const bool numeric = res.ec == std::errc() && res.ptr == keep.data() + keep.size() && std::isfinite(seconds);
  w.key("keep_alive");
  if (!numeric)
    w.value(keep);
  else if (seconds == std::trunc(seconds) && std::fabs(seconds) < 9e15)
    w.value(static_cast<std::int64_t>(seconds));
  else
    w.value(seconds);
}

}  // namespace detail

using namespace detail;

std::string render_user_prompt(std::string_view user, std::string_view document) {
  if (user.find(kDocumentPlaceholder) != std::string_view::npos) {
    std::string out;
    out.reserve(user.size() + document.size());
    std::size_t pos = 0;
    for (std::size_t hit; (hit = user.find(kDocumentPlaceholder, pos)) != std::string_view::npos;
         pos = hit + kDocumentPlaceholder.size()) {
      out.append(user.substr(pos, hit - pos));
      out.append(document);
    }
    out.append(user.substr(pos));
    return out;
  }
  if (document.empty()) return std::string(user);
  std::string out;
  out.reserve(user.size() + 2 + document.size());
  out.append(user);
  out += "\n\n";
  out.append(document);
  return out;
}

int fitted_max_tokens(int configured, long max_model_len, const ChatCall& call) noexcept {
  return fitted_max_tokens(configured, max_model_len,
                           call.prompts.system.size() + call.prompts.user.size() +
                               call.prompts.messages_json.size() + call.document_text.size());
}

int fitted_max_tokens(int configured, long max_model_len, std::size_t prompt_bytes) noexcept {
  if (max_model_len <= 0 || configured <= 0) return configured;
  const std::size_t bytes = prompt_bytes;
  const long estimate = static_cast<long>(bytes / 3) + 16;
  const long room = max_model_len - estimate;
  if (room >= configured) return configured;
  return room < 1 ? 1 : static_cast<int>(room);
}

std::optional<std::string> check_chat_call(const ChatCall& call) {
  // text::is_valid_json reuses the thread's parser (no allocation per call) and accepts
  // the valid JSON simdjson refuses (integers beyond 64 bits).
  if (std::string_view schema = trim(call.schema_json); !schema.empty()) {
    if (!text::is_valid_json(schema)) return std::string("json_schema is not valid JSON");
    if (schema.front() != '{') return std::string("json_schema must be a JSON object");
  }
  if (std::string_view messages = trim(call.prompts.messages_json); !messages.empty()) {
    if (!text::is_valid_json(messages)) return std::string("prompts['messages'] is not valid JSON");
    if (messages.front() != '[') return std::string("prompts['messages'] must be a JSON array");
  }
  return std::nullopt;
}

std::string append_reask_messages(std::string_view messages_json, std::string_view answer, std::string_view reask) {
  std::string_view array = trim(messages_json);
  if (array.size() < 2 || array.front() != '[' || array.back() != ']')
    throw std::invalid_argument("the messages to re-ask with are not a JSON array");
  array.remove_suffix(1);
  const bool empty = trim(array.substr(1)).empty();
  std::string out;
  out.reserve(array.size() + answer.size() + reask.size() + 80);
  out.append(array);
  out += empty ? "" : ",";
  out += R"({"role":"assistant","content":)";
  append_json_string(out, answer);
  out += R"(},{"role":"user","content":)";
  append_json_string(out, reask);
  out += "}]";
  return out;
}

ChatCall reask_call(const ChatCall& call, std::string_view answer, std::string_view reask) {
  ChatCall out;
  out.schema_json = call.schema_json;
  out.schema_name = call.schema_name;
  if (!trim(call.prompts.messages_json).empty()) {
    out.prompts.messages_json = append_reask_messages(call.prompts.messages_json, answer, reask);
    return out;
  }
  // The messages write_messages() would send, then the two new ones.
  JsonWriter w;
  w.begin_object();
  write_messages(w, call);
  w.end_object();
  std::string_view written = w.str();  // {"messages":[...]}
  const std::size_t open = written.find('[');
  out.prompts.messages_json =
      append_reask_messages(written.substr(open, written.size() - 1 - open), answer, reask);
  return out;
}

http::Request build_openai_request(const config::OpenAICompatibleConfig& config, const ChatCall& call,
                                   std::string_view request_id) {
  require_valid(call);
  http::Request req = base_request(config, "/v1/chat/completions", request_id);
  JsonWriter w;
  w.begin_object();
  if (!config.model.empty()) w.key("model").value(config.model);
  write_messages(w, call);
  w.key("max_tokens").value(config.max_tokens);
  w.key("temperature").value(config.temperature);
  w.key("response_format").begin_object();
  if (std::string_view schema = trim(call.schema_json); !schema.empty()) {
    w.key("type").value("json_schema");
    w.key("json_schema").begin_object();
    w.key("name").value(call.schema_name.empty() ? std::string_view("extraction") : call.schema_name);
    w.key("schema").raw(schema);
    w.key("strict").value(true);
    w.end_object();
  } else {
    w.key("type").value("json_object");
  }
  w.end_object();
  w.end_object();
  req.body = w.take();
  return req;
}

http::Request build_ollama_request(const config::OllamaConfig& config, const ChatCall& call,
                                   std::string_view request_id) {
  require_valid(call);
  http::Request req = base_request(config, "/api/chat", request_id);
  JsonWriter w;
  w.begin_object();
  w.key("model").value(config.model);
  write_messages(w, call);
  w.key("stream").value(false);
  w.key("format");
  if (std::string_view schema = trim(call.schema_json); !schema.empty())
    w.raw(schema);
  else
    w.value("json");
  w.key("options").begin_object();
  w.key("temperature").value(config.temperature);
  w.key("num_predict").value(config.max_tokens);
  if (config.num_ctx > 0) w.key("num_ctx").value(config.num_ctx);
  w.end_object();
  write_keep_alive(w, config.keep_alive);
  w.end_object();
  req.body = w.take();
  return req;
}

Attempt parse_openai_response(const http::Response& response, std::string_view provider, std::string_view model,
                              std::size_t max_response_bytes) {
  Attempt a = start_attempt(response, provider, model);
  if (classify_non_success(response, max_response_bytes, a)) return a;

  thread_local simdjson::dom::parser parser;
  simdjson::dom::object body;
  if (!parse_body(parser, response.body, body, a)) return a;

  if (std::string m = string_field(body["model"]); !m.empty()) a.model = std::move(m);
  simdjson::dom::object usage;
  if (body["usage"].get(usage) == simdjson::SUCCESS) {
    a.prompt_tokens = token_count(usage["prompt_tokens"]);
    a.completion_tokens = token_count(usage["completion_tokens"]);
  }
  simdjson::dom::array choices;
  simdjson::dom::object choice;
  if (body["choices"].get(choices) != simdjson::SUCCESS || choices.size() == 0 ||
      choices.at(0).get(choice) != simdjson::SUCCESS) {
    fail(a, std::string(kErrorEmptyModelResponse), response.body);
    return a;
  }
  a.finish_reason = string_field(choice["finish_reason"]);
  a.truncated = a.finish_reason == "length";
  finish_with_content(a, message_content(choice["message"]["content"]), response.body);
  return a;
}

Attempt parse_ollama_response(const http::Response& response, std::string_view model,
                              std::size_t max_response_bytes) {
  Attempt a = start_attempt(response, kProviderOllama, model);
  if (classify_non_success(response, max_response_bytes, a)) return a;

  thread_local simdjson::dom::parser parser;
  simdjson::dom::object body;
  if (!parse_body(parser, response.body, body, a)) return a;

  if (std::string m = string_field(body["model"]); !m.empty()) a.model = std::move(m);
  a.prompt_tokens = token_count(body["prompt_eval_count"]);
  a.completion_tokens = token_count(body["eval_count"]);
  a.finish_reason = string_field(body["done_reason"]);
  a.truncated = a.finish_reason == "length";
  finish_with_content(a, string_field(body["message"]["content"]), response.body);
  return a;
}

}  // namespace llmbridge::llm
