// Strict JSON parsing with simdjson, shared by validation, repair and loads().
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace llmbridge::text {

// The nesting limit used everywhere (validation, repair, loads).
inline constexpr std::size_t kMaxDepth = 10000;

// Read access to a parsed document in simdjson's own form, its tape (simdjson's
// doc/tape.md): one 64-bit word per scalar, string and container bound, two per number,
// in document order. Reading it front to back visits every value once, without the
// type check per access and the out-of-line step of simdjson's DOM iterators; loads()
// builds Python objects this way. Valid until the parser parses again.
class JsonTape {
 public:
  using Type = simdjson::internal::tape_type;
  // The index of the root value (index 0 holds the root marker).
  static constexpr std::size_t kRoot = 1;

  explicit JsonTape(const simdjson::dom::document& doc) noexcept
      : tape_(doc.tape.get()), strings_(doc.string_buf.get()) {}

  Type type(std::size_t i) const noexcept { return Type(tape_[i] >> 56); }
  // START_ARRAY / START_OBJECT: the index just past the matching end, and how many
  // elements (fields for an object) they hold, saturated at kSaturatedCount.
  std::size_t end_of(std::size_t i) const noexcept { return std::uint32_t(tape_[i]); }
  std::size_t count(std::size_t i) const noexcept {
    return std::size_t(tape_[i] >> 32) & simdjson::internal::JSON_COUNT_MASK;
  }
  static constexpr std::size_t kSaturatedCount = simdjson::internal::JSON_COUNT_MASK;
  // STRING: the unescaped bytes (valid UTF-8: simdjson validated the document).
  std::string_view string(std::size_t i) const noexcept {
    const std::uint8_t* at = strings_ + (tape_[i] & simdjson::internal::JSON_VALUE_MASK);
    std::uint32_t len;
    std::memcpy(&len, at, sizeof len);
    return std::string_view(reinterpret_cast<const char*>(at + sizeof len), len);
  }
  // INT64 / UINT64 / DOUBLE: the value, stored in the word after the type word.
  std::int64_t int64(std::size_t i) const noexcept { return std::int64_t(tape_[i + 1]); }
  std::uint64_t uint64(std::size_t i) const noexcept { return tape_[i + 1]; }
  double number(std::size_t i) const noexcept {
    double d;
    std::memcpy(&d, &tape_[i + 1], sizeof d);
    return d;
  }
  // The index of the value after the one at `i` (past its end for a container).
  std::size_t next(std::size_t i) const noexcept {
    switch (type(i)) {
      case Type::START_ARRAY:
      case Type::START_OBJECT:
        return end_of(i);
      case Type::INT64:
      case Type::UINT64:
      case Type::DOUBLE:
        return i + 2;
      default:
        return i + 1;
    }
  }

 private:
  const std::uint64_t* tape_;
  const std::uint8_t* strings_;
};

// A reusable simdjson DOM parser with its own padded input buffer, so parsing a
// borrowed string costs one memcpy and no allocation once warm. Not thread-safe:
// use one per thread (thread_parser()).
class JsonParser {
 public:
  JsonParser();
  // Parses `json` (one complete document). On success `root` points into this parser
  // and stays valid until the next parse() on it.
  simdjson::error_code parse(std::string_view json, simdjson::dom::element& root);
  // The tape of the document the last successful parse() returned.
  JsonTape tape() const noexcept { return JsonTape(*last_); }
  // The document the last successful parse() filled.
  const simdjson::dom::document& document() const noexcept { return *last_; }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::parser deep_;  // one level of slack, for documents at the limit
  std::string buffer_;
  const simdjson::dom::document* last_ = &parser_.doc;  // parser_ or deep_
};

// This thread's parser.
JsonParser& thread_parser();

}  // namespace llmbridge::text
