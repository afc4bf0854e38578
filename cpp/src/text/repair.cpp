// JSON repair in one forward pass.
//
// Linear time by construction: every input byte is consumed once by the main loop;
// every look-ahead (is this quote the end of the string? does a `"key":` follow? does
// this `{` start JSON?) is bounded by kLookahead bytes; output is append-only except
// bounded edits: wrapping concatenated values in `[` and unwrapping a lone survivor
// (once each), dropping an empty root placeholder, taking back the one string just
// emitted when it turns out to be a key, taking back the closer just written when the
// container goes on (`{"a": 1}, "b": 2}`), and rewriting a Python set's own output
// (keys only, nothing nested) as a list. So a trailing comma before each of a million
// closers costs the same as none. Separators are never emitted eagerly:
// a comma is written only when the next element starts, so trailing, leading and
// doubled commas vanish and missing ones appear without editing the output.
#include "llmbridge/text/repair.hpp"

#include <simdjson.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "llmbridge/text/fences.hpp"
#include "llmbridge/text/json_escape.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/utf8.hpp"

namespace llmbridge::text {

const char* to_string(RepairKind kind) noexcept {
  switch (kind) {
    case RepairKind::kFenceStripped: return "fence_stripped";
    case RepairKind::kProseSkipped: return "prose_skipped";
    case RepairKind::kTrailingTextDropped: return "trailing_text_dropped";
    case RepairKind::kValuesConcatenated: return "values_concatenated";
    case RepairKind::kCommentRemoved: return "comment_removed";
    case RepairKind::kQuoteNormalised: return "quote_normalised";
    case RepairKind::kKeyQuoted: return "key_quoted";
    case RepairKind::kStringQuoted: return "string_quoted";
    case RepairKind::kCommaInserted: return "comma_inserted";
    case RepairKind::kCommaRemoved: return "comma_removed";
    case RepairKind::kColonInserted: return "colon_inserted";
    case RepairKind::kValueDefaulted: return "value_defaulted";
    case RepairKind::kLiteralMapped: return "literal_mapped";
    case RepairKind::kNonFiniteNulled: return "nonfinite_nulled";
    case RepairKind::kNumberNormalised: return "number_normalised";
    case RepairKind::kStringEscaped: return "string_escaped";
    case RepairKind::kEscapeFixed: return "escape_fixed";
    case RepairKind::kStringClosed: return "string_closed";
    case RepairKind::kContainerClosed: return "container_closed";
    case RepairKind::kBracketFixed: return "bracket_fixed";
    case RepairKind::kGarbageSkipped: return "garbage_skipped";
    case RepairKind::kLiteralCompleted: return "literal_completed";
    case RepairKind::kKeyDropped: return "key_dropped";
    case RepairKind::kCallUnwrapped: return "call_unwrapped";
    case RepairKind::kEllipsisRemoved: return "ellipsis_removed";
    case RepairKind::kInvalidUtf8Replaced: return "invalid_utf8_replaced";
  }
  return "unknown";
}

bool is_valid_json(std::string_view input) noexcept {
  simdjson::dom::element root;
  const simdjson::error_code err = thread_parser().parse(input, root);
  if (err == simdjson::SUCCESS) return true;
  // simdjson refuses a few valid documents (integers beyond 64 bits, lone surrogate
  // escapes): the repairer decides those, valid meaning "nothing to repair".
  if (err != simdjson::NUMBER_ERROR && err != simdjson::NUMBER_OUT_OF_RANGE &&
      err != simdjson::STRING_ERROR && err != simdjson::DEPTH_ERROR)
    return false;
  try {
    RepairOptions opts;
    opts.collect_repairs = false;
    RepairResult r = repair_json(input, opts);
    return r.ok && r.unchanged;
  } catch (...) {
    return false;
  }
}

namespace {

constexpr std::size_t kLookahead = 256;

// Where a look-ahead that starts at t stops: kLookahead bytes on, or the end of input.
inline const char* lookahead_end(const char* t, const char* end) noexcept {
  return end - t > std::ptrdiff_t(kLookahead) ? t + kLookahead : end;
}

using uchar = unsigned char;

inline bool is_digit(uchar c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_alpha(uchar c) noexcept { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
inline bool is_hex(uchar c) noexcept {
  return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}
inline int hex_value(uchar c) noexcept {
  return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}
inline bool is_ws(uchar c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Byte tables: which bytes end a run of plain string content.
struct Tables {
  std::array<bool, 256> dq{};     // in "..." strings
  std::array<bool, 256> other{};  // in '...' and typographic-quote strings
  Tables() {
    for (int c = 0; c < 0x20; ++c) dq[c] = other[c] = true;
    dq['"'] = dq['\\'] = true;
    other['"'] = other['\\'] = other['\''] = other[0xE2] = true;
  }
};
const Tables kTables;

// The first byte in [p, end) that ends a run of plain "..." string content: a quote,
// a backslash or a control character. SSE2 checks 16 bytes at a time (every x86-64
// has it); elsewhere the table loop does the work.
inline const char* scan_dq(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i slash = _mm_set1_epi8('\\');
  const __m128i ctl = _mm_set1_epi8(0x1F);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hit = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
        _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));  // v <= 0x1F, unsigned
    const int mask = _mm_movemask_epi8(hit);
    if (mask) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && !kTables.dq[uchar(*p)]) ++p;
  return p;
}

// The first byte in [p, end) that is not a space (indentation runs in pretty JSON).
inline const char* skip_spaces(const char* p, const char* end) noexcept {
  if (p < end && *p != ' ') return p;  // the common single space after , or :
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(' ');
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const int mask = ~_mm_movemask_epi8(_mm_cmpeq_epi8(v, space)) & 0xFFFF;
    if (mask) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && *p == ' ') ++p;
  return p;
}

// Typographic quotes and other 3-byte marks that start with 0xE2 0x80.
inline int e280(const char* p, const char* end) noexcept {
  if (end - p < 3 || uchar(p[0]) != 0xE2 || uchar(p[1]) != 0x80) return -1;
  return uchar(p[2]);
}
inline bool is_smart_double(int b) noexcept { return b == 0x9C || b == 0x9D; }
inline bool is_smart_single(int b) noexcept { return b == 0x98 || b == 0x99; }

// Unicode white space that LLMs and editors leave around JSON, as byte lengths.
inline int unicode_space(const char* p, const char* end) noexcept {
  const uchar c = uchar(*p);
  if (c == 0xC2 && end - p >= 2 && uchar(p[1]) == 0xA0) return 2;  // NBSP
  if (c == 0xEF && end - p >= 3 && uchar(p[1]) == 0xBB && uchar(p[2]) == 0xBF) return 3;  // BOM
  if (c == 0xE3 && end - p >= 3 && uchar(p[1]) == 0x80 && uchar(p[2]) == 0x80) return 3;
  const int b = e280(p, end);
  if ((b >= 0x80 && b <= 0x8B) || b == 0xA8 || b == 0xA9 || b == 0xAF) return 3;
  return 0;
}

// Identifier bytes for unquoted keys and words: ASCII letters, digits, _ $ - . and
// any non-ASCII byte that is not a quote, ellipsis or space mark.
inline bool is_ident_byte(const char* p, const char* end) noexcept {
  const uchar c = uchar(*p);
  if (c < 0x80) return is_alpha(c) || is_digit(c) || c == '_' || c == '$' || c == '-' || c == '.';
  const int b = e280(p, end);
  if (is_smart_double(b) || is_smart_single(b) || b == 0xA6) return false;
  return unicode_space(p, end) == 0;
}
inline bool is_ident_start(const char* p, const char* end) noexcept {
  const uchar c = uchar(*p);
  if (c < 0x80) return is_alpha(c) || c == '_' || c == '$';
  return is_ident_byte(p, end);
}


// JSON literal for a word, or nullptr. Sets *nonfinite for NaN/Infinity.
const char* literal_for(std::string_view w, bool* mapped, bool* nonfinite) noexcept {
  *mapped = true;
  *nonfinite = false;
  if (w == "true") { *mapped = false; return "true"; }
  if (w == "false") { *mapped = false; return "false"; }
  if (w == "null") { *mapped = false; return "null"; }
  if (w == "True" || w == "TRUE") return "true";
  if (w == "False" || w == "FALSE") return "false";
  if (w == "None" || w == "NULL" || w == "Null" || w == "undefined" || w == "nil") return "null";
  if (w == "NaN" || w == "nan" || w == "Infinity" || w == "inf" || w == "Inf") {
    *nonfinite = true;
    return "null";
  }
  return nullptr;
}

// A word cut off at the end of input that can only be the start of a literal.
const char* literal_prefix(std::string_view w) noexcept {
  static const char* const kWords[] = {"true", "false", "null", "True", "False", "None"};
  static const char* const kJson[] = {"true", "false", "null", "true", "false", "null"};
  if (w.empty()) return nullptr;
  for (int i = 0; i < 6; ++i) {
    std::string_view full(kWords[i]);
    if (w.size() < full.size() && full.substr(0, w.size()) == w) return kJson[i];
  }
  return nullptr;
}

// The repairer's output: append-only writes with the capacity check inlined (a
// std::string append is an out-of-line call, and the repairer makes one per token).
class TextBuffer {
 public:
  void reserve(std::size_t n) { if (n > s_.size()) s_.resize(n); }
  std::size_t size() const noexcept { return len_; }
  char back() const noexcept { return s_[len_ - 1]; }
  void clear() noexcept { len_ = 0; }
  void resize(std::size_t n) noexcept { if (n < len_) len_ = n; }  // shrink only
  void push_back(char c) {
    if (len_ == s_.size()) grow(1);
    s_[len_++] = c;
  }
  void append(const char* p, std::size_t n) {
    if (s_.size() - len_ < n) grow(n);
    std::memcpy(&s_[len_], p, n);
    len_ += n;
  }
  template <std::size_t N>
  TextBuffer& operator+=(const char (&lit)[N]) {
    append(lit, N - 1);
    return *this;
  }
  TextBuffer& operator+=(const std::string& t) {
    append(t.data(), t.size());
    return *this;
  }
  TextBuffer& operator+=(const TextBuffer& t) {
    append(t.s_.data(), t.len_);
    return *this;
  }
  void append_cstr(const char* z) { append(z, std::strlen(z)); }
  std::string substr(std::size_t pos) const { return s_.substr(pos, len_ - pos); }
  void assign(const std::string& t) {
    len_ = 0;
    append(t.data(), t.size());
  }
  void erase(std::size_t pos, std::size_t n) noexcept {  // bounded uses only: see callers
    std::memmove(&s_[pos], &s_[pos + n], len_ - pos - n);
    len_ -= n;
  }
  char& operator[](std::size_t i) noexcept { return s_[i]; }
  void push_front(char c) {  // once per document at most (wrapping concatenated values)
    push_back(c);
    std::memmove(&s_[1], &s_[0], len_ - 1);
    s_[0] = c;
  }
  std::string take() {
    s_.resize(len_);
    len_ = 0;
    return std::move(s_);
  }

 private:
  void grow(std::size_t n) { s_.resize(std::max(len_ + n, s_.size() * 2 + 64)); }
  std::string s_;
  std::size_t len_ = 0;
};

// Quotes raw text [s, e) as a JSON string.
void append_quoted(TextBuffer& dst, const char* s, const char* e) {
  append_json_quoted(dst, std::string_view(s, std::size_t(e - s)));
}

bool is_literal_word(const char* p, const char* end) {
  const char* t = p;
  while (t < end && is_alpha(uchar(*t))) ++t;
  bool mapped, nonfinite;
  const char* lit = literal_for(std::string_view(p, std::size_t(t - p)), &mapped, &nonfinite);
  return lit && !nonfinite && (t == end || !is_ident_byte(t, end));
}

enum class Kind : std::uint8_t { kRoot, kObject, kArray };
// Root: kValue, then kSep once a value is complete.
// Object: kValue = key expected, kColon = after a key, kMember = after the colon,
//         kSep = after a member's value. Array: kValue, kSep.
enum class St : std::uint8_t { kValue, kColon, kMember, kSep };
enum class Ctx : std::uint8_t { kKey, kObjectValue, kArrayValue, kRootValue };
enum class Place : std::uint8_t { kValue, kKey };

struct Frame {
  Kind kind;
  St st = St::kValue;
  bool saw_comma = false;
  std::uint32_t count = 0;
  std::uint32_t paren_skips = 0;  // ')' still owed by unwrapped calls like NumberLong(
  std::size_t open_pos = 0;
  std::size_t out_begin = 0;  // where its opener is in the output
  char opener = 0;  // '{', '[' or '(' as written
  bool set_like = true;  // an object whose members so far are quoted keys without values
};

class Repairer {
 public:
  Repairer(const char* base, const char* begin, const char* end, const RepairOptions& opts,
           RepairResult& res)
      : base_(base), p_(begin), end_(end), opts_(opts), res_(res) {
    out_.reserve(std::size_t(end - begin) + 16);
    stack_.reserve(16);
    stack_.push_back(Frame{Kind::kRoot});
  }

  bool run() {
    for (;;) {
      skip_ws();
      if (p_ >= end_) return finish();
      const uchar c = uchar(*p_);
      Frame& f = stack_.back();
      if (f.kind == Kind::kRoot && f.st == St::kSep) {
        const AfterRoot next = after_root(c);
        if (next == AfterRoot::kStop) return finish();
        if (next == AfterRoot::kConsumed) continue;
      }
      switch (c) {
        case '{':
        case '[':
          open(c == '{' ? Kind::kObject : Kind::kArray);
          break;
        case '(':
          if (f.kind == Kind::kObject && (f.st == St::kValue || f.st == St::kSep)) {
            garbage();
          } else {
            open(Kind::kArray);  // a Python tuple
          }
          break;
        case '}':
        case ']':
        case ')':
          close(c);
          break;
        case ',':
          comma();
          break;
        case ':':
          colon();
          break;
        case '=':
          if (f.kind == Kind::kObject && f.st == St::kColon) {
            note(RepairKind::kColonInserted);
            colon();
          } else {
            garbage();
          }
          break;
        case '"':
        case '\'':
          string_token();
          break;
        case '`':
          if (end_ - p_ >= 3 && p_[1] == '`' && p_[2] == '`') {
            // A fence glued to the JSON: the answer ends here.
            note(RepairKind::kFenceStripped);
            p_ = end_;
          } else {
            garbage();
          }
          break;
        default:
          if (is_digit(c) || c == '-' || c == '+' || c == '.') {
            number_token();
          } else if (int b = e280(p_, end_); is_smart_double(b) || is_smart_single(b)) {
            string_token();
          } else if (b == 0xA6) {  // … as a placeholder
            note(RepairKind::kEllipsisRemoved);
            p_ += 3;
          } else if (is_ident_start(p_, end_)) {
            word_token();
          } else {
            garbage();
          }
      }
      if (failed_) return false;
    }
  }

  bool truncated() const noexcept { return truncated_; }
  std::size_t repair_count() const noexcept { return repair_count_; }

 private:
  std::size_t pos(const char* p) const noexcept { return std::size_t(p - base_); }
  void note(RepairKind k) { note_at(k, p_); }
  void note_at(RepairKind k, const char* p) {
    ++repair_count_;
    if (opts_.collect_repairs) res_.repairs.push_back(Repair{k, pos(p)});
  }
  bool fail(const char* p, std::string why) {
    failed_ = true;
    res_.error_position = pos(p);
    res_.error = std::move(why);
    return false;
  }
  void garbage() {
    note(RepairKind::kGarbageSkipped);
    ++p_;
  }

  // White space, comments and Unicode spaces.
  void skip_ws() {
    while (p_ < end_) {
      const uchar c = uchar(*p_);
      if (c == ' ') {
        p_ = skip_spaces(p_ + 1, end_);
      } else if (is_ws(c)) {
        ++p_;
      } else if (c == '/' && end_ - p_ >= 2 && p_[1] == '/') {
        note(RepairKind::kCommentRemoved);
        skip_line();
      } else if (c == '/' && end_ - p_ >= 2 && p_[1] == '*') {
        note(RepairKind::kCommentRemoved);
        const char* close = nullptr;
        for (const char* q = p_ + 2; q + 1 < end_; ++q)
          if (q[0] == '*' && q[1] == '/') {
            close = q;
            break;
          }
        p_ = close ? close + 2 : end_;
      } else if (c == '#') {
        note(RepairKind::kCommentRemoved);
        skip_line();
      } else if (c >= 0x80) {
        const int n = unicode_space(p_, end_);
        if (!n) return;
        note(RepairKind::kGarbageSkipped);  // NBSP, BOM, zero-width space ...
        p_ += n;
      } else if (c == 0) {
        note(RepairKind::kGarbageSkipped);  // NUL bytes outside strings carry nothing
        ++p_;
      } else {
        return;
      }
    }
  }
  // A `//` or `#` comment runs to the end of its line. On the last line of the input it
  // ends before the first closer instead (`{"a": {"b": 1 // note }, "c": 2}` written on
  // one line): a comment that ran to the end would take the rest of the document.
  void skip_line() {
    if (!next_newline_ || next_newline_ < p_) {  // one search per line, however many comments it holds
      const void* nl = std::memchr(p_, '\n', std::size_t(end_ - p_));
      next_newline_ = nl ? static_cast<const char*>(nl) : end_;
    }
    if (next_newline_ < end_) {
      p_ = next_newline_;
      return;
    }
    while (p_ < end_ && *p_ != '}' && *p_ != ']') ++p_;
  }

  // After the first complete root value: more values (NDJSON, {}{}) are collected
  // into an array; anything else ends the document.
  enum class AfterRoot { kConsumed, kValue, kStop };
  AfterRoot after_root(uchar c) {
    if ((c == ',' || c == '"' || is_ident_start(p_, end_)) && !wrapped_ &&
        can_reopen(Kind::kObject) && members_follow(p_)) {
      reopen();  // `{"a": 1}, "b": 2}`: the first `}` was one too many
      return AfterRoot::kConsumed;
    }
    if (c == ',' || c == ';' || c == '}' || c == ']' || c == ')') {
      note(c == ',' ? RepairKind::kCommaRemoved
                    : c == ';' ? RepairKind::kGarbageSkipped : RepairKind::kBracketFixed);
      ++p_;
      return AfterRoot::kConsumed;
    }
    if (c == '{' || c == '[') {
      if (!wrapped_) {
        // The wrapping array is one more level around everything already emitted.
        if (deepest_ + 1 > opts_.max_depth) {
          fail(p_, "nesting deeper than " + std::to_string(opts_.max_depth) + " levels");
          return AfterRoot::kStop;
        }
        out_.push_front('[');
        wrapped_ = true;
        note(RepairKind::kValuesConcatenated);
      }
      stack_.back().st = St::kValue;
      return AfterRoot::kValue;
    }
    if (c == '`' && end_ - p_ >= 3 && p_[1] == '`' && p_[2] == '`') {
      note(RepairKind::kFenceStripped);
    } else {
      note(RepairKind::kTrailingTextDropped);
    }
    p_ = end_;
    return AfterRoot::kStop;
  }

  // At t, after a closed root object: an optional comma and then `"key":` or `key:`.
  bool members_follow(const char* t) const {
    const char* lim = lookahead_end(t, end_);
    if (*t == ',') t = skip_gap(t + 1, lim, nullptr);
    if (key_then_colon(t, lim)) return true;
    if (t >= lim || *t != '"') return false;  // `"key" "value"`: the colon is missing
    const void* q = std::memchr(t + 1, '"', std::size_t(lim - t - 1));
    if (!q) return false;
    const char* u = static_cast<const char*>(q) + 1;
    while (u < lim && (*u == ' ' || *u == '\t')) ++u;
    return u < lim && u > static_cast<const char*>(q) + 1 && *u == '"';
  }

  // Decides where the value about to start goes, writing the separator and a pending
  // member key as needed. kKey: in an object where a key is expected.
  Place place() {
    Frame& f = stack_.back();
    switch (f.kind) {
      case Kind::kRoot:
        root_comma_ = out_.size();
        if (wrapped_ && root_count_ > 0) out_.push_back(',');
        root_begin_ = out_.size();
        return Place::kValue;
      case Kind::kArray:
        if (f.count > 0) {
          if (f.st == St::kSep) note(RepairKind::kCommaInserted);
          out_.push_back(',');
        }
        return Place::kValue;
      case Kind::kObject:
        switch (f.st) {
          case St::kValue: return Place::kKey;
          case St::kSep: note(RepairKind::kCommaInserted); return Place::kKey;
          case St::kColon:
            note(RepairKind::kColonInserted);
            f.set_like = false;
            emit_member_prefix(f);
            return Place::kValue;
          case St::kMember: emit_member_prefix(f); return Place::kValue;
        }
    }
    return Place::kValue;
  }
  void emit_member_prefix(const Frame& f) {
    if (f.count > 0) out_.push_back(',');
    out_ += key_;
    out_.push_back(':');
  }
  void value_done() {
    Frame& f = stack_.back();
    if (f.kind == Kind::kRoot) root_value_done();
    ++f.count;
    f.st = St::kSep;
    f.saw_comma = false;
    last_is_string_ = false;
  }
  // Several root values become a list, but an empty `{}` or `[]` beside real values
  // carries nothing (`[]{"a": 1}`, `{"a": 1}, []`): it is dropped. When all are empty,
  // the first stays. Bounded edits: the value just written, or the one before it.
  void root_value_done() {
    const bool empty = out_.size() - root_begin_ == 2 && (out_.back() == '}' || out_.back() == ']');
    if (root_count_ == 0) {
      first_root_empty_ = empty;
      root_count_ = 1;
      return;
    }
    last_closed_end_ = 0;  // the edits below move what was written: nothing to reopen
    if (empty) {
      out_.resize(root_comma_);
      note(RepairKind::kGarbageSkipped);
      return;
    }
    if (first_root_empty_ && root_count_ == 1) {
      out_.erase(1, 3);  // `[[],{...}` -> `[{...}`: the value before is at 1, then its comma
      first_root_empty_ = false;
      note(RepairKind::kGarbageSkipped);
      return;
    }
    ++root_count_;
  }
  void key_done() {
    Frame& f = stack_.back();
    f.st = St::kColon;
  }

  void open(Kind kind) {
    if (kind == Kind::kArray && *p_ == '[' && stack_.back().kind == Kind::kObject &&
        (stack_.back().st == St::kSep || stack_.back().st == St::kValue) &&
        can_reopen(Kind::kArray)) {
      // `{"k": ["a"], ["b"], "c": 1}`: the array was closed one element too early.
      reopen();
      Frame& a = stack_.back();
      a.st = St::kValue;  // the next element is written with its comma
      ++p_;
      return;
    }
    if (place() == Place::kKey) {
      garbage();  // `{"a": 1, {"b": 2}}`: drop the brace, keep the members
      return;
    }
    if (!push_container(kind, *p_)) return;
    if (*p_ == '(') note(RepairKind::kBracketFixed);
    ++p_;
  }
  // Writes the opener of a new container at p_ and pushes its frame; false past
  // max_depth (the repair has failed then).
  bool push_container(Kind kind, char opener) {
    const std::size_t depth = stack_.size() + (wrapped_ ? 1 : 0);  // of the new container
    if (depth > opts_.max_depth) {
      fail(p_, "nesting deeper than " + std::to_string(opts_.max_depth) + " levels");
      return false;
    }
    if (depth > deepest_) deepest_ = depth;
    out_.push_back(kind == Kind::kObject ? '{' : '[');
    Frame f{kind};
    f.open_pos = pos(p_);
    f.out_begin = out_.size() - 1;
    f.opener = opener;
    stack_.push_back(f);
    (kind == Kind::kObject ? open_objects_ : open_arrays_)++;
    return true;
  }

  void close_top(bool at_eof) {
    Frame& f = stack_.back();
    if (f.kind == Kind::kObject) {
      if (f.st == St::kColon || f.st == St::kMember) {
        if (at_eof) {
          note(RepairKind::kKeyDropped);
        } else {
          emit_member_prefix(f);
          out_ += "null";
          note(RepairKind::kValueDefaulted);
          ++f.count;  // a member, should the object be opened again
        }
      } else if (f.st == St::kValue && f.saw_comma) {
        note(RepairKind::kCommaRemoved);
      }
      --open_objects_;
      if (f.set_like && f.count >= 2 && object_to_list(f.out_begin)) {
        f.kind = Kind::kArray;  // `{'a', 'b'}`: a Python set
        note(RepairKind::kBracketFixed);
      } else {
        out_.push_back('}');
      }
    } else {
      if (f.st == St::kValue && f.saw_comma) note(RepairKind::kCommaRemoved);
      out_.push_back(']');
      --open_arrays_;
    }
    last_closed_ = f;
    last_closed_end_ = out_.size();
    stack_.pop_back();
    value_done();
  }

  // `{'a', 'b'}`: the object starting at `begin` was written as "a":null,"b":null;
  // it becomes the list of its keys. Rewrites only this object's own output, which
  // holds keys and nothing nested, so the cost stays linear.
  // The shape is checked before anything is rewritten; false (nothing changed) when the
  // object holds anything else.
  bool object_to_list(std::size_t begin) {
    const std::size_t n = out_.size();
    auto key_end = [&](std::size_t r) -> std::size_t {  // just past the key string at r
      if (r >= n || out_[r] != '"') return 0;
      for (++r; r < n && out_[r] != '"'; ++r)
        if (out_[r] == '\\') ++r;
      return r < n ? r + 1 : 0;
    };
    static constexpr std::string_view kNull = ":null";
    for (std::size_t r = begin + 1; r < n;) {
      r = key_end(r);
      if (r == 0 || n - r < kNull.size() || std::memcmp(&out_[r], kNull.data(), kNull.size()))
        return false;
      r += kNull.size();
      if (r < n && out_[r++] != ',') return false;
    }
    std::size_t w = begin, r = begin + 1;
    out_[w++] = '[';
    while (r < n) {
      const std::size_t e = key_end(r);
      while (r < e) out_[w++] = out_[r++];
      r += kNull.size();
      if (r < n) out_[w++] = out_[r++];  // the comma
    }
    out_.resize(w);
    out_.push_back(']');
    return true;
  }

  // Opens again the container closed last, when its closer is still the last byte
  // written (`{"a": 1}, "b": 2}`, `{"k": ["a"], ["b"]}`): one byte taken back.
  bool can_reopen(Kind kind) const noexcept {
    return last_closed_end_ == out_.size() && last_closed_end_ > 0 && last_closed_.kind == kind;
  }
  void reopen() {
    out_.resize(out_.size() - 1);
    last_closed_end_ = 0;
    Frame& parent = stack_.back();
    --parent.count;
    if (parent.kind == Kind::kRoot) {
      --root_count_;
      parent.st = St::kValue;
    } else {
      parent.st = St::kMember;  // not reached for the root: a member's value is open
    }
    Frame f = last_closed_;
    f.st = f.count > 0 ? St::kSep : St::kValue;
    f.saw_comma = false;
    stack_.push_back(f);
    (f.kind == Kind::kObject ? open_objects_ : open_arrays_)++;
    note(RepairKind::kBracketFixed);
  }

  void close(uchar c) {
    Frame& f = stack_.back();
    if (c == ')' && f.paren_skips > 0) {
      --f.paren_skips;
      ++p_;
      return;
    }
    const Kind want = c == '}' ? Kind::kObject : Kind::kArray;
    if (f.kind != want) {
      if ((want == Kind::kObject ? open_objects_ : open_arrays_) == 0) {
        note(RepairKind::kBracketFixed);
        // `{"a": 2]`: the wrong closer; at the root, or when the container goes on
        // (`[{"k": 1}}, {"k": 2}]`): a stray closer.
        if (f.kind != Kind::kRoot && !container_goes_on(p_ + 1)) close_top(false);
        ++p_;
        return;
      }
      // Close what was left open inside the container this closer belongs to.
      while (stack_.back().kind != want) {
        note(RepairKind::kBracketFixed);
        close_top(false);
      }
    }
    // `[1, 2)` or `(1, 2]`: right container, other spelling.
    if (want == Kind::kArray && (c == ')') != (stack_.back().opener == '('))
      note(RepairKind::kBracketFixed);
    close_top(false);
    ++p_;
  }

  // After a stray closer at t: does the open container go on (a comma, or in an
  // object the next `"key":`)?
  bool container_goes_on(const char* t) const {
    const char* lim = lookahead_end(t, end_);
    const char stray = stack_.back().kind == Kind::kObject ? ']' : '}';
    t = skip_gap(t, lim, nullptr);
    while (t < lim && *t == stray) t = skip_gap(t + 1, lim, nullptr);  // `}}}`
    if (t >= lim) return false;
    if (*t == ',') return true;
    return stack_.back().kind == Kind::kObject && key_then_colon(t, lim);
  }

  void comma() {
    Frame& f = stack_.back();
    if (f.kind == Kind::kObject && (f.st == St::kColon || f.st == St::kMember)) {
      // `{"a": , "b": 1}` or `{"a", ...}`: the key has no value.
      emit_member_prefix(f);
      out_ += "null";
      note(RepairKind::kValueDefaulted);
      value_done();
      f.st = St::kValue;
      f.saw_comma = true;
    } else if (f.st == St::kSep && f.kind != Kind::kRoot) {
      f.st = St::kValue;
      f.saw_comma = true;
    } else {
      note(RepairKind::kCommaRemoved);  // leading or doubled
    }
    ++p_;
  }

  void colon() {
    Frame& f = stack_.back();
    if (f.kind == Kind::kObject && f.st == St::kColon) {
      f.st = St::kMember;
      f.set_like = false;
    } else if (f.kind == Kind::kArray && f.st == St::kSep && last_is_string_ && f.count == 1) {
      // `["key": "value"]`: the array's first element is a key; an object lost its `{`.
      std::string key = out_.substr(last_string_begin_);
      out_.resize(last_element_begin_);
      f.count = 0;
      f.st = St::kValue;
      last_is_string_ = false;
      if (!push_container(Kind::kObject, '{')) return;
      key_.assign(key);
      stack_.back().st = St::kMember;
      stack_.back().set_like = false;
      note(RepairKind::kBracketFixed);
    } else if (f.kind == Kind::kArray && f.st == St::kSep && last_is_string_ &&
               stack_.size() >= 2 && stack_[stack_.size() - 2].kind == Kind::kObject) {
      // `{"a": [1, 2, "b": 3}`: the array lost its `]` and "b" is the next key.
      std::string key = out_.substr(last_string_begin_);
      out_.resize(last_element_begin_);
      --f.count;
      note(RepairKind::kBracketFixed);
      close_top(false);
      key_.assign(key);
      stack_.back().st = St::kMember;
    } else {
      note(RepairKind::kGarbageSkipped);
    }
    ++p_;
  }

  // ---- strings ----

  // Is the quote just before `t` the end of the string? Bounded look-ahead at what
  // follows: a closing quote is followed by what the grammar allows there.
  bool closes(const char* t, Ctx ctx) const {
    if (ctx == Ctx::kRootValue) return true;
    const char* lim = lookahead_end(t, end_);
    bool newline = false;
    const char* start = t;
    t = skip_gap(t, lim, &newline);
    if (t >= lim) return true;
    const uchar c = uchar(*t);
    const bool spaced = t != start;
    if (ctx == Ctx::kKey) {
      if (c == ':' || c == '}' || c == ']' || c == ',' || c == '=') return true;
      // `{"a" 1}`: a value follows after white space, so the colon is missing.
      return spaced && (c == '"' || c == '\'' || c == '{' || c == '[' || c == '-' ||
                        is_digit(c) || c == 't' || c == 'f' || c == 'n');
    }
    if (c == '}' || c == ']' || c == '`') return true;
    // `)` ends a tuple, a call like ObjectId("...") or the document (`{"a": "x")`), but
    // not the inner text of `"[LINK]("https://x.io")"`.
    if (c == ')') {
      if (stack_.back().opener == '(' || stack_.back().paren_skips > 0) return true;
      const char* u = skip_gap(t + 1, lim, nullptr);
      return u >= lim || *u == '}' || *u == ']' || *u == ',';
    }
    // In an array, a string followed by a colon was the next key of the enclosing
    // object (the array lost its `]`); colon() takes it back.
    if (c == ':') return ctx == Ctx::kArrayValue;
    if (c == ',') {
      const char* u = skip_gap(t + 1, lim, nullptr);
      if (u >= lim) return true;
      const uchar d = uchar(*u);
      if (d == '"' || d == '\'' || d == '}' || d == ']' || d == '{' || d == '[') return true;
      const int b = e280(u, lim);
      if (is_smart_double(b) || is_smart_single(b)) return true;
      if (ctx == Ctx::kArrayValue) return starts_array_element(u, lim);
      if (key_then_colon(u, lim)) return true;
      // `"value", COMMENT "notes": ...`: a stray word, then the next key.
      if (!is_ident_start(u, lim)) return false;
      while (u < lim && is_ident_byte(u, lim)) ++u;
      return word_before_key(u);
    }
    if (newline) {
      if (c == '"' || c == '\'') return true;  // next line starts the next element
      if (ctx == Ctx::kObjectValue) return ident_then_colon(t, lim);
      return c == '{' || c == '[' || c == '-' || is_digit(c) || is_literal_word(t, lim);
    }
    // `{"a": "x" "b": 1}` / `["a" "b"]` / `["x" 1]`: a comma is missing before the next element.
    if (spaced && ctx == Ctx::kArrayValue) {
      if (c == '"' || c == '{' || c == '[' || c == '-' || is_digit(c)) return true;
      // `["one" two", "three"]`, `["one" two]`: the next element lost its quotes
      // (unless an inner quote came before, which this one pairs: `["lorem "ipsum" sic"]`).
      return !inner_quote_ && is_ident_start(t, lim) && words_then_end(t, lim, ']', true);
    }
    // `{"b": "x" true}`, `{"a": "x" note, "b": 1}`: words after the value, then the end
    // of the member; they are dropped as stray text.
    if (spaced && !inner_quote_ && is_ident_start(t, lim) && words_then_end(t, lim, '}', false))
      return true;
    // `{"a": "x" "b": 1}`, and the doubled quote of `{"a": "x""b": 1}`: the next key.
    if (c == '"') return string_then_colon(t, lim);
    return false;
  }
  // `two", ...`, `two words"]` or `two]`: plain text, then a quote if `quoted`, then
  // the end of an element (a comma or `closer`). Within [t, lim). In an object a quote
  // after the words means the first one was inner text (`{"a": "a 24" screen"}`).
  static bool words_then_end(const char* t, const char* lim, char closer, bool quoted) {
    for (; t < lim; ++t) {
      const uchar c = uchar(*t);
      if (c == '"') {
        if (!quoted) return false;
        t = skip_gap(t + 1, lim, nullptr);
        break;
      }
      if (c == ',' || c == closer) break;
      if (c == '\'' || c == ':' || c == '{' || c == '}' || c == '[' || c == ']' || c == '\n' ||
          c == '\\')
        return false;
    }
    return t < lim && (*t == ',' || *t == closer);
  }
  bool string_then_colon(const char* t, const char* lim) const {
    const void* q = std::memchr(t + 1, '"', std::size_t(lim - t - 1));
    if (!q) return false;
    const char* u = static_cast<const char*>(q) + 1;
    while (u < lim && (*u == ' ' || *u == '\t')) ++u;
    return u < lim && *u == ':';
  }
  // Skips white space and comments within [t, lim); notes whether a newline was seen.
  static const char* skip_gap(const char* t, const char* lim, bool* newline) {
    while (t < lim) {
      const uchar c = uchar(*t);
      if (is_ws(c)) {
        if (newline && c == '\n') *newline = true;
        ++t;
      } else if ((c == '/' && t + 1 < lim && t[1] == '/') || c == '#') {
        while (t < lim && *t != '\n') ++t;
      } else if (c == '/' && t + 1 < lim && t[1] == '*') {
        t += 2;
        while (t + 1 < lim && !(t[0] == '*' && t[1] == '/')) ++t;
        t = t + 1 < lim ? t + 2 : lim;
      } else {
        break;
      }
    }
    return t;
  }
  // After `"...",` in an array: does what follows start the next element (rather than
  // more prose of a string with an inner quote)?
  bool starts_array_element(const char* u, const char* lim) const {
    const uchar d = uchar(*u);
    if (is_digit(d) || d == '-' || d == '+' || d == '.' || d == '(') return true;
    if (e280(u, lim) == 0xA6) return true;  // …
    if (!is_ident_start(u, lim)) return false;
    const char* w = u;
    while (w < lim && is_ident_byte(w, lim)) ++w;
    bool mapped, nonfinite;
    if (literal_for(std::string_view(u, std::size_t(w - u)), &mapped, &nonfinite)) return true;
    return w < lim && *w == '(';  // ObjectId("...")
  }
  static bool ident_then_colon(const char* u, const char* lim) {
    if (u >= lim || !is_ident_start(u, lim)) return false;
    while (u < lim && is_ident_byte(u, lim)) ++u;
    while (u < lim && (*u == ' ' || *u == '\t')) ++u;
    return u < lim && *u == ':';
  }
  // An unquoted key (`name:` or `7:`) or a quoted one (`"name":`) at u.
  bool key_then_colon(const char* u, const char* lim) const {
    if (u >= lim) return false;
    if (*u == '"') return string_then_colon(u, lim);
    if (is_digit(uchar(*u))) {
      while (u < lim && is_digit(uchar(*u))) ++u;
      while (u < lim && (*u == ' ' || *u == '\t')) ++u;
      return u < lim && *u == ':';
    }
    return ident_then_colon(u, lim);
  }
  // A raw newline inside a value string: did the string lose its closing quote?
  // Yes when the next line opens the next member ("key":) or closes the container.
  bool newline_ends_string(const char* t) const {
    const char* lim = lookahead_end(t, end_);
    while (t < lim && is_ws(uchar(*t))) ++t;
    if (t >= lim) return false;
    if (*t == '}' || *t == ']') return true;
    return *t == '"' && string_then_colon(t, lim);
  }

  enum class Quote : std::uint8_t { kDouble, kSingle, kSmartDouble, kSmartSingle };

  void read_string(TextBuffer& dst, Ctx ctx) {
    Quote q;
    if (*p_ == '"') {
      q = Quote::kDouble;
      ++p_;
    } else if (*p_ == '\'') {
      q = Quote::kSingle;
      note(RepairKind::kQuoteNormalised);
      ++p_;
    } else {
      q = is_smart_double(e280(p_, end_)) ? Quote::kSmartDouble : Quote::kSmartSingle;
      note(RepairKind::kQuoteNormalised);
      p_ += 3;
    }
    const auto& table = q == Quote::kDouble ? kTables.dq : kTables.other;
    const char* const content = p_;  // the string's first byte of text in the input
    inner_quote_ = false;
    // A key's first colon, in the input and in dst: `{"key:"value"}` lost the quote
    // before it, and the key ends there.
    const char* colon_in = nullptr;
    std::size_t colon_out = 0;
    dst.push_back('"');
    for (;;) {
      const char* s = p_;
      if (q == Quote::kDouble) {
        p_ = scan_dq(p_, end_);
      } else {
        while (p_ < end_ && !table[uchar(*p_)]) ++p_;
      }
      if (ctx == Ctx::kKey && !colon_in && p_ > s) {
        if (const void* k = std::memchr(s, ':', std::size_t(p_ - s))) {
          colon_in = static_cast<const char*>(k);
          colon_out = dst.size() + std::size_t(colon_in - s);
        }
      }
      dst.append(s, std::size_t(p_ - s));
      if (p_ >= end_) {
        if (colon_in) return key_ends_at_colon(dst, colon_in, colon_out);
        note(RepairKind::kStringClosed);
        truncated_ = true;
        string_cut_ = true;
        if (const char* tail = structural_tail(content)) {
          string_cut_ = false;
          // `{"k": ["v]}`: the closers at the very end belong to the structure.
          std::size_t cut = std::size_t(end_ - tail);
          while (cut < std::size_t(end_ - content) && tail[-1] == ' ') ++cut, --tail;
          dst.resize(dst.size() - cut);
          p_ = skip_spaces(tail, end_);
        } else {
          trim_layout_at_cut(dst, content);
        }
        dst.push_back('"');
        return;
      }
      const uchar c = uchar(*p_);
      if (c == '\\') {
        escape(dst);
      } else if (c == '"') {
        if ((q == Quote::kDouble || q == Quote::kSmartDouble) && closes(p_ + 1, ctx)) {
          ++p_;
          dst.push_back('"');
          return;
        }
        if (q == Quote::kDouble) {
          if (const Doubled d = doubled_quote(dst, content, ctx); d != Doubled::kNo) {
            if (d == Doubled::kClosed) return;
            continue;
          }
          if (colon_in) return key_ends_at_colon(dst, colon_in, colon_out);
          if (ctx == Ctx::kObjectValue && close_before_comma(dst, content)) return;
          note(RepairKind::kStringEscaped);
        }
        inner_quote_ = true;
        dst += "\\\"";
        ++p_;
      } else if (c == '\'') {
        if (q == Quote::kSingle) {
          if (closes(p_ + 1, ctx)) {
            ++p_;
            dst.push_back('"');
            return;
          }
          if (const Doubled d = doubled_quote(dst, content, ctx); d != Doubled::kNo) {
            if (d == Doubled::kClosed) return;
            continue;
          }
          if (colon_in) return key_ends_at_colon(dst, colon_in, colon_out);
        }
        dst.push_back('\'');
        ++p_;
      } else if (c == 0xE2) {
        const int b = e280(p_, end_);
        const bool closer = (q == Quote::kSmartDouble && is_smart_double(b)) ||
                            (q == Quote::kSmartSingle && is_smart_single(b));
        if (closer && closes(p_ + 3, ctx)) {
          p_ += 3;
          dst.push_back('"');
          return;
        }
        dst.push_back(char(c));
        ++p_;
      } else {  // a control character
        if (c == '\n' && ctx != Ctx::kKey && newline_ends_string(p_ + 1)) {
          dst.push_back('"');
          note(RepairKind::kStringClosed);
          return;
        }
        note(RepairKind::kStringEscaped);
        append_json_escape(dst, c);
        ++p_;
      }
    }
  }

  // A quote at p_ that does not end the string: is it doubled, as CSV and some models
  // write them (`""value""`, `''text''`)? The second quote of a doubled opener is
  // dropped (kOpener); a doubled closer followed by what may follow a string ends it.
  enum class Doubled : std::uint8_t { kNo, kOpener, kClosed };
  Doubled doubled_quote(TextBuffer& dst, const char* content, Ctx ctx) {
    const char quote = *p_;
    if (p_ == content) {
      note(RepairKind::kQuoteNormalised);
      ++p_;
      return Doubled::kOpener;
    }
    if (end_ - p_ >= 2 && p_[1] == quote && closes(p_ + 2, ctx)) {
      note(RepairKind::kQuoteNormalised);
      p_ += 2;
      dst.push_back('"');
      return Doubled::kClosed;
    }
    return Doubled::kNo;
  }

  // A string cut off after a line break (`{"a": "text\n`): the white space from that
  // break on is layout the model wrote after the text, not content.
  void trim_layout_at_cut(TextBuffer& dst, const char* content) {
    const char* q = end_;
    std::size_t bytes = 0;  // what that white space takes in dst: \n, \r, \t are escaped
    bool newline = false;
    while (q > content && is_ws(uchar(q[-1]))) {
      --q;
      newline |= *q == '\n';
      bytes += *q == ' ' ? 1 : 2;
    }
    if (newline && q > content) dst.resize(dst.size() - bytes);
  }

  // The spaces just before a boundary found inside a string are not its text (the
  // string's opening quote, at least, stays).
  static void drop_trailing_spaces(TextBuffer& dst) {
    while (dst.size() > 1 && dst.back() == ' ') dst.resize(dst.size() - 1);
  }

  // `{"key:"value"}`, `{"key:value}`: a quote that does not end the key, or the end of
  // input, after a colon inside the key: the key lost its closing quote at that colon.
  void key_ends_at_colon(TextBuffer& dst, const char* colon_in, std::size_t colon_out) {
    dst.resize(colon_out);
    drop_trailing_spaces(dst);
    dst.push_back('"');
    note_at(RepairKind::kStringClosed, colon_in);
    p_ = colon_in;
  }

  // At a quote inside an object's value string that does not end it: when the text
  // before it ends with a comma and the quote starts the next `"key":`, the value
  // lost its closing quote before the comma (`{"city": "Paris, "zip": "75001"}`).
  bool close_before_comma(TextBuffer& dst, const char* content) {
    const char* lim = lookahead_end(p_, end_);
    const char* comma = p_;
    while (comma > content && comma[-1] == ' ') --comma;
    if (comma == content || comma[-1] != ',' || !string_then_colon(p_, lim)) return false;
    --comma;
    // The comma and the spaces after it were copied as they are.
    dst.resize(dst.size() - std::size_t(p_ - comma));
    drop_trailing_spaces(dst);
    dst.push_back('"');
    note_at(RepairKind::kStringClosed, comma);
    p_ = comma;
    return true;
  }

  // The input ended inside a string whose text began at `content`. When it ends with
  // closers (and spaces) that close the open containers in order, they are structure
  // (`{"k": ["v]}`, `{"a": "text}`), except those that close a bracket opened in the
  // string's own text (`{"a": "see [1]}`). Returns the first structural closer, or
  // nullptr. Runs once per document; the closer run is bounded by kLookahead.
  const char* structural_tail(const char* content) const {
    const char* run = end_;
    std::size_t closers = 0;
    while (run > content && run[-1] == '`' && end_ - run < 3) --run;  // a glued fence
    if (end_ - run != 0 && end_ - run != 3) run = end_;
    while (run > content && (run[-1] == ' ' || run[-1] == '}' || run[-1] == ']')) {
      if (run[-1] != ' ' && ++closers > kLookahead) return nullptr;
      --run;
    }
    if (closers == 0) return nullptr;
    std::size_t braces = 0, brackets = 0;  // opened in the text and not closed there
    for (const char* t = content; t < run; ++t) {
      const char c = *t;
      if (c == '{') ++braces;
      else if (c == '[') ++brackets;
      else if (c == '}' && braces) --braces;
      else if (c == ']' && brackets) --brackets;
    }
    const char* t = run;
    for (; t < end_; ++t) {  // the text's own brackets take their closers first
      if (*t == '}' && braces) --braces;
      else if (*t == ']' && brackets) --brackets;
      else if (*t != ' ') break;
    }
    for (; t < end_ && *t != '`'; ++t) {
      if (*t == ' ') continue;
      if (closes_open_containers(t)) return t;
    }
    return nullptr;
  }
  // Do the closers in [t, end_) (spaces between) close the innermost open containers?
  bool closes_open_containers(const char* t) const {
    std::size_t depth = stack_.size() - 1;  // frames above the root
    for (; t < end_; ++t) {
      if (*t == ' ') continue;
      if (*t == '`') break;  // the fence after the JSON
      if (depth == 0) return false;
      const Kind want = *t == '}' ? Kind::kObject : Kind::kArray;
      if (stack_[depth].kind != want) return false;
      --depth;
    }
    return true;
  }

  void escape(TextBuffer& dst) {
    if (end_ - p_ < 2) {  // a lone backslash at the very end: cut off
      p_ = end_;
      truncated_ = true;
      return;
    }
    const char n = p_[1];
    switch (n) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        dst.append(p_, 2);
        p_ += 2;
        return;
      case '\'':
        dst.push_back('\'');
        note(RepairKind::kEscapeFixed);
        p_ += 2;
        return;
      case 'u': {
        int k = 0;
        while (k < 4 && p_ + 2 + k < end_ && is_hex(uchar(p_[2 + k]))) ++k;
        if (k == 4) {
          if (cut_inside_surrogate_pair(p_ + 6)) {  // never leave half a pair
            p_ = end_;
            truncated_ = true;
            return;
          }
          dst.append(p_, 6);
          p_ += 6;
          return;
        }
        if (p_ + 2 + k >= end_) {  // cut off inside the escape: drop it
          p_ = end_;
          truncated_ = true;
          return;
        }
        break;
      }
      case '\n':
        dst += "\\n";
        p_ += 2;
        note(RepairKind::kEscapeFixed);
        return;
      default:
        break;
    }
    // An invalid escape such as C:\path: keep the backslash as a character.
    note(RepairKind::kEscapeFixed);
    dst += "\\\\";
    ++p_;
  }

  // After the escape `\\uXXXX` that ends just before `t`: is it a high surrogate whose
  // low half the end of input cut off (nothing after it, or a partial `\\uDC..`)?
  bool cut_inside_surrogate_pair(const char* t) const {
    unsigned v = 0;
    for (const char* h = t - 4; h < t; ++h) v = v * 16 + unsigned(hex_value(uchar(*h)));
    if (v < 0xD800 || v > 0xDBFF) return false;
    const std::ptrdiff_t left = end_ - t;
    if (left == 0) return true;
    if (left >= 6 || *t != '\\') return false;
    if (left >= 2 && t[1] != 'u') return false;
    for (std::ptrdiff_t i = 2; i < left; ++i)
      if (!is_hex(uchar(t[i]))) return false;
    return true;
  }

  Ctx value_ctx() const noexcept {
    switch (stack_.back().kind) {
      case Kind::kObject: return Ctx::kObjectValue;
      case Kind::kArray: return Ctx::kArrayValue;
      default: return Ctx::kRootValue;
    }
  }

  void string_token() {
    if (stray_quote()) {  // `{"n": 12345", "m": 1}`: a quote after a complete value
      garbage();
      return;
    }
    const std::size_t before = out_.size();
    if (place() == Place::kKey) {
      key_.clear();
      read_string(key_, Ctx::kKey);
      key_done();
      return;
    }
    const Ctx ctx = value_ctx();
    const std::size_t begin = out_.size();
    string_cut_ = false;
    read_string(out_, ctx);
    if (string_cut_ && out_.size() == begin + 2) {
      // Cut off right after the opening quote: no value (`["`, `{"a": "`, `"`), as
      // when cut off after the colon.
      out_.resize(before);
      return;
    }
    value_done();
    if (ctx == Ctx::kArrayValue) {
      last_is_string_ = true;
      last_element_begin_ = before;
      last_string_begin_ = begin;
    }
  }

  // A `"` glued to a complete member or element, followed by `,` or a closer.
  bool stray_quote() const {
    const Frame& f = stack_.back();
    if (f.kind == Kind::kRoot || f.st != St::kSep || *p_ != '"') return false;
    if (is_ws(uchar(p_[-1]))) return false;  // glued to the value: `12345"`
    const char* t = p_ + 1;
    while (t < end_ && (*t == ' ' || *t == '\t')) ++t;
    return t < end_ && (*t == ',' || *t == '}' || *t == ']');
  }

  // ---- numbers and words ----

  bool is_number_delim(const char* t, bool in_key) const noexcept {
    const uchar c = uchar(*t);
    switch (c) {
      case ' ': case '\t': case '\n': case '\r': case ',': case '}': case ']': case ')':
      case '(': case '{': case '[': case '"': case '\'': case ';': case '#':
        return true;
      case ':':
        return in_key || end_ - t < 2 || !is_digit(uchar(t[1]));
      case '/':
        return end_ - t >= 2 && (t[1] == '/' || t[1] == '*');
      default:
        return false;
    }
  }

  // Parses a relaxed number; writes JSON into `norm`. Returns false if `tok` is not
  // a number. `*changed` says whether the spelling differed from valid JSON.
  static bool normalise_number(std::string_view tok, std::string& norm,
                               bool* changed) {
    std::size_t i = 0;
    const std::size_t n = tok.size();
    bool neg = false;
    *changed = false;
    if (i < n && (tok[i] == '-' || tok[i] == '+')) {
      neg = tok[i] == '-';
      if (tok[i] == '+') *changed = true;
      ++i;
    }
    std::string digits;
    bool any = false;
    auto read_digits = [&](std::string& into) {
      bool prev_digit = false;
      while (i < n) {
        const char c = tok[i];
        if (is_digit(uchar(c))) {
          into.push_back(c);
          prev_digit = true;
          any = true;
        } else if (c == '_' && prev_digit && i + 1 < n && is_digit(uchar(tok[i + 1]))) {
          *changed = true;
        } else {
          break;
        }
        ++i;
      }
    };
    read_digits(digits);
    std::string frac;
    bool has_dot = false;
    if (i < n && tok[i] == '.') {
      has_dot = true;
      ++i;
      read_digits(frac);
    }
    if (!any) return false;
    std::string exp;
    char exp_sign = 0;
    char exp_char = 'e';
    bool has_exp = false;
    if (i < n && (tok[i] == 'e' || tok[i] == 'E')) {
      has_exp = true;
      exp_char = tok[i];
      ++i;
      if (i < n && (tok[i] == '+' || tok[i] == '-')) exp_sign = tok[i++];
      bool dummy = any;
      read_digits(exp);
      any = dummy;
      if (exp.empty() && i != n) return false;  // `1e` alone: the exponent is dropped
    }
    if (i != n) return false;
    // Build the JSON spelling.
    norm.clear();
    if (neg) norm.push_back('-');
    std::size_t z = 0;
    while (z + 1 < digits.size() && digits[z] == '0') ++z;
    if (z) *changed = true;
    if (digits.empty()) {
      norm.push_back('0');
      *changed = true;
    } else {
      norm.append(digits, z, std::string::npos);
    }
    if (has_dot) {
      if (frac.empty()) {
        frac = "0";
        *changed = true;
      }
      norm.push_back('.');
      norm += frac;
    }
    if (has_exp) {
      if (exp.empty()) {
        *changed = true;  // 1e cut off: drop the exponent
      } else {
        norm.push_back(exp_char);
        if (exp_sign) norm.push_back(exp_sign);
        norm += exp;
      }
    }
    return true;
  }

  // An unquoted token [s, t) where a key belongs: quote it and expect the colon.
  void token_as_key(const char* s, const char* t) {
    key_.clear();
    append_quoted(key_, s, t);
    note(RepairKind::kKeyQuoted);
    stack_.back().set_like = false;
    p_ = t;
    key_done();
  }

  // An unquoted value stopped at the comma `e`: when plain text runs on from it to a
  // quote that ends the member (`{"a": ipsum, sic, datum.",}`), the value lost its
  // opening quote and runs to that quote. Returns the new end of the value.
  const char* quoted_tail(const char* e) const {
    const char* lim = lookahead_end(e, end_);
    const char* t = e;
    while (t < lim && *t != '"' && *t != ':' && *t != '{' && *t != '[' && *t != '}' &&
           *t != ']' && *t != '\n')
      ++t;
    if (t >= lim || *t != '"') return e;
    const char* u = skip_gap(t + 1, lim, nullptr);
    return u >= lim || *u == ',' || *u == '}' || *u == ']' ? t + 1 : e;
  }

  // Where a key belongs, does the word ending at t stand before the real key (a quoted
  // `"key":` or another `name:`)? Then the word is stray text.
  bool word_before_key(const char* t) const {
    const char* lim = lookahead_end(t, end_);
    const char* u = t;
    while (u < lim && (*u == ' ' || *u == '\t')) ++u;
    if (u == t || u >= lim) return false;
    if (*u != '"' && ident_then_colon(u, lim)) return true;
    // More words of prose (`quick brown fox. "sic": 1`), then the quoted key.
    while (u < lim && !is_structural_or_quote(uchar(*u))) ++u;
    return u < lim && *u == '"' && string_then_colon(u, lim);
  }
  // After a member's value: does the word ending at t stand alone before `,` or `}`?
  bool word_before_end(const char* t) const {
    const char* lim = lookahead_end(t, end_);
    t = skip_gap(t, lim, nullptr);
    return t >= lim || *t == ',' || *t == '}';
  }
  static bool is_structural_or_quote(uchar c) noexcept {
    return c == '"' || c == '\'' || c == ':' || c == ',' || c == '{' || c == '}' || c == '[' ||
           c == ']' || c == '\n';
  }

  // The end of a number spelt as JSON allows (-?int[.digits][e[+-]digits]) starting at
  // s, or nullptr.
  const char* json_number_end(const char* s) const noexcept {
    const char* t = s;
    if (t < end_ && *t == '-') ++t;
    if (t >= end_ || !is_digit(uchar(*t))) return nullptr;
    if (*t == '0') {
      ++t;
    } else {
      while (t < end_ && is_digit(uchar(*t))) ++t;
    }
    if (t + 1 < end_ && *t == '.' && is_digit(uchar(t[1]))) {
      t += 2;
      while (t < end_ && is_digit(uchar(*t))) ++t;
    }
    if (t < end_ && (*t == 'e' || *t == 'E')) {
      const char* u = t + 1;
      if (u < end_ && (*u == '+' || *u == '-')) ++u;
      if (u >= end_ || !is_digit(uchar(*u))) return nullptr;
      while (u < end_ && is_digit(uchar(*u))) ++u;
      t = u;
    }
    return t;
  }

  void number_token() {
    const char* s = p_;
    // "..." placeholders
    if (end_ - s >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '.') {
      note(RepairKind::kEllipsisRemoved);
      p_ += 3;
      while (p_ < end_ && *p_ == '.') ++p_;
      return;
    }
    const Frame& f = stack_.back();
    const bool key_pos = f.kind == Kind::kObject && (f.st == St::kValue || f.st == St::kSep);
    if (!key_pos) {
      // Most numbers are already JSON: copy them as they are.
      const char* e = json_number_end(s);
      if (e && (e == end_ || is_number_delim(e, false))) {
        place();
        out_.append(s, std::size_t(e - s));
        p_ = e;
        value_done();
        return;
      }
    }
    const char* t = s;
    while (t < end_ && !is_number_delim(t, key_pos)) ++t;
    std::string_view tok(s, std::size_t(t - s));
    const bool at_eof = t == end_;
    // -Infinity / +Infinity / -NaN
    if (!key_pos && tok.size() > 1 && (tok[0] == '-' || tok[0] == '+') && is_alpha(uchar(tok[1]))) {
      bool mapped, nonfinite;
      const char* lit = literal_for(tok.substr(1), &mapped, &nonfinite);
      if (lit && nonfinite) {
        place();
        out_ += "null";
        note(RepairKind::kNonFiniteNulled);
        p_ = t;
        value_done();
        return;
      }
    }
    // A number keeps its spelling whatever its magnitude: 1e400 is valid JSON, and
    // json.loads (like loads) reads it as inf.
    bool changed = false;
    if (normalise_number(tok, num_, &changed)) {
      if (place() == Place::kKey) return token_as_key(s, t);
      if (changed) note(RepairKind::kNumberNormalised);
      if (at_eof && (tok.back() == '.' || tok.back() == 'e' || tok.back() == 'E' ||
                     tok.back() == '+' || tok.back() == '-'))
        truncated_ = true;
      out_ += num_;
      p_ = t;
      value_done();
      return;
    }
    if (tok.size() == 1 || (at_eof && (tok == "-" || tok == "+" || tok == "-." || tok == "."))) {
      if (at_eof) truncated_ = true;
      garbage();  // a lone sign or dot
      return;
    }
    // 1/3, 2024-01-01, 0x1F, 1.2.3, UUIDs: keep the text as a string.
    if (place() == Place::kKey) return token_as_key(s, t);
    append_quoted(out_, s, t);
    note(RepairKind::kStringQuoted);
    p_ = t;
    value_done();
  }

  void word_token() {
    const char* s = p_;
    const char* t = s;
    while (t < end_ && is_ident_byte(t, end_)) ++t;
    const std::string_view w(s, std::size_t(t - s));
    const Frame& f = stack_.back();
    const bool key_pos = f.kind == Kind::kObject && (f.st == St::kValue || f.st == St::kSep);
    if (key_pos) {
      // `{"n": 1, NOTE "m": 2}`, `{"b": "x" AAAA }`: stray words, not a key.
      if (word_before_key(t) || (f.st == St::kSep && word_before_end(t))) {
        note(RepairKind::kGarbageSkipped);
        p_ = t;
        return;
      }
      place();
      return token_as_key(s, t);
    }
    bool mapped = false, nonfinite = false;
    if (const char* lit = literal_for(w, &mapped, &nonfinite)) {
      place();
      out_.append_cstr(lit);
      if (nonfinite) {
        note(RepairKind::kNonFiniteNulled);
      } else if (mapped) {
        note(RepairKind::kLiteralMapped);
      }
      p_ = t;
      value_done();
      return;
    }
    if (t == end_) {
      if (const char* lit = literal_prefix(w)) {
        place();
        out_.append_cstr(lit);
        note(RepairKind::kLiteralCompleted);
        truncated_ = true;
        p_ = t;
        value_done();
        return;
      }
    }
    if (t < end_ && *t == '(') {
      // NumberLong(2), ObjectId("..."), ISODate("..."): keep the argument.
      note(RepairKind::kCallUnwrapped);
      ++stack_.back().paren_skips;
      p_ = t + 1;
      return;
    }
    // An unquoted string value runs to the end of the line, the next delimiter or the
    // next `"key":`; brackets it opens are its own (`{t: a{b}c}`).
    const char* e = t;
    std::size_t depth = 0;
    for (; e < end_; ++e) {
      const char c = *e;
      if (c == '\n' || c == '\r') break;
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      } else if (c == ',') {
        if (depth == 0) break;
      } else if (c == '"' && depth == 0 && f.kind == Kind::kObject) {
        const char* lim = lookahead_end(e, end_);
        if (string_then_colon(e, lim)) break;  // `{"k": value "k2": "v2"}`
      }
    }
    if (e < end_ && *e == ',') e = quoted_tail(e);
    const char* r = e;
    while (r > s && (r[-1] == ' ' || r[-1] == '\t')) --r;
    if (r - s > 1 && r[-1] == '"') --r;  // `["one" two", ...]`: the quote lost its pair
    place();
    append_quoted(out_, s, r);
    note(RepairKind::kStringQuoted);
    p_ = e;
    value_done();
  }

  bool finish() {
    if (failed_) return false;
    while (stack_.size() > 1) {
      note_at(RepairKind::kContainerClosed, base_ + stack_.back().open_pos);
      truncated_ = true;
      close_top(true);
    }
    if (root_count_ == 0) {
      return fail(end_, "no JSON value found");
    }
    if (wrapped_ && root_count_ == 1) {
      out_.erase(0, 1);  // only one value was kept: no list around it
    } else if (wrapped_) {
      out_.push_back(']');
    }
    res_.json = out_.take();
    return true;
  }

  const char* base_;
  const char* p_;
  const char* end_;
  const RepairOptions& opts_;
  RepairResult& res_;
  TextBuffer out_;
  std::vector<Frame> stack_;
  TextBuffer key_;
  std::string num_;
  std::size_t open_objects_ = 0;
  std::size_t open_arrays_ = 0;
  std::size_t root_count_ = 0;
  bool wrapped_ = false;
  std::size_t root_comma_ = 0;   // where the current root value's comma (if any) went
  std::size_t root_begin_ = 0;   // where the current root value begins in out_
  bool first_root_empty_ = false;
  std::size_t deepest_ = 0;  // deepest container emitted (counting the wrap), for max_depth
  bool truncated_ = false;
  std::size_t repair_count_ = 0;
  bool failed_ = false;
  bool last_is_string_ = false;
  bool inner_quote_ = false;  // the string being read holds a quote kept as text
  bool string_cut_ = false;   // the string just read was cut off by the end of input
  const char* next_newline_ = nullptr;  // the first '\n' at or after the last comment
  Frame last_closed_{Kind::kRoot};
  std::size_t last_closed_end_ = 0;  // out_.size() just after its closer; 0: none
  std::size_t last_element_begin_ = 0;
  std::size_t last_string_begin_ = 0;
};

// ---- locating the JSON in chatty text ----

const char* skip_space(const char* p, const char* end) {
  while (p < end) {
    if (is_ws(uchar(*p))) {
      ++p;
    } else if (int n = uchar(*p) >= 0x80 ? unicode_space(p, end) : 0) {
      p += n;
    } else {
      break;
    }
  }
  return p;
}

// White space and `//` or `/* */` comments (`{ /* note */ "a": 1}`).
const char* skip_space_and_comments(const char* p, const char* end) {
  for (;;) {
    p = skip_space(p, end);
    if (end - p < 2 || p[0] != '/') return p;
    if (p[1] == '/') {
      const void* nl = std::memchr(p, '\n', std::size_t(end - p));
      p = nl ? static_cast<const char*>(nl) : end;
    } else if (p[1] == '*') {
      const char* q = p + 2;
      while (q + 1 < end && !(q[0] == '*' && q[1] == '/')) ++q;
      p = q + 1 < end ? q + 2 : end;
    } else {
      return p;
    }
  }
}

// Does the `{` or `[` at p plausibly start JSON (rather than prose like {x} or [1])?
bool plausible_start(const char* p, const char* end) {
  const char* lim = lookahead_end(p, end);
  const char* t = skip_space_and_comments(p + 1, lim);
  if (t >= lim) return true;
  const uchar c = uchar(*t);
  const int b = e280(t, lim);
  if (c == '"' || c == '\'' || is_smart_double(b) || is_smart_single(b)) return true;
  if (*p == '{') {
    if (c == '}') return true;
    if (!is_ident_start(t, lim)) return false;
    while (t < lim && is_ident_byte(t, lim)) ++t;
    t = skip_space(t, lim);
    return t < lim && *t == ':';
  }
  if (c == '{' || c == '[' || c == '(' || c == ']' || c == ')') return true;
  if (is_digit(c) || c == '-') {
    // [1] or [12] in prose is a citation, not an array.
    const char* u = t;
    while (u < lim && is_digit(uchar(*u))) ++u;
    return !(u < lim && *u == ']' && c != '-');
  }
  return is_literal_word(t, lim);
}

// Where the JSON starts in `[p, end)`, or nullptr.
const char* locate(const char* p, const char* end) {
  p = skip_space(p, end);
  if (p >= end) return nullptr;
  if (*p == '{' || *p == '[' || *p == '"' || *p == '\'') return p;
  if (const int b = e280(p, end); is_smart_double(b) || is_smart_single(b)) return p;
  if (*p == '(' && plausible_start(p, end)) return p;  // a Python tuple
  static constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>";
  if (std::string_view(p, std::size_t(end - p)).substr(0, kThinkOpen.size()) == kThinkOpen) {
    const std::string_view rest(p, std::size_t(end - p));
    const std::size_t close = rest.find(kThinkClose);
    if (close != std::string_view::npos) {
      if (const char* q = locate(p + close + kThinkClose.size(), end)) return q;
      return nullptr;
    }
  }
  const char* first = p;
  // Next '{' and next '[' at or after q, each searched again only once passed, so the
  // whole scan is linear however many braces the prose holds.
  auto next = [end](const char* from, char c) {
    const void* hit = std::memchr(from, c, std::size_t(end - from));
    return hit ? static_cast<const char*>(hit) : end;
  };
  const char* brace = next(p, '{');
  const char* bracket = next(p, '[');
  while (brace < end || bracket < end) {
    const char* q = brace < bracket ? brace : bracket;
    if (plausible_start(q, end)) return q;
    if (q == brace) brace = next(q + 1, '{');
    else bracket = next(q + 1, '[');
  }
  // No object or array: a lone scalar such as 'text', True or 42.
  const uchar c = uchar(*first);
  const int b = e280(first, end);
  if (c == '\'' || is_smart_double(b) || is_smart_single(b) || is_digit(c) || c == '-' ||
      is_literal_word(first, end))
    return first;
  return nullptr;
}

// Maps a position in the sanitised copy back to the caller's input.
std::size_t original_position(const std::vector<Utf8Replacement>& map, std::size_t pos) {
  // The last replacement at or before pos decides the shift.
  std::size_t lo = 0, hi = map.size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (map[mid].output <= pos) lo = mid + 1; else hi = mid;
  }
  if (lo == 0) return pos;
  const Utf8Replacement& r = map[lo - 1];
  if (pos < r.output + 3) return r.input;
  return r.input + r.length + (pos - r.output - 3);
}

// A cheap look at both ends before asking simdjson whether `v` is valid JSON: most
// broken answers fail here already (cut off, so the last byte is not the closer; single
// quotes or an unquoted first key; prose or a fence around the value), and the failed
// full validation is about a tenth of their repair time.
bool may_be_valid_json(std::string_view v) {
  const char* p = v.data();
  const char* e = p + v.size();
  while (p < e && is_ws(uchar(*p))) ++p;
  while (e > p && is_ws(uchar(e[-1]))) --e;
  if (p >= e) return false;
  const uchar c = uchar(*p);
  const uchar last = uchar(e[-1]);
  switch (c) {
    case '{': {
      if (last != '}') return false;
      const char* q = p + 1;
      while (q < e && is_ws(uchar(*q))) ++q;
      return q < e && (*q == '"' || *q == '}');
    }
    case '[': return last == ']';
    case '"': return last == '"' && e - p >= 2;
    default: return c == '-' || is_digit(c) || c == 't' || c == 'f' || c == 'n';
  }
}

}  // namespace

RepairResult repair_json(std::string_view input, const RepairOptions& options) {
  RepairResult res;
  // The fast paths take valid JSON as it stands, which is right only when the nesting
  // limit is the validator's own.
  const bool default_depth = options.max_depth >= kMaxDepth;
  if (options.try_fast_path && default_depth && may_be_valid_json(input)) {
    simdjson::dom::element root;
    if (thread_parser().parse(input, root) == simdjson::SUCCESS) {
      res.ok = true;
      res.unchanged = true;
      return res;
    }
  }
  const char* ib = input.data();
  const char* ie = ib + input.size();
  if (skip_space(ib, ie) >= ie) {
    res.error_position = 0;
    res.error = input.empty() ? "empty input" : "input is only white space";
    return res;
  }

  std::string sanitized;
  std::vector<Utf8Replacement> replaced;
  std::string_view work = input;
  if (!options.input_is_utf8 && !is_valid_utf8(input)) {
    sanitized = replace_invalid_utf8(input, &replaced);
    work = sanitized;
  }
  const char* base = work.data();
  auto finish_positions = [&] {
    if (replaced.empty()) return;
    // The error position is the caller's (loads, content errors) even when the list of
    // repairs is not kept.
    res.error_position = original_position(replaced, res.error_position);
    if (!options.collect_repairs) return;
    for (auto& r : res.repairs) r.position = original_position(replaced, r.position);
    res.repairs.insert(res.repairs.begin(),
                       Repair{RepairKind::kInvalidUtf8Replaced, replaced.front().input});
  };

  std::string_view body = strip_markdown_fences(work);
  const bool fenced = body.data() != work.data() || body.size() != work.size();
  if (fenced && default_depth && may_be_valid_json(body) && is_valid_json(body)) {
    res.ok = true;
    res.json.assign(body.data(), body.size());
    if (options.collect_repairs)
      res.repairs.push_back({RepairKind::kFenceStripped, std::size_t(body.data() - base)});
    finish_positions();
    return res;
  }
  const char* bb = body.data();
  const char* be = bb + body.size();
  const char* start = locate(bb, be);
  if (!start) {
    const char* first = skip_space(bb, be);
    res.error_position = std::size_t((first < be ? first : bb) - base);
    res.error = first < be ? "no JSON value found (the text holds no object, array or literal)"
                           : "no JSON value found (the fenced block is empty)";
    finish_positions();
    return res;
  }
  const bool prose = skip_space(bb, be) != start;
  if (options.collect_repairs) {
    if (fenced) res.repairs.push_back({RepairKind::kFenceStripped, std::size_t(bb - base)});
    if (prose) res.repairs.push_back({RepairKind::kProseSkipped, std::size_t(bb - base)});
  }
  Repairer r(base, start, be, options, res);
  if (!r.run()) {
    res.ok = false;
    res.json.clear();
    finish_positions();
    return res;
  }
  res.ok = true;
  res.truncated = r.truncated();
  // Valid JSON that simdjson refuses (integers beyond 64 bits, lone surrogate escapes)
  // went through the repairer untouched: it is unchanged.
  bool json_space_only = true;  // before the value: NBSP and friends are not JSON space
  for (const char* q = base; q < start; ++q) json_space_only &= is_ws(uchar(*q));
  if (replaced.empty() && !fenced && !prose && json_space_only && r.repair_count() == 0 &&
      !res.truncated) {
    res.unchanged = true;
    res.json.clear();
  }
  finish_positions();
  return res;
}

}  // namespace llmbridge::text
