// Bindings of the generation surface: chat results, stream events, model info, and the
// client methods that start chats, streams and model listings. Conversion and GIL
// handling only; the logic is in cpp/llm (generation, stream, client).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "llmbridge/llm/client.hpp"
#include "llmbridge/llm/completion_queue.hpp"
#include "llmbridge/llm/embeddings.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/generation.hpp"
#include "llmbridge/llm/images.hpp"
#include "llmbridge/llm/stream.hpp"
#include "py_text.hpp"
#include "py_types.hpp"

namespace py = pybind11;

namespace llmbridge::bindings {
namespace {

OptionalStr none_if_empty(const std::string& s) { return s.empty() ? py::object(py::none()) : utf8_to_str(s); }
OptionalInt none_if(int v, int missing) { return v == missing ? py::object(py::none()) : py::object(py::int_(v)); }

// A tool call as Python sees it: the arguments parsed once.
struct PyToolCall {
  llm::ToolCall call;
  py::object arguments;
};

PyToolCall to_py(llm::ToolCall&& t) {
  PyToolCall p;
  p.arguments = py::none();
  if (!t.arguments_json.empty()) {
    try {
      p.arguments = json_to_object(t.arguments_json);
    } catch (py::error_already_set&) {
      p.arguments = py::none();  // JSON Python cannot hold: arguments_text keeps it
    }
  }
  p.call = std::move(t);
  return p;
}

py::typing::List<PyToolCall> tool_list(std::vector<llm::ToolCall>&& calls) {
  py::typing::List<PyToolCall> out;
  for (auto& t : calls) out.append(py::cast(to_py(std::move(t))));
  return out;
}

// A chat result as Python sees it: data and tool calls converted once, on the thread
// that holds the GIL.
struct PyChatResult {
  llm::ChatResult r;
  py::object data;
  py::typing::List<PyToolCall> tool_calls;
};

Instance<PyChatResult> make_chat_result(llm::ChatResult&& r) {
  PyChatResult p;
  p.data = py::none();
  if (!r.data_json.empty()) {
    try {
      p.data = json_to_object(r.data_json);
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_ValueError) && !e.matches(PyExc_RecursionError)) throw;
      r.success = false;
      r.retryable = true;
      r.error = llm::invalid_json_error("the answer cannot be converted to Python objects (" +
                                        exception_excerpt(e) + ")");
    }
  }
  p.tool_calls = tool_list(std::move(r.tool_calls));
  p.r = std::move(r);
  return py::cast(std::move(p));
}

// A failed result saying why conversion failed (the last resort of drain()).
Instance<PyChatResult> chat_conversion_failure(const llm::ChatResult& from, const std::string& why) {
  llm::ChatResult r;
  static_cast<llm::Attempt&>(r) = static_cast<const llm::Attempt&>(from);
  r.success = false;
  r.data_json.clear();
  r.raw_response.clear();
  r.error = llm::invalid_json_error("the result could not be converted (" + why + ")");
  r.retryable = true;
  return make_chat_result(std::move(r));
}

py::typing::List<py::typing::List<py::float_>> embedding_rows(const llm::EmbeddingResult& r) {
  py::typing::List<py::typing::List<py::float_>> rows(r.rows);
  for (std::size_t i = 0; i < r.rows; ++i) {
    py::list row(r.dims);
    const float* p = r.vectors.data() + i * r.dims;
    for (std::size_t j = 0; j < r.dims; ++j) row[j] = py::float_(static_cast<double>(p[j]));
    rows[i] = std::move(row);
  }
  return rows;
}

using Texts = Typed<hint::Texts>;
// An event of a stream, as NativeStream.take() returns it.
using StreamEventObject = Typed<hint::OneOf<llm::StreamStarted, llm::Token, llm::ReasoningToken,
                                            llm::ToolCallDelta, llm::StreamEndEvent, llm::StreamErrorEvent>>;

llm::EmbedCall make_embed(py::handle texts, py::handle model, int dimensions, int expected_dimensions,
                          std::size_t batch_size, double timeout, py::handle messages_json) {
  llm::EmbedCall c;
  c.messages_json = utf8_arg(messages_json, "messages");
  py::sequence seq = py::reinterpret_borrow<py::sequence>(texts);
  c.texts.reserve(py::len(seq));
  for (std::size_t i = 0; i < py::len(seq); ++i) {
    const std::string name = "texts[" + std::to_string(i) + "]";
    c.texts.push_back(utf8_arg(seq[i], name.c_str()));
  }
  c.model = utf8_arg(model, "model");
  c.dimensions = dimensions;
  c.expected_dimensions = dimensions > 0 ? dimensions : expected_dimensions;
  c.batch_size = batch_size;
  c.timeout_s = timeout;
  return c;
}

StreamEventObject event_to_py(llm::StreamEvent&& e) {
  return std::visit(
      [](auto&& ev) -> py::object {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, llm::StreamEndEvent>) {
          // tool calls converted with their arguments parsed
          py::object end = py::cast(std::move(ev));
          return end;
        } else {
          return py::cast(std::move(ev));
        }
      },
      std::move(e));
}

py::typing::List<StreamEventObject> events_to_list(std::vector<llm::StreamEvent>&& events) {
  py::typing::List<StreamEventObject> out(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) out[i] = event_to_py(std::move(events[i]));
  return out;
}

// The Python handle of one stream: its channel, and how to cancel it.
struct NativeStream {
  std::shared_ptr<llm::StreamChannel> channel;
  llm::Client* client = nullptr;  // the Python client object keeps it alive (keep_alive)
  std::uint64_t call_id = 0;
};

llm::GenerateCall make_generate(int op, py::handle messages_json, py::handle prompt,
                                const llm::GenerateOptions& options) {
  llm::GenerateCall c;
  c.op = op == 0 ? llm::Operation::kChat : llm::Operation::kCompletion;
  c.messages_json = utf8_arg(messages_json, "messages");
  c.prompt = utf8_arg(prompt, "prompt");
  c.options = options;
  return c;
}

std::string repr_text(const std::string& s, std::size_t max = 40) {
  py::object r = py::repr(utf8_to_str(s.size() > max ? s.substr(0, max) + "..." : s));
  return r.cast<std::string>();
}

py::typing::List<llm::TryRecord> try_list(const std::vector<llm::TryRecord>& tries) {
  py::typing::List<llm::TryRecord> out(tries.size());
  for (std::size_t i = 0; i < tries.size(); ++i) out[i] = py::cast(tries[i]);
  return out;
}

}  // namespace

void bind_generation(py::module_& m) {
  using llm::GenerateOptions;
  py::class_<GenerateOptions>(m, "GenerateOptions",
                              "Options of one chat/generate/complete call, converted by the Python layer.")
      .def(py::init<>())
      .def_readwrite("model", &GenerateOptions::model)
      .def_readwrite("max_tokens", &GenerateOptions::max_tokens)
      .def_readwrite("temperature", &GenerateOptions::temperature)
      .def_readwrite("top_p", &GenerateOptions::top_p)
      .def_readwrite("stop", &GenerateOptions::stop)
      .def_readwrite("seed", &GenerateOptions::seed)
      .def_readwrite("json_schema", &GenerateOptions::json_schema)
      .def_readwrite("response_format", &GenerateOptions::response_format)
      .def_readwrite("tools", &GenerateOptions::tools)
      .def_readwrite("tool_choice", &GenerateOptions::tool_choice)
      .def_readwrite("extra_body", &GenerateOptions::extra_body)
      .def_readwrite("timeout", &GenerateOptions::timeout_s)
      .def_readwrite("stream_idle_timeout", &GenerateOptions::stream_idle_timeout_s);

  py::class_<PyToolCall>(m, "ToolCall", "One tool call of the model: arguments parsed (repaired if needed).")
      .def_property_readonly("id", [](const PyToolCall& t) { return none_if_empty(t.call.id); })
      .def_property_readonly("name", [](const PyToolCall& t) { return utf8_to_str(t.call.name); })
      .def_property_readonly("arguments", [](const PyToolCall& t) { return t.arguments; })
      .def_property_readonly("arguments_text", [](const PyToolCall& t) { return utf8_to_str(t.call.arguments_text); })
      .def_property_readonly("repaired", [](const PyToolCall& t) { return t.call.arguments_repaired; })
      .def_property_readonly("index", [](const PyToolCall& t) { return t.call.index; })
      .def("__repr__", [](const PyToolCall& t) {
        return "ToolCall(id=" + repr_text(t.call.id) + ", name=" + repr_text(t.call.name) +
               ", arguments_text=" + repr_text(t.call.arguments_text, 60) + ")";
      });

  py::class_<llm::TryRecord>(m, "TryRecord", "One HTTP try of a call, in the order the client made them.")
      .def_readonly("attempt", &llm::TryRecord::attempt, "1 for the first try, then 2, 3 ...")
      .def_property_readonly("status_code", [](const llm::TryRecord& t) { return none_if(t.status, 0); },
                             "The HTTP status, or None when no response came.")
      .def_property_readonly("error", [](const llm::TryRecord& t) { return none_if_empty(t.error); },
                             "None when the try succeeded, else a contract error string.")
      .def_property_readonly("replica", [](const llm::TryRecord& t) { return utf8_to_str(t.replica); },
                             "The base URL the try went to, without user or password.")
      .def_readonly("start_ms", &llm::TryRecord::start_ms, "When it was sent, in ms since the Unix epoch.")
      .def_readonly("elapsed_ms", &llm::TryRecord::elapsed_ms, "How long it took, in ms.")
      .def("to_dict",
           [](const llm::TryRecord& t) {
             py::typing::Dict<py::str, py::object> d;
             d["attempt"] = t.attempt;
             d["status_code"] = none_if(t.status, 0);
             d["error"] = none_if_empty(t.error);
             d["replica"] = utf8_to_str(t.replica);
             d["start_ms"] = t.start_ms;
             d["elapsed_ms"] = t.elapsed_ms;
             return d;
           },
           "The fields as a plain dict.")
      .def("__eq__",
           [](const llm::TryRecord& a, const llm::TryRecord& b) {
             return a.attempt == b.attempt && a.status == b.status && a.error == b.error && a.replica == b.replica &&
                    a.start_ms == b.start_ms && a.elapsed_ms == b.elapsed_ms;
           })
      .def(py::pickle(  // an ExtractionAttempt holding its tries stays picklable
          [](const llm::TryRecord& t) {
            return py::make_tuple(t.attempt, t.status, utf8_to_str(t.error), utf8_to_str(t.replica), t.start_ms,
                                  t.elapsed_ms);
          },
          [](const py::tuple& state) {
            if (state.size() != 6) throw std::invalid_argument("TryRecord state must have 6 fields");
            llm::TryRecord t;
            t.attempt = state[0].cast<int>();
            t.status = state[1].cast<int>();
            t.error = state[2].cast<std::string>();
            t.replica = state[3].cast<std::string>();
            t.start_ms = state[4].cast<double>();
            t.elapsed_ms = state[5].cast<double>();
            return t;
          }))
      .def("__repr__", [](const llm::TryRecord& t) {
        char times[80];
        std::snprintf(times, sizeof times, ", elapsed_ms=%.1f)", t.elapsed_ms);
        return "TryRecord(attempt=" + std::to_string(t.attempt) +
               ", status_code=" + (t.status ? std::to_string(t.status) : "None") +
               ", error=" + (t.error.empty() ? std::string("None") : repr_text(t.error, 80)) +
               ", replica=" + repr_text(t.replica, 80) + times;
      });

  py::class_<PyChatResult>(m, "ChatResult",
                           "The outcome of one chat/generate/complete call (after every retry).")
      .def_property_readonly("success", [](const PyChatResult& p) { return p.r.success; })
      .def_property_readonly("ok", [](const PyChatResult& p) { return p.r.success; })
      .def_property_readonly("text", [](const PyChatResult& p) { return utf8_to_str(p.r.text); })
      .def_property_readonly("data", [](const PyChatResult& p) { return p.data; })
      .def_property_readonly("error", [](const PyChatResult& p) { return none_if_empty(p.r.error); })
      .def_property_readonly("retryable", [](const PyChatResult& p) { return p.r.retryable; })
      .def_property_readonly("status_code", [](const PyChatResult& p) { return none_if(p.r.status_code, 0); })
      .def_property_readonly("finish_reason", [](const PyChatResult& p) { return none_if_empty(p.r.finish_reason); })
      .def_property_readonly("tool_calls", [](const PyChatResult& p) { return p.tool_calls; })
      .def_property_readonly("reasoning", [](const PyChatResult& p) { return none_if_empty(p.r.reasoning); })
      .def_property_readonly("prompt_tokens", [](const PyChatResult& p) { return none_if(p.r.prompt_tokens, -1); })
      .def_property_readonly("completion_tokens",
                             [](const PyChatResult& p) { return none_if(p.r.completion_tokens, -1); })
      .def_property_readonly("latency_ms", [](const PyChatResult& p) { return p.r.latency_ms; })
      .def_property_readonly("attempts", [](const PyChatResult& p) { return p.r.attempts; })
      .def_property_readonly("model", [](const PyChatResult& p) { return utf8_to_str(p.r.model); })
      .def_property_readonly("provider", [](const PyChatResult& p) { return utf8_to_str(p.r.provider); })
      .def_property_readonly("request_id", [](const PyChatResult& p) { return none_if_empty(p.r.request_id); })
      .def_property_readonly("truncated", [](const PyChatResult& p) { return p.r.truncated; })
      .def_property_readonly("repaired", [](const PyChatResult& p) { return p.r.repaired; })
      .def_property_readonly("auth_refused", [](const PyChatResult& p) { return p.r.auth_refused; })
      .def_property_readonly("raw_response", [](const PyChatResult& p) { return utf8_to_str(p.r.raw_response); })
      .def_property_readonly(
          "schema_errors",
          [](const PyChatResult& p) {
            py::typing::List<py::typing::Tuple<py::str, py::str>> out(p.r.schema_errors.size());
            for (std::size_t k = 0; k < p.r.schema_errors.size(); ++k) {
              const auto& e = p.r.schema_errors[k];
              out[k] = py::make_tuple(utf8_to_str(e.pointer), utf8_to_str(e.message));
            }
            return out;
          },
          "How the data broke the call's JSON schema: [(JSON pointer, message)], at most 10; empty otherwise.")
      .def_property_readonly("description", [](const PyChatResult& p) { return llm::describe(p.r); },
                             "A sentence for logs (never holds the API key).")
      .def_property_readonly("tries", [](const PyChatResult& p) { return try_list(p.r.tries); },
                             "Every HTTP try (TryRecord), in order.");

  static const float kEmpty = 0.0f;
  py::class_<llm::EmbeddingResult>(m, "EmbeddingResult", py::buffer_protocol(),
                                   "The embeddings of one embed() call: a float32 buffer, rows x dimensions, in input order.")
      .def_buffer([](llm::EmbeddingResult& r) {
        // A read-only view of the result's own buffer: numpy.asarray(result) copies nothing.
        float* data = r.vectors.empty() ? const_cast<float*>(&kEmpty) : r.vectors.data();
        return py::buffer_info(data, sizeof(float), py::format_descriptor<float>::format(), 2,
                               {static_cast<py::ssize_t>(r.rows), static_cast<py::ssize_t>(r.dims)},
                               {static_cast<py::ssize_t>(sizeof(float) * r.dims), static_cast<py::ssize_t>(sizeof(float))},
                               true);
      })
      .def_property_readonly("success", [](const llm::EmbeddingResult& r) { return r.success; })
      .def_property_readonly("ok", [](const llm::EmbeddingResult& r) { return r.success; })
      .def_property_readonly("error", [](const llm::EmbeddingResult& r) { return none_if_empty(r.error); })
      .def_property_readonly("retryable", [](const llm::EmbeddingResult& r) { return r.retryable; })
      .def_property_readonly("status_code", [](const llm::EmbeddingResult& r) { return none_if(r.status_code, 0); })
      .def_property_readonly("attempts", [](const llm::EmbeddingResult& r) { return r.attempts; })
      .def_property_readonly("latency_ms", [](const llm::EmbeddingResult& r) { return r.latency_ms; })
      .def_property_readonly("provider", [](const llm::EmbeddingResult& r) { return utf8_to_str(r.provider); })
      .def_property_readonly("model", [](const llm::EmbeddingResult& r) { return utf8_to_str(r.model); })
      .def_property_readonly("request_id", [](const llm::EmbeddingResult& r) { return none_if_empty(r.request_id); })
      .def_property_readonly("prompt_tokens", [](const llm::EmbeddingResult& r) { return none_if(r.prompt_tokens, -1); })
      .def_property_readonly("auth_refused", [](const llm::EmbeddingResult& r) { return r.auth_refused; })
      .def_property_readonly("raw_response", [](const llm::EmbeddingResult& r) { return utf8_to_str(r.raw_response); })
      .def_property_readonly("description", [](const llm::EmbeddingResult& r) { return llm::describe(r); })
      .def_property_readonly("tries", [](const llm::EmbeddingResult& r) { return try_list(r.tries); },
                             "Every HTTP try (TryRecord), request by request in input order.")
      .def_property_readonly("dimensions", [](const llm::EmbeddingResult& r) -> OptionalInt {
        return r.dims ? py::object(py::int_(r.dims)) : py::object(py::none());
      })
      .def_property_readonly("vectors", &embedding_rows,
                             "The vectors as lists of float (built on each read; the buffer is the compact form).")
      .def("__len__", [](const llm::EmbeddingResult& r) { return r.rows; })
      .def("__repr__", [](const llm::EmbeddingResult& r) {
        return "EmbeddingResult(success=" + std::string(r.success ? "True" : "False") +
               ", error=" + (r.error.empty() ? std::string("None") : repr_text(r.error, 80)) +
               ", rows=" + std::to_string(r.rows) + ", dimensions=" + (r.dims ? std::to_string(r.dims) : "None") +
               ", model=" + repr_text(r.model) + ")";
      });

  py::class_<llm::ModelInfo>(m, "ModelInfo", "One model a server lists.")
      .def_property_readonly("id", [](const llm::ModelInfo& i) { return utf8_to_str(i.id); })
      .def_property_readonly("owned_by", [](const llm::ModelInfo& i) { return none_if_empty(i.owned_by); })
      .def_property_readonly("max_model_len", [](const llm::ModelInfo& i) -> OptionalInt {
        return i.max_model_len > 0 ? py::object(py::int_(i.max_model_len)) : py::object(py::none());
      })
      .def("__repr__", [](const llm::ModelInfo& i) {
        return "ModelInfo(id=" + repr_text(i.id, 80) + ", owned_by=" + repr_text(i.owned_by) +
               ", max_model_len=" + (i.max_model_len > 0 ? std::to_string(i.max_model_len) : "None") + ")";
      });

  m.def("sniff_image_mime", [](py::bytes b) { return llm::sniff_image_mime(std::string_view(b)); }, py::arg("data"),
        "'image/png', 'image/jpeg', 'image/gif', 'image/webp' from the magic bytes, or ''.");
  m.def("image_data_url", [](py::bytes b, const std::string& mime) { return llm::image_data_url(std::string_view(b), mime); },
        py::arg("data"), py::arg("mime"), "data:<mime>;base64,<data>");
  m.def(
      "failed_chat_result",
      [](const std::string& error, const std::string& provider, const std::string& model) {
        llm::ChatResult r;
        r.error = error;
        r.provider = provider;
        r.model = model;
        return make_chat_result(std::move(r));
      },
      py::arg("error"), py::arg("provider"), py::arg("model"),
      "A ChatResult that failed before anything was sent (e.g. vision_unavailable).");

  // Before NativeHealth, whose signatures name it.
  py::class_<llm::ReplicaHealth>(m, "NativeReplicaHealth", "One replica's part of a health check.")
      .def_property_readonly("url", [](const llm::ReplicaHealth& r) { return utf8_to_str(r.url); })
      .def_property_readonly("status", [](const llm::ReplicaHealth& r) { return std::string(llm::to_string(r.status)); })
      .def_readonly("latency_ms", &llm::ReplicaHealth::latency_ms)
      .def_property_readonly("reason", [](const llm::ReplicaHealth& r) { return utf8_to_str(r.reason); });

  py::class_<llm::HealthReport>(m, "NativeHealth", "A health check's outcome; llmbridge.HealthReport wraps it.")
      .def_property_readonly("status", [](const llm::HealthReport& h) { return std::string(llm::to_string(h.status)); })
      .def_property_readonly("models", [](const llm::HealthReport& h) {
        py::typing::List<py::str> out;
        for (const auto& name : h.models) out.append(utf8_to_str(name));
        return out;
      })
      .def_readonly("latency_ms", &llm::HealthReport::latency_ms)
      .def_property_readonly("reason", [](const llm::HealthReport& h) { return utf8_to_str(h.reason); })
      .def_property_readonly("model", [](const llm::HealthReport& h) { return utf8_to_str(h.model); })
      .def_readonly("max_model_len", &llm::HealthReport::max_model_len)
      .def_property_readonly("replicas", [](const llm::HealthReport& h) {
        py::typing::List<llm::ReplicaHealth> out;
        for (const auto& r : h.replicas) out.append(py::cast(r));
        return out;
      });

  py::class_<llm::StreamMetrics>(m, "StreamMetrics", "Timing and usage of one stream.")
      .def_property_readonly("ttft_ms", [](const llm::StreamMetrics& s) -> OptionalFloat {
        return s.ttft_ms < 0 ? py::object(py::none()) : py::object(py::float_(s.ttft_ms));
      })
      .def_readonly("total_ms", &llm::StreamMetrics::total_ms)
      .def_readonly("tokens", &llm::StreamMetrics::tokens)
      .def_readonly("tokens_per_s", &llm::StreamMetrics::tokens_per_s)
      .def_property_readonly("prompt_tokens", [](const llm::StreamMetrics& s) { return none_if(s.prompt_tokens, -1); })
      .def_property_readonly("completion_tokens",
                             [](const llm::StreamMetrics& s) { return none_if(s.completion_tokens, -1); })
      .def("__repr__", [](const llm::StreamMetrics& s) {
        char ttft[32] = "None";
        if (s.ttft_ms >= 0) std::snprintf(ttft, sizeof ttft, "%.1f", s.ttft_ms);
        char buf[200];
        std::snprintf(buf, sizeof buf, "StreamMetrics(ttft_ms=%s, total_ms=%.1f, tokens=%ld, tokens_per_s=%.1f)", ttft,
                      s.total_ms, s.tokens, s.tokens_per_s);
        return std::string(buf);
      });

  py::class_<llm::StreamStarted>(m, "StreamStarted", "The first event of every stream.")
      .def_property_readonly("request_id", [](const llm::StreamStarted& e) { return utf8_to_str(e.request_id); })
      .def_property_readonly("model", [](const llm::StreamStarted& e) { return utf8_to_str(e.model); })
      .def("__repr__", [](const llm::StreamStarted& e) {
        return "StreamStarted(request_id=" + repr_text(e.request_id) + ", model=" + repr_text(e.model) + ")";
      });
  py::class_<llm::Token>(m, "Token", "A piece of the answer's text.")
      .def_property_readonly("text", [](const llm::Token& e) { return utf8_to_str(e.text); })
      .def_readonly("index", &llm::Token::index)
      .def("__repr__", [](const llm::Token& e) {
        return "Token(text=" + repr_text(e.text) + ", index=" + std::to_string(e.index) + ")";
      });
  py::class_<llm::ReasoningToken>(m, "ReasoningToken", "A piece of the model's reasoning text.")
      .def_property_readonly("text", [](const llm::ReasoningToken& e) { return utf8_to_str(e.text); })
      .def_readonly("index", &llm::ReasoningToken::index)
      .def("__repr__", [](const llm::ReasoningToken& e) {
        return "ReasoningToken(text=" + repr_text(e.text) + ", index=" + std::to_string(e.index) + ")";
      });
  py::class_<llm::ToolCallDelta>(m, "ToolCallDelta", "A piece of a tool call: append arguments per index.")
      .def_readonly("index", &llm::ToolCallDelta::index)
      .def_property_readonly("id", [](const llm::ToolCallDelta& e) { return none_if_empty(e.id); })
      .def_property_readonly("name", [](const llm::ToolCallDelta& e) { return none_if_empty(e.name); })
      .def_property_readonly("arguments", [](const llm::ToolCallDelta& e) { return utf8_to_str(e.arguments); })
      .def("__repr__", [](const llm::ToolCallDelta& e) {
        return "ToolCallDelta(index=" + std::to_string(e.index) + ", name=" + repr_text(e.name) +
               ", arguments=" + repr_text(e.arguments) + ")";
      });
  py::class_<llm::StreamEndEvent>(m, "StreamEnd", "The last event of a stream that completed.")
      .def_property_readonly("finish_reason",
                             [](const llm::StreamEndEvent& e) { return none_if_empty(e.finish_reason); })
      .def_readonly("metrics", &llm::StreamEndEvent::metrics)
      .def_property_readonly("model", [](const llm::StreamEndEvent& e) { return utf8_to_str(e.model); })
      .def_property_readonly("tries", [](const llm::StreamEndEvent& e) { return try_list(e.tries); },
                             "The stream's HTTP tries (TryRecord), in order.")
      .def_property_readonly("tool_calls",
                             [](const llm::StreamEndEvent& e) {
                               std::vector<llm::ToolCall> copy = e.tool_calls;
                               return tool_list(std::move(copy));
                             })
      .def("__repr__", [](const llm::StreamEndEvent& e) {
        char ttft[32] = "None";
        if (e.metrics.ttft_ms >= 0) std::snprintf(ttft, sizeof ttft, "%.1f", e.metrics.ttft_ms);
        char buf[160];
        std::snprintf(buf, sizeof buf, ", tokens=%ld, ttft_ms=%s, total_ms=%.1f)", e.metrics.tokens, ttft,
                      e.metrics.total_ms);
        return "StreamEnd(finish_reason=" + repr_text(e.finish_reason) + buf;
      });
  py::class_<llm::StreamErrorEvent>(m, "StreamError", "The last event of a stream that failed.")
      .def_property_readonly("error", [](const llm::StreamErrorEvent& e) { return utf8_to_str(e.error); })
      .def_readonly("retryable", &llm::StreamErrorEvent::retryable)
      .def_property_readonly("status_code", [](const llm::StreamErrorEvent& e) { return none_if(e.status_code, 0); })
      .def_property_readonly("message", [](const llm::StreamErrorEvent& e) { return none_if_empty(e.message); })
      .def_property_readonly("tries", [](const llm::StreamErrorEvent& e) { return try_list(e.tries); },
                             "The stream's HTTP tries (TryRecord), in order; empty when none was sent.")
      .def("__repr__", [](const llm::StreamErrorEvent& e) {
        return "StreamError(error=" + repr_text(e.error, 80) + ", retryable=" + (e.retryable ? "True" : "False") +
               ", status_code=" + (e.status_code ? std::to_string(e.status_code) : "None") + ")";
      });

  py::class_<NativeStream>(m, "NativeStream")
      .def("take", [](NativeStream& s) { return events_to_list(s.channel->take()); },
           "Every event ready now (maybe none); resumes a paused transfer.")
      .def(
          "wait_take",
          [](NativeStream& s, double timeout) {
            std::vector<llm::StreamEvent> events;
            {
              py::gil_scoped_release release;
              events = s.channel->wait_take(timeout);
            }
            return events_to_list(std::move(events));
          },
          py::arg("timeout"), "As take(), waiting up to timeout seconds (< 0: no limit) for one event.")
      .def("cancel", [](NativeStream& s) { s.client->cancel(s.call_id); })
      .def_property_readonly("buffered", [](NativeStream& s) { return s.channel->buffered(); })
      .def_property_readonly("paused", [](NativeStream& s) { return s.channel->paused(); })
      .def_property_readonly("closed", [](NativeStream& s) { return s.channel->closed(); });
}

EmbeddingObject embedding_to_py(llm::EmbeddingResult&& r) { return py::cast(std::move(r)); }

ChatResultObject chat_item_to_py(llm::ChatResult&& r) {
  try {
    return make_chat_result(std::move(r));
  } catch (py::error_already_set& e) {
    return chat_conversion_failure(r, exception_excerpt(e));
  } catch (const std::exception& e) {
    return chat_conversion_failure(r, e.what());
  }
}

void add_generation_methods(py::class_<llm::Client>& cls) {
  cls.def(
         "submit_generate",
         [](llm::Client& c, std::shared_ptr<llm::CompletionQueue> queue, std::uint64_t token, int op,
            const StrArg& messages_json, const StrArg& prompt, const llm::GenerateOptions& options) {
           llm::GenerateCall call = make_generate(op, messages_json, prompt, options);
           return c.start_generate(call, [queue, token](llm::ChatResult&& r) { queue->push(token, std::move(r)); });
         },
         py::arg("queue"), py::arg("token"), py::arg("op"), py::arg("messages_json"), py::arg("prompt"),
         py::arg("options"))
      .def(
          "check_generate",
          [](llm::Client& c, int op, const StrArg& messages_json, const StrArg& prompt,
             const llm::GenerateOptions& options) {
            llm::GenerateCall call = make_generate(op, messages_json, prompt, options);
            if (auto problem = llm::check_generate_call(c.spec(), call)) throw std::invalid_argument(*problem);
          },
          py::arg("op"), py::arg("messages_json"), py::arg("prompt"), py::arg("options"),
          "Raises ValueError when the call cannot be sent to this provider (nothing is sent).")
      .def(
          "generate_sync",
          [](llm::Client& c, int op, const StrArg& messages_json, const StrArg& prompt,
             const llm::GenerateOptions& options) {
            llm::GenerateCall call = make_generate(op, messages_json, prompt, options);
            auto result = std::make_shared<std::promise<llm::ChatResult>>();
            auto f = result->get_future();
            c.start_generate(call, [result](llm::ChatResult&& r) { result->set_value(std::move(r)); });
            llm::ChatResult r;
            {
              py::gil_scoped_release release;
              r = f.get();
            }
            return chat_item_to_py(std::move(r));
          },
          py::arg("op"), py::arg("messages_json"), py::arg("prompt"), py::arg("options"))
      .def(
          "open_stream",
          [](llm::Client& c, const Typed<hint::Optional<std::shared_ptr<llm::CompletionQueue>>>& queue,
             std::uint64_t token, int op, const StrArg& messages_json, const StrArg& prompt,
             const llm::GenerateOptions& options, std::size_t high_water) {
            llm::GenerateCall call = make_generate(op, messages_json, prompt, options);
            auto channel = std::make_shared<llm::StreamChannel>(high_water);
            if (!queue.is_none()) {
              auto q = queue.cast<std::shared_ptr<llm::CompletionQueue>>();
              // Runs on the I/O thread: only C++ state is touched.
              channel->set_waker([q, token] { q->push_stream_ready(token); });
            }
            NativeStream s;
            s.channel = channel;
            s.client = &c;
            s.call_id = c.start_stream(call, channel);
            return s;
          },
          py::arg("queue"), py::arg("token"), py::arg("op"), py::arg("messages_json"), py::arg("prompt"),
          py::arg("options"), py::arg("high_water") = 1024, py::keep_alive<0, 1>())
      .def(
          "submit_embed",
          [](llm::Client& c, std::shared_ptr<llm::CompletionQueue> queue, std::uint64_t token, const Texts& texts,
             const StrArg& model, int dimensions, int expected_dimensions, std::size_t batch_size, double timeout,
             const StrArg& messages_json) {
            llm::EmbedCall call =
                make_embed(texts, model, dimensions, expected_dimensions, batch_size, timeout, messages_json);
            return c.start_embed(call, [queue, token](llm::EmbeddingResult&& r) { queue->push(token, std::move(r)); });
          },
          py::arg("queue"), py::arg("token"), py::arg("texts"), py::arg("model"), py::arg("dimensions"),
          py::arg("expected_dimensions"), py::arg("batch_size"), py::arg("timeout"), py::arg("messages_json") = "",
          "Starts embed(); returns the batches' call ids (cancel each to cancel it).")
      .def(
          "embed_sync",
          [](llm::Client& c, const Texts& texts, const StrArg& model, int dimensions, int expected_dimensions,
             std::size_t batch_size, double timeout, const StrArg& messages_json) {
            llm::EmbedCall call =
                make_embed(texts, model, dimensions, expected_dimensions, batch_size, timeout, messages_json);
            auto result = std::make_shared<std::promise<llm::EmbeddingResult>>();
            auto f = result->get_future();
            c.start_embed(call, [result](llm::EmbeddingResult&& r) { result->set_value(std::move(r)); });
            llm::EmbeddingResult r;
            {
              py::gil_scoped_release release;
              r = f.get();
            }
            return embedding_to_py(std::move(r));
          },
          py::arg("texts"), py::arg("model"), py::arg("dimensions"), py::arg("expected_dimensions"),
          py::arg("batch_size"), py::arg("timeout"), py::arg("messages_json") = "")
      .def(
          "list_models",
          [](llm::Client& c, double timeout) {
            llm::ModelsResult r;
            {
              py::gil_scoped_release release;
              r = c.list_models(timeout);
            }
            if (!r.error.empty()) {
              // The list cannot be had: the same exception the Python API documents.
              raise_instance(error_class("LLMCallError")
                                 .attr("from_values")(utf8_to_str(r.error), py::arg("status_code") = none_if(r.status_code, 0),
                                                      py::arg("description") = utf8_to_str(llm::describe(r)),
                                                      py::arg("retryable") = r.retryable));
            }
            py::typing::List<llm::ModelInfo> models;
            for (auto& m : r.models) models.append(py::cast(std::move(m)));
            return models;
          },
          py::arg("timeout"), "The server's model list, blocking; raises LLMCallError when it cannot be had.");
}

}  // namespace llmbridge::bindings
