// simdjson parsing with a reusable padded buffer and an exact nesting limit.
#include "llmbridge/text/json_parse.hpp"

#include <cstring>

namespace llmbridge::text {

namespace {

// simdjson counts a scalar inside the innermost object as one more level than the
// same scalar inside an array, so no single max_depth equals "kMaxDepth containers".
// The nesting depth of (valid) JSON text, counted on the text: used only on the rare
// documents that come within one level of the limit.
std::size_t container_depth(std::string_view json) {
  std::size_t depth = 0, max = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max) max = depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max;
}

simdjson::error_code ensure(simdjson::dom::parser& p, std::size_t size, std::size_t depth) {
  if (p.max_depth() >= depth && p.capacity() >= size) return simdjson::SUCCESS;
  // allocate() keeps the capacity for later documents.
  const std::size_t cap = size > p.capacity() ? size : p.capacity();
  return p.allocate(cap < 4096 ? 4096 : cap, depth);
}

}  // namespace

JsonParser::JsonParser() = default;

simdjson::error_code JsonParser::parse(std::string_view json, simdjson::dom::element& root) {
  const std::size_t need = json.size() + simdjson::SIMDJSON_PADDING;
  if (buffer_.size() < need) buffer_.resize(need < 4096 ? 4096 : need + need / 4);
  std::memcpy(buffer_.data(), json.data(), json.size());
  std::memset(buffer_.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);
  if (auto err = ensure(parser_, json.size(), kMaxDepth)) return err;
  last_ = &parser_.doc;
  simdjson::error_code err = parser_.parse(buffer_.data(), json.size(), false).get(root);
  if (err != simdjson::DEPTH_ERROR) return err;
  // Within one level of the limit: parse with one level of slack, then count exactly.
  if (auto e = ensure(deep_, json.size(), kMaxDepth + 1)) return e;
  last_ = &deep_.doc;
  err = deep_.parse(buffer_.data(), json.size(), false).get(root);
  if (err) return err;
  return container_depth(json) > kMaxDepth ? simdjson::DEPTH_ERROR : simdjson::SUCCESS;
}

JsonParser& thread_parser() {
  thread_local JsonParser parser;
  return parser;
}

}  // namespace llmbridge::text
