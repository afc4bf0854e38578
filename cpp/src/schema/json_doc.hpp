// Parsed JSON as the validator reads it: simdjson's tape (doc/tape.md in simdjson), or
// the same layout written by a small fallback parser for the documents simdjson refuses
// (numbers beyond 64 bits or double range), plus exact number arithmetic.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::schema::detail {

// The tape type of a number simdjson cannot hold: the next word is an index into
// Tape::bigs, which keeps the number's text.
inline constexpr char kBigNumber = 'N';

// Read access to a tape. Indices are word positions; the root value is at 1.
class Tape {
 public:
  Tape() = default;
  Tape(const std::uint64_t* words, const std::uint8_t* strings, const std::vector<std::string>* bigs)
      : w_(words), s_(strings), bigs_(bigs) {}
  static constexpr std::size_t kRoot = 1;

  char type(std::size_t i) const noexcept { return char(w_[i] >> 56); }
  std::string_view string(std::size_t i) const noexcept {
    const std::uint8_t* at = s_ + (w_[i] & kPayload);
    std::uint32_t len;
    std::memcpy(&len, at, sizeof len);
    return {reinterpret_cast<const char*>(at + sizeof len), len};
  }
  std::int64_t int64(std::size_t i) const noexcept { return std::int64_t(w_[i + 1]); }
  std::uint64_t uint64(std::size_t i) const noexcept { return w_[i + 1]; }
  double dbl(std::size_t i) const noexcept {
    double d;
    std::memcpy(&d, &w_[i + 1], sizeof d);
    return d;
  }
  std::string_view big(std::size_t i) const noexcept { return (*bigs_)[std::size_t(w_[i + 1])]; }
  // '[' / '{': the index just past the matching end.
  std::size_t end_of(std::size_t i) const noexcept { return std::uint32_t(w_[i]); }
  // '[' / '{': the element (member) count, or kSaturated when there are more.
  std::size_t count(std::size_t i) const noexcept { return std::size_t(w_[i] >> 32) & kSaturated; }
  static constexpr std::size_t kSaturated = 0xFFFFFF;
  std::size_t next(std::size_t i) const noexcept {
    switch (type(i)) {
      case '[':
      case '{': return end_of(i);
      case 'l':
      case 'u':
      case 'd':
      case kBigNumber: return i + 2;
      default: return i + 1;
    }
  }
  // The exact element / member count of '[' / '{' (walks it when the tape saturated).
  std::size_t size(std::size_t i) const noexcept {
    std::size_t n = count(i);
    if (n < kSaturated) return n;
    n = 0;
    const bool object = type(i) == '{';
    for (std::size_t j = i + 1, end = end_of(i) - 1; j < end; j = next(object ? j + 1 : j)) ++n;
    return n;
  }

 private:
  static constexpr std::uint64_t kPayload = 0x00FFFFFFFFFFFFFFull;
  const std::uint64_t* w_ = nullptr;
  const std::uint8_t* s_ = nullptr;
  const std::vector<std::string>* bigs_ = nullptr;
};

// A tape that owns its storage.
struct OwnedTape {
  std::vector<std::uint64_t> words;
  std::vector<std::uint8_t> strings;
  std::vector<std::string> bigs;
  Tape view() const noexcept { return Tape(words.data(), strings.data(), &bigs); }
};

// A copy of a parsed simdjson document's tape.
void copy_tape(const simdjson::dom::document& doc, OwnedTape& out);

// Parses strict JSON (RFC 8259, UTF-8, at most text::kMaxDepth nested containers) into
// `out`, keeping numbers that do not fit int64/uint64/double as text. Empty on success,
// otherwise what is wrong. Slower than simdjson: used only when simdjson refuses a
// document for a number.
std::string parse_fallback(std::string_view json, OwnedTape& out);

// True for simdjson errors that parse_fallback may still accept.
bool fallback_may_help(simdjson::error_code e) noexcept;

// ---- numbers ----

struct Num {
  enum Kind : std::uint8_t { i64, u64, f64, big } kind = i64;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0;
  std::string_view raw;  // big: the number's text
};

inline bool is_number_type(char t) noexcept { return t == 'l' || t == 'u' || t == 'd' || t == kBigNumber; }
Num number_at(const Tape& t, std::size_t i) noexcept;

// value = (neg ? -1 : 1) * digits * 10^exp; digits has no leading or trailing zeros
// (empty for zero). Exact for every JSON number; doubles are taken as their shortest
// round-trip decimal text (what was written, for a number that came from JSON).
struct Decimal {
  bool neg = false;
  std::string digits;
  std::int64_t exp = 0;
  bool zero() const noexcept { return digits.empty(); }
};
Decimal to_decimal(const Num& n);
Decimal parse_decimal(std::string_view number_text);

// -1, 0, 1 as a <, ==, > b (mathematical values: 1 == 1.0).
int compare(const Num& a, const Num& b);
bool is_integer(const Num& n);

// multipleOf's divisor, prepared once.
struct Divisor {
  Num value;
  Decimal dec;
  bool small_int = false;  // an integer in [1, 2^64)
  std::uint64_t u = 0;
};
Divisor make_divisor(const Num& n);
bool is_multiple(const Num& x, const Divisor& m);

// The shortest text of a number, as messages show it (at most ~60 bytes).
std::string number_text(const Num& n);

// ---- structure ----

// JSON equality: numbers by value, objects regardless of member order.
bool equal(const Tape& a, std::size_t i, const Tape& b, std::size_t j);
// A hash consistent with equal().
std::uint64_t hash_value(const Tape& t, std::size_t i);

}  // namespace llmbridge::schema::detail
