// Conversions between Python text objects and the core's UTF-8 views, and from
// simdjson's DOM to Python objects.
#pragma once

#include <pybind11/pybind11.h>
#include <simdjson.h>

#include <string>
#include <string_view>

namespace llmbridge::bindings {

// Borrows the UTF-8 bytes of a str, bytes, bytearray or memoryview argument.
// str and bytes are read in place (they are immutable and the caller's reference keeps
// them alive, so the GIL may be released while the view is read); mutable buffers are
// copied. A str holding lone surrogates is encoded with surrogatepass (the repairer
// then replaces those bytes with U+FFFD). Any other type raises TypeError.
class TextInput {
 public:
  explicit TextInput(pybind11::handle obj);
  std::string_view view() const noexcept { return view_; }
  // The input as a str: the same object when it was one.
  pybind11::object as_str() const;

 private:
  pybind11::handle obj_;
  pybind11::object holder_;
  std::string copy_;
  std::string_view view_;
  bool is_str_ = false;
};

pybind11::object utf8_to_str(std::string_view s);

// Builds dict/list/str/int/float/bool/None from a parsed element. Raises on failure.
pybind11::object build_object(simdjson::dom::element root);

}  // namespace llmbridge::bindings
