// Tape copies, the fallback parser, exact number comparison and JSON equality.
#include "json_doc.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "llmbridge/text/hash.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/utf8.hpp"

namespace llmbridge::schema::detail {

namespace {

constexpr std::uint64_t word(char type, std::uint64_t payload) {
  return (std::uint64_t(std::uint8_t(type)) << 56) | payload;
}

}  // namespace

void copy_tape(const simdjson::dom::document& doc, OwnedTape& out) {
  const std::uint64_t* w = doc.tape.get();
  const std::size_t n = std::size_t(std::uint32_t(w[0]));  // the first root word holds the length
  out.words.assign(w, w + n);
  // The strings' extent: the end of the last string the tape refers to.
  std::size_t extent = 0;
  const Tape t(w, doc.string_buf.get(), nullptr);
  for (std::size_t i = 1; i < n; ++i) {
    const char type = t.type(i);
    if (type == '"') {
      const std::size_t off = std::size_t(w[i] & 0x00FFFFFFFFFFFFFFull);
      extent = std::max(extent, off + 4 + t.string(i).size() + 1);
    } else if (type == 'l' || type == 'u' || type == 'd') {
      ++i;
    }
  }
  out.strings.assign(doc.string_buf.get(), doc.string_buf.get() + extent);
  out.bigs.clear();
}

bool fallback_may_help(simdjson::error_code e) noexcept {
  return e == simdjson::NUMBER_ERROR || e == simdjson::NUMBER_OUT_OF_RANGE;
}

namespace {

class FallbackParser {
 public:
  FallbackParser(std::string_view s, OwnedTape& out) : s_(s), out_(out) {}

  std::string run() {
    out_.words.clear();
    out_.strings.clear();
    out_.bigs.clear();
    if (!text::is_valid_utf8(s_)) return "not valid UTF-8";
    out_.words.push_back(0);  // the root word, filled in below
    skip_ws();
    if (!value(0)) return error_;
    skip_ws();
    if (i_ != s_.size()) return fail("unexpected text after the JSON value");
    out_.words.push_back(word('r', 0));
    out_.words[0] = word('r', out_.words.size());
    return "";
  }

 private:
  std::string_view s_;
  OwnedTape& out_;
  std::size_t i_ = 0;
  std::string error_;

  std::string fail(const char* what) {
    error_ = std::string(what) + " at byte " + std::to_string(i_);
    return error_;
  }
  bool bad(const char* what) {
    fail(what);
    return false;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view lit, char type) {
    if (s_.substr(i_, lit.size()) != lit) return bad("invalid literal");
    i_ += lit.size();
    out_.words.push_back(word(type, 0));
    return true;
  }

  bool value(std::size_t depth) {
    if (i_ >= s_.size()) return bad("unexpected end of text");
    switch (s_[i_]) {
      case '{':
      case '[': return container(depth + 1);
      case '"': return string();
      case 't': return literal("true", 't');
      case 'f': return literal("false", 'f');
      case 'n': return literal("null", 'n');
      default: return number();
    }
  }

  bool container(std::size_t depth) {
    if (depth > text::kMaxDepth) return bad("nesting too deep");
    const bool object = s_[i_] == '{';
    const char close = object ? '}' : ']';
    ++i_;
    const std::size_t start = out_.words.size();
    out_.words.push_back(0);
    std::size_t count = 0;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == close) {
      ++i_;
    } else {
      for (;;) {
        skip_ws();
        if (object) {
          if (i_ >= s_.size() || s_[i_] != '"') return bad("expected a string key");
          if (!string()) return false;
          skip_ws();
          if (i_ >= s_.size() || s_[i_] != ':') return bad("expected ':'");
          ++i_;
          skip_ws();
        }
        if (!value(depth)) return false;
        ++count;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == close) {
          ++i_;
          break;
        }
        return bad(object ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    out_.words.push_back(word(close, start));
    const std::uint64_t c = std::min<std::uint64_t>(count, Tape::kSaturated);
    out_.words[start] = word(object ? '{' : '[', (c << 32) | std::uint64_t(out_.words.size()));
    return true;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(std::uint32_t& v) {
    if (i_ + 4 > s_.size()) return false;
    v = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex(s_[i_ + std::size_t(k)]);
      if (h < 0) return false;
      v = v * 16 + std::uint32_t(h);
    }
    i_ += 4;
    return true;
  }
  void put_utf8(std::string& o, std::uint32_t c) {
    if (c < 0x80) {
      o += char(c);
    } else if (c < 0x800) {
      o += char(0xC0 | (c >> 6));
      o += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      o += char(0xE0 | (c >> 12));
      o += char(0x80 | ((c >> 6) & 0x3F));
      o += char(0x80 | (c & 0x3F));
    } else {
      o += char(0xF0 | (c >> 18));
      o += char(0x80 | ((c >> 12) & 0x3F));
      o += char(0x80 | ((c >> 6) & 0x3F));
      o += char(0x80 | (c & 0x3F));
    }
  }

  bool string() {
    ++i_;  // '"'
    std::string v;
    for (;;) {
      if (i_ >= s_.size()) return bad("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        break;
      }
      if (c < 0x20) return bad("control character in a string");
      if (c != '\\') {
        v += char(c);
        ++i_;
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) return bad("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"': v += '"'; break;
        case '\\': v += '\\'; break;
        case '/': v += '/'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'n': v += '\n'; break;
        case 'r': v += '\r'; break;
        case 't': v += '\t'; break;
        case 'u': {
          std::uint32_t cp;
          if (!hex4(cp)) return bad("invalid \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return bad("lone surrogate escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t lo;
            if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return bad("lone surrogate escape");
            i_ += 2;
            if (!hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return bad("lone surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(v, cp);
          break;
        }
        default: return bad("invalid escape");
      }
    }
    const std::size_t off = out_.strings.size();
    const std::uint32_t len = std::uint32_t(v.size());
    out_.strings.resize(off + 4 + v.size() + 1);
    std::memcpy(out_.strings.data() + off, &len, 4);
    std::memcpy(out_.strings.data() + off + 4, v.data(), v.size());
    out_.strings[off + 4 + v.size()] = 0;
    out_.words.push_back(word('"', off));
    return true;
  }

  bool number() {
    const std::size_t start = i_;
    auto digits = [&] {
      const std::size_t b = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - b;
    };
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ >= s_.size()) return bad("invalid number");
    if (s_[i_] == '0') {
      ++i_;
    } else if (digits() == 0) {
      return bad("invalid value");
    }
    bool integer = true;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      integer = false;
      if (digits() == 0) return bad("invalid number");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      integer = false;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (digits() == 0) return bad("invalid number");
    }
    const std::string_view text = s_.substr(start, i_ - start);
    const char* b = text.data();
    const char* e = text.data() + text.size();
    if (integer) {
      std::int64_t iv;
      if (auto r = std::from_chars(b, e, iv); r.ec == std::errc() && r.ptr == e) {
        out_.words.push_back(word('l', 0));
        out_.words.push_back(std::uint64_t(iv));
        return true;
      }
      std::uint64_t uv;
      if (auto r = std::from_chars(b, e, uv); r.ec == std::errc() && r.ptr == e) {
        out_.words.push_back(word('u', 0));
        out_.words.push_back(uv);
        return true;
      }
    } else {
      double d;
      auto r = std::from_chars(b, e, d);
      if (r.ec == std::errc() && r.ptr == e && std::isfinite(d) && (d != 0 || parse_decimal(text).zero())) {
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof d);
        out_.words.push_back(word('d', 0));
        out_.words.push_back(bits);
        return true;
      }
    }
    out_.words.push_back(word(kBigNumber, 0));
    out_.words.push_back(out_.bigs.size());
    out_.bigs.emplace_back(text);
    return true;
  }
};

}  // namespace

std::string parse_fallback(std::string_view json, OwnedTape& out) { return FallbackParser(json, out).run(); }

// ---- numbers ----

Num number_at(const Tape& t, std::size_t i) noexcept {
  Num n;
  switch (t.type(i)) {
    case 'l': n.kind = Num::i64, n.i = t.int64(i); break;
    case 'u': n.kind = Num::u64, n.u = t.uint64(i); break;
    case 'd': n.kind = Num::f64, n.d = t.dbl(i); break;
    default: n.kind = Num::big, n.raw = t.big(i); break;
  }
  return n;
}

Decimal parse_decimal(std::string_view s) {
  Decimal d;
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') {
    d.neg = true;
    ++i;
  }
  std::int64_t frac_digits = 0;
  bool in_frac = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      in_frac = true;
    } else if (c >= '0' && c <= '9') {
      if (!(d.digits.empty() && c == '0')) d.digits += c;
      if (in_frac) ++frac_digits;
    } else {
      break;  // 'e' / 'E'
    }
  }
  // The digits dropped as leading zeros never matter: only the fraction count does,
  // and leading zeros of the integer part are not JSON.
  std::int64_t e = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      e = std::min<std::int64_t>(e * 10 + (s[i] - '0'), std::int64_t(1) << 50);  // saturates
    }
    if (eneg) e = -e;
  }
  d.exp = e - frac_digits;
  std::size_t keep = d.digits.size();
  while (keep > 0 && d.digits[keep - 1] == '0') {
    --keep;
    ++d.exp;
  }
  d.digits.resize(keep);
  if (d.digits.empty()) {
    d.neg = false;
    d.exp = 0;
  }
  return d;
}

std::string number_text(const Num& n) {
  char buf[64];
  std::to_chars_result r{};
  switch (n.kind) {
    case Num::i64: r = std::to_chars(buf, buf + sizeof buf, n.i); break;
    case Num::u64: r = std::to_chars(buf, buf + sizeof buf, n.u); break;
    case Num::f64: r = std::to_chars(buf, buf + sizeof buf, n.d); break;
    case Num::big: return n.raw.size() <= 60 ? std::string(n.raw) : std::string(n.raw.substr(0, 57)) + "...";
  }
  return std::string(buf, r.ptr);
}

Decimal to_decimal(const Num& n) {
  if (n.kind == Num::big) return parse_decimal(n.raw);
  return parse_decimal(number_text(n));
}

namespace {

int compare_decimal(const Decimal& a, const Decimal& b) {
  const int sa = a.zero() ? 0 : (a.neg ? -1 : 1);
  const int sb = b.zero() ? 0 : (b.neg ? -1 : 1);
  if (sa != sb) return sa < sb ? -1 : 1;
  if (sa == 0) return 0;
  // Compare magnitudes: first the position of the leading digit, then the digits.
  const std::int64_t pa = std::int64_t(a.digits.size()) + a.exp;
  const std::int64_t pb = std::int64_t(b.digits.size()) + b.exp;
  int mag;
  if (pa != pb) {
    mag = pa < pb ? -1 : 1;
  } else {
    const int c = a.digits.compare(b.digits);  // no trailing zeros: a prefix is smaller
    mag = c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return sa > 0 ? mag : -mag;
}

// An int64 against a finite double, exactly.
int compare_int_double(std::int64_t i, double d) {
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  const double t = std::trunc(d);
  const auto ti = std::int64_t(t);
  if (i != ti) return i < ti ? -1 : 1;
  const double frac = d - t;
  return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

int compare_uint_double(std::uint64_t u, double d) {
  if (d < 0) return 1;
  if (d >= 18446744073709551616.0) return -1;
  const double t = std::trunc(d);
  const auto tu = std::uint64_t(t);
  if (u != tu) return u < tu ? -1 : 1;
  return d > t ? -1 : 0;
}

template <typename T>
int cmp3(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

}  // namespace

int compare(const Num& a, const Num& b) {
  if (a.kind == Num::big || b.kind == Num::big) return compare_decimal(to_decimal(a), to_decimal(b));
  switch (a.kind) {
    case Num::i64:
      switch (b.kind) {
        case Num::i64: return cmp3(a.i, b.i);
        case Num::u64: return a.i < 0 ? -1 : cmp3(std::uint64_t(a.i), b.u);
        default: return compare_int_double(a.i, b.d);
      }
    case Num::u64:
      switch (b.kind) {
        case Num::i64: return b.i < 0 ? 1 : cmp3(a.u, std::uint64_t(b.i));
        case Num::u64: return cmp3(a.u, b.u);
        default: return compare_uint_double(a.u, b.d);
      }
    default:
      switch (b.kind) {
        case Num::i64: return -compare_int_double(b.i, a.d);
        case Num::u64: return -compare_uint_double(b.u, a.d);
        default: return cmp3(a.d, b.d);
      }
  }
}

bool is_integer(const Num& n) {
  switch (n.kind) {
    case Num::i64:
    case Num::u64: return true;
    case Num::f64: return std::isfinite(n.d) && std::trunc(n.d) == n.d;
    default: {
      const Decimal d = parse_decimal(n.raw);
      return d.zero() || d.exp >= 0;
    }
  }
}

Divisor make_divisor(const Num& n) {
  Divisor m;
  m.value = n;
  m.dec = to_decimal(n);
  if (!m.dec.neg && !m.dec.zero() && m.dec.exp >= 0 && m.dec.digits.size() + std::size_t(m.dec.exp) <= 19) {
    std::uint64_t v = 0;
    for (char c : m.dec.digits) v = v * 10 + std::uint64_t(c - '0');
    for (std::int64_t k = 0; k < m.dec.exp; ++k) v *= 10;
    m.small_int = true;
    m.u = v;
  }
  return m;
}

namespace {

using u128 = unsigned __int128;

std::uint64_t pow10_mod(std::int64_t k, std::uint64_t m) {
  u128 result = 1 % m, base = 10 % m;
  while (k > 0) {
    if (k & 1) result = result * base % m;
    base = base * base % m;
    k >>= 1;
  }
  return std::uint64_t(result);
}

// (a * 10^k) mod b == 0 for decimal digit strings, b with more than 19 digits.
bool divides_big(const std::string& a, std::int64_t k, const std::string& b) {
  constexpr std::int64_t kMaxShift = 100000;  // beyond: a schema nobody writes; refuse
  if (k > kMaxShift) return false;
  std::vector<std::uint8_t> bv(b.size()), r;
  for (std::size_t i = 0; i < b.size(); ++i) bv[i] = std::uint8_t(b[i] - '0');
  auto ge = [&] {  // r >= b (r has no leading zeros)
    if (r.size() != bv.size()) return r.size() > bv.size();
    return !std::lexicographical_compare(r.begin(), r.end(), bv.begin(), bv.end());
  };
  auto push_digit = [&](std::uint8_t d) {
    if (!(r.empty() && d == 0)) r.push_back(d);
    while (ge()) {  // at most nine times
      int borrow = 0;
      for (std::size_t i = 0; i < r.size(); ++i) {
        const std::size_t ri = r.size() - 1 - i;
        int v = int(r[ri]) - borrow - (i < bv.size() ? int(bv[bv.size() - 1 - i]) : 0);
        borrow = v < 0;
        r[ri] = std::uint8_t(v + (borrow ? 10 : 0));
      }
      std::size_t lead = 0;
      while (lead < r.size() && r[lead] == 0) ++lead;
      r.erase(r.begin(), r.begin() + std::ptrdiff_t(lead));
    }
  };
  for (char c : a) push_digit(std::uint8_t(c - '0'));
  for (std::int64_t i = 0; i < k; ++i) push_digit(0);
  return r.empty();
}

}  // namespace

bool is_multiple(const Num& x, const Divisor& m) {
  if (m.small_int) {
    switch (x.kind) {
      case Num::i64: {
        const std::uint64_t mag = x.i < 0 ? std::uint64_t(0) - std::uint64_t(x.i) : std::uint64_t(x.i);
        return mag % m.u == 0;
      }
      case Num::u64: return x.u % m.u == 0;
      case Num::f64:
        if (!(std::trunc(x.d) == x.d)) return false;
        if (std::fabs(x.d) < 9223372036854775808.0) {
          const std::int64_t v = std::int64_t(x.d);
          const std::uint64_t mag = v < 0 ? std::uint64_t(0) - std::uint64_t(v) : std::uint64_t(v);
          return mag % m.u == 0;
        }
        break;
      default: break;
    }
  }
  // x = a * 10^e1, m = b * 10^e2: x / m is an integer when b divides a * 10^(e1 - e2).
  // (a has no trailing zeros, so e1 < e2 never divides.)
  const Decimal dx = to_decimal(x);
  if (dx.zero()) return true;
  if (dx.exp < m.dec.exp) return false;
  const std::int64_t k = dx.exp - m.dec.exp;
  const std::string& b = m.dec.digits;
  if (b.size() <= 19) {
    std::uint64_t bv = 0;
    for (char c : b) bv = bv * 10 + std::uint64_t(c - '0');
    u128 r = 0;
    for (char c : dx.digits) r = (r * 10 + std::uint64_t(c - '0')) % bv;
    r = r * pow10_mod(k, bv) % bv;
    return r == 0;
  }
  return divides_big(dx.digits, k, b);
}

// ---- structure ----

bool equal(const Tape& a, std::size_t i, const Tape& b, std::size_t j) {
  const char ta = a.type(i), tb = b.type(j);
  if (is_number_type(ta)) return is_number_type(tb) && compare(number_at(a, i), number_at(b, j)) == 0;
  if (ta != tb) return false;
  switch (ta) {
    case '"': return a.string(i) == b.string(j);
    case '[': {
      if (a.size(i) != b.size(j)) return false;
      std::size_t x = i + 1, y = j + 1;
      const std::size_t end = a.end_of(i) - 1;
      for (; x < end; x = a.next(x), y = b.next(y))
        if (!equal(a, x, b, y)) return false;
      return true;
    }
    case '{': {
      if (a.size(i) != b.size(j)) return false;
      const std::size_t aend = a.end_of(i) - 1, bend = b.end_of(j) - 1;
      for (std::size_t x = i + 1; x < aend; x = a.next(x + 1)) {
        const std::string_view key = a.string(x);
        bool found = false;
        for (std::size_t y = j + 1; y < bend; y = b.next(y + 1)) {
          if (b.string(y) == key) {
            if (!equal(a, x + 1, b, y + 1)) return false;
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
    }
    default: return true;  // null, true, false
  }
}

using text::fnv1a;
using text::mix64;

std::uint64_t hash_value(const Tape& t, std::size_t i) {
  const char type = t.type(i);
  if (is_number_type(type)) {
    const Num n = number_at(t, i);
    if (n.kind == Num::i64) return mix64(std::uint64_t(n.i));
    if (n.kind == Num::u64) return mix64(n.u);  // >= 2^63: never equal to an i64
    if (n.kind == Num::f64 && std::trunc(n.d) == n.d) {
      if (std::fabs(n.d) < 9223372036854775808.0) return mix64(std::uint64_t(std::int64_t(n.d)));
      if (n.d > 0 && n.d < 18446744073709551616.0) return mix64(std::uint64_t(n.d));
    }
    const Decimal d = to_decimal(n);
    return mix64(fnv1a(d.digits) ^ std::uint64_t(d.exp) * 31 ^ (d.neg ? 7 : 0));
  }
  switch (type) {
    case '"': return mix64(fnv1a(t.string(i)) + 1);
    case '[': {
      std::uint64_t h = 0x1234;
      for (std::size_t x = i + 1, end = t.end_of(i) - 1; x < end; x = t.next(x)) h = mix64(h * 31 + hash_value(t, x));
      return h;
    }
    case '{': {
      std::uint64_t h = 0x5678;  // member order does not matter: a sum
      for (std::size_t x = i + 1, end = t.end_of(i) - 1; x < end; x = t.next(x + 1))
        h += mix64(fnv1a(t.string(x)) ^ hash_value(t, x + 1));
      return h;
    }
    default: return std::uint64_t(std::uint8_t(type));
  }
}

}  // namespace llmbridge::schema::detail
