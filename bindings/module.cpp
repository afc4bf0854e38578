// llmbridge._native: assembles the per-area bindings. No logic here.
#include <pybind11/pybind11.h>

#include "bindings.hpp"

PYBIND11_MODULE(_native, m) {
  m.doc() = "llmbridge native core (C++17: libcurl, simdjson). Import llmbridge, not this.";
  llmbridge::bindings::bind_text(m);
  llmbridge::bindings::bind_generation(m);
  llmbridge::bindings::bind_llm(m);
  llmbridge::bindings::bind_config(m);
}
