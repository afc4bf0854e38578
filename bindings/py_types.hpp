// Python objects whose type the signatures name exactly.
//
// pybind11 writes every binding's signature into its __doc__ from the C++ types, and
// tests_py/test_stubs.py holds _native.pyi to those signatures. Where a binding builds
// or checks a Python object itself (a str decoded with U+FFFD, None for "absent", a
// result converted once, an argument checked with a message naming it), the C++ type is
// py::object and the signature would say only `object`. Typed<Hint> is that same
// py::object under a name: it converts nothing and accepts any argument (the binding
// still checks it), and pybind11 writes Hint::name in the signature.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/typing.h>

#include <utility>

namespace llmbridge::bindings {

template <typename Hint>
class Typed : public pybind11::object {
 public:
  Typed() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): a typed object is made from any object
  Typed(pybind11::object o) : pybind11::object(std::move(o)) {}
  Typed(pybind11::handle h, borrowed_t) : pybind11::object(h, borrowed_t{}) {}
  Typed(pybind11::handle h, stolen_t) : pybind11::object(h, stolen_t{}) {}
  // Any argument loads: the binding checks it and names it in its error.
  static bool check_(pybind11::handle h) { return h.ptr() != nullptr; }
};

namespace hint {

using pybind11::detail::const_name;
using pybind11::detail::make_caster;

struct Text {  // what TextInput reads
  static constexpr auto name = const_name("str | bytes | bytearray | memoryview");
};
struct Str {  // checked by utf8_arg
  static constexpr auto name = const_name("str");
};
struct SchemaValue {  // a JSON Schema: an object, or a boolean schema
  static constexpr auto name = const_name("bool | dict[str, object]");
};
struct Texts {  // a sequence of str, each checked by utf8_arg
  static constexpr auto name = const_name("collections.abc.Sequence[str]");
};
template <typename T>
struct Optional {
  static constexpr auto name = make_caster<T>::name + const_name(" | None");
};
template <typename T>
struct Instance {  // an instance of the bound class T, made by py::cast
  static constexpr auto name = make_caster<T>::name;
};
template <typename T, typename... Ts>
struct OneOf {  // an instance of one of the bound classes
  static constexpr auto name = (make_caster<T>::name + ... + (const_name(" | ") + make_caster<Ts>::name));
};

}  // namespace hint

using TextArg = Typed<hint::Text>;
using StrArg = Typed<hint::Str>;
using OptionalStr = Typed<hint::Optional<pybind11::str>>;
using OptionalInt = Typed<hint::Optional<pybind11::int_>>;
using OptionalFloat = Typed<hint::Optional<pybind11::float_>>;
template <typename T>
using Instance = Typed<hint::Instance<T>>;

}  // namespace llmbridge::bindings

namespace pybind11::detail {

template <typename Hint>
struct handle_type_name<llmbridge::bindings::Typed<Hint>> {
  static constexpr auto name = Hint::name;
};

}  // namespace pybind11::detail
