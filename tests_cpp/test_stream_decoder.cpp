// StreamDecoder fed by the real SseParser / NdjsonParser: recorded and hand-written
// vLLM, llama-server and Ollama streams, tool-call deltas, errors sent mid-stream, bad
// payloads; each body fed whole, split in two at every byte and fed byte by byte must
// give the same events. Also finish_metrics and the StreamChannel.
#include <simdjson.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "llmbridge/http/stream_parser.hpp"
#include "llmbridge/llm/stream.hpp"
#include "llmbridge/text/utf8.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;
using Clock = std::chrono::steady_clock;

namespace {

// An event as comparable text.
std::string describe(const StreamEvent& e) {
  std::ostringstream o;
  if (auto* t = std::get_if<Token>(&e)) o << "T" << t->index << ":" << t->text;
  else if (auto* r = std::get_if<ReasoningToken>(&e)) o << "R" << r->index << ":" << r->text;
  else if (auto* d = std::get_if<ToolCallDelta>(&e)) o << "D" << d->index << ":" << d->id << "|" << d->name << "|" << d->arguments;
  else if (auto* s = std::get_if<StreamStarted>(&e)) o << "Started:" << s->request_id;
  else if (auto* n = std::get_if<StreamEndEvent>(&e)) o << "End:" << n->finish_reason;
  else if (auto* x = std::get_if<StreamErrorEvent>(&e)) o << "Error:" << x->error;
  return o.str();
}

// What one run of parser + decoder gave: the events, then the decoder's final state.
struct Run {
  std::vector<std::string> events;
  bool marker = false;  // [DONE] (SSE) or done:true (NDJSON)
  http::StreamEnd end = http::StreamEnd::kCut;
  std::string error, error_message, finish_reason, model;
  int error_status = 0, prompt_tokens = -1, completion_tokens = -1;
  long tokens = 0;
  std::vector<std::string> tool_calls;  // "index|id|name|text|json|repaired"

  bool operator==(const Run& o) const {
    return events == o.events && marker == o.marker && end == o.end && error == o.error &&
           error_message == o.error_message && finish_reason == o.finish_reason && model == o.model &&
           error_status == o.error_status && prompt_tokens == o.prompt_tokens &&
           completion_tokens == o.completion_tokens && tokens == o.tokens && tool_calls == o.tool_calls;
  }
};

std::ostream& operator<<(std::ostream& os, const Run& r) {
  os << "events:";
  for (const auto& e : r.events) os << " [" << e << "]";
  return os << " marker=" << r.marker << " error=" << r.error << " finish=" << r.finish_reason
            << " tokens=" << r.tokens;
}

void finish_run(Run& run, const StreamDecoder& d) {
  run.error = d.error();
  run.error_message = d.error_message();
  run.error_status = d.error_status();
  run.finish_reason = d.finish_reason();
  run.model = d.model();
  run.prompt_tokens = d.prompt_tokens();
  run.completion_tokens = d.completion_tokens();
  run.tokens = d.tokens();
  for (const ToolCall& t : d.tool_calls())
    run.tool_calls.push_back(std::to_string(t.index) + "|" + t.id + "|" + t.name + "|" + t.arguments_text + "|" +
                             t.arguments_json + "|" + (t.arguments_repaired ? "repaired" : "as-is"));
}

Run run_pieces(StreamFormat format, Dialect dialect, Operation op, const std::vector<std::string_view>& pieces) {
  Run run;
  StreamDecoder decoder(dialect, op);
  const StreamDecoder::Sink sink = [&](StreamEvent&& e) { run.events.push_back(describe(e)); };
  if (format == StreamFormat::kSse) {
    http::SseParser parser;
    for (std::string_view p : pieces) {
      REQUIRE(parser.feed(p, [&](const http::SseEvent& ev) {
        if (ev.done) {
          run.marker = true;
          return;
        }
        decoder.feed(ev.data, sink);
      }) == http::StreamError::kNone);
    }
    run.end = parser.finish();
  } else {
    http::NdjsonParser parser;
    auto on_line = [&](const http::NdjsonLine& line) {
      decoder.feed(line.json, sink);
      if (decoder.done()) run.marker = true;
    };
    for (std::string_view p : pieces) REQUIRE(parser.feed(p, on_line) == http::StreamError::kNone);
    run.end = parser.finish(on_line);
  }
  finish_run(run, decoder);
  return run;
}

// The body fed whole, then split in two at every byte, then byte by byte: all the same.
Run run_all_ways(StreamFormat format, Dialect dialect, Operation op, std::string_view body) {
  const Run whole = run_pieces(format, dialect, op, {body});
  for (std::size_t i = 0; i <= body.size(); ++i) {
    const Run split = run_pieces(format, dialect, op, {body.substr(0, i), body.substr(i)});
    if (!(split == whole)) {
      INFO("split at byte " << i << " of " << body.size());
      CHECK(split == whole);
      break;  // one failure says enough
    }
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
  CHECK(run_pieces(format, dialect, op, bytes) == whole);
  return whole;
}

Run sse_chat(std::string_view body) {
  return run_all_ways(StreamFormat::kSse, Dialect::kOpenAI, Operation::kChat, body);
}

std::string sample_body(const std::string& relative) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const std::string path = std::string(LLMBRIDGE_WIRE_SAMPLES_DIR) + "/" + relative;
  REQUIRE(parser.load(path).get(doc) == simdjson::SUCCESS);
  std::string_view body;
  REQUIRE(doc["body"].get(body) == simdjson::SUCCESS);
  return std::string(body);
}

std::string sse(std::initializer_list<std::string_view> payloads) {
  std::string out;
  for (std::string_view p : payloads) out += "data: " + std::string(p) + "\n\n";
  return out;
}

std::string chunk(std::string_view delta, std::string_view finish = "null") {
  return R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[{"index":0,"delta":)" +
         std::string(delta) + R"(,"logprobs":null,"finish_reason":)" + std::string(finish) + "}]}";
}

const std::vector<std::string> kStopTokens = {"T0:90", "T1:90", "T2:90", "T3:90", "T4:90", "T5:90"};

}  // namespace

// ---------------------------------------------------------------- OpenAI-compatible SSE

TEST_CASE("stream decoder: recorded vLLM chat stream with usage", "[stream]") {
  const Run r = sse_chat(sample_body("vllm/chat_stream_include_usage.json"));
  CHECK(r.events == kStopTokens);  // the role chunk's content "" is no token
  CHECK(r.marker);
  CHECK(r.end == http::StreamEnd::kDone);
  CHECK(r.error.empty());
  CHECK(r.finish_reason == "length");
  CHECK(r.model == "tiny");
  CHECK(r.prompt_tokens == 73);
  CHECK(r.completion_tokens == 6);
  CHECK(r.tokens == 6);
  CHECK(r.tool_calls.empty());
}

TEST_CASE("stream decoder: recorded llama-server stream (content null in the first delta)", "[stream]") {
  const Run r = sse_chat(sample_body("llama/stream_include_usage.json"));
  CHECK(r.events == std::vector<std::string>{"T0:\"", "T1:\"", "T2:\"", "T3:\"", "T4:\"", "T5:\""});
  CHECK(r.marker);
  CHECK(r.finish_reason == "length");
  CHECK(r.prompt_tokens == 85);
  CHECK(r.completion_tokens == 6);
  CHECK(r.error.empty());
}

TEST_CASE("stream decoder: vLLM chat: role chunk, content, text with the finish, usage, [DONE]", "[stream]") {
  const std::string body = sse({
      chunk(R"({"role":"assistant","content":""})"),
      chunk(R"({"reasoning":"think "})"),
      chunk(R"({"reasoning_content":"more"})"),
      chunk(R"({"content":"Hel"})"),
      chunk(R"({"content":"lo w\u00f6rld"})"),
      chunk(R"({"content":" 日本"})"),
      chunk(R"({"content":"!"})", R"("stop")"),  // text and finish in one chunk: text first
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}})",
      "[DONE]",
  });
  const Run r = sse_chat(body);
  CHECK(r.events ==
        std::vector<std::string>{"R0:think ", "R1:more", "T0:Hel", "T1:lo wörld", "T2: 日本", "T3:!"});
  CHECK(r.marker);
  CHECK(r.finish_reason == "stop");
  CHECK(r.prompt_tokens == 5);
  CHECK(r.completion_tokens == 4);
  CHECK(r.tokens == 4);

  // OpenAI's explicit nulls and an empty final delta change nothing.
  const Run o = sse_chat(sse({
      R"({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":null},"finish_reason":null}],"usage":null})",
      R"({"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}],"usage":null})",
      R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})",
      "[DONE]",
  }));
  CHECK(o.events == std::vector<std::string>{"T0:ok"});
  CHECK(o.finish_reason == "stop");
  CHECK(o.prompt_tokens == -1);

  // n > 1: only the first choice is streamed.
  const Run n = sse_chat(sse({
      R"({"choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}}]})",
      R"({"choices":[{"index":1,"delta":{},"finish_reason":"length"}]})",
      R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
      "[DONE]",
  }));
  CHECK(n.events == std::vector<std::string>{"T0:A"});
  CHECK(n.finish_reason == "stop");
}

TEST_CASE("stream decoder: completions stream", "[stream]") {
  const std::string body = sse({
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"tiny","choices":[{"index":0,"text":" a","logprobs":null,"finish_reason":null}]})",
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"tiny","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":null}]})",
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"tiny","choices":[{"index":0,"text":" time","logprobs":null,"finish_reason":"length","stop_reason":null}]})",
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"tiny","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})",
      "[DONE]",
  });
  const Run r = run_all_ways(StreamFormat::kSse, Dialect::kOpenAI, Operation::kCompletion, body);
  CHECK(r.events == std::vector<std::string>{"T0: a", "T1: time"});
  CHECK(r.finish_reason == "length");
  CHECK(r.completion_tokens == 2);
  CHECK(r.marker);
}

TEST_CASE("stream decoder: tool-call deltas accumulate per index, arguments repaired", "[stream][tools]") {
  const std::string body = sse({
      chunk(R"({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]})"),
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]})"),
      chunk(R"({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}]})"),
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\""}}]})"),
      chunk(R"({"tool_calls":[{"index":2,"id":"call_c","type":"function","function":{"name":"noargs"}}]})"),
      chunk("{}", R"("tool_calls")"),
      "[DONE]",
  });
  const Run r = sse_chat(body);
  CHECK(r.events == std::vector<std::string>{
                        "D0:call_a|weather|",
                        "D0:||{\"city\": ",
                        "D1:call_b|time|{}",
                        "D0:||\"Paris\"",
                        "D2:call_c|noargs|",
                    });
  CHECK(r.finish_reason == "tool_calls");
  CHECK(r.tokens == 0);
  CHECK(r.tool_calls == std::vector<std::string>{
                            "0|call_a|weather|{\"city\": \"Paris\"|{\"city\":\"Paris\"}|repaired",
                            "1|call_b|time|{}|{}|as-is",
                            "2|call_c|noargs||{}|as-is",
                        });
}

TEST_CASE("stream decoder: an error object mid-stream fails the stream", "[stream][errors]") {
  // vLLM: the error event, then still [DONE].
  const Run v = sse_chat(sse({
      chunk(R"({"content":"par"})"),
      R"({"error":{"message":"GenerationError: out of memory","type":"InternalServerError","param":null,"code":503}})",
      chunk(R"({"content":"ignored"})"),
      "[DONE]",
  }));
  CHECK(v.events == std::vector<std::string>{"T0:par"});
  CHECK(v.error == "http_503");
  CHECK(v.error_status == 503);
  CHECK(v.error_message == "GenerationError: out of memory");
  CHECK(v.marker);  // the parser still saw [DONE]; the decoder ignored what followed the error

  // A non-numeric code (OpenAI's strings) or none: 500.
  const Run s = sse_chat(sse({R"({"error":{"message":"slow down","code":"rate_limit_exceeded"}})"}));
  CHECK(s.error == "http_500");
  CHECK(s.error_status == 500);
  CHECK(s.error_message == "slow down");
  const Run empty = sse_chat(sse({R"({"error":{}})"}));
  CHECK(empty.error == "http_500");
  CHECK_FALSE(empty.error_message.empty());
  // "error": null is no error.
  const Run null = sse_chat(sse({R"({"error":null,"choices":[{"index":0,"delta":{"content":"x"}}]})", "[DONE]"}));
  CHECK(null.error.empty());
  CHECK(null.events == std::vector<std::string>{"T0:x"});

  // Ollama: one last line {"error": "..."}.
  const Run o = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kChat,
                             "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}\n"
                             "{\"error\":\"model runner has unexpectedly stopped\"}\n");
  CHECK(o.events == std::vector<std::string>{"T0:a"});
  CHECK(o.error == "http_500");
  CHECK(o.error_status == 500);
  CHECK(o.error_message == "model runner has unexpectedly stopped");
  CHECK_FALSE(o.marker);
}

TEST_CASE("stream decoder: a payload that is not a JSON object is invalid_json", "[stream][errors]") {
  const Run r = sse_chat(sse({chunk(R"({"content":"a"})"), "<html>502 Bad Gateway</html>", chunk(R"({"content":"b"})")}));
  CHECK(r.events == std::vector<std::string>{"T0:a"});
  CHECK(r.error.rfind("invalid_json: a stream event is not a JSON object (", 0) == 0);
  CHECK(r.error_status == 0);
  CHECK(r.error_message == "<html>502 Bad Gateway</html>");

  const Run arr = sse_chat(sse({"[1,2]"}));
  CHECK(arr.error == "invalid_json: a stream event is not a JSON object (not an object)");

  const Run cut = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kCompletion,
                               "{\"response\":\"a\",\"done\":false}\n{\"response\":\"b\",\"do");
  CHECK(cut.events == std::vector<std::string>{"T0:a"});
  CHECK(cut.error.rfind("invalid_json: ", 0) == 0);
  CHECK(cut.end == http::StreamEnd::kCut);

  // A long bad payload is quoted as an excerpt.
  StreamDecoder d(Dialect::kOpenAI, Operation::kChat);
  d.feed(std::string(5000, 'x'), [](StreamEvent&&) { FAIL("no event"); });
  CHECK(d.failed());
  CHECK(d.error_message().size() < 300);
  // After a failure every payload is ignored.
  d.feed(chunk(R"({"content":"late"})"), [](StreamEvent&&) { FAIL("no event after a failure"); });
  CHECK(d.tokens() == 0);
}

TEST_CASE("stream decoder: invalid UTF-8 in a token becomes U+FFFD", "[stream][utf8]") {
  const Run r = sse_chat(sse({chunk("{\"content\":\"a\xff b\"}"), chunk("{\"content\":\"\xe6\x97\"}"), "[DONE]"}));
  CHECK(r.error.empty());
  CHECK(r.events == std::vector<std::string>{"T0:a\xEF\xBF\xBD b", "T1:\xEF\xBF\xBD"});

  const Run o = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kCompletion,
                             "{\"response\":\"\xc3(\",\"done\":false}\n{\"response\":\"\",\"done\":true}\n");
  CHECK(o.events == std::vector<std::string>{"T0:\xEF\xBF\xBD("});
  CHECK(o.marker);
}

// ---------------------------------------------------------------- Ollama NDJSON

TEST_CASE("stream decoder: Ollama chat NDJSON with thinking and a done line", "[stream][ollama]") {
  const std::string body =
      "{\"model\":\"qwen3:8b\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"hmm\"},\"done\":false}\n"
      "{\"model\":\"qwen3:8b\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\r\n"
      "\n"
      "{\"model\":\"qwen3:8b\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"lö\"},\"done\":false}\n"
      "{\"model\":\"qwen3:8b\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
      "\"done_reason\":\"stop\",\"total_duration\":123,\"prompt_eval_count\":12,\"eval_count\":3}\n";
  const Run r = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kChat, body);
  CHECK(r.events == std::vector<std::string>{"R0:hmm", "T0:Hel", "T1:lö"});
  CHECK(r.marker);
  CHECK(r.end == http::StreamEnd::kBetweenEvents);
  CHECK(r.finish_reason == "stop");
  CHECK(r.model == "qwen3:8b");
  CHECK(r.prompt_tokens == 12);
  CHECK(r.completion_tokens == 3);
  CHECK(r.error.empty());

  // The last line may lack its LF.
  std::string no_lf = body;
  no_lf.pop_back();
  const Run n = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kChat, no_lf);
  CHECK(n.events == r.events);
  CHECK(n.marker);
  CHECK(n.end == http::StreamEnd::kCut);
}

TEST_CASE("stream decoder: Ollama generate NDJSON", "[stream][ollama]") {
  const std::string body =
      "{\"model\":\"llama3.1\",\"response\":\"Once\",\"done\":false}\n"
      "{\"model\":\"llama3.1\",\"response\":\" upon\",\"thinking\":\"t\",\"done\":false}\n"
      "{\"model\":\"llama3.1\",\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"context\":[1,2,3],\"eval_count\":2}\n";
  const Run r = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kCompletion, body);
  CHECK(r.events == std::vector<std::string>{"T0:Once", "R0:t", "T1: upon"});
  CHECK(r.finish_reason == "length");
  CHECK(r.completion_tokens == 2);
  CHECK(r.prompt_tokens == -1);
  CHECK(r.marker);

  // Without a done:true line the stream is not complete.
  const Run cut = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kCompletion,
                               "{\"response\":\"Once\",\"done\":false}\n");
  CHECK_FALSE(cut.marker);
  CHECK(cut.finish_reason.empty());
}

TEST_CASE("stream decoder: Ollama tool calls arrive whole, with object arguments", "[stream][ollama][tools]") {
  const std::string body =
      "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"weather\",\"arguments\":{\"city\":\"Paris\"}}}]},\"done\":false}\n"
      "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"t2\",\"function\":{\"name\":\"time\",\"arguments\":{}}}]},\"done\":false}\n"
      "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n";
  const Run r = run_all_ways(StreamFormat::kNdjson, Dialect::kOllama, Operation::kChat, body);
  CHECK(r.events == std::vector<std::string>{"D0:|weather|{\"city\":\"Paris\"}", "D1:t2|time|{}"});
  CHECK(r.tool_calls == std::vector<std::string>{"0||weather|{\"city\":\"Paris\"}|{\"city\":\"Paris\"}|as-is",
                                                 "1|t2|time|{}|{}|as-is"});
}

// ---------------------------------------------------------------- metrics

TEST_CASE("stream metrics: ttft, total and tokens per second", "[stream][metrics]") {
  StreamMetrics m;
  m.tokens = 5;
  finish_metrics(m, 100.0, 1100.0);
  CHECK(m.ttft_ms == 100.0);
  CHECK(m.total_ms == 1100.0);
  CHECK(m.tokens_per_s == Approx(4.0));  // 4 tokens after the first, in 1 s

  m.tokens = 11;
  finish_metrics(m, 50.0, 550.0);
  CHECK(m.tokens_per_s == Approx(20.0));

  m.tokens = 1;  // < 2 tokens: no rate
  finish_metrics(m, 100.0, 1100.0);
  CHECK(m.tokens_per_s == 0);
  CHECK(m.ttft_ms == 100.0);

  m.tokens = 0;
  finish_metrics(m, -1.0, 300.0);
  CHECK(m.ttft_ms == -1.0);
  CHECK(m.total_ms == 300.0);
  CHECK(m.tokens_per_s == 0);

  m.tokens = 3;  // every token at the same instant: no rate rather than infinity
  finish_metrics(m, 200.0, 200.0);
  CHECK(m.tokens_per_s == 0);
}

// ---------------------------------------------------------------- channel

TEST_CASE("stream channel: the waker runs only when the channel goes from empty to non-empty",
          "[stream][channel]") {
  StreamChannel ch(100);
  int wakes = 0;
  ch.set_waker([&] { ++wakes; });
  CHECK(ch.take().empty());
  CHECK_FALSE(ch.push(Token{"a", 0}));
  CHECK(wakes == 1);
  CHECK_FALSE(ch.push(Token{"b", 1}));
  CHECK_FALSE(ch.push(Token{"c", 2}));
  CHECK(wakes == 1);
  CHECK(ch.buffered() == 3);
  auto got = ch.take();
  REQUIRE(got.size() == 3);
  CHECK(describe(got[0]) == "T0:a");
  CHECK(describe(got[2]) == "T2:c");
  CHECK(ch.buffered() == 0);
  ch.push(Token{"d", 3});
  CHECK(wakes == 2);
  ch.close(StreamEndEvent{});  // not empty: no wake
  CHECK(wakes == 2);
  CHECK(ch.take().size() == 2);
  CHECK(ch.closed());
}

TEST_CASE("stream channel: push says when high_water is reached; take resumes once", "[stream][channel]") {
  StreamChannel ch(3);
  int resumes = 0;
  ch.set_resume([&] { ++resumes; });
  CHECK_FALSE(ch.push(Token{"a", 0}));
  CHECK_FALSE(ch.push(Token{"b", 1}));
  CHECK_FALSE(ch.paused());
  CHECK(ch.push(Token{"c", 2}));  // the third reaches high_water
  CHECK(ch.paused());
  CHECK(ch.push(Token{"d", 3}));  // a piece already taken is still accepted
  CHECK(ch.buffered() == 4);
  CHECK(resumes == 0);
  CHECK(ch.take().size() == 4);
  CHECK(resumes == 1);
  CHECK_FALSE(ch.paused());
  CHECK(ch.take().empty());
  CHECK(resumes == 1);  // once per pause
  CHECK_FALSE(ch.push(Token{"e", 4}));
  CHECK(ch.take().size() == 1);
  CHECK(resumes == 1);  // not paused: nothing to resume
}

TEST_CASE("stream channel: close is final", "[stream][channel]") {
  StreamChannel ch(2);
  int wakes = 0, resumes = 0;
  ch.set_waker([&] { ++wakes; });
  ch.set_resume([&] { ++resumes; });
  ch.push(Token{"a", 0});
  CHECK(ch.push(Token{"b", 1}));
  StreamErrorEvent err;
  err.error = "timeout";
  ch.close(std::move(err));
  CHECK(ch.closed());
  CHECK_FALSE(ch.push(Token{"late", 2}));  // dropped
  StreamErrorEvent again;
  again.error = "cancelled";
  ch.close(std::move(again));  // ignored: the first close wins
  auto got = ch.take();
  REQUIRE(got.size() == 3);
  CHECK(describe(got[2]) == "Error:timeout");
  CHECK(resumes == 0);  // closed: nothing left to resume
  CHECK(ch.take().empty());
  CHECK(ch.closed());

  StreamChannel empty;
  int w = 0;
  empty.set_waker([&] { ++w; });
  empty.close(StreamEndEvent{});
  CHECK(w == 1);  // the last event wakes a waiting consumer too
}

TEST_CASE("stream channel: wait_take waits for an event or the timeout", "[stream][channel]") {
  StreamChannel ch;
  auto t0 = Clock::now();
  CHECK(ch.wait_take(0.05).empty());
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  CHECK(waited >= 0.04);
  CHECK(waited < 5.0);

  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ch.push(Token{"x", 0});
  });
  t0 = Clock::now();
  auto got = ch.wait_take(5.0);
  producer.join();
  REQUIRE(got.size() == 1);
  CHECK(describe(got[0]) == "T0:x");
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 5.0);

  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ch.close(StreamEndEvent{});
  });
  got = ch.wait_take(-1);  // without limit
  closer.join();
  REQUIRE(got.size() == 1);
  CHECK(describe(got[0]) == "End:");
}

TEST_CASE("decoder: a payload that is not JSON fails with a message that is valid UTF-8 (fuzz regression)",
          "[stream][decoder]") {
  StreamDecoder d(Dialect::kOllama, Operation::kCompletion);
  std::string payload(40, '\xff');
  payload += "{\"response\":\"x\"}";
  d.feed(payload, [](StreamEvent&&) {});
  REQUIRE(d.failed());
  CHECK(d.error().rfind("invalid_json: ", 0) == 0);
  CHECK(text::is_valid_utf8(d.error_message()));
  CHECK(d.error_message().find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD in place of the bytes
}
