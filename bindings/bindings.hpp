// Declarations of the per-area binding functions that module.cpp calls.
#pragma once

#include <pybind11/pybind11.h>

namespace llmbridge::bindings {

void bind_text(pybind11::module_& m);
void bind_llm(pybind11::module_& m);
void bind_config(pybind11::module_& m);

}  // namespace llmbridge::bindings
