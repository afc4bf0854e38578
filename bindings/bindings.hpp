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
#include "llmbridge/llm/embeddings.hpp"
#include "py_types.hpp"

namespace llmbridge::bindings {

namespace hint {
// bind_gen.cpp's ChatResult wraps a C++ result with its converted data; only its Python
// name is known here.
struct ChatResult {
  static constexpr auto name = pybind11::detail::const_name("llmbridge._native.ChatResult");
};
}  // namespace hint
using ChatResultObject = Typed<hint::ChatResult>;
using EmbeddingObject = Instance<llm::EmbeddingResult>;

// The generation methods of NativeClient (bind_gen.cpp).
void add_generation_methods(pybind11::class_<llm::Client>& cls);
// A finished chat result as a Python object; never throws for a bad result (it becomes
// a failed result saying why).
ChatResultObject chat_item_to_py(llm::ChatResult&& r);
// A finished embedding result as a Python object (it owns the float32 buffer).
EmbeddingObject embedding_to_py(llm::EmbeddingResult&& r);

}  // namespace llmbridge::bindings
