// Strict JSON parsing with simdjson, shared by validation, repair and loads().
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace llmbridge::text {

// The nesting limit used everywhere (validation, repair, loads).
inline constexpr std::size_t kMaxDepth = 10000;

// A reusable simdjson DOM parser with its own padded input buffer, so parsing a
// borrowed string costs one memcpy and no allocation once warm. Not thread-safe:
// use one per thread (thread_parser()).
class JsonParser {
 public:
  JsonParser();
  // Parses `json` (one complete document). On success `root` points into this parser
  // and stays valid until the next parse() on it.
  simdjson::error_code parse(std::string_view json, simdjson::dom::element& root);

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::parser deep_;  // one level of slack, for documents at the limit
  std::string buffer_;
};

// This thread's parser.
JsonParser& thread_parser();

}  // namespace llmbridge::text
