// Writing text as a JSON string literal (RFC 8259 escapes; UTF-8 passes through).
// One definition for every writer in the core: request bodies and the repairer.
#pragma once

#include <cstddef>
#include <string_view>

namespace llmbridge::text {

// Appends the escape for one byte that cannot stand in a JSON string as it is: '"',
// '\\' or a control character below 0x20. `Out` needs append(const char*, size_t) and
// push_back(char).
template <typename Out>
void append_json_escape(Out& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"': out.append("\\\"", 2); return;
    case '\\': out.append("\\\\", 2); return;
    case '\b': out.append("\\b", 2); return;
    case '\f': out.append("\\f", 2); return;
    case '\n': out.append("\\n", 2); return;
    case '\r': out.append("\\r", 2); return;
    case '\t': out.append("\\t", 2); return;
    default:
      out.append("\\u00", 4);
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
  }
}

// Appends `s` as a quoted JSON string; runs of bytes that need no escape are copied whole.
template <typename Out>
void append_json_quoted(Out& out, std::string_view s) {
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    append_json_escape(out, c);
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace llmbridge::text
