// A JSON value built value by value, for validating data that is not JSON text (a
// Python object walked by the bindings): no text is written and none is parsed. The
// storage is the layout the validator reads parsed text in (simdjson's tape), so both
// paths share one evaluator. Reusable: clear() keeps the capacity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::schema {

class Schema;

class Instance {
 public:
  Instance();
  void clear();

  // One value each; inside an object every value follows its key().
  void null();
  void boolean(bool v);
  void integer(std::int64_t v);
  void unsigned_integer(std::uint64_t v);
  void number(double v);  // finite
  // An integer or decimal number beyond int64/uint64/double, as JSON number text.
  void big_number(std::string_view json_number);
  void string(std::string_view utf8);  // valid UTF-8 (the caller's guarantee)

  void start_array();
  void end_array();
  void start_object();
  void key(std::string_view utf8);
  void end_object();

  // The size of what was built, in 64-bit words (one or two per value).
  std::size_t words() const noexcept { return words_.size(); }
  // Containers open now (the builder's nesting depth).
  std::size_t depth() const noexcept { return open_.size(); }
  // Exactly one complete value has been built.
  bool complete() const noexcept;

 private:
  friend class Schema;
  void value_word(char type, std::uint64_t payload);
  std::size_t store(std::string_view utf8);
  void close(char open_type, char close_type);

  std::vector<std::uint64_t> words_;
  std::string strings_;  // bytes, as simdjson lays strings out
  std::vector<std::string> bigs_;
  std::vector<std::pair<std::size_t, std::uint64_t>> open_;  // start word, count
};

}  // namespace llmbridge::schema
