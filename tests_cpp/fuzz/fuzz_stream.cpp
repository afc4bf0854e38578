// libFuzzer target for http::SseParser and http::NdjsonParser: the events and the end
// state never depend on how the body is cut into chunks. The input is
//   [limit selector] [split count n] [n chunk lengths] [body...]
// and the body is parsed whole, in the chunks the input names, and (when short) one
// byte at a time; all three must agree. Also: no event is over the limit, nothing is
// reported after [DONE] or after an error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "llmbridge/http/stream_parser.hpp"

using llmbridge::fuzz::check;
using llmbridge::fuzz::show;
using namespace llmbridge::http;

namespace {

struct Outcome {
  std::string log;  // every event, serialised unambiguously
  std::size_t events = 0;
  StreamError error = StreamError::kNone;
  StreamEnd end = StreamEnd::kBetweenEvents;
  std::uint64_t comments = 0;
  long long retry_ms = -1;
  bool operator==(const Outcome& o) const {
    return log == o.log && events == o.events && error == o.error && end == o.end &&
           comments == o.comments && retry_ms == o.retry_ms;
  }
  std::string describe() const {
    return std::to_string(events) + " events, error=" + to_string(error) + ", end=" +
           to_string(end) + ", comments=" + std::to_string(comments) + ", log=" + show(log);
  }
};

void append_field(std::string& log, std::string_view s) {
  log += std::to_string(s.size());
  log += ':';
  log.append(s);
}

Outcome run_sse(const std::vector<std::string_view>& chunks, std::size_t limit,
                std::string_view body) {
  SseParser p(limit);
  Outcome out;
  bool after_done = false;
  auto sink = [&](const SseEvent& e) {
    check(!after_done, "sse_no_event_after_done", [&] { return "body: " + show(body); });
    check(e.data.size() <= limit, "sse_event_within_limit", [&] { return "body: " + show(body); });
    check(e.done == (e.data.substr(0, 6) == "[DONE]"), "sse_done_iff_prefix",
          [&] { return "data: " + show(e.data); });
    if (e.done) after_done = true;
    ++out.events;
    append_field(out.log, e.data);
    append_field(out.log, e.type);
    append_field(out.log, e.id);
    out.log += e.done ? 'D' : '-';
  };
  for (std::string_view c : chunks) {
    const std::size_t before = out.events;
    const StreamError err = p.feed(c, sink);
    if (out.error != StreamError::kNone)
      check(out.events == before && err == out.error, "sse_error_sticks",
            [&] { return "body: " + show(body); });
    if (err != StreamError::kNone) out.error = err;
  }
  out.end = p.finish();
  check((out.end == StreamEnd::kFailed) == (out.error != StreamError::kNone),
        "sse_failed_iff_error", [&] { return "body: " + show(body); });
  check((out.end == StreamEnd::kDone) == after_done, "sse_done_iff_done_event",
        [&] { return "body: " + show(body); });
  out.comments = p.comments();
  out.retry_ms = p.retry_ms();
  return out;
}

Outcome run_ndjson(const std::vector<std::string_view>& chunks, std::size_t limit,
                   std::string_view body) {
  NdjsonParser p(limit);
  Outcome out;
  auto sink = [&](const NdjsonLine& l) {
    check(l.json.size() <= limit, "ndjson_line_within_limit",
          [&] { return "body: " + show(body); });
    check(l.json.find('\n') == std::string_view::npos, "ndjson_line_has_no_lf",
          [&] { return "line: " + show(l.json); });
    ++out.events;
    append_field(out.log, l.json);
  };
  for (std::string_view c : chunks) {
    const StreamError err = p.feed(c, sink);
    if (err != StreamError::kNone) out.error = err;
  }
  out.end = p.finish(sink);
  return out;
}

template <class Run>
void compare(Run run, std::string_view body, const std::vector<std::string_view>& chunks,
             std::size_t limit, const char* name_split, const char* name_bytes) {
  const Outcome whole = run({body}, limit, body);
  const Outcome split = run(chunks, limit, body);
  check(split == whole, name_split, [&] {
    std::string cuts;
    for (auto c : chunks) cuts += std::to_string(c.size()) + " ";
    return "body:  " + show(body) + "\nchunks: " + cuts + "\nwhole: " + whole.describe() +
           "\nsplit: " + split.describe();
  });
  if (body.size() <= 4096) {
    std::vector<std::string_view> bytes;
    bytes.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
    const Outcome one = run(bytes, limit, body);
    check(one == whole, name_bytes, [&] {
      return "body:  " + show(body) + "\nwhole: " + whole.describe() + "\nbytes: " + one.describe();
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < 2) return 0;
  constexpr std::size_t kLimits[] = {kDefaultMaxEventBytes, 16, 64, 256};
  const std::size_t limit = kLimits[static_cast<unsigned char>(in[0]) % 4];
  std::size_t n = static_cast<unsigned char>(in[1]) % 16;
  in.remove_prefix(2);
  std::vector<std::size_t> lengths;
  while (n-- > 0 && !in.empty()) {
    lengths.push_back(static_cast<unsigned char>(in[0]));
    in.remove_prefix(1);
  }
  const std::string_view body = in;
  std::vector<std::string_view> chunks;
  std::string_view rest = body;
  for (std::size_t len : lengths) {
    const std::string_view piece = rest.substr(0, len);
    chunks.push_back(piece);
    rest.remove_prefix(piece.size());
  }
  chunks.push_back(rest);

  compare(run_sse, body, chunks, limit, "sse_split_same_as_whole", "sse_bytes_same_as_whole");
  compare(run_ndjson, body, chunks, limit, "ndjson_split_same_as_whole",
          "ndjson_bytes_same_as_whole");
  return 0;
}
