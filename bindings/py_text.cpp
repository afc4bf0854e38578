// Text conversions and the simdjson DOM -> Python object builder.
#include "py_text.hpp"

#include <cstring>

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
  return PyUnicode_DecodeUTF8(p, Py_ssize_t(n), "surrogatepass");
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

PyObject* build(simdjson::dom::element e, KeyCache& keys) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::OBJECT: {
      PyObject* d = PyDict_New();
      if (!d) return nullptr;
      for (auto field : simdjson::dom::object(e)) {
        PyObject* k = keys.get(field.key);
        if (!k) {
          Py_DECREF(d);
          return nullptr;
        }
        PyObject* v = build(field.value, keys);
        if (!v || PyDict_SetItem(d, k, v) < 0) {
          Py_DECREF(k);
          Py_XDECREF(v);
          Py_DECREF(d);
          return nullptr;
        }
        Py_DECREF(k);
        Py_DECREF(v);
      }
      return d;
    }
    case element_type::ARRAY: {
      simdjson::dom::array a(e);
      PyObject* l = PyList_New(Py_ssize_t(a.size()));
      if (!l) return nullptr;
      Py_ssize_t i = 0;
      for (auto v : a) {
        PyObject* x = build(v, keys);
        if (!x) {
          Py_DECREF(l);
          return nullptr;
        }
        PyList_SET_ITEM(l, i++, x);
      }
      return l;
    }
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
  }
  PyErr_SetString(PyExc_ValueError, "unknown JSON element type");
  return nullptr;
}

}  // namespace

py::object build_object(simdjson::dom::element root) {
  PyObject* o = build(root, thread_key_cache());
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

}  // namespace llmbridge::bindings
