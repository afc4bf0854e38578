// Provider config conversions, shared by bind_llm.cpp and bind_config.cpp.
#include "py_config.hpp"

#include <string>
#include <type_traits>

#include "py_text.hpp"

namespace py = pybind11;

namespace llmbridge::bindings {
namespace {

py::dict base_fields(const config::ProviderConfig& c) {
  py::dict d;
  d["base_url"] = c.base_url;
  d["model"] = c.model;
  d["timeout"] = c.timeout;
  d["max_retries"] = c.max_retries;
  d["retry_base_delay"] = c.retry_base_delay;
  d["retry_max_delay"] = c.retry_max_delay;
  d["retry_backoff_multiplier"] = c.retry_backoff_multiplier;
  d["max_tokens"] = c.max_tokens;
  d["temperature"] = c.temperature;
  d["api_key"] = c.api_key.empty() ? py::object(py::none()) : py::object(py::str(c.api_key));
  d["connect_timeout"] = c.connect_timeout;
  return d;
}

template <typename T>
void read(py::handle obj, const char* name, T& out) {
  if (!py::hasattr(obj, name)) return;
  py::object v = obj.attr(name);
  if (v.is_none()) return;
  if constexpr (std::is_same_v<T, std::string>) {
    // Names the field on a lone surrogate or a wrong type, and never quotes the value.
    out = utf8_arg(v, (std::string("config field '") + name + "'").c_str());
    return;
  }
  try {
    out = v.cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string("config field '") + name + "' has the wrong type (" +
                         std::string(py::str(py::type::of(v).attr("__name__"))) + ")");
  }
}

void read_base(py::handle o, config::ProviderConfig& c) {
  read(o, "base_url", c.base_url);
  read(o, "model", c.model);
  read(o, "timeout", c.timeout);
  read(o, "max_retries", c.max_retries);
  read(o, "retry_base_delay", c.retry_base_delay);
  read(o, "retry_max_delay", c.retry_max_delay);
  read(o, "retry_backoff_multiplier", c.retry_backoff_multiplier);
  read(o, "max_tokens", c.max_tokens);
  read(o, "temperature", c.temperature);
  read(o, "api_key", c.api_key);
  read(o, "connect_timeout", c.connect_timeout);
}

}  // namespace

py::dict config_fields(const config::OpenAICompatibleConfig& c) {
  py::dict d = base_fields(c);
  d["text_model"] = c.text_model;
  d["vision_model"] = c.vision_model;
  d["embedding_model"] = c.embedding_model;
  d["embedding_dimensions"] = c.embedding_dimensions;
  return d;
}

py::dict config_fields(const config::OllamaConfig& c) {
  py::dict d = base_fields(c);
  d["num_ctx"] = c.num_ctx;
  d["keep_alive"] = c.keep_alive;
  return d;
}

void read_config(py::handle o, config::OpenAICompatibleConfig& c) {
  read_base(o, c);
  read(o, "text_model", c.text_model);
  read(o, "vision_model", c.vision_model);
  read(o, "embedding_model", c.embedding_model);
  read(o, "embedding_dimensions", c.embedding_dimensions);
}

void read_config(py::handle o, config::OllamaConfig& c) {
  read_base(o, c);
  read(o, "num_ctx", c.num_ctx);
  read(o, "keep_alive", c.keep_alive);
}

}  // namespace llmbridge::bindings
