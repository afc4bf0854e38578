// UTF-8 validation (simdjson's SIMD validator) and replacement of invalid sequences.
#include "llmbridge/text/utf8.hpp"

#include <simdjson.h>

namespace llmbridge::text {

bool is_valid_utf8(std::string_view s) noexcept {
  return simdjson::validate_utf8(s.data(), s.size());
}

std::string replace_invalid_utf8(std::string_view in, std::vector<Utf8Replacement>* map) {
  std::string out;
  out.reserve(in.size() + 16);
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      out.push_back(char(c));
      ++i;
      continue;
    }
    // The lead byte fixes the length and the range of the first continuation byte
    // (which is what excludes overlongs, surrogates and values above U+10FFFF).
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    std::size_t k = 1;
    if (len && i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
      k = 2;
      while (k < len && i + k < n && s[i + k] >= 0x80 && s[i + k] <= 0xBF) ++k;
    }
    if (len && k == len) {
      out.append(in.data() + i, len);
    } else {
      if (map) map->push_back({out.size(), i, k});
      out += "\xEF\xBF\xBD";
    }
    i += k;
  }
  return out;
}

bool make_valid_utf8(std::string& s) {
  if (is_valid_utf8(s)) return false;
  s = replace_invalid_utf8(s);
  return true;
}

std::string utf8_excerpt(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t cut = max_bytes;
  // Back up over continuation bytes so no code point is split.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  std::string out(s.substr(0, cut));
  out += "...";
  return out;
}

std::string quoted(std::string_view s, std::size_t max_bytes) {
  const bool cut = s.size() > max_bytes;
  if (cut) {
    std::size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    s = s.substr(0, end);
  }
  static const char* kHex = "0123456789abcdef";
  auto hex = [&](std::string& out, unsigned char u) {
    out += "\\x";
    out += kHex[u >> 4];
    out += kHex[u & 15];
  };
  std::string out = "'";
  std::vector<Utf8Replacement> bad;
  const bool valid = is_valid_utf8(s);
  if (!valid) replace_invalid_utf8(s, &bad);
  std::size_t next_bad = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (!valid && next_bad < bad.size() && i == bad[next_bad].input) {
      for (std::size_t k = 0; k < bad[next_bad].length; ++k) hex(out, static_cast<unsigned char>(s[i + k]));
      i += bad[next_bad].length - 1;
      ++next_bad;
    } else if (u == '\'' || u == '\\') {
      out += '\\';
      out += static_cast<char>(u);
    } else if (u < 0x20 || u == 0x7f) {
      hex(out, u);
    } else {
      out += static_cast<char>(u);
    }
  }
  out += '\'';
  if (cut) out += "...";
  return out;
}

}  // namespace llmbridge::text
