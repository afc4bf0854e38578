// Text conversions and the simdjson DOM -> Python object builder.
#include "py_text.hpp"

#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/utf8.hpp"

#include <cstdio>
#include <cstring>
#include <vector>

namespace py = pybind11;

namespace llmbridge::bindings {

TextInput::TextInput(py::handle obj) : obj_(obj) {
  PyObject* o = obj.ptr();
  if (PyUnicode_Check(o)) {
    is_str_ = true;
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s) {
      view_ = std::string_view(s, std::size_t(n));
      return;
    }
    PyErr_Clear();
    PyObject* b = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass");
    if (!b) throw py::error_already_set();
    holder_ = py::reinterpret_steal<py::object>(b);
    view_ = std::string_view(PyBytes_AS_STRING(b), std::size_t(PyBytes_GET_SIZE(b)));
    return;
  }
  if (PyBytes_Check(o)) {
    view_ = std::string_view(PyBytes_AS_STRING(o), std::size_t(PyBytes_GET_SIZE(o)));
    return;
  }
  if (PyByteArray_Check(o) || PyMemoryView_Check(o)) {
    py::buffer_info info = py::reinterpret_borrow<py::buffer>(obj).request();
    copy_.assign(static_cast<const char*>(info.ptr), std::size_t(info.size * info.itemsize));
    view_ = copy_;
    return;
  }
  throw py::type_error(std::string("expected str or bytes, got ") + Py_TYPE(o)->tp_name);
}

py::object TextInput::as_str() const {
  if (is_str_) return py::reinterpret_borrow<py::object>(obj_);
  return utf8_to_str(view_);
}

namespace {

bool is_ascii(const char* p, std::size_t n) noexcept {
  std::uint64_t acc = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
  }
  for (; i < n; ++i) acc |= static_cast<unsigned char>(p[i]);
  return (acc & 0x8080808080808080ull) == 0;
}

// A str from UTF-8 bytes; pure-ASCII text (most keys and values) skips the decoder.
PyObject* make_str(const char* p, std::size_t n) {
  if (is_ascii(p, n)) {
    PyObject* o = PyUnicode_New(Py_ssize_t(n), 127);
    if (o) std::memcpy(PyUnicode_1BYTE_DATA(o), p, n);
    return o;
  }
  PyObject* o = PyUnicode_DecodeUTF8(p, Py_ssize_t(n), "surrogatepass");
  if (o || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return o;
  // Bytes that are not UTF-8 at all (the core hands out valid UTF-8, but a caller's
  // bytes go through here too): U+FFFD, as everywhere else, never an exception.
  PyErr_Clear();
  return PyUnicode_DecodeUTF8(p, Py_ssize_t(n), "replace");
}

}  // namespace

py::object utf8_to_str(std::string_view s) {
  PyObject* r = make_str(s.data(), s.size());
  if (!r) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(r);
}

namespace {

// Keys repeat across objects and across calls: a small direct-mapped cache of key
// strings, one per thread (only touched with the GIL held). Its references are
// deliberately never released: at thread or process exit the interpreter may be gone.
class KeyCache {
 public:
  PyObject* get(std::string_view k) {
    if (k.size() > kMaxKey) return make_str(k.data(), k.size());
    std::uint32_t h = 2166136261u ^ std::uint32_t(k.size());
    for (char c : k) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    Slot& s = slots_[h & (kSlots - 1)];
    if (s.obj && s.len == k.size() && std::memcmp(s.bytes, k.data(), k.size()) == 0) {
      Py_INCREF(s.obj);
      return s.obj;
    }
    PyObject* o = make_str(k.data(), k.size());
    if (!o) return nullptr;
    PyUnicode_InternInPlace(&o);  // also caches the hash for dict insertion
    Py_XDECREF(s.obj);
    s.obj = o;
    s.len = k.size();
    std::memcpy(s.bytes, k.data(), k.size());
    Py_INCREF(o);
    return o;
  }

 private:
  static constexpr std::size_t kSlots = 1024;
  static constexpr std::size_t kMaxKey = 40;
  struct Slot {
    PyObject* obj = nullptr;
    std::size_t len = 0;
    char bytes[kMaxKey];
  };
  Slot slots_[kSlots];
};

KeyCache& thread_key_cache() {
  thread_local KeyCache* cache = new KeyCache();  // never freed: see above
  return *cache;
}

PyObject* build_scalar(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::STRING: {
      std::string_view s(e);
      return make_str(s.data(), s.size());
    }
    case element_type::INT64:
      return PyLong_FromLongLong(int64_t(e));
    case element_type::UINT64:
      return PyLong_FromUnsignedLongLong(uint64_t(e));
    case element_type::DOUBLE:
      return PyFloat_FromDouble(double(e));
    case element_type::BOOL:
      if (bool(e)) Py_RETURN_TRUE;
      Py_RETURN_FALSE;
    case element_type::NULL_VALUE:
      Py_RETURN_NONE;
    default:
      break;
  }
  PyErr_SetString(PyExc_ValueError, "unknown JSON element type");
  return nullptr;
}

bool is_container(simdjson::dom::element e) {
  const auto t = e.type();
  return t == simdjson::dom::element_type::OBJECT || t == simdjson::dom::element_type::ARRAY;
}

// simdjson's array size saturates at 0xFFFFFF: a longer array (a hostile 34 MB answer
// holds one) must be counted, or the list would be allocated too short.
constexpr std::size_t kSaturatedSize = 0xFFFFFF;

PyObject* new_container(simdjson::dom::element e) {
  if (e.type() == simdjson::dom::element_type::OBJECT) return PyDict_New();
  simdjson::dom::array a(e);
  std::size_t n = a.size();
  if (n >= kSaturatedSize) {
    n = 0;
    for (auto it = a.begin(); it != a.end(); ++it) ++n;
  }
  return PyList_New(Py_ssize_t(n));
}

// Builds without native recursion: an explicit stack of open containers, so 10,000
// levels of nesting cost a vector of frames, not 10,000 C stack frames (a thread with
// a small stack would crash). Each container is linked into its parent as soon as it
// is made, so on failure releasing the root releases everything built so far.
PyObject* build(simdjson::dom::element root, KeyCache& keys) {
  if (!is_container(root)) return build_scalar(root);
  struct Frame {
    PyObject* container;  // borrowed: owned by its parent (or `out` for the root)
    bool is_object;
    simdjson::dom::object::iterator field, fields_end;
    simdjson::dom::array::iterator item, items_end;
    Py_ssize_t index = 0;
  };
  auto open = [](simdjson::dom::element e, PyObject* container) {
    Frame f{};
    f.container = container;
    f.is_object = e.type() == simdjson::dom::element_type::OBJECT;
    if (f.is_object) {
      simdjson::dom::object o(e);
      f.field = o.begin();
      f.fields_end = o.end();
    } else {
      simdjson::dom::array a(e);
      f.item = a.begin();
      f.items_end = a.end();
    }
    return f;
  };
  PyObject* out = new_container(root);
  if (!out) return nullptr;
  std::vector<Frame> stack;
  stack.reserve(16);
  stack.push_back(open(root, out));
  while (!stack.empty()) {
    Frame& f = stack.back();
    simdjson::dom::element child;
    PyObject* key = nullptr;
    if (f.is_object) {
      if (f.field == f.fields_end) {
        stack.pop_back();
        continue;
      }
      key = keys.get((*f.field).key);
      if (!key) break;
      child = (*f.field).value;
      ++f.field;
    } else {
      if (f.item == f.items_end) {
        stack.pop_back();
        continue;
      }
      child = *f.item;
      ++f.item;
    }
    const bool nested = is_container(child);
    PyObject* value = nested ? new_container(child) : build_scalar(child);
    if (!value) {
      Py_XDECREF(key);
      break;
    }
    PyObject* parent = f.container;
    if (f.is_object) {
      const int rc = PyDict_SetItem(parent, key, value);
      Py_DECREF(key);
      Py_DECREF(value);  // the dict holds it now (or it is gone on failure)
      if (rc < 0) break;
    } else {
      PyList_SET_ITEM(parent, f.index++, value);  // steals the reference
    }
    if (nested) stack.push_back(open(child, value));  // `f` may dangle from here on
  }
  if (!stack.empty()) {  // left the loop on an error: a Python exception is set
    Py_DECREF(out);
    return nullptr;
  }
  return out;
}

}  // namespace

std::string utf8_arg(py::handle obj, const char* name) {
  PyObject* o = obj.ptr();
  if (!PyUnicode_Check(o))
    throw py::type_error(std::string(name) + " must be str, got " + Py_TYPE(o)->tp_name);
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(o, &n);
  if (p) return std::string(p, std::size_t(n));
  if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) throw py::error_already_set();
  PyErr_Clear();
  // Only lone surrogates (U+D800..U+DFFF) cannot be encoded as UTF-8: find the first.
  const Py_ssize_t len = PyUnicode_GET_LENGTH(o);
  const int kind = PyUnicode_KIND(o);
  const void* data = PyUnicode_DATA(o);
  Py_ssize_t at = 0;
  Py_UCS4 ch = 0;
  for (; at < len; ++at) {
    ch = PyUnicode_READ(kind, data, at);
    if (ch >= 0xD800 && ch <= 0xDFFF) break;
  }
  char cp[16];
  std::snprintf(cp, sizeof cp, "U+%04X", unsigned(ch));
  throw py::value_error(std::string(name) + " holds a lone surrogate (" + cp + ") at index " +
                        std::to_string(at) + " and cannot be encoded as UTF-8");
}

std::string exception_excerpt(const py::error_already_set& e, std::size_t max_bytes) {
  // Type and message only: what() would add pybind11's "At:" traceback lines.
  std::string what;
  try {
    what = py::str(e.type().attr("__name__")).cast<std::string>() + ": " +
           py::str(e.value()).cast<std::string>();
  } catch (...) {
    what = "an exception that cannot be shown";
  }
  return text::utf8_excerpt(what, max_bytes);
}

py::object json_to_object(std::string_view json) {
  simdjson::dom::element root;
  if (text::thread_parser().parse(json, root) == simdjson::SUCCESS) return build_object(root);
  return py::module_::import("json").attr("loads")(utf8_to_str(json));
}

py::object build_object(simdjson::dom::element root) {
  PyObject* o = build(root, thread_key_cache());
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

[[noreturn]] void raise_instance(const py::object& exc) {
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

py::object error_class(const char* name) { return py::module_::import("llmbridge.errors").attr(name); }

}  // namespace llmbridge::bindings
