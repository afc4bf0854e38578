// Provider configs <-> Python: C++ structs to dicts (defaults, environment loading)
// and Python config objects (attributes) to C++ structs.
#pragma once

#include <pybind11/pybind11.h>

#include "llmbridge/config/provider_config.hpp"

namespace llmbridge::bindings {

pybind11::dict config_fields(const config::OpenAICompatibleConfig& c);
pybind11::dict config_fields(const config::OllamaConfig& c);

void read_config(pybind11::handle obj, config::OpenAICompatibleConfig& c);
void read_config(pybind11::handle obj, config::OllamaConfig& c);

}  // namespace llmbridge::bindings
