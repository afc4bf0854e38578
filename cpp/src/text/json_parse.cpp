// simdjson parsing with a reusable padded buffer.
#include "llmbridge/text/json_parse.hpp"

#include <cstring>

namespace llmbridge::text {

JsonParser::JsonParser() = default;

simdjson::error_code JsonParser::parse(std::string_view json, simdjson::dom::element& root) {
  const std::size_t need = json.size() + simdjson::SIMDJSON_PADDING;
  if (buffer_.size() < need) buffer_.resize(need < 4096 ? 4096 : need + need / 4);
  std::memcpy(buffer_.data(), json.data(), json.size());
  std::memset(buffer_.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);
  if (parser_.max_depth() < kMaxDepth || parser_.capacity() < json.size()) {
    // allocate() keeps the capacity for later documents; a document of kMaxDepth
    // nested containers passes, one more level does not.
    const std::size_t cap = json.size() > parser_.capacity() ? json.size() : parser_.capacity();
    if (auto err = parser_.allocate(cap < 4096 ? 4096 : cap, kMaxDepth)) return err;
  }
  return parser_.parse(buffer_.data(), json.size(), false).get(root);
}

JsonParser& thread_parser() {
  thread_local JsonParser parser;
  return parser;
}

}  // namespace llmbridge::text
