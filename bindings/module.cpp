// llmbridge._native: assembles the per-area bindings. No logic here.
#include <pybind11/pybind11.h>

#include <exception>
#include <stdexcept>
#include <system_error>

#include "bindings.hpp"

PYBIND11_MODULE(_native, m) {
  m.doc() = "llmbridge native core (C++17: libcurl, simdjson). Import llmbridge, not this.";
  // The one translation of the core's exceptions. The core reports a caller's mistake
  // (a bad argument, an option a provider cannot express, an unknown provider) as
  // std::invalid_argument: a ValueError with the core's message. A resource the system
  // refuses (no eventfd, no thread) is std::system_error: an OSError. Everything else
  // keeps pybind11's mapping (bad_alloc -> MemoryError, other std::exception ->
  // RuntimeError). llmbridge's own exceptions (JSONRepairError, LLMCallError) are raised
  // by the bindings with raise_instance() (py_text.hpp).
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::system_error& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });
  llmbridge::bindings::bind_text(m);
  llmbridge::bindings::bind_generation(m);
  llmbridge::bindings::bind_llm(m);
  llmbridge::bindings::bind_config(m);
}
