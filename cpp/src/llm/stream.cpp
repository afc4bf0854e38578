// Stream decoding and the stream channel (stream.hpp).
#include "llmbridge/llm/stream.hpp"

#include <simdjson.h>

#include <chrono>

#include "llmbridge/llm/errors.hpp"
#include "llmbridge/text/utf8.hpp"
#include "strings.hpp"
#include "wire.hpp"

namespace llmbridge::llm {
namespace {

using simdjson::SUCCESS;
namespace dom = simdjson::dom;

constexpr std::size_t kMessageExcerpt = 200;

}  // namespace

void finish_metrics(StreamMetrics& m, double first_token_ms, double end_ms) noexcept {
  m.total_ms = end_ms;
  m.ttft_ms = first_token_ms;
  m.tokens_per_s = 0;
  if (first_token_ms >= 0 && m.tokens >= 2 && end_ms > first_token_ms)
    m.tokens_per_s = double(m.tokens - 1) * 1000.0 / (end_ms - first_token_ms);
}

void StreamDecoder::fail(std::string error, std::string message, int status) {
  error_ = std::move(error);
  // The message may quote a payload of any bytes: it is handed out as valid UTF-8.
  text::make_valid_utf8(message);
  error_message_ = text::utf8_excerpt(message, kMessageExcerpt);
  error_status_ = status;
}

void StreamDecoder::tool_delta(int index, std::string_view id, std::string_view name, std::string_view args,
                               const Sink& sink) {
  PendingTool* t = nullptr;
  for (auto& p : tools_)
    if (p.index == index) t = &p;
  if (!t) {
    tools_.push_back(PendingTool{index, {}, {}, {}});
    t = &tools_.back();
  }
  if (!id.empty()) t->id = std::string(id);
  if (!name.empty()) t->name.append(name);
  t->arguments.append(args);
  ToolCallDelta d;
  d.index = index;
  d.id = std::string(id);
  d.name = std::string(name);
  d.arguments = std::string(args);
  sink(std::move(d));
}

std::vector<ToolCall> StreamDecoder::tool_calls() const {
  std::vector<ToolCall> out;
  out.reserve(tools_.size());
  for (const auto& p : tools_) {
    ToolCall t;
    t.index = p.index;
    t.id = p.id;
    t.name = p.name;
    t.arguments_text = p.arguments;
    t.arguments_json = repair_arguments(t.arguments_text, t.arguments_repaired);
    out.push_back(std::move(t));
  }
  return out;
}

void StreamDecoder::feed(std::string_view payload, const Sink& sink) {
  if (failed()) return;
  if (detail::trim(payload).empty()) return;  // a keep-alive blank NDJSON line
  thread_local dom::parser parser;
  dom::element doc;
  auto err = parser.parse(payload.data(), payload.size()).get(doc);
  std::string clean;
  if (err == simdjson::UTF8_ERROR) {
    clean = text::replace_invalid_utf8(payload);
    err = parser.parse(clean).get(doc);
  }
  dom::object obj;
  if (err != SUCCESS || doc.get(obj) != SUCCESS) {
    fail(invalid_json_error(std::string("a stream event is not a JSON object (") +
                            (err != SUCCESS ? simdjson::error_message(err) : "not an object") + ")"),
         std::string(payload), 0);
    return;
  }
  // An error object, sent after the 200 (protocols.md §2.1, §3.3).
  dom::element error;
  if (obj["error"].get(error) == SUCCESS && !error.is_null()) {
    std::string message;
    int status = 500;
    std::string_view s;
    if (error.get(s) == SUCCESS) {
      message = std::string(s);
    } else {
      message = detail::string_field(error["message"]);
      std::int64_t code = 0;
      if (error["code"].get(code) == SUCCESS && code >= 400 && code <= 599) status = static_cast<int>(code);
    }
    if (message.empty()) message = "the server reported an error during the stream";
    fail(http_error(status), message, status);
    return;
  }
  if (std::string m = detail::string_field(obj["model"]); !m.empty() && model_.empty()) model_ = std::move(m);

  std::string_view text;
  if (dialect_ == Dialect::kOllama) {
    if (op_ == Operation::kChat) {
      dom::element message;
      if (obj["message"].get(message) == SUCCESS) {
        if (message["thinking"].get(text) == SUCCESS && !text.empty())
          sink(ReasoningToken{std::string(text), reasoning_tokens_++});
        if (message["content"].get(text) == SUCCESS && !text.empty())
          sink(Token{std::string(text), tokens_++});
        dom::array calls;
        if (message["tool_calls"].get(calls) == SUCCESS) {
          for (dom::element c : calls) {
            const int index = static_cast<int>(tools_.size());
            tool_delta(index, detail::string_field(c["id"]), detail::string_field(c["function"]["name"]),
                       detail::tool_arguments_text(c), sink);
          }
        }
      }
    } else {
      if (obj["thinking"].get(text) == SUCCESS && !text.empty())
        sink(ReasoningToken{std::string(text), reasoning_tokens_++});
      if (obj["response"].get(text) == SUCCESS && !text.empty()) sink(Token{std::string(text), tokens_++});
    }
    bool done = false;
    if (obj["done"].get(done) == SUCCESS && done) {
      done_ = true;
      finish_reason_ = detail::string_field(obj["done_reason"]);
      prompt_tokens_ = detail::token_count(obj["prompt_eval_count"]);
      completion_tokens_ = detail::token_count(obj["eval_count"]);
    }
    return;
  }

  // OpenAI-compatible chunk. Content before finish_reason: vLLM may send both at once.
  dom::array choices;
  if (obj["choices"].get(choices) == SUCCESS) {
    for (dom::element choice : choices) {
      std::int64_t index = 0;
      if (choice["index"].get(index) == SUCCESS && index != 0) continue;  // n > 1: first choice only
      if (op_ == Operation::kChat) {
        dom::element delta;
        if (choice["delta"].get(delta) == SUCCESS) {
          if ((delta["reasoning"].get(text) == SUCCESS || delta["reasoning_content"].get(text) == SUCCESS) &&
              !text.empty())
            sink(ReasoningToken{std::string(text), reasoning_tokens_++});
          if (delta["content"].get(text) == SUCCESS && !text.empty()) sink(Token{std::string(text), tokens_++});
          dom::array calls;
          if (delta["tool_calls"].get(calls) == SUCCESS) {
            for (dom::element c : calls) {
              std::int64_t ti = 0;
              if (c["index"].get(ti) != SUCCESS || ti < 0 || ti > 1 << 16) ti = 0;
              tool_delta(static_cast<int>(ti), detail::string_field(c["id"]),
                         detail::string_field(c["function"]["name"]), detail::tool_arguments_text(c), sink);
            }
          }
        }
      } else if (choice["text"].get(text) == SUCCESS && !text.empty()) {
        sink(Token{std::string(text), tokens_++});
      }
      std::string_view reason;
      if (choice["finish_reason"].get(reason) == SUCCESS && !reason.empty()) finish_reason_ = std::string(reason);
    }
  }
  dom::object usage;
  if (obj["usage"].get(usage) == SUCCESS) {
    prompt_tokens_ = detail::token_count(usage["prompt_tokens"]);
    completion_tokens_ = detail::token_count(usage["completion_tokens"]);
  }
}

// ---- channel ----

void StreamChannel::set_resume(std::function<void()> resume) {
  std::lock_guard<std::mutex> lock(mu_);
  resume_ = std::move(resume);
}

bool StreamChannel::push(StreamEvent&& event) {
  bool wake = false, full = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    wake = events_.empty();
    events_.push_back(std::move(event));
    if (events_.size() >= high_water_) {
      paused_ = true;
      full = true;
    }
  }
  if (wake) {
    cv_.notify_all();
    if (waker_) waker_();
  }
  return full;
}

bool StreamChannel::push_many(std::vector<StreamEvent>& batch) {
  if (batch.empty()) return false;
  bool wake = false, full = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      batch.clear();
      return false;
    }
    wake = events_.empty();
    for (auto& e : batch) events_.push_back(std::move(e));
    if (events_.size() >= high_water_) {
      paused_ = true;
      full = true;
    }
  }
  batch.clear();
  if (wake) {
    cv_.notify_all();
    if (waker_) waker_();
  }
  return full;
}

void StreamChannel::close(StreamEvent&& last) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    wake = events_.empty();
    events_.push_back(std::move(last));
    closed_ = true;
    resume_ = nullptr;  // nothing left to resume; drops what the function holds
  }
  cv_.notify_all();
  if (wake && waker_) waker_();
}

std::vector<StreamEvent> StreamChannel::take_locked(std::unique_lock<std::mutex>& lock) {
  std::vector<StreamEvent> out;
  out.reserve(events_.size());
  for (auto& e : events_) out.push_back(std::move(e));
  events_.clear();
  std::function<void()> resume;
  if (paused_) {
    paused_ = false;
    resume = resume_;
  }
  lock.unlock();
  if (resume) resume();
  return out;
}

std::vector<StreamEvent> StreamChannel::take() {
  std::unique_lock<std::mutex> lock(mu_);
  return take_locked(lock);
}

std::vector<StreamEvent> StreamChannel::wait_take(double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [this] { return !events_.empty(); };
  if (timeout_s < 0) {
    // Timed waits in a loop, not cv_.wait(): built with GCC 12 that binds libstdc++'s
    // GLIBCXX_3.4.30 symbol, which alone would narrow the wheels from manylinux_2_34 (RHEL 9,
    // Amazon Linux 2023) to manylinux_2_35 (docs/install.md).
    while (!cv_.wait_for(lock, std::chrono::hours(24), ready)) {
    }
  } else {
    cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), ready);
  }
  return take_locked(lock);
}

bool StreamChannel::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

bool StreamChannel::paused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return paused_;
}

std::size_t StreamChannel::buffered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

}  // namespace llmbridge::llm
