// libFuzzer target for llm::StreamDecoder behind the SSE / NDJSON parsers, as the client
// runs them: every payload a server may send goes through the decoder. The input is
//   [mode byte] [split byte] [body...]
// where the mode picks the dialect (OpenAI SSE or Ollama NDJSON) and the operation (chat
// or completion), and the split byte where the body is cut in two. Invariants: no crash;
// the events (and the decoder's end state) do not depend on the cut; every text is valid
// UTF-8; Token indices count up from 0; nothing is decoded after the decoder failed; the
// accumulated tool calls hold valid JSON arguments or none.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "llmbridge/http/stream_parser.hpp"
#include "llmbridge/llm/stream.hpp"
#include "llmbridge/text/repair.hpp"
#include "llmbridge/text/utf8.hpp"

using llmbridge::fuzz::check;
using llmbridge::fuzz::show;
using namespace llmbridge;

namespace {

struct Run {
  std::string log;
  bool failed = false;
  std::string error;
  std::string finish_reason;
  int prompt_tokens = -1, completion_tokens = -1;
  bool done = false;
  bool operator==(const Run& o) const {
    return log == o.log && failed == o.failed && error == o.error && finish_reason == o.finish_reason &&
           prompt_tokens == o.prompt_tokens && completion_tokens == o.completion_tokens && done == o.done;
  }
};

void text_ok(std::string_view s, std::string_view body, const char* what) {
  check(text::is_valid_utf8(s), "decoder_text_is_utf8", [&] { return std::string(what) + " in body " + show(body); });
}

Run decode(llm::Dialect dialect, llm::Operation op, const std::vector<std::string_view>& pieces,
           std::string_view body) {
  llm::StreamDecoder decoder(dialect, op);
  Run run;
  long next_token = 0;
  bool failed_before = false;
  const llm::StreamDecoder::Sink sink = [&](llm::StreamEvent&& e) {
    check(!failed_before, "decoder_nothing_after_failure", [&] { return "body " + show(body); });
    if (auto* t = std::get_if<llm::Token>(&e)) {
      check(t->index == next_token++, "decoder_token_index_counts", [&] { return "body " + show(body); });
      text_ok(t->text, body, "token");
      run.log += "T" + std::to_string(t->text.size()) + ":" + t->text;
    } else if (auto* r = std::get_if<llm::ReasoningToken>(&e)) {
      text_ok(r->text, body, "reasoning");
      run.log += "R" + std::to_string(r->text.size()) + ":" + r->text;
    } else if (auto* d = std::get_if<llm::ToolCallDelta>(&e)) {
      text_ok(d->arguments, body, "tool arguments");
      text_ok(d->name, body, "tool name");
      run.log += "C" + std::to_string(d->index) + ":" + d->name + "|" + d->arguments;
    } else {
      check(false, "decoder_only_content_events", [&] { return "body " + show(body); });
    }
  };
  auto feed = [&](std::string_view payload) {
    failed_before = decoder.failed();
    decoder.feed(payload, sink);
  };
  if (dialect == llm::Dialect::kOpenAI) {
    http::SseParser parser(1 << 16);
    for (std::string_view p : pieces)
      parser.feed(p, [&](const http::SseEvent& ev) {
        if (!ev.done) feed(ev.data);
      });
  } else {
    http::NdjsonParser parser(1 << 16);
    for (std::string_view p : pieces) parser.feed(p, [&](const http::NdjsonLine& l) { feed(l.json); });
    parser.finish([&](const http::NdjsonLine& l) { feed(l.json); });
  }
  run.failed = decoder.failed();
  run.error = decoder.error();
  text_ok(decoder.error_message(), body, "error message");
  run.finish_reason = decoder.finish_reason();
  run.prompt_tokens = decoder.prompt_tokens();
  run.completion_tokens = decoder.completion_tokens();
  run.done = decoder.done();
  for (const auto& t : decoder.tool_calls()) {
    check(t.arguments_json.empty() || text::is_valid_json(t.arguments_json), "decoder_tool_arguments_json",
          [&] { return "arguments " + show(t.arguments_json) + " from body " + show(body); });
  }
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < 2) return 0;
  const unsigned mode = static_cast<unsigned char>(in[0]);
  const auto dialect = (mode & 1) ? llm::Dialect::kOllama : llm::Dialect::kOpenAI;
  const auto op = (mode & 2) ? llm::Operation::kCompletion : llm::Operation::kChat;
  const std::string_view body = in.substr(2);
  const std::size_t cut = body.empty() ? 0 : static_cast<unsigned char>(in[1]) % (body.size() + 1);
  const Run whole = decode(dialect, op, {body}, body);
  const Run split = decode(dialect, op, {body.substr(0, cut), body.substr(cut)}, body);
  check(whole == split, "decoder_split_same_as_whole", [&] {
    return "body " + show(body) + " cut at " + std::to_string(cut) + "\nwhole " + show(whole.log) + "\nsplit " +
           show(split.log);
  });
  return 0;
}
