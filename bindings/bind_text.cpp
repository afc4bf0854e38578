// Bindings for the text core: fences, JSON repair, JSON -> Python objects.
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "llmbridge/text/fences.hpp"

namespace py = pybind11;

namespace llmbridge::bindings {

void bind_text(py::module_& m) {
  m.def(
      "strip_markdown_fences",
      [](std::string_view text) { return py::str(text::strip_markdown_fences(text).data(),
                                                 text::strip_markdown_fences(text).size()); },
      py::arg("text"));
}

}  // namespace llmbridge::bindings
