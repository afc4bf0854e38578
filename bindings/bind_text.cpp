// Bindings for the text core: fences, JSON repair, JSON -> Python objects.
//
// Python objects are built with the CPython API straight from simdjson's DOM:
// pybind11's wrappers cost a few hundred nanoseconds per object, which is most of
// the time on small documents.
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <string_view>

#include "bindings.hpp"
#include "llmbridge/schema/validator.hpp"
#include "llmbridge/text/fences.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/repair.hpp"
#include "py_text.hpp"
#include "py_types.hpp"

namespace py = pybind11;

namespace llmbridge::bindings {
namespace {

// Inputs larger than this are repaired with the GIL released.
constexpr std::size_t kReleaseGilBytes = 256 * 1024;

[[noreturn]] void raise_repair_error(const text::RepairResult& r) {
  raise_instance(error_class("JSONRepairError")(
      py::str(r.error + " at position " + std::to_string(r.error_position)), r.error_position, r.error));
}

text::RepairResult run_repair(const TextInput& in, text::RepairOptions opts) {
  opts.input_is_utf8 = in.is_utf8();  // a str's own UTF-8 needs no second check
  if (in.view().size() >= kReleaseGilBytes) {
    // The input buffer belongs to a Python object the caller keeps alive for the whole
    // call, and repair touches no Python state, so the GIL is not needed.
    py::gil_scoped_release release;
    return text::repair_json(in.view(), opts);
  }
  return text::repair_json(in.view(), opts);
}

py::str repair_json(const TextArg& obj) {
  TextInput in(obj);
  text::RepairOptions opts;
  opts.collect_repairs = false;
  text::RepairResult r = run_repair(in, opts);
  if (!r.ok) raise_repair_error(r);
  if (r.unchanged) return in.as_str();
  return utf8_to_str(r.json);
}

py::typing::Tuple<py::str, bool, bool, py::typing::List<py::typing::Tuple<py::str, int>>> repair_report(
    const TextArg& obj) {
  TextInput in(obj);
  text::RepairResult r = run_repair(in, {});
  if (!r.ok) raise_repair_error(r);
  py::list repairs(r.repairs.size());
  for (std::size_t i = 0; i < r.repairs.size(); ++i)
    repairs[i] = py::make_tuple(text::to_string(r.repairs[i].kind), r.repairs[i].position);
  py::str json = r.unchanged ? in.as_str() : utf8_to_str(r.json);
  return py::make_tuple(json, !r.unchanged, r.truncated, repairs);
}

py::object loads(const TextArg& obj, bool repair) {
  TextInput in(obj);
  auto& parser = text::thread_parser();
  simdjson::dom::element root;
  simdjson::error_code err = parser.parse(in.view(), root);
  if (!err) return build_object(parser.tape());
  std::string repaired;
  std::string_view json = in.view();
  if (repair) {
    text::RepairOptions opts;
    opts.collect_repairs = false;
    opts.try_fast_path = false;  // simdjson just refused the input above
    text::RepairResult r = run_repair(in, opts);
    if (!r.ok) raise_repair_error(r);
    if (!r.unchanged) {
      repaired = std::move(r.json);
      json = repaired;
      err = parser.parse(json, root);
      if (!err) return build_object(parser.tape());
    }
  }
  // simdjson refuses a few valid documents Python accepts (integers beyond 64 bits,
  // lone surrogate escapes, numbers out of double range): let json.loads build those.
  if (err == simdjson::NUMBER_ERROR ||
      err == simdjson::STRING_ERROR || err == simdjson::UTF8_ERROR ||
      err == simdjson::NUMBER_OUT_OF_RANGE || err == simdjson::DEPTH_ERROR || repair) {
    py::object json_loads = py::module_::import("json").attr("loads");
    try {
      return json_loads(utf8_to_str(json));
    } catch (py::error_already_set& e) {
      // ValueError: not JSON after all, or an integer over Python's digit limit
      // (sys.set_int_max_str_digits); RecursionError: deeper than Python's json nests.
      // Either way one error type for the caller, never a bare ValueError.
      if (!e.matches(PyExc_ValueError) && !e.matches(PyExc_RecursionError)) throw;
      text::RepairResult r;
      if (!text::is_valid_json(json)) {
        r.error = std::string("invalid JSON: ") + simdjson::error_message(err);
      } else {
        r.error = "valid JSON that Python cannot hold: " + exception_excerpt(e);
      }
      raise_repair_error(r);
    }
  }
  text::RepairResult r;
  r.error = std::string("invalid JSON: ") + simdjson::error_message(err);
  raise_repair_error(r);
}

// The schema as JSON text: a dict or a bool (a str would be a JSON string, not a schema).
std::string schema_text(py::handle schema) {
  if (!PyDict_Check(schema.ptr()) && !PyBool_Check(schema.ptr())) {
    throw py::type_error(std::string("schema must be a dict or a bool, got ") + Py_TYPE(schema.ptr())->tp_name);
  }
  std::string out;
  append_json(out, schema, "schema");
  return out;
}

std::size_t max_errors_arg(long long max_errors) {
  return max_errors < 0 ? 0 : std::size_t(max_errors);  // 0 and below: the core says why
}

using ErrorList = py::typing::List<py::typing::Tuple<py::str, py::str>>;

ErrorList errors_to_list(const std::vector<schema::SchemaError>& errors) {
  ErrorList out(errors.size());
  for (std::size_t k = 0; k < errors.size(); ++k)
    out[k] = py::make_tuple(utf8_to_str(errors[k].pointer), utf8_to_str(errors[k].message));
  return out;
}

py::typing::List<py::str> strings_to_list(const std::vector<std::string>& items) {
  py::typing::List<py::str> out(items.size());
  for (std::size_t k = 0; k < items.size(); ++k) out[k] = utf8_to_str(items[k]);
  return out;
}

std::vector<schema::SchemaError> run_validate(const schema::Schema& s, std::string_view json, std::size_t max_errors) {
  if (json.size() >= kReleaseGilBytes) {
    // The JSON text and the compiled schema are C++ objects this frame keeps alive;
    // validation touches no Python state.
    py::gil_scoped_release release;
    return s.validate(json, max_errors);
  }
  return s.validate(json, max_errors);
}

// A compiled schema as Python holds it (the Python layer caches it per schema dict).
struct SchemaHandle {
  std::shared_ptr<const schema::Schema> schema;
};

ErrorList validate_value(const SchemaHandle& h, py::handle instance, long long max_errors) {
  // The value is walked into the validator's own layout (no JSON text): faster than
  // writing text and parsing it again. One buffer per thread, reused; a call that
  // finds it in use (never expected: the walk runs no Python code) takes its own.
  thread_local schema::Instance reused;
  thread_local bool in_use = false;
  schema::Instance own;
  schema::Instance& built = in_use ? own : reused;
  const bool was_in_use = in_use;
  in_use = true;
  try {
    build_instance(built, instance, "instance");
    std::vector<schema::SchemaError> errors;
    if (built.words() >= kReleaseGilBytes / 8) {
      // `built` and the compiled schema are C++ objects of this thread and this frame;
      // validation touches no Python state.
      py::gil_scoped_release release;
      errors = h.schema->validate(built, max_errors_arg(max_errors));
    } else {
      errors = h.schema->validate(built, max_errors_arg(max_errors));
    }
    in_use = was_in_use;
    return errors_to_list(errors);
  } catch (...) {
    in_use = was_in_use;
    throw;
  }
}

ErrorList validate_text(const SchemaHandle& h, const TextArg& text, long long max_errors) {
  TextInput in(text);
  return errors_to_list(run_validate(*h.schema, in.view(), max_errors_arg(max_errors)));
}

}  // namespace

void bind_text(py::module_& m) {
  m.def(
      "strip_markdown_fences",
      [](const TextArg& obj) {
        TextInput in(obj);
        std::string_view v = text::strip_markdown_fences(in.view());
        if (v.size() == in.view().size()) return in.as_str();
        return utf8_to_str(v);
      },
      py::arg("text"), "Remove the markdown code fence around an LLM answer.");
  m.def("repair_json", &repair_json, py::arg("text"), "Return valid JSON text for `text`.");
  m.def("repair_report", &repair_report, py::arg("text"),
        "Repair `text`; return (json, changed, truncated, [(kind, position), ...]).");
  m.def("loads", &loads, py::arg("text"), py::arg("repair") = true,
        "Parse JSON text (repairing it first if needed) into Python objects.");
  m.def(
      "is_valid_json", [](const TextArg& obj) { return text::is_valid_json(TextInput(obj).view()); },
      py::arg("text"), "True when `text` is one complete, strictly valid JSON document.");
  m.attr("MAX_DEPTH") = text::kMaxDepth;
  py::class_<SchemaHandle>(m, "Schema", "A compiled JSON Schema (draft 2020-12).")
      .def("validate", &validate_value, py::arg("instance"), py::arg("max_errors") = 10,
           "[(pointer, message), ...] for a Python JSON value; [] when valid.")
      .def("validate_json", &validate_text, py::arg("text"), py::arg("max_errors") = 10,
           "validate() for JSON text (str or bytes): what a client does with an answer.")
      .def_property_readonly(
          "unsupported", [](const SchemaHandle& h) { return strings_to_list(h.schema->unsupported()); },
          "Keywords present but not checked, as '<keyword> at <schema pointer>'.")
      .def(
          "claim_unsupported_report", [](const SchemaHandle& h) { return h.schema->claim_unsupported_report(); },
           "True the first time it is called for this compiled schema (log its unsupported once).");
  m.def(
      "compile_schema", [](const Typed<hint::SchemaValue>& schema) { return SchemaHandle{schema::compile_cached(schema_text(schema))}; },
      py::arg("schema"), "Compile a JSON Schema given as a dict or bool (cached by its JSON text).");
}

}  // namespace llmbridge::bindings
