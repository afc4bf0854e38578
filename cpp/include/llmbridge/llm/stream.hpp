// Token streams: the events a stream delivers, the decoder that turns SSE / NDJSON
// payloads into them (pure, fed one payload at a time), and the channel that carries
// them from the I/O thread to one consumer with a bounded buffer.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "llmbridge/llm/generation.hpp"
#include "llmbridge/llm/provider_table.hpp"

namespace llmbridge::llm {

struct StreamMetrics {
  double ttft_ms = -1;    // call start -> first Token; -1 when no token came
  double total_ms = 0;    // call start -> end of the stream
  long tokens = 0;        // Token events delivered
  double tokens_per_s = 0;  // tokens after the first / time after the first; 0 when < 2 tokens
  int prompt_tokens = -1;   // from the usage chunk (or Ollama's counts); -1 unknown
  int completion_tokens = -1;
};

// ttft/total from the clock readings, tokens_per_s from them (metrics arithmetic in one
// place, tested in Catch2).
void finish_metrics(StreamMetrics& m, double first_token_ms, double end_ms) noexcept;

struct StreamStarted {
  std::string request_id;
  std::string model;
};
struct Token {
  std::string text;
  long index = 0;  // 0, 1, 2 ... over the content tokens of the stream
};
struct ReasoningToken {
  std::string text;
  long index = 0;
};
struct ToolCallDelta {
  int index = 0;          // which tool call (the model may make several)
  std::string id;         // set on the first delta of a call (when the server gives one)
  std::string name;       // set on the first delta of a call
  std::string arguments;  // the arguments fragment (append per index)
};
struct StreamEndEvent {
  std::string finish_reason;
  StreamMetrics metrics;
  std::vector<ToolCall> tool_calls;  // accumulated from the deltas, arguments repaired
  std::string model;
  std::vector<TryRecord> tries;  // the stream's HTTP tries (retries before its first byte)
};
struct StreamErrorEvent {
  std::string error;    // the contract strings: timeout, http_500, connection_error: ..., ...
  bool retryable = false;
  int status_code = 0;
  std::string message;  // the server's message for an error sent mid-stream (an excerpt)
  std::vector<TryRecord> tries;  // the stream's HTTP tries; empty when none was sent
};

using StreamEvent =
    std::variant<StreamStarted, Token, ReasoningToken, ToolCallDelta, StreamEndEvent, StreamErrorEvent>;

// Decodes the payloads of one stream (an SSE event's data, or an NDJSON line) into
// events. Pure: it knows nothing about the transport. After error() is set (an error
// object, or a payload that is not JSON) it ignores further payloads.
class StreamDecoder {
 public:
  using Sink = std::function<void(StreamEvent&&)>;

  StreamDecoder(Dialect dialect, Operation op) : dialect_(dialect), op_(op) {}

  // One payload. `sink` gets Token / ReasoningToken / ToolCallDelta events.
  void feed(std::string_view payload, const Sink& sink);

  // NDJSON: a line with done:true arrived. SSE ends with [DONE] instead (the parser's).
  bool done() const noexcept { return done_; }
  bool failed() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  const std::string& error_message() const noexcept { return error_message_; }
  int error_status() const noexcept { return error_status_; }
  const std::string& finish_reason() const noexcept { return finish_reason_; }
  const std::string& model() const noexcept { return model_; }
  int prompt_tokens() const noexcept { return prompt_tokens_; }
  int completion_tokens() const noexcept { return completion_tokens_; }
  long tokens() const noexcept { return tokens_; }
  // The tool calls so far, arguments joined and repaired.
  std::vector<ToolCall> tool_calls() const;

 private:
  void fail(std::string error, std::string message, int status);
  void tool_delta(int index, std::string_view id, std::string_view name, std::string_view args,
                  const Sink& sink);

  Dialect dialect_;
  Operation op_;
  bool done_ = false;
  std::string error_;
  std::string error_message_;
  int error_status_ = 0;
  std::string finish_reason_;
  std::string model_;
  int prompt_tokens_ = -1;
  int completion_tokens_ = -1;
  long tokens_ = 0;
  long reasoning_tokens_ = 0;
  struct PendingTool {
    int index = 0;
    std::string id, name, arguments;
  };
  std::vector<PendingTool> tools_;
};

// Between the I/O thread (producer) and one consumer. Thread-safe. The buffer is bounded
// by the producer: push() says when it reached high_water, the producer then pauses the
// transfer, and take() calls the resume function once the consumer has emptied it.
class StreamChannel {
 public:
  explicit StreamChannel(std::size_t high_water = 1024) : high_water_(high_water) {}

  // Runs (on the producer's thread, without the channel lock) when the channel goes
  // from empty to non-empty. Set before the first push.
  void set_waker(std::function<void()> waker) { waker_ = std::move(waker); }
  // Set before the first push that may pause.
  void set_resume(std::function<void()> resume);

  // True when the buffer reached high_water: the caller must pause the producer; the
  // channel then counts as paused until a take() empties it.
  bool push(StreamEvent&& event);
  // push() for several events under one lock (and at most one wake-up); empties `events`.
  bool push_many(std::vector<StreamEvent>& events);
  // The last event of the stream (End or Error); nothing is pushed after it.
  void close(StreamEvent&& last);

  // Every event ready now (possibly none). Resumes a paused producer when it empties.
  std::vector<StreamEvent> take();
  // As take(), waiting up to timeout_s (< 0: without limit) for at least one event.
  std::vector<StreamEvent> wait_take(double timeout_s);

  bool closed() const;          // the last event was pushed
  bool paused() const;
  std::size_t buffered() const;

 private:
  std::vector<StreamEvent> take_locked(std::unique_lock<std::mutex>& lock);

  const std::size_t high_water_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamEvent> events_;
  bool closed_ = false;
  bool paused_ = false;
  std::function<void()> waker_;
  std::function<void()> resume_;
};

}  // namespace llmbridge::llm
