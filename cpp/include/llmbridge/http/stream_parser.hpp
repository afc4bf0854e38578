// Incremental parsers for streamed response bodies: Server-Sent Events (vLLM, llama-server,
// OpenAI; protocols.md §2) and newline-delimited JSON (Ollama; protocols.md §3.3).
//
// Both take the body in whatever pieces the network delivers (a boundary may fall
// anywhere: inside a field name, a multi-byte UTF-8 sequence or between CR and LF) and
// report each complete event once. They work on bytes and never decode UTF-8 (a complete
// line holds whole sequences, whatever the chunking), so the JSON parser downstream
// judges the text.
//
// Delivery is a callback per event, not a vector per feed(): at thousands of tokens per
// second a vector of owning strings would cost an allocation per event. The callback gets
// views into the parser's own buffers, which are reused from one event to the next, so a
// stream in steady state allocates nothing. The views are valid only during the call.
// EventSink is a non-owning reference to the callable (no std::function, no allocation).
//
// Errors are values: feed() returns StreamError, never throws on the data path. After an
// error the parser stays failed (every later feed() returns the same error) and its
// buffers are released. Memory is bounded: the bytes held for one pending event never
// exceed max_event_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace llmbridge::http {

inline constexpr std::size_t kDefaultMaxEventBytes = std::size_t(8) << 20;  // 8 MiB

enum class StreamError {
  kNone,
  kEventTooLarge,  // one pending event (or NDJSON line) grew past max_event_bytes
};

const char* to_string(StreamError e) noexcept;

// How a stream ended, as finish() sees it.
enum class StreamEnd {
  kDone,           // SSE: a `data: [DONE]` event was dispatched (the normal end for vLLM)
  kBetweenEvents,  // nothing pending: the body ended on an event boundary, without [DONE]
                   // (the normal end for NDJSON, whose last object says done:true)
  kCut,            // a partial line or an event without its blank line was pending
  kFailed,         // feed() reported an error earlier
};

const char* to_string(StreamEnd e) noexcept;

// A non-owning reference to a callable taking `const Event&` (like a function_ref).
// Build it in the call (`parser.feed(bytes, [&](const SseEvent& e) { ... })`): it must
// not outlive the callable.
template <class Event>
class EventSink {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, EventSink>>>
  EventSink(F&& f) noexcept  // NOLINT(google-explicit-constructor): built at the call
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, const Event& e) { (*static_cast<std::remove_reference_t<F>*>(o))(e); }) {}
  void operator()(const Event& e) const { call_(object_, e); }

 private:
  void* object_;
  void (*call_)(void*, const Event&);
};

// One dispatched SSE event. Views into the parser, valid during the callback only.
struct SseEvent {
  std::string_view data;   // the data lines joined with '\n' (one optional space removed)
  std::string_view type;   // the `event:` field; empty means the default, "message"
  std::string_view id;     // the last event id seen so far (it persists across events)
  bool done = false;       // data starts with "[DONE]": the end marker, not JSON
};

// WHATWG event-stream parsing (protocols.md §2.2):
//  - lines end in LF, CR or CRLF; a CR ending one chunk and an LF starting the next are
//    one line end;
//  - a leading UTF-8 BOM is dropped;
//  - a line starting with ':' is a comment: ignored, counted in comments();
//  - otherwise the field name runs to the first ':' (the whole line when there is none)
//    and one space after the colon is removed; `data` lines accumulate joined with '\n',
//    `event` sets the type, `id` the last event id (ignored when it holds NUL), `retry`
//    the reconnection time (digits only); other fields are ignored;
//  - a blank line dispatches the event if it has at least one `data` line, then clears
//    data and type;
//  - an event whose data starts with "[DONE]" is dispatched with done = true, after which
//    the parser ignores everything (protocols.md: stop reading after [DONE]).
// The size of a pending event counts its data, its type and the current partial line.
class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes = kDefaultMaxEventBytes) noexcept
      : max_event_bytes_(max_event_bytes) {}

  StreamError feed(std::string_view bytes, EventSink<SseEvent> on_event);

  // At the end of the body. A trailing event without its blank line is dropped, as the
  // spec says, and makes the end kCut.
  StreamEnd finish() const noexcept;

  bool done() const noexcept { return done_; }
  StreamError error() const noexcept { return error_; }
  // Comment lines seen so far (keep-alives such as ": ping"); a caller compares the count
  // before and after feed() to tell that one arrived. Comments are not events, so they
  // must not reset an application-level idle clock.
  std::uint64_t comments() const noexcept { return comments_; }
  std::uint64_t events() const noexcept { return events_; }
  // The last `retry:` value in milliseconds, or -1 when none arrived.
  long long retry_ms() const noexcept { return retry_ms_; }
  std::string_view last_event_id() const noexcept { return last_id_; }

 private:
  void fail(StreamError e) noexcept;
  bool fits(std::size_t line_bytes) const noexcept;
  // Processes raw bytes after the BOM check; false when it stopped (error or [DONE]).
  bool consume(std::string_view bytes, const EventSink<SseEvent>& on_event);
  void line(std::string_view text, const EventSink<SseEvent>& on_event);

  std::size_t max_event_bytes_;
  std::string partial_;  // bytes of the current line that has not ended yet
  std::string data_;
  std::string type_;
  std::string last_id_;
  bool has_data_ = false;  // a `data` line arrived since the last dispatch
  bool has_field_ = false;  // any field line arrived since the last blank line
  bool skip_lf_ = false;    // the last byte seen was a CR that ended a line
  int bom_matched_ = 0;     // BOM bytes matched at the start; -1 once the start is past
  bool done_ = false;
  StreamError error_ = StreamError::kNone;
  std::uint64_t comments_ = 0;
  std::uint64_t events_ = 0;
  long long retry_ms_ = -1;
};

// One NDJSON line (one JSON value). A view into the parser or the fed bytes, valid
// during the callback only.
struct NdjsonLine {
  std::string_view json;  // without the line end (LF, or CRLF)
};

// Newline-delimited JSON (protocols.md §3.3): lines end in LF, a CR before it is
// removed, lines holding only JSON whitespace are skipped. A line longer than
// max_event_bytes is an error. A bare CR is not a line end here.
class NdjsonParser {
 public:
  explicit NdjsonParser(std::size_t max_event_bytes = kDefaultMaxEventBytes) noexcept
      : max_event_bytes_(max_event_bytes) {}

  StreamError feed(std::string_view bytes, EventSink<NdjsonLine> on_line);

  // At the end of the body. A last line without its LF is still a value (Ollama may end
  // that way): it is delivered here, and the end is kCut so the caller knows the body
  // stopped mid-line (whether the value is complete is the JSON parser's call).
  StreamEnd finish(EventSink<NdjsonLine> on_line);

  StreamError error() const noexcept { return error_; }
  std::uint64_t lines() const noexcept { return lines_; }

 private:
  void emit(std::string_view text, const EventSink<NdjsonLine>& on_line);

  std::size_t max_event_bytes_;
  std::string partial_;
  StreamError error_ = StreamError::kNone;
  bool finished_ = false;
  std::uint64_t lines_ = 0;
};

}  // namespace llmbridge::http
