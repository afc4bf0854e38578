// SSE and NDJSON stream parsing. Complete lines are handled straight from the fed bytes;
// only the unfinished tail of a chunk is copied (into partial_), so the common case (an
// event per network read) copies each byte once, into the event's data buffer.
#include "llmbridge/http/stream_parser.hpp"

#include <cstring>

namespace llmbridge::http {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::string_view kDone = "[DONE]";
constexpr long long kMaxRetryMs = 1LL << 50;  // saturate absurd `retry:` values

bool json_blank(std::string_view s) noexcept {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

}  // namespace

const char* to_string(StreamError e) noexcept {
  switch (e) {
    case StreamError::kNone: return "none";
    case StreamError::kEventTooLarge: return "stream event exceeded max_event_bytes";
  }
  return "unknown";
}

const char* to_string(StreamEnd e) noexcept {
  switch (e) {
    case StreamEnd::kDone: return "done";
    case StreamEnd::kBetweenEvents: return "between_events";
    case StreamEnd::kCut: return "cut";
    case StreamEnd::kFailed: return "failed";
  }
  return "unknown";
}

// ---------------- SSE ----------------

void SseParser::fail(StreamError e) noexcept {
  error_ = e;
  // Give the memory back; nothing more will be parsed.
  std::string().swap(partial_);
  std::string().swap(data_);
  std::string().swap(type_);
}

// The pending event's size if a line of `line_bytes` were added to it. Monotone in the
// line length, so a line judged in pieces fails exactly when it would whole: the events
// reported never depend on the chunking.
bool SseParser::fits(std::size_t line_bytes) const noexcept {
  const std::size_t held = data_.size() + type_.size();
  return held <= max_event_bytes_ && line_bytes <= max_event_bytes_ - held;
}

StreamError SseParser::feed(std::string_view bytes, EventSink<SseEvent> on_event) {
  if (error_ != StreamError::kNone || done_) return error_;
  if (bom_matched_ >= 0) {
    // Still at the start: match the BOM byte by byte, since a chunk may end inside it.
    while (!bytes.empty() && bom_matched_ >= 0) {
      if (bytes.front() == kBom[static_cast<std::size_t>(bom_matched_)]) {
        bytes.remove_prefix(1);
        if (++bom_matched_ == static_cast<int>(kBom.size())) bom_matched_ = -1;
      } else {
        // Not a BOM after all: the bytes matched so far are ordinary content.
        const std::string_view matched = kBom.substr(0, static_cast<std::size_t>(bom_matched_));
        bom_matched_ = -1;
        if (!consume(matched, on_event)) return error_;
      }
    }
  }
  consume(bytes, on_event);
  return error_;
}

bool SseParser::consume(std::string_view bytes, const EventSink<SseEvent>& on_event) {
  std::size_t pos = 0;
  const std::size_t n = bytes.size();
  if (skip_lf_ && n > 0) {
    skip_lf_ = false;
    if (bytes[0] == '\n') pos = 1;
  }
  // The next CR in this piece, found once and looked for again only once passed: most
  // streams hold no CR at all, and searching the rest of the piece for one on every line
  // would make a piece of many short lines cost its size squared.
  const char* next_cr = nullptr;
  bool cr_known = false;
  while (pos < n) {
    const char* start = bytes.data() + pos;
    // The next CR or LF. memchr beats a byte loop on the long JSON lines.
    const void* lf = std::memchr(start, '\n', n - pos);
    if (!cr_known || (next_cr && next_cr < start)) {
      next_cr = static_cast<const char*>(std::memchr(start, '\r', n - pos));
      cr_known = true;
    }
    const char* end = static_cast<const char*>(lf);
    if (next_cr && (!end || next_cr < end)) end = next_cr;
    if (!end) {
      const std::string_view rest = bytes.substr(pos);
      if (!fits(partial_.size() + rest.size())) {
        fail(StreamError::kEventTooLarge);
        return false;
      }
      partial_.append(rest);
      return true;
    }
    std::size_t len = static_cast<std::size_t>(end - start);
    std::string_view text(start, len);
    if (!partial_.empty()) {
      if (!fits(partial_.size() + len)) {
        fail(StreamError::kEventTooLarge);
        return false;
      }
      partial_.append(text);
      text = partial_;
    } else if (!fits(len)) {
      fail(StreamError::kEventTooLarge);
      return false;
    }
    pos += len + 1;
    if (*end == '\r') {
      if (pos < n) {
        if (bytes[pos] == '\n') ++pos;
      } else {
        skip_lf_ = true;  // the LF, if any, starts the next chunk
      }
    }
    line(text, on_event);
    partial_.clear();
    if (error_ != StreamError::kNone || done_) return false;
  }
  return true;
}

void SseParser::line(std::string_view text, const EventSink<SseEvent>& on_event) {
  if (text.empty()) {
    has_field_ = false;
    if (!has_data_) {
      type_.clear();
      return;
    }
    SseEvent event;
    event.data = data_;
    event.type = type_;
    event.id = last_id_;
    event.done = data_.compare(0, kDone.size(), kDone) == 0;
    ++events_;
    if (event.done) done_ = true;
    on_event(event);
    data_.clear();
    type_.clear();
    has_data_ = false;
    return;
  }
  if (text.front() == ':') {
    ++comments_;
    return;
  }
  has_field_ = true;
  std::string_view name = text;
  std::string_view value;
  if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    name = text.substr(0, colon);
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (name == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (name == "event") {
    type_.assign(value);
  } else if (name == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (name == "retry") {
    if (value.empty()) return;
    long long ms = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return;
      ms = ms >= kMaxRetryMs ? kMaxRetryMs : ms * 10 + (c - '0');
    }
    retry_ms_ = ms;
  }
}

StreamEnd SseParser::finish() const noexcept {
  if (error_ != StreamError::kNone) return StreamEnd::kFailed;
  if (done_) return StreamEnd::kDone;
  // A BOM prefix still being matched is a partial line too.
  if (!partial_.empty() || has_field_ || bom_matched_ > 0) return StreamEnd::kCut;
  return StreamEnd::kBetweenEvents;
}

// ---------------- NDJSON ----------------

void NdjsonParser::emit(std::string_view text, const EventSink<NdjsonLine>& on_line) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (json_blank(text)) return;
  ++lines_;
  on_line(NdjsonLine{text});
}

StreamError NdjsonParser::feed(std::string_view bytes, EventSink<NdjsonLine> on_line) {
  if (error_ != StreamError::kNone || finished_) return error_;
  while (!bytes.empty()) {
    const void* lf = std::memchr(bytes.data(), '\n', bytes.size());
    if (!lf) {
      if (partial_.size() + bytes.size() > max_event_bytes_) {
        error_ = StreamError::kEventTooLarge;
        std::string().swap(partial_);
        return error_;
      }
      partial_.append(bytes);
      return error_;
    }
    const std::size_t len = static_cast<std::size_t>(static_cast<const char*>(lf) - bytes.data());
    std::string_view text = bytes.substr(0, len);
    // The limit counts the line without its LF (a CR before it included), whole or in
    // pieces alike.
    if (partial_.size() + len > max_event_bytes_) {
      error_ = StreamError::kEventTooLarge;
      std::string().swap(partial_);
      return error_;
    }
    if (!partial_.empty()) {
      partial_.append(text);
      text = partial_;
    }
    bytes.remove_prefix(len + 1);
    emit(text, on_line);
    partial_.clear();
  }
  return error_;
}

StreamEnd NdjsonParser::finish(EventSink<NdjsonLine> on_line) {
  if (error_ != StreamError::kNone) return StreamEnd::kFailed;
  const bool blank = json_blank(partial_);
  if (finished_) return blank ? StreamEnd::kBetweenEvents : StreamEnd::kCut;
  finished_ = true;
  if (blank) return StreamEnd::kBetweenEvents;
  emit(partial_, on_line);
  return StreamEnd::kCut;
}

}  // namespace llmbridge::http
