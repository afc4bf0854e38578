// Bindings for environment loading, provider routing and health checks: conversion
// and GIL handling only; the rules live in cpp/src/config/env.cpp and llm/health.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "llmbridge/config/env.hpp"
#include "llmbridge/llm/health.hpp"
#include "py_config.hpp"
#include "py_text.hpp"
#include "py_types.hpp"

namespace py = pybind11;

namespace llmbridge::bindings {
namespace {

using StrTuple4 = py::typing::Tuple<py::str, py::str, py::str, py::str>;

StrTuple4 problem_tuple(const config::EnvProblem& p) {
  return py::make_tuple(p.variable, p.value, p.allowed, p.message());
}

// Only the variables the core reads cross into C++: the rest of the environment (which
// may hold other programs' secrets, or bytes that are not UTF-8) is never converted, so
// no conversion error can quote it. A known variable whose value is not valid UTF-8 is
// a ValueError naming the variable, never quoting the value.
config::Environment known_variables(py::handle environ) {
  static const std::set<std::string, std::less<>> kKnown = [] {
    std::set<std::string, std::less<>> names;
    for (const auto& v : config::env_variables()) names.emplace(v.name);
    return names;
  }();
  config::Environment env;
  for (auto item : py::reinterpret_borrow<py::dict>(environ)) {
    PyObject* key = item.first.ptr();
    if (!PyUnicode_Check(key)) continue;
    Py_ssize_t n = 0;
    const char* k = PyUnicode_AsUTF8AndSize(key, &n);
    if (!k) {
      PyErr_Clear();
      continue;
    }
    std::string name(k, std::size_t(n));
    if (kKnown.find(name) == kKnown.end()) continue;
    if (!PyUnicode_Check(item.second.ptr())) continue;
    env.emplace(name, utf8_arg(item.second, ("environment variable " + name).c_str()));
  }
  return env;
}

// (fields or None, [(variable, value, allowed, message)])
py::typing::Tuple<Typed<hint::Optional<py::typing::Dict<py::str, py::object>>>, py::typing::List<StrTuple4>>
load_app_config(const py::typing::Dict<py::str, py::str>& environ) {
  config::AppConfigResult r = config::load_app_config(known_variables(environ));
  py::typing::List<StrTuple4> problems;
  for (const auto& p : r.problems) problems.append(problem_tuple(p));
  if (!r.config) return py::make_tuple(py::none(), problems);
  const config::AppConfig& c = *r.config;
  py::dict fields;
  fields["vllm"] = config_fields(c.vllm);
  fields["openai"] = config_fields(c.openai);
  fields["ollama"] = config_fields(c.ollama);
  fields["llm_provider"] = c.llm_provider;
  fields["embedding_provider"] = c.embedding_provider;
  return py::make_tuple(fields, problems);
}

py::typing::List<StrTuple4> env_variables() {
  py::typing::List<StrTuple4> out;
  for (const auto& v : config::env_variables())
    out.append(py::make_tuple(std::string(v.name), std::string(v.default_value), std::string(v.allowed),
                              std::string(v.meaning)));
  return out;
}

py::typing::Tuple<py::str, py::str, bool> route_provider(const std::string& requested,
                                                         const std::vector<std::string>& known) {
  config::ProviderRoute r = config::route_provider(requested, known);
  return py::make_tuple(r.requested, r.provider, r.known);
}

Instance<llm::HealthReport> check_health(const std::string& provider, const StrArg& base_url_arg,
                                         const StrArg& model_arg, const StrArg& api_key_arg, double timeout,
                                         double slow_threshold_ms) {
  const std::string base_url = utf8_arg(base_url_arg, "base_url");
  const std::string model = utf8_arg(model_arg, "model");
  const std::string api_key = utf8_arg(api_key_arg, "api_key");
  llm::HealthOptions options;
  options.slow_threshold_ms = slow_threshold_ms;
  llm::HealthReport h;
  {
    // Pure C++ on copies of the arguments; the engine's thread never touches Python.
    py::gil_scoped_release release;
    h = llm::check_health(provider, base_url, model, api_key, timeout, options);
  }
  return py::cast(std::move(h));
}

}  // namespace

void bind_config(py::module_& m) {
  m.def("load_app_config", &load_app_config, py::arg("environ"),
        "Parse the environment: (fields by provider, or None; [(variable, value, allowed, message)]).");
  m.def("env_variables", &env_variables,
        "The documented variables: [(name, default, allowed, meaning)].");
  m.def("ollama_host_to_base_url", &config::ollama_host_to_base_url, py::arg("host"),
        "OLLAMA_HOST as Ollama reads it, as a base URL; None when it cannot be one.");
  m.def("builtin_providers", &config::builtin_providers, "Provider names built into the factory.");
  m.def("normalized_provider_name", &config::normalized_provider_name, py::arg("name"),
        "Trimmed, lower-case provider name.");
  m.def("route_provider", &route_provider, py::arg("requested"), py::arg("known"),
        "The factory's decision: (normalised request, provider to build, whether it was known).");
  m.def("check_health", &check_health, py::arg("provider"), py::arg("base_url"), py::arg("model"),
        py::arg("api_key"), py::arg("timeout"), py::arg("slow_threshold_ms") = llm::kDefaultSlowThresholdMs,
        "Blocking health check (GIL released): (status, models, latency_ms, reason, model, max_model_len).");
}

}  // namespace llmbridge::bindings
