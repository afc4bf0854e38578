// SseParser and NdjsonParser: every framing rule of protocols.md §2.2 and §3.3, and the
// streams recorded from vLLM and llama-server parsed whole, split in two at every byte
// and fed one byte at a time, which must all give the same events.
#include <simdjson.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "llmbridge/http/stream_parser.hpp"

using namespace llmbridge::http;
using namespace std::string_literals;

namespace {

// The "body" of tests_py/wire_samples/vllm/chat_stream.json, verbatim.
constexpr const char* kVllmChatStream =
    "data: {\"id\":\"chatcmpl-a7b8af162cc28fa6\",\"object\":\"chat.completion.chunk\",\"c"
    "reated\":1795653981,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"role\""
    ":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"prompt"
    "_token_ids\":null,\"prompt_text\":null}\n\n"
    "data: {\"id\":\"chatcmpl-a7b8af162cc28fa6\",\"object\":\"chat.completion.chunk\",\"c"
    "reated\":1795653981,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"conten"
    "t\":\"90\"},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-a7b8af162cc28fa6\",\"object\":\"chat.completion.chunk\",\"c"
    "reated\":1795653981,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"conten"
    "t\":\"90\"},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-a7b8af162cc28fa6\",\"object\":\"chat.completion.chunk\",\"c"
    "reated\":1795653981,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"conten"
    "t\":\"90\"},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-a7b8af162cc28fa6\",\"object\":\"chat.completion.chunk\",\"c"
    "reated\":1795653981,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"conten"
    "t\":\"90\"},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-a7b8af162cc28fa6\",\"object\":\"chat.completion.chunk\",\"c"
    "reated\":1795653981,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"conten"
    "t\":\"90\"},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-a7b8af162cc28fa6\",\"object\":\"chat.completion.chunk\",\"c"
    "reated\":1795653981,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"conten"
    "t\":\"90\"},\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null,\"to"
    "ken_ids\":null}],\"system_fingerprint\":\"vllm-0.32.0-95cd33ff\"}\n\n"
    "data: [DONE]\n\n";

// The "body" of tests_py/wire_samples/llama/stream.json, verbatim.
constexpr const char* kLlamaStream =
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assist"
    "ant\",\"content\":null}}],\"created\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leR"
    "kV4k2dssa17cmp4\",\"model\":\"tiny\",\"system_fingerprint\":\"b1-0c1e570\",\"object"
    "\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"\\"
    "\"\"}}],\"created\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leRkV4k2dssa17cmp4\","
    "\"model\":\"tiny\",\"system_fingerprint\":\"b1-0c1e570\",\"object\":\"chat.completio"
    "n.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"\\"
    "\"\"}}],\"created\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leRkV4k2dssa17cmp4\","
    "\"model\":\"tiny\",\"system_fingerprint\":\"b1-0c1e570\",\"object\":\"chat.completio"
    "n.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"\\"
    "\"\"}}],\"created\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leRkV4k2dssa17cmp4\","
    "\"model\":\"tiny\",\"system_fingerprint\":\"b1-0c1e570\",\"object\":\"chat.completio"
    "n.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"\\"
    "\"\"}}],\"created\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leRkV4k2dssa17cmp4\","
    "\"model\":\"tiny\",\"system_fingerprint\":\"b1-0c1e570\",\"object\":\"chat.completio"
    "n.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"\\"
    "\"\"}}],\"created\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leRkV4k2dssa17cmp4\","
    "\"model\":\"tiny\",\"system_fingerprint\":\"b1-0c1e570\",\"object\":\"chat.completio"
    "n.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"\\"
    "\"\"}}],\"created\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leRkV4k2dssa17cmp4\","
    "\"model\":\"tiny\",\"system_fingerprint\":\"b1-0c1e570\",\"object\":\"chat.completio"
    "n.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}],\"creat"
    "ed\":1795653897,\"id\":\"chatcmpl-i6fxmDuJew0EV4leRkV4k2dssa17cmp4\",\"model\":\"tin"
    "y\",\"system_fingerprint\":\"b1-0c1e570\",\"object\":\"chat.completion.chunk\",\"tim"
    "ings\":{\"cache_n\":84,\"prompt_n\":1,\"prompt_ms\":0.827,\"prompt_per_token_ms\":0."
    "827,\"prompt_per_second\":1209.1898428053205,\"predicted_n\":6,\"predicted_ms\":1.47"
    "9,\"predicted_per_token_ms\":0.2958,\"predicted_per_second\":3380.662609871534}}\n\n"
    "data: [DONE]\n\n";

struct Got {
  std::string data, type, id;
  bool done = false;
  bool operator==(const Got& o) const {
    return data == o.data && type == o.type && id == o.id && done == o.done;
  }
};

struct SseRun {
  std::vector<Got> events;
  StreamError error = StreamError::kNone;
  StreamEnd end = StreamEnd::kBetweenEvents;
  std::uint64_t comments = 0;
  long long retry_ms = -1;
  bool operator==(const SseRun& o) const {
    return events == o.events && error == o.error && end == o.end && comments == o.comments &&
           retry_ms == o.retry_ms;
  }
};

// Feeds `chunks` in order and collects everything the parser reports.
SseRun run_sse(const std::vector<std::string_view>& chunks,
               std::size_t max_event_bytes = kDefaultMaxEventBytes) {
  SseParser p(max_event_bytes);
  SseRun run;
  auto sink = [&](const SseEvent& e) {
    run.events.push_back(Got{std::string(e.data), std::string(e.type), std::string(e.id), e.done});
  };
  for (std::string_view c : chunks) {
    const StreamError err = p.feed(c, sink);
    if (err != StreamError::kNone) run.error = err;
  }
  run.end = p.finish();
  run.comments = p.comments();
  run.retry_ms = p.retry_ms();
  return run;
}

SseRun sse_whole(std::string_view s, std::size_t max = kDefaultMaxEventBytes) {
  return run_sse({s}, max);
}

SseRun sse_bytes(std::string_view s, std::size_t max = kDefaultMaxEventBytes) {
  std::vector<std::string_view> chunks;
  for (std::size_t i = 0; i < s.size(); ++i) chunks.push_back(s.substr(i, 1));
  return run_sse(chunks, max);
}

// Whole, split in two at every position (empty halves included), and byte by byte must
// agree; returns the whole-input result.
SseRun sse_all_ways(std::string_view s, std::size_t max = kDefaultMaxEventBytes) {
  const SseRun whole = sse_whole(s, max);
  for (std::size_t k = 0; k <= s.size(); ++k) {
    const SseRun split = run_sse({s.substr(0, k), s.substr(k)}, max);
    INFO("split at byte " << k);
    REQUIRE(split == whole);
  }
  REQUIRE(sse_bytes(s, max) == whole);
  return whole;
}

std::vector<std::string> datas(const SseRun& r) {
  std::vector<std::string> out;
  for (const auto& e : r.events) out.push_back(e.data);
  return out;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// The "body" field of a recorded sample (tests_py/wire_samples/...).
std::string sample_body(const std::string& relative) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const std::string path = std::string(LLMBRIDGE_WIRE_SAMPLES_DIR) + "/" + relative;
  REQUIRE(parser.load(path).get(doc) == simdjson::SUCCESS);
  std::string_view body;
  REQUIRE(doc["body"].get(body) == simdjson::SUCCESS);
  return std::string(body);
}

// Checks a recorded OpenAI-style stream: every event but the last is one JSON object,
// the last is [DONE], and the stream ends kDone; any chunking gives the same events.
void check_recorded(std::string_view body) {
  const SseRun run = sse_all_ways(body);
  REQUIRE(run.error == StreamError::kNone);
  REQUIRE(run.end == StreamEnd::kDone);
  std::size_t expected = 0;
  for (std::size_t at = body.find("data: "); at != std::string_view::npos;
       at = body.find("data: ", at + 1))
    ++expected;
  REQUIRE(run.events.size() == expected);
  REQUIRE(run.events.back().done);
  REQUIRE(run.events.back().data == "[DONE]");
  simdjson::dom::parser parser;
  for (std::size_t i = 0; i + 1 < run.events.size(); ++i) {
    const Got& e = run.events[i];
    CHECK_FALSE(e.done);
    simdjson::dom::element doc;
    INFO(e.data);
    CHECK(parser.parse(e.data).get(doc) == simdjson::SUCCESS);
    CHECK(doc.is_object());
  }
  // CRLF and bare-CR line ends give the same events.
  const std::string crlf = replace_all(std::string(body), "\n", "\r\n");
  const std::string cr = replace_all(std::string(body), "\n", "\r");
  CHECK(sse_all_ways(crlf) == run);
  CHECK(sse_all_ways(cr) == run);
}

struct NdjsonRun {
  std::vector<std::string> lines;
  StreamError error = StreamError::kNone;
  StreamEnd end = StreamEnd::kBetweenEvents;
  bool operator==(const NdjsonRun& o) const {
    return lines == o.lines && error == o.error && end == o.end;
  }
};

NdjsonRun run_ndjson(const std::vector<std::string_view>& chunks,
                     std::size_t max = kDefaultMaxEventBytes) {
  NdjsonParser p(max);
  NdjsonRun run;
  auto sink = [&](const NdjsonLine& l) { run.lines.emplace_back(l.json); };
  for (std::string_view c : chunks) {
    const StreamError err = p.feed(c, sink);
    if (err != StreamError::kNone) run.error = err;
  }
  run.end = p.finish(sink);
  return run;
}

NdjsonRun ndjson_all_ways(std::string_view s, std::size_t max = kDefaultMaxEventBytes) {
  const NdjsonRun whole = run_ndjson({s}, max);
  for (std::size_t k = 0; k <= s.size(); ++k) {
    INFO("split at byte " << k);
    REQUIRE(run_ndjson({s.substr(0, k), s.substr(k)}, max) == whole);
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
  REQUIRE(run_ndjson(bytes, max) == whole);
  return whole;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("SSE: recorded vLLM and llama-server streams, any chunking", "[sse]") {
  SECTION("vLLM chat stream (literal)") { check_recorded(kVllmChatStream); }
  SECTION("llama-server stream (literal)") { check_recorded(kLlamaStream); }
  SECTION("the literals are the recorded bodies") {
    CHECK(sample_body("vllm/chat_stream.json") == kVllmChatStream);
    CHECK(sample_body("llama/stream.json") == kLlamaStream);
  }
  for (const char* file : {"vllm/chat_stream_include_usage.json",
                           "vllm/chat_stream_json_schema.json",
                           "llama/stream_include_usage.json"}) {
    DYNAMIC_SECTION(file) { check_recorded(sample_body(file)); }
  }
}

TEST_CASE("SSE: LF, CR and CRLF line ends, also split between CR and LF", "[sse]") {
  const Strings expected{"a", "b\nc"};
  CHECK(datas(sse_all_ways("data: a\n\ndata: b\ndata: c\n\n")) == expected);
  CHECK(datas(sse_all_ways("data: a\r\n\r\ndata: b\r\ndata: c\r\n\r\n")) == expected);
  CHECK(datas(sse_all_ways("data: a\r\rdata: b\rdata: c\r\r")) == expected);
  CHECK(datas(sse_all_ways("data: a\r\n\ndata: b\rdata: c\n\r\n")) == expected);  // mixed
  // A CR ending one chunk and an LF starting the next are one line end, not two.
  const SseRun r = run_sse({"data: a\r", "\ndata: b\r", "\n\r", "\n"});
  CHECK(datas(r) == Strings{"a\nb"});
  // CR CR is a line end then a blank line, even across chunks.
  CHECK(datas(run_sse({"data: a\r", "\r"})) == Strings{"a"});
}

TEST_CASE("SSE: the data field, one optional space, multi-line joins", "[sse]") {
  CHECK(datas(sse_all_ways("data:x\n\n")) == Strings{"x"});
  CHECK(datas(sse_all_ways("data: x\n\n")) == Strings{"x"});
  CHECK(datas(sse_all_ways("data:  x\n\n")) == Strings{" x"});  // only one space goes
  CHECK(datas(sse_all_ways("data: x \n\n")) == Strings{"x "});  // trailing kept
  CHECK(datas(sse_all_ways("data: a:b: c\n\n")) == Strings{"a:b: c"});  // first colon splits
  CHECK(datas(sse_all_ways("data:\n\n")) == Strings{""});  // empty data is an event
  CHECK(datas(sse_all_ways("data\n\n")) == Strings{""});   // no colon: name, empty value
  CHECK(datas(sse_all_ways("data: a\ndata:\ndata: b\n\n")) == Strings{"a\n\nb"});
  CHECK(datas(sse_all_ways("Data: x\n\n")).empty());  // field names are case-sensitive
  CHECK(datas(sse_all_ways("data : x\n\n")).empty());  // "data " is another field
}

TEST_CASE("SSE: comments are counted, never dispatched", "[sse]") {
  const SseRun r =
      sse_all_ways(": keep-alive\n\n:PROCESSING\n\ndata: 1\n: mid-event\ndata: 2\n\n:\n\n");
  CHECK(datas(r) == Strings{"1\n2"});
  CHECK(r.comments == 4);
  CHECK(r.end == StreamEnd::kBetweenEvents);
  // Comments alone leave nothing pending.
  const SseRun only = sse_all_ways(": ping\n");
  CHECK(only.events.empty());
  CHECK(only.comments == 1);
  CHECK(only.end == StreamEnd::kBetweenEvents);
}

TEST_CASE("SSE: event, id and retry fields", "[sse]") {
  const SseRun r = sse_all_ways(
      "event: thread.run\nid: 7\nretry: 1500\ndata: a\n\n"
      "data: b\n\n"                          // type resets, id persists
      "id: x\0y\nretry: 12a\ndata: c\n\n"s   // NUL in id and non-digit retry: ignored
      "id\ndata: d\n\n");                    // "id" with no value clears it
  REQUIRE(r.events.size() == 4);
  CHECK(r.events[0] == Got{"a", "thread.run", "7", false});
  CHECK(r.events[1] == Got{"b", "", "7", false});
  CHECK(r.events[2] == Got{"c", "", "7", false});
  CHECK(r.events[3] == Got{"d", "", "", false});
  CHECK(r.retry_ms == 1500);
  CHECK(sse_all_ways("retry: 99999999999999999999999\n\n").retry_ms > 0);  // saturates
  CHECK(sse_all_ways("foo: bar\nevent: x\n\n").events.empty());  // no data: not dispatched
}

TEST_CASE("SSE: a leading BOM is dropped, anywhere else it is content", "[sse]") {
  CHECK(datas(sse_all_ways("\xEF\xBB\xBF" "data: x\n\n")) == Strings{"x"});
  // After the start it is part of the field name, so the line is an unknown field.
  CHECK(datas(sse_all_ways("\n\xEF\xBB\xBF" "data: x\n\n")).empty());
  // Only one BOM is dropped.
  CHECK(datas(sse_all_ways("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\n")).empty());
  // A BOM prefix that turns out not to be one is kept as content.
  CHECK(datas(sse_all_ways("\xEF\xBB" "data: x\n\ndata: y\n\n")) == Strings{"y"});
  CHECK(sse_all_ways("\xEF\xBB").end == StreamEnd::kCut);
  CHECK(sse_all_ways("\xEF\xBB\xBF").end == StreamEnd::kBetweenEvents);
  // Multi-byte UTF-8 in the data survives any split.
  CHECK(datas(sse_all_ways("data: h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\n\n")) ==
        Strings{"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"});
}

TEST_CASE("SSE: [DONE] is a distinct marker and ends parsing", "[sse]") {
  const SseRun r = sse_all_ways("data: {\"a\":1}\n\ndata: [DONE]\n\ndata: {\"late\":1}\n\n");
  REQUIRE(r.events.size() == 2);
  CHECK_FALSE(r.events[0].done);
  CHECK(r.events[1].done);
  CHECK(r.end == StreamEnd::kDone);
  // Matched as a prefix, like openai-python.
  CHECK(sse_all_ways("data: [DONE] bye\n\n").events.at(0).done);
  CHECK_FALSE(sse_all_ways("data: [DONE\n\n").events.at(0).done);
  CHECK_FALSE(sse_all_ways("data: \"[DONE]\"\n\n").events.at(0).done);
  // Garbage after [DONE] (a lingering gateway) changes nothing.
  CHECK(sse_all_ways("data: [DONE]\n\ndata: x").end == StreamEnd::kDone);
  // A vLLM mid-stream error event is an ordinary event, followed by [DONE].
  const SseRun err = sse_all_ways("data: {\"error\":{\"code\":500}}\n\ndata: [DONE]\n\n");
  CHECK(datas(err) == Strings{"{\"error\":{\"code\":500}}", "[DONE]"});
}

TEST_CASE("SSE: how the stream ended", "[sse]") {
  CHECK(sse_all_ways("").end == StreamEnd::kBetweenEvents);
  CHECK(sse_all_ways("data: a\n\n").end == StreamEnd::kBetweenEvents);
  // A missing final blank line: the event is dropped (the spec) and the end is kCut.
  const SseRun no_blank = sse_all_ways("data: a\n\ndata: b\n");
  CHECK(datas(no_blank) == Strings{"a"});
  CHECK(no_blank.end == StreamEnd::kCut);
  CHECK(sse_all_ways("data: a\n\ndata: b").end == StreamEnd::kCut);
  CHECK(sse_all_ways("data: [DONE]\n").end == StreamEnd::kCut);  // never dispatched
  CHECK(sse_all_ways("event: x\n").end == StreamEnd::kCut);
  CHECK(sse_all_ways("data: a\n\n: bye").end == StreamEnd::kCut);  // a partial line
}

TEST_CASE("SSE: one pending event is bounded by max_event_bytes", "[sse]") {
  const std::string big(100, 'x');
  // Events before the oversized one are delivered; then the error sticks.
  const SseRun r = sse_all_ways("data: ok\n\ndata: " + big + "\n\ndata: after\n\n", 64);
  CHECK(datas(r) == Strings{"ok"});
  CHECK(r.error == StreamError::kEventTooLarge);
  CHECK(r.end == StreamEnd::kFailed);
  // Many data lines that add up past the limit, each one small.
  std::string lines;
  for (int i = 0; i < 20; ++i) lines += "data: 0123456789\n";
  CHECK(sse_all_ways(lines + "\n", 64).error == StreamError::kEventTooLarge);
  // A line that never ends (no terminator at all) fails too, and memory stays bounded.
  SseParser p(1024);
  const std::string chunk(512, 'y');
  StreamError e = StreamError::kNone;
  for (int i = 0; i < 10 && e == StreamError::kNone; ++i)
    e = p.feed(chunk, [](const SseEvent&) {});
  CHECK(e == StreamError::kEventTooLarge);
  CHECK(p.feed("\n\n", [](const SseEvent&) { FAIL("no events after an error"); }) ==
        StreamError::kEventTooLarge);
  // Exactly at the limit is fine: data + pending line never exceed it.
  const std::string at_limit(58, 'z');  // "data: " + 58 = 64 bytes on the line
  CHECK(datas(sse_all_ways("data: " + at_limit + "\n\n", 64)) == Strings{at_limit});
  CHECK(sse_all_ways("data: " + at_limit + "z\n\n", 64).error == StreamError::kEventTooLarge);
  // The limit is per event: a long stream of small events is fine.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "data: 0123456789\n\n";
  CHECK(sse_whole(many, 64).events.size() == 100);
  CHECK(std::string(to_string(StreamError::kEventTooLarge)) ==
        "stream event exceeded max_event_bytes");
}

TEST_CASE("NDJSON: one value per line, CRLF, blank lines, any chunking", "[sse]") {
  const std::string body =
      "{\"message\":{\"content\":\"h\xC3\xA9\"},\"done\":false}\n"
      "\r\n\n  \n"
      "{\"message\":{\"content\":\"!\"},\"done\":false}\r\n"
      "{\"done\":true,\"done_reason\":\"stop\"}\n";
  const NdjsonRun r = ndjson_all_ways(body);
  CHECK(r.lines == Strings{"{\"message\":{\"content\":\"h\xC3\xA9\"},\"done\":false}",
                           "{\"message\":{\"content\":\"!\"},\"done\":false}",
                           "{\"done\":true,\"done_reason\":\"stop\"}"});
  CHECK(r.end == StreamEnd::kBetweenEvents);
  CHECK(r.error == StreamError::kNone);
  // A bare CR is not a line end.
  CHECK(ndjson_all_ways("{\"a\":\r1}\n").lines == Strings{"{\"a\":\r1}"});
}

TEST_CASE("NDJSON: a trailing line without LF is delivered by finish() as kCut", "[sse]") {
  const NdjsonRun r = ndjson_all_ways("{\"a\":1}\n{\"error\":\"boom\"}");
  CHECK(r.lines == Strings{"{\"a\":1}", "{\"error\":\"boom\"}"});
  CHECK(r.end == StreamEnd::kCut);
  // Trailing whitespace is not a line.
  const NdjsonRun ws = ndjson_all_ways("{\"a\":1}\n  \r");
  CHECK(ws.lines == Strings{"{\"a\":1}"});
  CHECK(ws.end == StreamEnd::kBetweenEvents);
}

TEST_CASE("NDJSON: a line is bounded by max_event_bytes", "[sse]") {
  const std::string ok(32, '1');
  const NdjsonRun r = ndjson_all_ways(ok + "\n" + std::string(40, '2') + "\n" + ok + "\n", 32);
  CHECK(r.lines == Strings{ok});
  CHECK(r.error == StreamError::kEventTooLarge);
  CHECK(r.end == StreamEnd::kFailed);
  CHECK(ndjson_all_ways(std::string(40, '2'), 32).error == StreamError::kEventTooLarge);
}
