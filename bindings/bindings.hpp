// Declarations of the per-area binding functions that module.cpp calls.
#pragma once

#include <pybind11/pybind11.h>

namespace llmbridge::bindings {

void bind_text(pybind11::module_& m);
void bind_llm(pybind11::module_& m);
void bind_config(pybind11::module_& m);
void bind_generation(pybind11::module_& m);

}  // namespace llmbridge::bindings

#include "llmbridge/llm/client.hpp"

namespace llmbridge::bindings {

// The generation methods of NativeClient (bind_gen.cpp).
void add_generation_methods(pybind11::class_<llm::Client>& cls);
// A finished chat result as a Python object; never throws for a bad result (it becomes
// a failed result saying why).
pybind11::object chat_item_to_py(llm::ChatResult&& r);
// A finished embedding result as a Python object (it owns the float32 buffer).
pybind11::object embedding_to_py(llm::EmbeddingResult&& r);

}  // namespace llmbridge::bindings
