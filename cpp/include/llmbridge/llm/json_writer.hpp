// A small streaming JSON writer for request bodies: RFC 8259 string escaping, commas
// handled for the caller, raw JSON splicing for caller-supplied schemas and messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::llm {

// Appends `s` as a JSON string literal: \" \\ \b \f \n \r \t escaped, other bytes below
// 0x20 as \u00XX, everything else (UTF-8 included) passed through byte for byte.
void append_json_string(std::string& out, std::string_view s);

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  JsonWriter& value(std::int64_t n);
  JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(double d);  // shortest round-trip form, always with a '.' or exponent; non-finite -> null
  JsonWriter& null();
  // Splices already-serialised JSON text as one value. The caller vouches for it.
  JsonWriter& raw(std::string_view json);

  const std::string& str() const noexcept { return out_; }
  std::string take() noexcept { return std::move(out_); }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> has_items_;  // one per open container
  bool after_key_ = false;
};

}  // namespace llmbridge::llm
