// Text conversions and the simdjson DOM -> Python object builder.
#include "py_text.hpp"

#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/utf8.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "llmbridge/text/json_escape.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define LLMBRIDGE_SSE2 1  // every x86-64 CPU has SSE2
#else
#define LLMBRIDGE_SSE2 0
#endif

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

py::str TextInput::as_str() const {
  if (is_str_) return py::reinterpret_borrow<py::str>(obj_);
  return utf8_to_str(view_);
}

namespace {

// What CPython needs to know before it can allocate a str for valid UTF-8: the number
// of code points and the widest one (which picks 1, 2 or 4 bytes a character).
struct Utf8Shape {
  std::size_t chars;
  Py_UCS4 maxchar;
};

constexpr std::uint64_t kHighBits = 0x8080808080808080ull;

#if LLMBRIDGE_SSE2
// The sum of the sixteen bytes of `v`.
std::size_t sum_bytes(__m128i v) noexcept {
  const __m128i sums = _mm_sad_epu8(v, _mm_setzero_si128());  // two 64-bit sums
  return std::size_t(_mm_cvtsi128_si32(sums)) + std::size_t(_mm_extract_epi16(sums, 4));
}

// Stores the sixteen bytes of `v`, each widened to a `Char`.
inline void store_widened(Py_UCS1* out, __m128i v) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v);
}
inline void store_widened(Py_UCS2* out, __m128i v) noexcept {
  const __m128i zero = _mm_setzero_si128();
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi8(v, zero));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpackhi_epi8(v, zero));
}
inline void store_widened(Py_UCS4* out, __m128i v) noexcept {
  const __m128i zero = _mm_setzero_si128();
  const __m128i lo = _mm_unpacklo_epi8(v, zero), hi = _mm_unpackhi_epi8(v, zero);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(lo, zero));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4), _mm_unpackhi_epi16(lo, zero));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpacklo_epi16(hi, zero));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 12), _mm_unpackhi_epi16(hi, zero));
}
#endif

// In valid UTF-8 the widest lead byte fixes the kind: none (ASCII); C2..C3, the leads
// of U+0080..U+00FF (Latin-1); C4..EF (the rest of the BMP); F0..F4 (beyond). Every
// byte but a continuation byte (10xxxxxx) starts a code point. Eight bytes at a time:
// bit 7 of each byte of `w << k` is bit 7-k of that byte of `w`.
Utf8Shape utf8_shape(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t high = 0, bmp = 0, astral = 0;
  std::size_t continuation = 0;
  std::size_t i = 0;
#if LLMBRIDGE_SSE2
  // Sixteen bytes at a time first: the widest byte is a running max, continuation
  // bytes (0x80..0xBF, below -64 as signed bytes) are counted per lane, summed every
  // 255 blocks before a lane can overflow.
  const __m128i below = _mm_set1_epi8(-64);
  __m128i widest = _mm_setzero_si128(), lanes = _mm_setzero_si128();
  for (std::size_t blocks = 0; n - i >= 16; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    if (_mm_movemask_epi8(v) == 0) continue;
    widest = _mm_max_epu8(widest, v);
    lanes = _mm_sub_epi8(lanes, _mm_cmplt_epi8(v, below));  // each match adds 1
    if (++blocks == 255) {
      continuation += sum_bytes(lanes);
      lanes = _mm_setzero_si128();
      blocks = 0;
    }
  }
  continuation += sum_bytes(lanes);
  widest = _mm_max_epu8(widest, _mm_srli_si128(widest, 8));
  widest = _mm_max_epu8(widest, _mm_srli_si128(widest, 4));
  widest = _mm_max_epu8(widest, _mm_srli_si128(widest, 2));
  widest = _mm_max_epu8(widest, _mm_srli_si128(widest, 1));
  const unsigned top = unsigned(_mm_cvtsi128_si32(widest)) & 0xFF;
  // As flags in bit 7 of the eight-byte loop's words.
  if (top >= 0x80) high = kHighBits;
  if (top >= 0xC4) bmp = kHighBits;
  if (top >= 0xF0) astral = kHighBits;
#endif
  for (; i < n; i += 8) {
    std::uint64_t w = 0;
    if (n - i >= 8) {
      std::memcpy(&w, p + i, 8);
    } else {  // the tail, padded with zero bytes (ASCII)
      for (std::size_t k = 0; k < n - i; ++k) w |= std::uint64_t(p[i + k]) << (8 * k);
    }
    if ((w & kHighBits) == 0) continue;
    high |= w;
    const std::uint64_t lead = w & (w << 1);                     // 11xxxxxx
    bmp |= lead & ((w << 2) | (w << 3) | (w << 4) | (w << 5));  // and not 1100001x
    astral |= lead & (w << 2) & (w << 3);                        // 1111xxxx
    const std::uint64_t cont = w & ~(w << 1) & kHighBits;        // 10xxxxxx
    continuation += ((cont >> 7) * 0x0101010101010101ull) >> 56;  // how many bytes
  }
  const Py_UCS4 maxchar = (astral & kHighBits) ? 0x10FFFF
                          : (bmp & kHighBits)  ? 0xFFFF
                          : (high & kHighBits) ? 0xFF
                                               : 0x7F;
  return {n - continuation, maxchar};
}

// Decodes valid UTF-8 holding `chars` code points into a str's buffer of `Char`
// (Py_UCS1, Py_UCS2 or Py_UCS4, wide enough for every code point in it). ASCII goes
// eight bytes at a time: all eight are widened, and the output advances past the ASCII
// ones only (the rest are overwritten next), so mixed text has no byte-by-byte loop.
template <typename Char>
void decode_utf8(const unsigned char* p, std::size_t n, Char* out, std::size_t chars) noexcept {
  Char* const end = out + chars;
  std::size_t i = 0;
  while (i < n) {
#if LLMBRIDGE_SSE2
    if (n - i >= 16 && end - out >= 16) {  // the same, sixteen at a time
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      store_widened(out, v);
      const unsigned high = unsigned(_mm_movemask_epi8(v));
      const std::size_t ascii = high ? std::size_t(__builtin_ctz(high)) : 16;
      i += ascii;
      out += ascii;
      if (ascii == 16) continue;
    } else
#endif
    if (n - i >= 8 && end - out >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      for (int k = 0; k < 8; ++k) out[k] = Char(p[i + k]);
      const std::uint64_t high = w & kHighBits;
      const std::size_t ascii = high ? std::size_t(__builtin_ctzll(high)) / 8 : 8;
      i += ascii;
      out += ascii;
      if (ascii == 8) continue;
    }
    const unsigned c = p[i];
    // Never past either buffer, even if the bytes were not the valid UTF-8 promised.
    const std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len > n - i || out == end) break;
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

// A str from valid UTF-8, decoded straight into the buffer of a str of the right kind:
// one pass to size it, one to fill it (PyUnicode_DecodeUTF8 guesses the kind, then
// widens and copies as wider characters turn up). Pure ASCII is a memcpy.
// simdjson's DOM strings are valid (simdjson validates the whole document).
PyObject* str_from_valid_utf8(const char* s, std::size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  const Utf8Shape shape = utf8_shape(p, n);
  PyObject* o = PyUnicode_New(Py_ssize_t(shape.chars), shape.maxchar);
  if (!o) return nullptr;
  switch (PyUnicode_KIND(o)) {
    case PyUnicode_1BYTE_KIND:
      if (shape.maxchar < 0x80) std::memcpy(PyUnicode_1BYTE_DATA(o), p, n);
      else decode_utf8(p, n, PyUnicode_1BYTE_DATA(o), shape.chars);
      break;
    case PyUnicode_2BYTE_KIND:
      decode_utf8(p, n, PyUnicode_2BYTE_DATA(o), shape.chars);
      break;
    default:
      decode_utf8(p, n, PyUnicode_4BYTE_DATA(o), shape.chars);
      break;
  }
  return o;
}

// A str from bytes that may not be UTF-8 (a caller's bytes go through here too).
PyObject* make_str(const char* s, std::size_t n) {
  if (text::is_valid_utf8(std::string_view(s, n))) return str_from_valid_utf8(s, n);
  // Encoded surrogates (ED A0..BF xx) become lone surrogates, as "surrogatepass" does;
  // anything else that is not UTF-8 becomes U+FFFD, as everywhere else, never an exception.
  PyObject* o = PyUnicode_DecodeUTF8(s, Py_ssize_t(n), "surrogatepass");
  if (o || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return o;
  PyErr_Clear();
  return PyUnicode_DecodeUTF8(s, Py_ssize_t(n), "replace");
}

}  // namespace

py::str utf8_to_str(std::string_view s) {
  PyObject* r = make_str(s.data(), s.size());
  if (!r) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(r);
}

namespace {

// Keys repeat across objects and across calls: a small direct-mapped cache of key
// strings, one per thread (only touched with the GIL held). Its references are
// deliberately never released: at thread or process exit the interpreter may be gone.
class KeyCache {
 public:
  PyObject* get(std::string_view k) {
    if (k.size() > kMaxKey) return str_from_valid_utf8(k.data(), k.size());
    // Two ways per set, the most recent first: two busy keys that hash alike do not
    // evict each other on every object.
    Slot* set = &slots_[set_of(k) * 2];
    for (int way = 0; way < 2; ++way) {
      Slot& s = set[way];
      if (s.obj && s.len == k.size() && std::memcmp(s.bytes, k.data(), k.size()) == 0) {
        Py_INCREF(s.obj);
        return s.obj;
      }
    }
    PyObject* o = str_from_valid_utf8(k.data(), k.size());
    if (!o) return nullptr;
    PyUnicode_InternInPlace(&o);  // also caches the hash for dict insertion
    Py_XDECREF(set[1].obj);
    set[1] = set[0];
    set[0].obj = o;
    set[0].len = k.size();
    std::memcpy(set[0].bytes, k.data(), k.size());
    Py_INCREF(o);
    return o;
  }

 private:
  // A hash of the length and the first and last bytes (at most 16 of them): keys
  // differ early or late, and a collision only costs a miss.
  static std::size_t set_of(std::string_view k) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(k.data());
    const std::size_t n = k.size();
    std::uint64_t a, b;
    if (n >= 8) {
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + n - 8, 8);
    } else if (n >= 4) {
      std::uint32_t x, y;
      std::memcpy(&x, p, 4);
      std::memcpy(&y, p + n - 4, 4);
      a = x;
      b = y;
    } else {
      a = n ? p[0] | std::uint64_t(p[n / 2]) << 8 | std::uint64_t(p[n - 1]) << 16 : 0;
      b = 0;
    }
    std::uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ n) * 0xFF51AFD7ED558CCDull;
    return std::size_t(h >> 40) & (kSets - 1);
  }

  static constexpr std::size_t kSets = 512;
  static constexpr std::size_t kMaxKey = 40;
  struct Slot {
    PyObject* obj = nullptr;
    std::size_t len = 0;
    char bytes[kMaxKey];
  };
  Slot slots_[kSets * 2];
};

KeyCache& thread_key_cache() {
  thread_local KeyCache* cache = new KeyCache();  // never freed: see above
  return *cache;
}

using text::JsonTape;
using TapeType = JsonTape::Type;

PyObject* build_scalar(const JsonTape& tape, std::size_t i) {
  switch (tape.type(i)) {
    case TapeType::STRING: {
      const std::string_view s = tape.string(i);
      return str_from_valid_utf8(s.data(), s.size());
    }
    case TapeType::INT64:
      return PyLong_FromLongLong(tape.int64(i));
    case TapeType::UINT64:
      return PyLong_FromUnsignedLongLong(tape.uint64(i));
    case TapeType::DOUBLE:
      return PyFloat_FromDouble(tape.number(i));
    case TapeType::TRUE_VALUE:
      Py_RETURN_TRUE;
    case TapeType::FALSE_VALUE:
      Py_RETURN_FALSE;
    case TapeType::NULL_VALUE:
      Py_RETURN_NONE;
    default:
      break;
  }
  PyErr_SetString(PyExc_ValueError, "unknown JSON element type");
  return nullptr;
}

bool is_container(TapeType t) { return t == TapeType::START_OBJECT || t == TapeType::START_ARRAY; }

// The container that starts at `i`, empty (a list holds its size in NULL slots).
PyObject* new_container(const JsonTape& tape, std::size_t i) {
  // Dicts are not presized (_PyDict_NewPresized): it measured no faster, and its
  // tables hold 24-byte general entries where PyDict_New's str-keyed ones take 16.
  if (tape.type(i) == TapeType::START_OBJECT) return PyDict_New();
  std::size_t n = tape.count(i);
  // The count saturates: a longer array (a hostile 34 MB answer holds one) must be
  // counted, or the list would be allocated too short.
  if (n >= JsonTape::kSaturatedCount) {
    n = 0;
    for (std::size_t j = i + 1, end = tape.end_of(i) - 1; j < end; j = tape.next(j)) ++n;
  }
  return PyList_New(Py_ssize_t(n));
}

// Builds without native recursion: an explicit stack of open containers, so 10,000
// levels of nesting cost a vector of frames, not 10,000 C stack frames (a thread with
// a small stack would crash). Each container is linked into its parent as soon as it
// is made, so on failure releasing the root releases everything built so far.
// The tape is read front to back: inside an object a key string precedes each value;
// an END_ARRAY / END_OBJECT word closes the innermost container.
PyObject* build(const JsonTape& tape, KeyCache& keys) {
  std::size_t i = JsonTape::kRoot;
  if (!is_container(tape.type(i))) return build_scalar(tape, i);
  struct Frame {
    PyObject* container;  // borrowed: owned by its parent (or `out` for the root)
    bool is_object;
    Py_ssize_t index;  // the next list slot
  };
  PyObject* out = new_container(tape, i);
  if (!out) return nullptr;
  std::vector<Frame> stack;
  stack.reserve(16);
  stack.push_back({out, tape.type(i) == TapeType::START_OBJECT, 0});
  ++i;
  while (!stack.empty()) {
    Frame& f = stack.back();
    TapeType t = tape.type(i);
    if (t == TapeType::END_ARRAY || t == TapeType::END_OBJECT) {
      stack.pop_back();
      ++i;
      continue;
    }
    PyObject* key = nullptr;
    if (f.is_object) {
      key = keys.get(tape.string(i));
      if (!key) break;
      t = tape.type(++i);
    }
    const bool nested = is_container(t);
    PyObject* value = nested ? new_container(tape, i) : build_scalar(tape, i);
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
    if (nested) {
      stack.push_back({value, t == TapeType::START_OBJECT, 0});  // `f` may dangle from here on
      ++i;  // into the container
    } else {
      i = tape.next(i);
    }
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
  auto& parser = text::thread_parser();
  simdjson::dom::element root;
  if (parser.parse(json, root) == simdjson::SUCCESS) return build_object(parser.tape());
  return py::module_::import("json").attr("loads")(utf8_to_str(json));
}

py::object build_object(const text::JsonTape& tape) {
  PyObject* o = build(tape, thread_key_cache());
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

[[noreturn]] void raise_instance(const py::object& exc) {
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

py::object error_class(const char* name) { return py::module_::import("llmbridge.errors").attr(name); }

namespace {

// Walks a Python JSON value and hands each value to `Sink` (JSON text, or a
// schema::Instance), so both conversions accept and refuse exactly the same objects.
template <typename Sink>
class PyJsonWalker {
 public:
  PyJsonWalker(Sink& sink, const char* name) : sink_(sink), name_(name) {}

  void value(PyObject* o, std::size_t depth) {
    // The exact types first: they are nearly every value, and bool is an int subclass.
    if (PyUnicode_CheckExact(o)) return sink_.string(utf8(o));
    if (o == Py_None) return sink_.null();
    if (o == Py_True) return sink_.boolean(true);
    if (o == Py_False) return sink_.boolean(false);
    if (PyLong_CheckExact(o)) return integer(o);
    if (PyFloat_CheckExact(o)) return real(PyFloat_AS_DOUBLE(o));
    if (PyDict_Check(o)) return object(o, depth + 1);
    if (PyList_Check(o) || PyTuple_Check(o)) return array(o, depth + 1);
    if (PyUnicode_Check(o)) return sink_.string(utf8(o));
    if (PyBool_Check(o)) return sink_.boolean(o == Py_True);
    if (PyLong_Check(o)) return integer(o);
    if (PyFloat_Check(o)) return real(PyFloat_AsDouble(o));
    throw py::type_error(std::string(name_) + " is not JSON: a value of type " + Py_TYPE(o)->tp_name);
  }

 private:
  Sink& sink_;
  const char* name_;

  std::string_view utf8(PyObject* o) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) {
      PyErr_Clear();
      throw py::value_error(std::string(name_) + " holds a str with a lone surrogate (not UTF-8)");
    }
    return std::string_view(s, std::size_t(n));
  }

  void integer(PyObject* o) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (!overflow) {
      if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
      return sink_.integer(v);
    }
    // Beyond 64 bits: the decimal digits (may raise ValueError past Python's digit limit).
    PyObject* digits = PyNumber_ToBase(o, 10);
    if (!digits) throw py::error_already_set();
    py::object hold = py::reinterpret_steal<py::object>(digits);
    sink_.big_integer(utf8(digits));
  }

  void real(double d) {
    if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    if (!std::isfinite(d)) throw py::value_error(std::string(name_) + " is not JSON: it holds NaN or infinity");
    sink_.number(d);
  }

  void deeper(std::size_t depth) {
    if (depth > text::kMaxDepth) {
      throw py::value_error(std::string(name_) + " nests deeper than " + std::to_string(text::kMaxDepth) +
                            " levels (or contains itself)");
    }
  }

  void object(PyObject* o, std::size_t depth) {
    deeper(depth);
    sink_.start_object();
    Py_ssize_t pos = 0;
    PyObject *key, *val;
    while (PyDict_Next(o, &pos, &key, &val)) {
      if (!PyUnicode_Check(key)) {
        throw py::type_error(std::string(name_) + " is not JSON: a dict key of type " + Py_TYPE(key)->tp_name +
                             " (keys must be str)");
      }
      sink_.key(utf8(key));
      // Borrowed references: nothing here runs Python code that could mutate the dict.
      value(val, depth);
    }
    sink_.end_object();
  }

  void array(PyObject* o, std::size_t depth) {
    deeper(depth);
    sink_.start_array();
    const bool list = PyList_Check(o);
    const Py_ssize_t n = list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o);
    for (Py_ssize_t k = 0; k < n; ++k) value(list ? PyList_GET_ITEM(o, k) : PyTuple_GET_ITEM(o, k), depth);
    sink_.end_array();
  }
};

// JSON text, compact.
class TextSink {
 public:
  explicit TextSink(std::string& out) : out_(out) {}
  void null() { item(); out_.append("null", 4); }
  void boolean(bool v) { item(); out_.append(v ? "true" : "false"); }
  void integer(long long v) {
    item();
    char buf[24];
    out_.append(buf, std::size_t(std::to_chars(buf, buf + sizeof buf, v).ptr - buf));
  }
  void big_integer(std::string_view digits) { item(); out_.append(digits); }
  void number(double d) {
    item();
    char buf[32];
    char* end = std::to_chars(buf, buf + sizeof buf, d).ptr;
    out_.append(buf, std::size_t(end - buf));
    // Keep a float a float: "1.0", not "1" (the same number, not the same type name).
    if (std::find_if(buf, end, [](char c) { return c == '.' || c == 'e'; }) == end) out_.append(".0", 2);
  }
  void string(std::string_view s) { item(); text::append_json_quoted(out_, s); }
  void start_object() { item(); out_.push_back('{'); first_ = true; }
  void key(std::string_view s) {
    if (!first_) out_.push_back(',');
    text::append_json_quoted(out_, s);
    out_.push_back(':');
    after_key_ = true;
  }
  void end_object() { out_.push_back('}'); first_ = false; }
  void start_array() { item(); out_.push_back('['); first_ = true; }
  void end_array() { out_.push_back(']'); first_ = false; }

 private:
  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
  // Before a value: the comma that separates it from the previous one.
  void item() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_) {
      out_.push_back(',');
    }
    first_ = false;
  }
};

class InstanceSink {
 public:
  explicit InstanceSink(schema::Instance& out) : out_(out) {}
  void null() { out_.null(); }
  void boolean(bool v) { out_.boolean(v); }
  void integer(long long v) { out_.integer(v); }
  void big_integer(std::string_view digits) { out_.big_number(digits); }
  void number(double d) { out_.number(d); }
  void string(std::string_view s) { out_.string(s); }
  void start_object() { out_.start_object(); }
  void key(std::string_view s) { out_.key(s); }
  void end_object() { out_.end_object(); }
  void start_array() { out_.start_array(); }
  void end_array() { out_.end_array(); }

 private:
  schema::Instance& out_;
};

}  // namespace

void append_json(std::string& out, py::handle obj, const char* name) {
  TextSink sink(out);
  PyJsonWalker<TextSink>(sink, name).value(obj.ptr(), 0);
}

void build_instance(schema::Instance& out, py::handle obj, const char* name) {
  out.clear();
  InstanceSink sink(out);
  PyJsonWalker<InstanceSink>(sink, name).value(obj.ptr(), 0);
}

}  // namespace llmbridge::bindings
