// Markdown fence stripping. One forward pass over the lines; no allocation.
#include "llmbridge/text/fences.hpp"

#include <cctype>
#include <cstddef>
#include <optional>
#include <utility>

namespace llmbridge::text {
namespace {

struct Span {
  std::size_t begin;
  std::size_t end;
};

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

// A fence run at `pos`: three or more of the same fence character.
struct FenceRun {
  char ch = 0;
  std::size_t length = 0;
};

std::optional<FenceRun> fence_at(std::string_view t, std::size_t pos) noexcept {
  if (pos >= t.size() || (t[pos] != '`' && t[pos] != '~')) return std::nullopt;
  const char ch = t[pos];
  std::size_t n = 0;
  while (pos + n < t.size() && t[pos + n] == ch) ++n;
  if (n < 3) return std::nullopt;
  return FenceRun{ch, n};
}

std::size_t skip_indent(std::string_view t, std::size_t pos, std::size_t end) noexcept {
  while (pos < end && (t[pos] == ' ' || t[pos] == '\t')) ++pos;
  return pos;
}

std::size_t line_end(std::string_view t, std::size_t pos) noexcept {
  const std::size_t nl = t.find('\n', pos);
  return nl == std::string_view::npos ? t.size() : nl;
}

// True when [pos, end) holds a closing fence for `open`: a run of the same character
// at least as long, then only white space.
bool is_closer(std::string_view t, std::size_t pos, std::size_t end, FenceRun open) noexcept {
  pos = skip_indent(t, pos, end);
  auto run = fence_at(t, pos);
  if (!run || run->ch != open.ch || run->length < open.length) return false;
  for (std::size_t i = pos + run->length; i < end; ++i)
    if (!is_space(t[i])) return false;
  return true;
}

bool starts_json(std::string_view t, Span s) noexcept {
  std::size_t i = s.begin;
  while (i < s.end && (is_space(t[i]) || t[i] == '\n')) ++i;
  return i < s.end && (t[i] == '{' || t[i] == '[');
}

// Rule 1: the whole text is one fenced block (opening line first, closing fence last).
std::optional<Span> surrounding_block(std::string_view t) noexcept {
  std::size_t first = 0;
  while (first < t.size() && (is_space(t[first]) || t[first] == '\n')) ++first;
  auto open = fence_at(t, first);
  if (!open) return std::nullopt;
  std::size_t last = t.size();
  while (last > first && (is_space(t[last - 1]) || t[last - 1] == '\n')) --last;
  // The closing run ends at `last`.
  std::size_t run_begin = last;
  while (run_begin > first && t[run_begin - 1] == open->ch) --run_begin;
  if (last - run_begin < open->length) return std::nullopt;
  const std::size_t open_line_end = line_end(t, first);
  if (open_line_end >= run_begin) {
    // One line: ```json {"a": 1}``` -- content between the runs, minus the info word.
    std::size_t b = first + open->length;
    if (b >= run_begin) return std::nullopt;
    std::size_t i = b;
    while (i < run_begin && (std::isalnum(static_cast<unsigned char>(t[i])) || t[i] == '_' ||
                             t[i] == '-' || t[i] == '+'))
      ++i;
    if (i < run_begin && (t[i] == ' ' || t[i] == '\t')) b = i;
    return Span{b, run_begin};
  }
  // The closing run must start its own line (after optional indentation).
  std::size_t k = run_begin;
  while (k > first && (t[k - 1] == ' ' || t[k - 1] == '\t')) --k;
  if (k == 0 || t[k - 1] != '\n') return std::nullopt;
  const std::size_t content_begin = open_line_end + 1;
  const std::size_t content_end = k - 1;  // the newline before the closing line
  if (content_end < content_begin) return Span{content_begin, content_begin};
  return Span{content_begin, content_end};
}

// A fence run inside [pos, le) followed only by an info string ("json", "" ...) up to
// the end of the line: an opening fence with prose before it. Returns le if none.
std::size_t fence_after_prose(std::string_view t, std::size_t pos, std::size_t le) noexcept {
  for (std::size_t i = pos; i + 3 <= le; ++i) {
    if (t[i] != '`' && t[i] != '~') continue;
    auto run = fence_at(t, i);
    if (!run) continue;
    std::size_t j = i + run->length;
    while (j < le && (std::isalnum(static_cast<unsigned char>(t[j])) || t[j] == '_' ||
                      t[j] == '-' || t[j] == '+' || t[j] == '.'))
      ++j;
    while (j < le && is_space(t[j])) ++j;
    if (j == le) return i;
    i += run->length - 1;
  }
  return le;
}

// Rule 2: the first fenced block holding JSON, else the first block.
std::optional<Span> first_block(std::string_view t) noexcept {
  std::optional<Span> first;
  std::size_t pos = 0;
  while (pos < t.size()) {
    const std::size_t le = line_end(t, pos);
    std::size_t ind = skip_indent(t, pos, le);
    auto open = fence_at(t, ind);
    if (!open) {
      // Prose before the fence on its line: "Result: ```json".
      ind = fence_after_prose(t, pos, le);
      if (ind < le) open = fence_at(t, ind);
    }
    if (!open) {
      pos = le + 1;
      continue;
    }
    // An opening fence line. Content starts on the next line, or on this one for
    // ```{"a": 1}``` style blocks.
    std::size_t content_begin = le + 1;
    {
      std::size_t i = ind + open->length;
      while (i < le && t[i] != '{' && t[i] != '[' && t[i] != open->ch) ++i;
      if (i < le && (t[i] == '{' || t[i] == '[')) content_begin = i;
    }
    if (content_begin > t.size()) content_begin = t.size();
    std::size_t content_end = t.size();
    std::size_t next = t.size();
    bool closed = false;
    // Same-line close (```{...}```).
    if (content_begin <= le) {
      std::size_t r = le;
      while (r > content_begin && is_space(t[r - 1])) --r;
      std::size_t rb = r;
      while (rb > content_begin && t[rb - 1] == open->ch) --rb;
      if (r - rb >= 3) {
        content_end = rb;
        next = le + 1;
        closed = true;
      }
    }
    if (!closed) {
      std::size_t q = le + 1;
      while (q < t.size()) {
        const std::size_t qe = line_end(t, q);
        if (is_closer(t, q, qe, *open)) {
          content_end = q > content_begin ? q - 1 : content_begin;
          next = qe + 1;
          closed = true;
          break;
        }
        q = qe + 1;
      }
      if (!closed) {
        // Never closed by a fence line: a fence glued to the JSON's end (}```),
        // else the answer was cut off and the block runs to the end.
        std::size_t r = t.size();
        while (r > content_begin && (is_space(t[r - 1]) || t[r - 1] == '\n')) --r;
        std::size_t rb = r;
        while (rb > content_begin && t[rb - 1] == open->ch) --rb;
        if (r - rb >= 3) content_end = rb;
      }
    }
    if (content_end < content_begin) content_end = content_begin;
    Span s{content_begin, content_end};
    if (starts_json(t, s)) return s;
    if (!first) first = s;
    pos = next;
  }
  return first;
}

std::optional<Span> find_block(std::string_view t) noexcept {
  if (t.find("```") == std::string_view::npos && t.find("~~~") == std::string_view::npos)
    return std::nullopt;
  if (auto s = surrounding_block(t)) return s;
  return first_block(t);
}

}  // namespace

std::string_view strip_markdown_fences(std::string_view text) noexcept {
  auto s = find_block(text);
  if (!s) return text;
  return text.substr(s->begin, s->end - s->begin);
}

bool has_markdown_fence(std::string_view text) noexcept { return find_block(text).has_value(); }

}  // namespace llmbridge::text
