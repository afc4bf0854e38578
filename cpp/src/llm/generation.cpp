// Chat, completion and model-list requests and responses for both dialects
// (generation.hpp). Pure functions: no I/O.
#include "llmbridge/llm/generation.hpp"

#include <simdjson.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/content.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/images.hpp"
#include "llmbridge/llm/json_writer.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/repair.hpp"
#include "strings.hpp"
#include "wire.hpp"

namespace llmbridge::llm {
namespace {

using detail::trim;
using simdjson::SUCCESS;
namespace dom = simdjson::dom;

bool is_json_of(std::string_view text, char first) {
  text = trim(text);
  return !text.empty() && text.front() == first && text::is_valid_json(text);
}

void set_accept(http::Request& req, std::string_view type) {
  for (auto& h : req.headers)
    if (h.name == "Accept") h.value = std::string(type);
}

std::string_view dialect_name(const ProviderSpec& spec) { return spec.name; }

// The keys of extra_body, so the builder leaves them to it (merged last, it wins).
struct ExtraBody {
  dom::parser parser;
  dom::object object;
  std::unordered_set<std::string_view> keys;
  bool present = false;

  explicit ExtraBody(std::string_view text) {
    text = trim(text);
    if (text.empty()) return;
    if (parser.parse(text.data(), text.size()).get(object) != SUCCESS) return;
    present = true;
    for (auto field : object) keys.insert(field.key);
  }
  bool overrides(std::string_view key) const { return present && keys.count(key) != 0; }
  void write(JsonWriter& w) const {
    if (!present) return;
    for (auto field : object) w.key(field.key).raw(simdjson::minify(field.value));
  }
};

// A response_format that Ollama can express as `format`: the schema, "json", or nothing
// ("text"). Returns false when it cannot.
bool ollama_format_from_response_format(std::string_view rf, std::string& format_json) {
  dom::parser parser;
  dom::object obj;
  if (parser.parse(rf.data(), rf.size()).get(obj) != SUCCESS) return false;
  std::string_view type;
  if (obj["type"].get(type) != SUCCESS) return false;
  if (type == "text") {
    format_json.clear();
    return true;
  }
  if (type == "json_object") {
    format_json = "\"json\"";
    return true;
  }
  if (type == "json_schema") {
    dom::object schema;
    if (obj["json_schema"]["schema"].get(schema) != SUCCESS) return false;
    format_json = simdjson::minify(schema);
    return true;
  }
  return false;
}

void write_stop(JsonWriter& w, const std::vector<std::string>& stop) {
  if (stop.size() == 1) {
    w.value(stop.front());
    return;
  }
  w.begin_array();
  for (const auto& s : stop) w.value(s);
  w.end_array();
}

// The OpenAI response_format for a json_schema option.
void write_schema_format(JsonWriter& w, std::string_view schema) {
  w.begin_object();
  w.key("type").value("json_schema");
  w.key("json_schema").begin_object();
  w.key("name").value("response");
  w.key("schema").raw(trim(schema));
  w.key("strict").value(true);
  w.end_object();
  w.end_object();
}

http::Request build_openai(const ProviderSpec& spec, const RequestContext& ctx, const GenerateCall& call) {
  const GenerateOptions& o = call.options;
  http::Request req = detail::base_request(ctx.config, spec.path(call.op), ctx.request_id);
  ExtraBody extra(o.extra_body);
  JsonWriter w;
  w.begin_object();
  auto want = [&](std::string_view key) { return !extra.overrides(key); };
  if (!ctx.model.empty() && want("model")) w.key("model").value(ctx.model);
  if (call.op == Operation::kChat) {
    if (want("messages")) w.key("messages").raw(trim(call.messages_json));
  } else if (want("prompt")) {
    w.key("prompt").value(call.prompt);
  }
  if (want("max_tokens")) w.key("max_tokens").value(o.max_tokens.value_or(ctx.config.max_tokens));
  if (want("temperature")) w.key("temperature").value(o.temperature.value_or(ctx.config.temperature));
  if (o.top_p && want("top_p")) w.key("top_p").value(*o.top_p);
  if (!o.stop.empty() && want("stop")) {
    w.key("stop");
    write_stop(w, o.stop);
  }
  if (o.seed && want("seed")) w.key("seed").value(*o.seed);
  if (want("response_format")) {
    if (!trim(o.json_schema).empty()) {
      w.key("response_format");
      write_schema_format(w, o.json_schema);
    } else if (!trim(o.response_format).empty()) {
      w.key("response_format").raw(trim(o.response_format));
    }
  }
  if (!trim(o.tools).empty() && want("tools")) w.key("tools").raw(trim(o.tools));
  if (!trim(o.tool_choice).empty() && want("tool_choice")) w.key("tool_choice").raw(trim(o.tool_choice));
  if (call.stream) {
    if (want("stream")) w.key("stream").value(true);
    if (want("stream_options")) w.key("stream_options").begin_object().key("include_usage").value(true).end_object();
    set_accept(req, "text/event-stream");
  }
  extra.write(w);
  w.end_object();
  req.body = w.take();
  return req;
}

http::Request build_ollama(const ProviderSpec& spec, const RequestContext& ctx, const GenerateCall& call) {
  const GenerateOptions& o = call.options;
  http::Request req = detail::base_request(ctx.config, spec.path(call.op), ctx.request_id);
  ExtraBody extra(o.extra_body);
  JsonWriter w;
  w.begin_object();
  auto want = [&](std::string_view key) { return !extra.overrides(key); };
  if (want("model")) w.key("model").value(ctx.model);
  if (call.op == Operation::kChat) {
    // Content parts (text, images) become Ollama's content string and images list.
    if (want("messages")) w.key("messages").raw(messages_for_ollama(trim(call.messages_json)));
  } else if (want("prompt")) {
    w.key("prompt").value(call.prompt);
  }
  if (want("stream")) w.key("stream").value(call.stream);
  std::string format;
  if (!trim(o.json_schema).empty())
    format = std::string(trim(o.json_schema));
  else if (!trim(o.response_format).empty())
    ollama_format_from_response_format(trim(o.response_format), format);  // checked before
  if (!format.empty() && want("format")) w.key("format").raw(format);
  if (want("options")) {
    w.key("options").begin_object();
    w.key("temperature").value(o.temperature.value_or(ctx.config.temperature));
    if (o.top_p) w.key("top_p").value(*o.top_p);
    if (o.seed) w.key("seed").value(*o.seed);
    if (!o.stop.empty()) {
      w.key("stop").begin_array();
      for (const auto& s : o.stop) w.value(s);
      w.end_array();
    }
    w.key("num_predict").value(o.max_tokens.value_or(ctx.config.max_tokens));
    if (ctx.num_ctx > 0) w.key("num_ctx").value(ctx.num_ctx);
    w.end_object();
  }
  if (!trim(o.tools).empty() && want("tools")) w.key("tools").raw(trim(o.tools));
  if (want("keep_alive")) detail::write_keep_alive(w, ctx.keep_alive);
  extra.write(w);
  w.end_object();
  req.body = w.take();
  if (call.stream) set_accept(req, "application/x-ndjson");
  return req;
}

// reasoning from a leading <think>...</think> block, when the server did not split it.
void split_think_block(ChatResult& r) {
  if (!r.reasoning.empty()) return;
  std::string_view stripped = strip_think_block(r.text);
  if (stripped.size() == r.text.size()) return;
  std::string_view all = r.text;
  const std::size_t open = all.find("<think>");
  const std::size_t close = all.find("</think>");
  if (open != std::string_view::npos && close != std::string_view::npos && close > open)
    r.reasoning = std::string(trim(all.substr(open + 7, close - open - 7)));
  r.text = std::string(stripped);
}

void add_tool_call(ChatResult& r, int index, std::string id, std::string name, std::string args_text) {
  ToolCall t;
  t.index = index;
  t.id = std::move(id);
  t.name = std::move(name);
  t.arguments_text = std::move(args_text);
  t.arguments_json = repair_arguments(t.arguments_text, t.arguments_repaired);
  r.tool_calls.push_back(std::move(t));
}

void read_openai_tool_calls(ChatResult& r, dom::element message) {
  dom::array calls;
  if (message["tool_calls"].get(calls) != SUCCESS) return;
  int i = 0;
  for (dom::element c : calls)
    add_tool_call(r, i++, detail::string_field(c["id"]), detail::string_field(c["function"]["name"]),
                  detail::tool_arguments_text(c));
}

void read_ollama_tool_calls(ChatResult& r, dom::element message) {
  dom::array calls;
  if (message["tool_calls"].get(calls) != SUCCESS) return;
  int i = 0;
  for (dom::element c : calls) {
    int index = i++;
    std::int64_t given = 0;
    if (c["function"]["index"].get(given) == SUCCESS && given >= 0 && given < 1 << 20)
      index = static_cast<int>(given);
    add_tool_call(r, index, detail::string_field(c["id"]), detail::string_field(c["function"]["name"]),
                  detail::tool_arguments_text(c));
  }
}

// The last step of a 2xx answer: text, tool calls and (with want_json) data.
void finish_result(ChatResult& r, bool want_json, const std::string& body) {
  split_think_block(r);
  if (trim(r.text).empty() && r.tool_calls.empty() && (want_json || r.finish_reason.empty())) {
    // No answer to parse, or a server that did not say it finished. A plain-text answer
    // that is empty with a finish reason (a stop string matched the first token) is an
    // answer like any other, as the stream of the same answer is.
    detail::fail(r, std::string(kErrorEmptyModelResponse), body);
    return;
  }
  r.raw_response = r.text;
  if (want_json && !trim(r.text).empty()) {
    ContentResult c = process_content(r.text);
    if (c.truncated) r.truncated = true;
    if (!c.ok) {
      r.error = std::move(c.error);
      r.retryable = true;
      return;
    }
    r.data_json = std::move(c.json);
    r.repaired = r.repaired || c.repaired;
  }
  r.success = true;
  r.retryable = false;
  r.error.clear();
}

}  // namespace

std::string repair_arguments(std::string_view text, bool& repaired) {
  repaired = false;
  if (trim(text).empty()) return "{}";  // a tool without parameters
  ContentResult c = process_content(text);
  if (!c.ok) return {};
  repaired = c.repaired;
  return std::move(c.json);
}

std::optional<std::string> check_generate_call(const ProviderSpec& spec, const GenerateCall& call) {
  const GenerateOptions& o = call.options;
  const bool ollama = spec.dialect == Dialect::kOllama;
  const std::string who = std::string(dialect_name(spec));
  if (call.op == Operation::kChat) {
    if (!is_json_of(call.messages_json, '[')) return std::string("messages must be a JSON array of messages");
  } else if (call.op != Operation::kCompletion) {
    return std::string("only chat and completion calls are generation calls");
  }
  if (!trim(o.json_schema).empty() && !is_json_of(o.json_schema, '{'))
    return std::string("json_schema must be a JSON object (a JSON Schema)");
  if (!trim(o.response_format).empty()) {
    if (!is_json_of(o.response_format, '{')) return std::string("response_format must be a JSON object");
    if (!trim(o.json_schema).empty())
      return std::string("give json_schema or response_format, not both");
    std::string ignored;
    if (ollama && !ollama_format_from_response_format(trim(o.response_format), ignored))
      return "response_format cannot be expressed for " + who +
             " (it takes type text, json_object, or json_schema with a schema)";
  }
  if (!trim(o.tools).empty()) {
    if (!is_json_of(o.tools, '[')) return std::string("tools must be a JSON array of tool definitions");
    if (call.op == Operation::kCompletion)
      return "tools are not supported by complete() (" + std::string(spec.path(call.op)) +
             " takes no tools); use chat()";
  }
  if (!trim(o.tool_choice).empty()) {
    if (ollama) return "tool_choice is not supported by " + who + " (its API has no such field)";
    if (call.op == Operation::kCompletion)
      return "tool_choice is not supported by complete(); use chat()";
    if (!text::is_valid_json(trim(o.tool_choice))) return std::string("tool_choice is not valid JSON");
  }
  if (!trim(o.extra_body).empty() && !is_json_of(o.extra_body, '{'))
    return std::string("extra_body must be a JSON object");
  if (o.max_tokens && *o.max_tokens < 1) return std::string("max_tokens must be >= 1");
  if (o.temperature && !(*o.temperature >= 0 && *o.temperature <= 100))
    return std::string("temperature must be between 0 and 100");
  if (o.top_p && !(*o.top_p >= 0 && *o.top_p <= 1)) return std::string("top_p must be between 0 and 1");
  if (!(o.timeout_s >= 0)) return std::string("timeout must be >= 0");
  if (!(o.stream_idle_timeout_s > 0)) return std::string("stream_idle_timeout must be > 0");
  return std::nullopt;
}

http::Request build_generate_request(const ProviderSpec& spec, const RequestContext& context,
                                     const GenerateCall& call) {
  if (auto problem = check_generate_call(spec, call)) throw std::invalid_argument(*problem);
  http::Request req = spec.dialect == Dialect::kOllama ? build_ollama(spec, context, call)
                                                       : build_openai(spec, context, call);
  if (call.options.timeout_s > 0) req.timeout_ms = detail::to_ms(call.options.timeout_s, req.timeout_ms);
  return req;
}

ChatResult parse_generate_response(const ProviderSpec& spec, Operation op, const http::Response& response,
                                   std::string_view model, bool want_json, std::size_t max_response_bytes) {
  ChatResult r;
  static_cast<Attempt&>(r) = detail::start_attempt(response, spec.name, model);
  if (detail::classify_non_success(response, max_response_bytes, r)) return r;

  thread_local dom::parser parser;
  dom::object body;
  if (!detail::parse_body(parser, response.body, body, r)) return r;
  if (std::string m = detail::string_field(body["model"]); !m.empty()) r.model = std::move(m);

  if (spec.dialect == Dialect::kOllama) {
    std::string_view error;
    if (body["error"].get(error) == SUCCESS) {  // a 200 that carries an error
      detail::fail(r, http_error(500), response.body);
      r.retryable = true;
      return r;
    }
    r.prompt_tokens = detail::token_count(body["prompt_eval_count"]);
    r.completion_tokens = detail::token_count(body["eval_count"]);
    r.finish_reason = detail::string_field(body["done_reason"]);
    if (op == Operation::kChat) {
      dom::element message;
      if (body["message"].get(message) == SUCCESS) {
        r.text = detail::string_field(message["content"]);
        r.reasoning = detail::string_field(message["thinking"]);
        read_ollama_tool_calls(r, message);
      }
    } else {
      r.text = detail::string_field(body["response"]);
      r.reasoning = detail::string_field(body["thinking"]);
    }
  } else {
    dom::object usage;
    if (body["usage"].get(usage) == SUCCESS) {
      r.prompt_tokens = detail::token_count(usage["prompt_tokens"]);
      r.completion_tokens = detail::token_count(usage["completion_tokens"]);
    }
    dom::array choices;
    dom::element choice;
    if (body["choices"].get(choices) != SUCCESS || choices.size() == 0 || choices.at(0).get(choice) != SUCCESS) {
      detail::fail(r, std::string(kErrorEmptyModelResponse), response.body);
      return r;
    }
    r.finish_reason = detail::string_field(choice["finish_reason"]);
    if (op == Operation::kChat) {
      dom::element message;
      if (choice["message"].get(message) == SUCCESS) {
        r.text = detail::message_content(message["content"]);
        r.reasoning = detail::string_field(message["reasoning"]);
        if (r.reasoning.empty()) r.reasoning = detail::string_field(message["reasoning_content"]);
        read_openai_tool_calls(r, message);
      }
    } else {
      r.text = detail::string_field(choice["text"]);
    }
  }
  r.truncated = r.finish_reason == "length";
  finish_result(r, want_json, response.body);
  return r;
}

GenerateCall reask_call(const GenerateCall& call, std::string_view answer, std::string_view reask) {
  GenerateCall out = call;
  if (call.op == Operation::kChat) {
    out.messages_json = append_reask_messages(call.messages_json, answer, reask);
  } else {
    out.prompt += "\n\n";
    out.prompt.append(reask);
  }
  return out;
}

http::Request build_models_request(const ProviderSpec& spec, const config::ProviderConfig& config) {
  http::Request r = detail::base_request(config, spec.models_path, "");
  r.method = "GET";
  r.body.clear();
  r.headers.erase(std::remove_if(r.headers.begin(), r.headers.end(),
                                 [](const http::Header& h) { return h.name == "Content-Type"; }),
                  r.headers.end());
  return r;
}

ModelsResult parse_models_response(const ProviderSpec& spec, const http::Response& response) {
  ModelsResult m;
  static_cast<Attempt&>(m) = detail::start_attempt(response, spec.name, "");
  if (detail::classify_non_success(response, http::Request{}.max_response_bytes, m)) return m;
  thread_local dom::parser parser;
  dom::object body;
  if (!detail::parse_body(parser, response.body, body, m)) return m;
  dom::array list;
  const bool ollama = spec.dialect == Dialect::kOllama;
  if (body[ollama ? "models" : "data"].get(list) != SUCCESS) {
    detail::fail(m, invalid_json_error(ollama ? "no 'models' list in the answer" : "no 'data' list in the answer"),
                 response.body);
    return m;
  }
  for (dom::element e : list) {
    ModelInfo info;
    info.id = detail::string_field(e[ollama ? "name" : "id"]);
    if (info.id.empty() && ollama) info.id = detail::string_field(e["model"]);
    if (info.id.empty()) continue;
    info.owned_by = detail::string_field(e["owned_by"]);
    std::int64_t len = 0;
    if (e["max_model_len"].get(len) == SUCCESS && len > 0) info.max_model_len = static_cast<long>(len);
    m.models.push_back(std::move(info));
  }
  m.success = true;
  m.retryable = false;
  m.error.clear();
  return m;
}

}  // namespace llmbridge::llm
