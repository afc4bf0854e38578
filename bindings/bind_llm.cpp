// Bindings for the provider configs and clients: conversion and GIL handling only.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "bindings.hpp"
#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/client.hpp"
#include "llmbridge/llm/completion_queue.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "py_config.hpp"
#include "py_text.hpp"

namespace py = pybind11;

namespace llmbridge::bindings {
namespace {

using config::OllamaConfig;
using config::OpenAICompatibleConfig;
using config::OpenAIConfig;
using config::VLLMConfig;

// ---- configs ----

// Runs f with a default-constructed config of the provider's type (from the provider
// table); an unknown name is a ValueError listing the known ones.
template <class F>
auto with_config(const std::string& provider, F&& f) {
  const llm::ProviderSpec& spec = llm::provider_spec(provider);  // invalid_argument -> ValueError
  switch (spec.config_type) {
    case llm::ConfigType::kVLLM: return f(VLLMConfig{});
    case llm::ConfigType::kOpenAI: return f(OpenAIConfig{});
    case llm::ConfigType::kOllama: break;
  }
  return f(OllamaConfig{});
}

py::typing::Dict<py::str, py::object> config_defaults(const std::string& provider) {
  return with_config(provider, [](auto c) { return config_fields(c); });
}

using Problems = py::typing::List<py::typing::Tuple<py::str, py::str, py::str, py::str>>;

Problems problems_to_list(const std::vector<config::ConfigProblem>& problems) {
  Problems out;
  for (const auto& p : problems) out.append(py::make_tuple(p.field, p.value, p.allowed, p.message()));
  return out;
}

Problems validate_config(const std::string& provider, py::handle cfg) {
  return with_config(provider, [&](auto c) {
    read_config(cfg, c);
    return problems_to_list(config::validate(c));
  });
}

// ---- attempts ----

// An attempt reaches Python as the same typed result as a chat (ChatResult carries every
// Attempt field by name); ExtractionAttempt is built from it by name.
ChatResultObject attempt_to_py(llm::Attempt&& a) {
  llm::ChatResult r;
  static_cast<llm::Attempt&>(r) = std::move(a);
  return chat_item_to_py(std::move(r));
}

// What CompletionQueue.drain() returns: (token, result) pairs; None for a stream's wake-up.
struct DrainedPayload {
  static constexpr auto name = hint::ChatResult::name + pybind11::detail::const_name(" | ") +
                               hint::Instance<llm::EmbeddingResult>::name +
                               pybind11::detail::const_name(" | None");
};
using Drained = py::typing::List<py::typing::Tuple<py::int_, Typed<DrainedPayload>>>;

// ---- clients ----

// The arguments of call_llm, converted under the names the caller knows them by (the
// Python layer serialises prompts['messages'] and json_schema to JSON text first).
llm::ChatCall make_call(py::handle system, py::handle user, py::handle messages_json,
                        py::handle schema_json, py::handle document, py::handle schema_name) {
  llm::ChatCall c;
  c.prompts.system = utf8_arg(system, "prompts['system']");
  c.prompts.user = utf8_arg(user, "prompts['user']");
  c.prompts.messages_json = utf8_arg(messages_json, "prompts['messages']");
  c.schema_json = utf8_arg(schema_json, "json_schema");
  c.document_text = utf8_arg(document, "document_text");
  std::string name = utf8_arg(schema_name, "schema_name");
  if (!name.empty()) c.schema_name = std::move(name);
  return c;
}

std::unique_ptr<llm::Client> make_client(const std::string& provider, py::handle cfg,
                                         long max_connections, std::string ca_file,
                                         bool verify_tls, std::size_t max_response_bytes) {
  llm::ClientOptions o;
  o.max_connections = max_connections;
  o.ca_file = std::move(ca_file);
  o.verify_tls = verify_tls;
  o.max_response_bytes = max_response_bytes;
  return with_config(provider, [&](auto c) {
    read_config(cfg, c);
    return std::make_unique<llm::Client>(c, o);
  });
}

}  // namespace

void bind_llm(py::module_& m) {
  m.def("config_defaults", &config_defaults, py::arg("provider"),
        "Default field values of a provider config, from the C++ core.");
  m.def("validate_config", &validate_config, py::arg("provider"), py::arg("config"),
        "Problems with a config: [(field, value, allowed, message)]; empty when valid.");
  m.def("normalized_base_url", &config::normalized_base_url, py::arg("url"));
  m.def("is_valid_base_url", &config::is_valid_base_url, py::arg("url"));
  m.def("display_url", &config::display_url, py::arg("url"),
        "The URL without userinfo (user:password@), as reprs and logs show it.");
  m.def("is_retryable_status", &llm::is_retryable_status, py::arg("status"));
  m.def("http_error", &llm::http_error, py::arg("status"));
  m.def("render_user_prompt", &llm::render_user_prompt, py::arg("user"), py::arg("document"),
        "call_llm's user message: the document in place of {document_text}, else after a blank line.");
  m.def(
      "error_kind", [](std::string_view error) { return std::string(llm::error_kind(error)); }, py::arg("error"),
      "The leading word of a contract error string: 'connection_error: refused' -> 'connection_error'.");

  py::class_<llm::CompletionQueue, std::shared_ptr<llm::CompletionQueue>>(m, "CompletionQueue")
      .def(py::init<>())
      .def("fileno", &llm::CompletionQueue::fd)
      .def("drain", [](llm::CompletionQueue& q) -> Drained {
        // Every drained result is converted, whatever happens to the others: a result
        // that cannot be converted becomes a failed attempt, never an exception that
        // would lose the rest of the batch.
        auto items = q.drain();
        py::list out(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
          auto& item = items[i];
          py::object payload;
          switch (item.kind) {
            case llm::CompletionQueue::Kind::kStreamReady:
              payload = py::none();  // the stream's events wait in its channel
              break;
            case llm::CompletionQueue::Kind::kChat:
            case llm::CompletionQueue::Kind::kAttempt:
              payload = chat_item_to_py(std::move(item.result));
              break;
            case llm::CompletionQueue::Kind::kEmbedding:
              payload = embedding_to_py(std::move(item.embedding));
              break;
          }
          out[i] = py::make_tuple(item.token, std::move(payload));
        }
        return out;
      });

  py::class_<llm::ReplicaStats>(m, "ReplicaStats", "One replica of a client: its URL, health and counters.")
      .def_readonly("url", &llm::ReplicaStats::url)
      .def_readonly("healthy", &llm::ReplicaStats::healthy)
      .def_readonly("in_flight", &llm::ReplicaStats::in_flight)
      .def_readonly("requests", &llm::ReplicaStats::requests)
      .def_readonly("errors", &llm::ReplicaStats::errors)
      .def_readonly("ewma_latency_ms", &llm::ReplicaStats::ewma_latency_ms)
      .def_readonly("ejections", &llm::ReplicaStats::ejections)
      .def("__repr__", [](const llm::ReplicaStats& r) {
        return "ReplicaStats(url=" + std::string(py::repr(py::str(r.url))) + ", healthy=" + (r.healthy ? "True" : "False") +
               ", in_flight=" + std::to_string(r.in_flight) + ", requests=" + std::to_string(r.requests) +
               ", errors=" + std::to_string(r.errors) + ", ewma_latency_ms=" + std::to_string(r.ewma_latency_ms) +
               ", ejections=" + std::to_string(r.ejections) + ")";
      });

  py::class_<llm::StatsSnapshot>(m, "StatsSnapshot",
                                 "A client's call counters and latency quantiles at one moment (client.stats()).")
      .def_readonly("calls", &llm::StatsSnapshot::calls, "Logical calls completed (success or error).")
      .def_readonly("successes", &llm::StatsSnapshot::successes)
      .def_readonly("errors", &llm::StatsSnapshot::errors, "Failed calls by error kind ('http_500', 'timeout', ...).")
      .def_readonly("retries", &llm::StatsSnapshot::retries, "HTTP tries beyond each call's first.")
      .def_readonly("prompt_tokens", &llm::StatsSnapshot::prompt_tokens)
      .def_readonly("completion_tokens", &llm::StatsSnapshot::completion_tokens)
      .def_readonly("in_flight", &llm::StatsSnapshot::in_flight, "Logical calls started and not completed.")
      .def_readonly("latency_samples", &llm::StatsSnapshot::latency_samples,
                    "Calls in the latency histogram (those that sent a try).")
      .def_readonly("latency_p50_ms", &llm::StatsSnapshot::latency_p50_ms)
      .def_readonly("latency_p95_ms", &llm::StatsSnapshot::latency_p95_ms)
      .def_readonly("latency_p99_ms", &llm::StatsSnapshot::latency_p99_ms)
      .def("__repr__", [](const llm::StatsSnapshot& s) {
        std::string errors;
        for (const auto& [kind, n] : s.errors)
          errors += (errors.empty() ? "" : ", ") + std::string(py::repr(py::str(kind))) + ": " + std::to_string(n);
        return "StatsSnapshot(calls=" + std::to_string(s.calls) + ", successes=" + std::to_string(s.successes) +
               ", errors={" + errors + "}, retries=" + std::to_string(s.retries) +
               ", prompt_tokens=" + std::to_string(s.prompt_tokens) +
               ", completion_tokens=" + std::to_string(s.completion_tokens) +
               ", in_flight=" + std::to_string(s.in_flight) + ", latency_samples=" + std::to_string(s.latency_samples) +
               ", latency_p50_ms=" + std::string(py::repr(py::float_(s.latency_p50_ms))) +
               ", latency_p95_ms=" + std::string(py::repr(py::float_(s.latency_p95_ms))) +
               ", latency_p99_ms=" + std::string(py::repr(py::float_(s.latency_p99_ms))) + ")";
      });

  py::class_<llm::ReplicaEvent>(m, "ReplicaEvent", "An ejection or re-admission, for the log.")
      .def_property_readonly("kind", [](const llm::ReplicaEvent& e) {
        return e.kind == llm::ReplicaEvent::Kind::kEjected ? "ejected" : "readmitted";
      })
      .def_property_readonly("url", [](const llm::ReplicaEvent& e) { return utf8_to_str(e.url); })
      .def_property_readonly("reason", [](const llm::ReplicaEvent& e) { return utf8_to_str(e.reason); })
      .def_readonly("ejected_for_s", &llm::ReplicaEvent::ejected_for_s);

  py::class_<llm::Client> native_client(m, "NativeClient");
  add_generation_methods(native_client);
  native_client
      .def(py::init(&make_client), py::arg("provider"), py::arg("config"),
           py::arg("max_connections") = 64, py::arg("ca_file") = "", py::arg("verify_tls") = true,
           py::arg("max_response_bytes") = std::size_t(64) << 20)
      .def(
          "submit",
          [](llm::Client& c, std::shared_ptr<llm::CompletionQueue> queue, std::uint64_t token,
             const StrArg& system, const StrArg& user, const StrArg& messages_json, const StrArg& schema_json,
             const StrArg& document, const StrArg& schema_name) {
            // The callback runs on the I/O thread and touches no Python object: it only
            // moves the attempt into the C++ queue.
            return c.start(make_call(system, user, messages_json, schema_json, document, schema_name),
                           [queue, token](llm::Attempt&& a) { queue->push(token, std::move(a)); });
          },
          py::arg("queue"), py::arg("token"), py::arg("system"), py::arg("user"),
          py::arg("messages_json"), py::arg("schema_json"), py::arg("document"),
          py::arg("schema_name"))
      .def(
          "_submit_call_soon",
          [](llm::Client& c, py::object call_soon_threadsafe, py::object callback,
             const StrArg& system, const StrArg& user, const StrArg& messages_json, const StrArg& schema_json,
             const StrArg& document, const StrArg& schema_name) {
            // The alternative bridge, kept only so bench/bench_client.py can measure it
            // against the eventfd queue: the I/O thread takes the GIL for every result
            // and hands it to loop.call_soon_threadsafe. The Python objects it holds are
            // released with the GIL held.
            struct Target {
              py::object call_soon, callback;
              ~Target() {
                py::gil_scoped_acquire gil;
                call_soon = py::object();
                callback = py::object();
              }
            };
            auto target = std::make_shared<Target>();
            target->call_soon = std::move(call_soon_threadsafe);
            target->callback = std::move(callback);
            return c.start(make_call(system, user, messages_json, schema_json, document, schema_name),
                           [target](llm::Attempt&& a) {
                             py::gil_scoped_acquire gil;
                             try {
                               target->call_soon(target->callback, attempt_to_py(std::move(a)));
                             } catch (py::error_already_set& e) {
                               e.discard_as_unraisable("llmbridge call_soon bridge");
                             }
                           });
          },
          py::arg("call_soon_threadsafe"), py::arg("callback"), py::arg("system"), py::arg("user"),
          py::arg("messages_json"), py::arg("schema_json"), py::arg("document"),
          py::arg("schema_name"))
      .def(
          "call_sync",
          [](llm::Client& c, const StrArg& system, const StrArg& user, const StrArg& messages_json,
             const StrArg& schema_json, const StrArg& document, const StrArg& schema_name) {
            llm::ChatCall call = make_call(system, user, messages_json, schema_json, document, schema_name);
            llm::Attempt a;
            {
              // Waiting touches only C++ state; other Python threads run meanwhile.
              py::gil_scoped_release release;
              a = c.call(call);
            }
            return attempt_to_py(std::move(a));
          },
          py::arg("system"), py::arg("user"), py::arg("messages_json"), py::arg("schema_json"),
          py::arg("document"), py::arg("schema_name"))
      .def("cancel", &llm::Client::cancel, py::arg("call_id"))
      .def("close", &llm::Client::close, py::call_guard<py::gil_scoped_release>(),
           "Complete every call in flight with 'cancelled' and join the I/O thread.")
      .def("abandon_after_fork", &llm::Client::abandon_after_fork)
      .def_property_readonly("closed", &llm::Client::closed)
      .def_property_readonly("in_flight", &llm::Client::in_flight)
      .def_property_readonly("provider", &llm::Client::provider)
      .def_property_readonly("model", &llm::Client::model)
      .def("set_model", &llm::Client::set_model, py::arg("model"),
           "Model for calls started from now on (thread-safe); calls in flight keep theirs.")
      .def_property_readonly("current_model", &llm::Client::current_model)
      .def("embedding_model", &llm::Client::embedding_model, py::arg("model"),
           "The model an embed() with this `model` argument uses ('' = the default).")
      .def_property_readonly("context_limit", &llm::Client::context_limit,
                             "The model's max_model_len as last listed by the server, or 0.")
      .def("close_when_idle", &llm::Client::close_when_idle, py::call_guard<py::gil_scoped_release>(),
           "close() as soon as no call is in flight; in-flight calls finish normally.")
      .def_property_readonly("closing_when_idle", &llm::Client::closing_when_idle)
      .def_property_readonly("replica_count", &llm::Client::replica_count)
      .def("replicas", &llm::Client::replica_stats, "Each replica's URL, health and counters.")
      .def("stats", &llm::Client::stats, "This client's call counters and latency quantiles (thread-safe, cheap).")
      .def_property_readonly("pending_replica_events", &llm::Client::pending_replica_events)
      .def("drain_replica_events", &llm::Client::drain_replica_events,
           "Ejections and re-admissions since the last drain, oldest first.")
      .def_property_readonly("pending_schema_warnings", &llm::Client::pending_schema_warnings)
      .def("drain_schema_warnings", &llm::Client::drain_schema_warnings,
           "Warnings about call schemas (not compiled, or parts not checked), each once per schema text.")
      .def(
          "check_health",
          [](llm::Client& c, double timeout, double slow_threshold_ms) -> Instance<llm::HealthReport> {
            llm::HealthOptions options;
            options.slow_threshold_ms = slow_threshold_ms;
            llm::HealthReport h;
            {
              // Blocks on the client's engine; only C++ state is touched meanwhile.
              py::gil_scoped_release release;
              h = c.check_health(timeout, options);
            }
            return py::cast(std::move(h));
          },
          py::arg("timeout"), py::arg("slow_threshold_ms") = llm::kDefaultSlowThresholdMs,
          "Blocking health check through this client's engine: (status, models, latency_ms, reason, model, max_model_len).");
}

}  // namespace llmbridge::bindings
