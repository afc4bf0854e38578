// Provider config conversions, shared by bind_llm.cpp and bind_config.cpp.
#include "py_config.hpp"

#include <string>
#include <type_traits>

#include "py_text.hpp"

namespace py = pybind11;

namespace llmbridge::bindings {
namespace {

// A field's value for Python: the API key is None when empty (never sent).
template <typename T>
py::object to_py(const char* name, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (std::string_view(name) == "api_key" && v.empty()) return py::none();
    return py::str(v);
  } else {
    return py::cast(v);
  }
}

template <class Config>
py::dict fields_of(Config c) {
  py::dict d;
  config::for_each_field(c, [&](const char* name, const auto& member) { d[name] = to_py(name, member); });
  return d;
}

template <typename T>
void read(py::handle obj, const char* name, T& out) {
  if (!py::hasattr(obj, name)) return;
  py::object v = obj.attr(name);
  if (v.is_none()) return;
  if constexpr (std::is_same_v<T, std::string>) {
    // Names the field on a lone surrogate or a wrong type, and never quotes the value.
    out = utf8_arg(v, (std::string("config field '") + name + "'").c_str());
    return;
  }
  if constexpr (std::is_same_v<T, bool>) {
    // Only True or False: a cast would take "no" (a non-empty str) as True.
    if (!PyBool_Check(v.ptr()))
      throw py::type_error(std::string("config field '") + name + "' must be True or False, got " +
                           std::string(py::str(py::type::of(v).attr("__name__"))));
    out = v.ptr() == Py_True;
    return;
  }
  try {
    out = v.cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string("config field '") + name + "' has the wrong type (" +
                         std::string(py::str(py::type::of(v).attr("__name__"))) + ")");
  }
}

}  // namespace

py::dict config_fields(const config::OpenAICompatibleConfig& c) { return fields_of(c); }

py::dict config_fields(const config::OllamaConfig& c) { return fields_of(c); }

void read_config(py::handle o, config::OpenAICompatibleConfig& c) {
  config::for_each_field(c, [&](const char* name, auto& member) { read(o, name, member); });
}

void read_config(py::handle o, config::OllamaConfig& c) {
  config::for_each_field(c, [&](const char* name, auto& member) { read(o, name, member); });
}

}  // namespace llmbridge::bindings
