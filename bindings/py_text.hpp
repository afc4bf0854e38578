// Conversions between Python text objects and the core's UTF-8 views, and from
// simdjson's DOM to Python objects.
#pragma once

#include <pybind11/pybind11.h>
#include <simdjson.h>

#include <string>
#include <string_view>

#include "llmbridge/schema/instance.hpp"
#include "llmbridge/text/json_parse.hpp"

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
  pybind11::str as_str() const;
  // The view is a str's own UTF-8 (valid by construction; not a surrogatepass encoding).
  bool is_utf8() const noexcept { return is_str_ && !holder_; }

 private:
  pybind11::handle obj_;
  pybind11::object holder_;
  std::string copy_;
  std::string_view view_;
  bool is_str_ = false;
};

// A str from UTF-8 bytes. Invalid bytes become U+FFFD: never raises UnicodeDecodeError.
pybind11::str utf8_to_str(std::string_view s);

// The UTF-8 bytes of a str argument called `name` (as the caller knows it, e.g.
// "document_text"). A str with a lone surrogate raises ValueError naming the argument
// and the index; another type raises TypeError naming the argument and the type.
// Neither message quotes the text itself.
std::string utf8_arg(pybind11::handle obj, const char* name);

// Python objects from valid JSON text: simdjson, or json.loads for the few documents
// simdjson refuses (integers beyond 64 bits, lone surrogate escapes, huge exponents).
// Raises what json.loads raises (ValueError for an integer over Python's digit limit).
pybind11::object json_to_object(std::string_view json);

// "ValueError: <message>" of the Python exception in `e`, at most `max_bytes` long.
std::string exception_excerpt(const pybind11::error_already_set& e, std::size_t max_bytes = 200);

// Raises `exc`, an instance of one of llmbridge.errors' classes built by the caller
// (error_class() finds the class). The one way the bindings raise llmbridge's own errors.
[[noreturn]] void raise_instance(const pybind11::object& exc);
// llmbridge.errors.<name>, looked up on each raise (rare): no static py::object
// outliving the interpreter.
pybind11::object error_class(const char* name);

// Builds dict/list/str/int/float/bool/None from a parsed document. Raises on failure.
pybind11::object build_object(const text::JsonTape& tape);

// Appends the JSON text of a Python JSON value (dict with str keys, list, tuple, str,
// int, float, bool, None; subclasses too) to `out`. Another type is TypeError, NaN /
// infinity, a lone surrogate or nesting beyond text::kMaxDepth (a container holding
// itself) ValueError, each naming `name` (the caller's argument), never quoting it.
void append_json(std::string& out, pybind11::handle obj, const char* name);
// The same walk into a schema::Instance (cleared first): no text written or parsed.
void build_instance(schema::Instance& out, pybind11::handle obj, const char* name);

}  // namespace llmbridge::bindings
