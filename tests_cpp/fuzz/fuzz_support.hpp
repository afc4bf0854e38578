// Shared by the fuzz targets: invariant checks that stop the fuzzer with a named
// report, and an independent RFC 8259 validator to judge the core's output with.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Read by UBSan at start-up, before UBSAN_OPTIONS (which can add a suppressions file):
// the first undefined behaviour stops the target, so libFuzzer saves the input. Each
// target is one translation unit, so this is defined once per program.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

namespace llmbridge::fuzz {

// Quoted, escaped and clipped, so a report stays readable whatever the bytes.
inline std::string show(std::string_view s, std::size_t limit = 400) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  out += s.size() > limit ? "\"... (" + std::to_string(s.size()) + " bytes)" : "\"";
  return out;
}

// LLMBRIDGE_FUZZ_ALLOW=name,name lets a run go on past invariants that are known to
// fail (a bug being fixed elsewhere) so the fuzzer can look for the next one. Each
// allowed violation is still printed once, or every time with LLMBRIDGE_FUZZ_LOG_ALLOWED=1
// (to sort a grown corpus by cause: <target> -runs=0 <corpus dir>).
inline bool allowed(std::string_view name) {
  static const std::string list = [] {
    const char* env = std::getenv("LLMBRIDGE_FUZZ_ALLOW");
    return "," + std::string(env ? env : "") + ",";
  }();
  return list.find("," + std::string(name) + ",") != std::string::npos;
}

// Stops the fuzzer (it saves the input as a crash-* artifact) when `ok` is false.
// `detail` is only built on failure: it is a callable returning a std::string.
template <class Detail>
inline void check(bool ok, const char* name, Detail&& detail) {
  if (ok) return;
  if (allowed(name)) {
    static const bool log_all = std::getenv("LLMBRIDGE_FUZZ_LOG_ALLOWED") != nullptr;
    static std::vector<std::string> seen;
    for (const auto& s : seen)
      if (s == name && !log_all) return;
    seen.emplace_back(name);
    std::fprintf(stderr, "fuzz: invariant %s violated (allowed by LLMBRIDGE_FUZZ_ALLOW): %s\n", name,
                 detail().c_str());
    return;
  }
  std::fprintf(stderr, "\nfuzz: INVARIANT VIOLATED: %s\n%s\n", name, detail().c_str());
  std::fflush(stderr);
  __builtin_trap();
}

// The nesting depth of `s` when it is exactly one JSON text by RFC 8259 (grammar and
// UTF-8), else nullopt. Written independently of the core on purpose: it is the
// oracle. A lone surrogate escape such as "\ud800" is valid grammar, so it passes.
// Iterative, so no input can overflow the stack.
inline std::optional<std::size_t> strict_json_depth(std::string_view s) {
  if (!simdjson::validate_utf8(s.data(), s.size())) return std::nullopt;
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto ws = [&] {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  };
  auto digit = [&] { return i < n && s[i] >= '0' && s[i] <= '9'; };
  auto hex = [&](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  auto string = [&] {  // at the opening quote
    ++i;
    while (i < n) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        ++i;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i >= n) return false;
        const char e = s[i];
        if (e == 'u') {
          if (i + 4 >= n) return false;
          for (std::size_t k = 1; k <= 4; ++k)
            if (!hex(s[i + k])) return false;
          i += 5;
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
            e != 't')
          return false;
      }
      ++i;
    }
    return false;
  };
  auto number = [&] {
    if (i < n && s[i] == '-') ++i;
    if (i >= n) return false;
    if (s[i] == '0') {
      ++i;
    } else if (digit()) {
      while (digit()) ++i;
    } else {
      return false;
    }
    if (i < n && s[i] == '.') {
      ++i;
      if (!digit()) return false;
      while (digit()) ++i;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
      if (!digit()) return false;
      while (digit()) ++i;
    }
    return true;
  };
  auto literal = [&](std::string_view word) {
    if (s.substr(i, word.size()) != word) return false;
    i += word.size();
    return true;
  };
  auto key_and_colon = [&] {
    ws();
    if (i >= n || s[i] != '"' || !string()) return false;
    ws();
    if (i >= n || s[i] != ':') return false;
    ++i;
    return true;
  };

  std::vector<char> stack;  // the open containers, '{' or '['
  std::size_t depth = 0;
  for (;;) {
    // A value starts here.
    ws();
    if (i >= n) return std::nullopt;
    const char c = s[i];
    if (c == '{' || c == '[') {
      ++i;
      stack.push_back(c);
      if (stack.size() > depth) depth = stack.size();
      ws();
      if (i < n && s[i] == (c == '{' ? '}' : ']')) {
        ++i;
        stack.pop_back();
      } else {
        if (c == '{' && !key_and_colon()) return std::nullopt;
        continue;
      }
    } else if (c == '"') {
      if (!string()) return std::nullopt;
    } else if (c == 't' || c == 'f' || c == 'n') {
      if (!literal("true") && !literal("false") && !literal("null")) return std::nullopt;
    } else if (!number()) {
      return std::nullopt;
    }
    // A value ended: close containers until one wants another element.
    for (;;) {
      ws();
      if (stack.empty()) {
        if (i == n) return depth;
        return std::nullopt;
      }
      if (i >= n) return std::nullopt;
      if (s[i] == ',') {
        ++i;
        if (stack.back() == '{' && !key_and_colon()) return std::nullopt;
        break;
      }
      if (s[i] != (stack.back() == '{' ? '}' : ']')) return std::nullopt;
      ++i;
      stack.pop_back();
    }
  }
}

inline bool valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

inline std::string_view trim_json_space(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

// True when `inner` lies within `outer` (a view the core handed back into it).
inline bool within(std::string_view inner, std::string_view outer) {
  const auto ib = reinterpret_cast<std::uintptr_t>(inner.data());
  const auto ob = reinterpret_cast<std::uintptr_t>(outer.data());
  return ib >= ob && ib + inner.size() <= ob + outer.size();
}

}  // namespace llmbridge::fuzz
