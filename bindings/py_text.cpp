// Text conversions and the simdjson DOM -> Python object builder.
#include "py_text.hpp"

#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/utf8.hpp"

#include <cstdint>
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

// What CPython needs to know before it can allocate a str for UTF-8 bytes: the number
// of code points and the widest one (which picks 1, 2 or 4 bytes a character).
struct Utf8Shape {
  std::size_t chars = 0;
  Py_UCS4 maxchar = 0x7F;
  bool valid = true;  // false: not UTF-8, the caller falls back to CPython's decoder
};

constexpr std::uint64_t kHighBits = 0x8080808080808080ull;

bool ascii8(const unsigned char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return (w & kHighBits) == 0;
}

// One pass over the bytes: counts code points, finds the widest lead byte and checks
// the encoding. Encoded surrogates (ED A0..BF xx) are accepted, as "surrogatepass"
// does, and become lone surrogates; anything else that is not UTF-8 is `valid = false`.
Utf8Shape utf8_shape(const unsigned char* p, std::size_t n) noexcept {
  Utf8Shape shape;
  unsigned widest = 0;  // the largest lead byte seen, 0 for ASCII only
  std::size_t i = 0, chars = 0;
  while (i < n) {
    if (i + 8 <= n && ascii8(p + i)) {  // most text is ASCII: 8 bytes at a time
      i += 8;
      chars += 8;
      continue;
    }
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      ++chars;
      continue;
    }
    std::size_t len;
    if (c < 0xC2) len = 0;  // a stray continuation byte or an overlong 2-byte form
    else if (c < 0xE0) len = 2;
    else if (c < 0xF0) len = 3;
    else if (c < 0xF5) len = 4;
    else len = 0;
    if (len == 0 || len > n - i) {
      shape.valid = false;
      return shape;
    }
    bool ok = true;
    for (std::size_t k = 1; k < len; ++k) ok &= (p[i + k] & 0xC0) == 0x80;
    if (c == 0xE0) ok &= p[i + 1] >= 0xA0;  // overlong 3-byte form
    if (c == 0xF0) ok &= p[i + 1] >= 0x90;  // overlong 4-byte form
    if (c == 0xF4) ok &= p[i + 1] < 0x90;   // beyond U+10FFFF
    if (!ok) {
      shape.valid = false;
      return shape;
    }
    if (c > widest) widest = c;
    i += len;
    ++chars;
  }
  shape.chars = chars;
  // The lead byte fixes the range: C2..C3 is U+0080..U+00FF, C4..EF up to U+FFFF,
  // F0..F4 beyond. CPython requires the narrowest kind, so this must be exact.
  shape.maxchar = widest == 0 ? 0x7F : widest < 0xC4 ? 0xFF : widest < 0xF0 ? 0xFFFF : 0x10FFFF;
  return shape;
}

// Decodes UTF-8 already checked by utf8_shape() into a str's buffer of `Char`
// (Py_UCS1, Py_UCS2 or Py_UCS4, wide enough for every code point in it).
template <typename Char>
void decode_utf8(const unsigned char* p, std::size_t n, Char* out) noexcept {
  std::size_t i = 0;
  while (i < n) {
    if (i + 8 <= n && ascii8(p + i)) {
      for (int k = 0; k < 8; ++k) out[k] = Char(p[i + k]);
      out += 8;
      i += 8;
      continue;
    }
    const unsigned c = p[i];
    Py_UCS4 cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if (c < 0xE0) {
      cp = (Py_UCS4(c & 0x1F) << 6) | (p[i + 1] & 0x3F);
      i += 2;
    } else if (c < 0xF0) {
      cp = (Py_UCS4(c & 0x0F) << 12) | (Py_UCS4(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
      i += 3;
    } else {
      cp = (Py_UCS4(c & 0x07) << 18) | (Py_UCS4(p[i + 1] & 0x3F) << 12) |
           (Py_UCS4(p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
      i += 4;
    }
    *out++ = Char(cp);
  }
}

// A str from UTF-8 bytes, decoded straight into the buffer of a str of the right kind:
// one pass to size it, one to fill it (PyUnicode_DecodeUTF8 guesses the kind, then
// widens and copies as wider characters turn up). Pure ASCII is a memcpy.
PyObject* make_str(const char* s, std::size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  const Utf8Shape shape = utf8_shape(p, n);
  if (shape.valid) {
    PyObject* o = PyUnicode_New(Py_ssize_t(shape.chars), shape.maxchar);
    if (!o) return nullptr;
    switch (PyUnicode_KIND(o)) {
      case PyUnicode_1BYTE_KIND:
        if (shape.maxchar < 0x80) std::memcpy(PyUnicode_1BYTE_DATA(o), p, n);
        else decode_utf8(p, n, PyUnicode_1BYTE_DATA(o));
        break;
      case PyUnicode_2BYTE_KIND:
        decode_utf8(p, n, PyUnicode_2BYTE_DATA(o));
        break;
      default:
        decode_utf8(p, n, PyUnicode_4BYTE_DATA(o));
        break;
    }
    return o;
  }
  // Bytes that are not UTF-8 at all (the core hands out valid UTF-8, but a caller's
  // bytes go through here too): U+FFFD, as everywhere else, never an exception.
  return PyUnicode_DecodeUTF8(s, Py_ssize_t(n), "replace");
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
