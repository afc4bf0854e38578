// Instance: writes the tape layout of json_doc.hpp one value at a time.
#include "llmbridge/schema/instance.hpp"

#include <algorithm>
#include <cstring>

#include "json_doc.hpp"

namespace llmbridge::schema {

namespace {
constexpr std::uint64_t word(char type, std::uint64_t payload) {
  return (std::uint64_t(std::uint8_t(type)) << 56) | payload;
}
}  // namespace

Instance::Instance() { clear(); }

void Instance::clear() {
  words_.clear();
  strings_.clear();
  bigs_.clear();
  open_.clear();
  words_.push_back(word('r', 0));  // the root word; the value starts at index 1
}

bool Instance::complete() const noexcept { return open_.empty() && words_.size() > 1; }

void Instance::value_word(char type, std::uint64_t payload) {
  // In an array each value counts; in an object the key() did.
  if (!open_.empty() && char(words_[open_.back().first] >> 56) == '[') ++open_.back().second;
  words_.push_back(word(type, payload));
}

void Instance::null() { value_word('n', 0); }
void Instance::boolean(bool v) { value_word(v ? 't' : 'f', 0); }

void Instance::integer(std::int64_t v) {
  value_word('l', 0);
  words_.push_back(std::uint64_t(v));
}

void Instance::unsigned_integer(std::uint64_t v) {
  if (v <= std::uint64_t(INT64_MAX)) return integer(std::int64_t(v));
  value_word('u', 0);
  words_.push_back(v);
}

void Instance::number(double v) {
  value_word('d', 0);
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof v);
  words_.push_back(bits);
}

void Instance::big_number(std::string_view json_number) {
  value_word(detail::kBigNumber, 0);
  words_.push_back(bigs_.size());
  bigs_.emplace_back(json_number);
}

std::size_t Instance::store(std::string_view utf8) {
  // simdjson's string layout: a 32-bit length, the bytes, a NUL.
  const std::size_t off = strings_.size();
  const auto len = std::uint32_t(utf8.size());
  strings_.append(reinterpret_cast<const char*>(&len), 4);
  strings_.append(utf8);
  strings_.push_back('\0');
  return off;
}

void Instance::string(std::string_view utf8) { value_word('"', store(utf8)); }

void Instance::key(std::string_view utf8) {
  // A key is a string word that is not counted as a value; the member is.
  if (!open_.empty()) ++open_.back().second;
  words_.push_back(word('"', store(utf8)));
}

void Instance::start_array() {
  value_word('[', 0);
  open_.emplace_back(words_.size() - 1, 0);
}

void Instance::start_object() {
  value_word('{', 0);
  open_.emplace_back(words_.size() - 1, 0);
}

void Instance::close(char open_type, char close_type) {
  const auto [start, count] = open_.back();
  open_.pop_back();
  words_.push_back(word(close_type, start));
  const std::uint64_t c = std::min<std::uint64_t>(count, detail::Tape::kSaturated);
  words_[start] = word(open_type, (c << 32) | std::uint64_t(words_.size()));
}

void Instance::end_array() { close('[', ']'); }
void Instance::end_object() { close('{', '}'); }

}  // namespace llmbridge::schema
