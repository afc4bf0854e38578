// Health checks: list the models (GET /v1/models or /api/tags), then judge the answer.
#include "llmbridge/llm/health.hpp"
#include "llmbridge/llm/provider_table.hpp"

#include <simdjson.h>

#include <cmath>
#include <future>
#include <memory>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/provider.hpp"

namespace llmbridge::llm {
namespace {

std::string format_ms(double ms) { return std::to_string(static_cast<long long>(std::llround(ms))) + " ms"; }

void add_unique(std::vector<std::string>& out, std::string_view name) {
  if (name.empty()) return;
  for (const auto& m : out)
    if (m == name) return;
  out.emplace_back(name);
}

// "llama3.1" -> "llama3.1:latest"; names with a tag are kept.
std::string with_default_tag(std::string_view name) {
  // A ':' after the last '/' is a tag ("host:5000/ns/model" has a registry port, not a tag).
  const auto slash = name.rfind('/');
  const auto colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash))
    return std::string(name);
  return std::string(name) + ":latest";
}

std::string join_models(const std::vector<std::string>& models) {
  constexpr std::size_t kShown = 5;
  std::string out;
  for (std::size_t i = 0; i < models.size() && i < kShown; ++i) {
    if (i) out += ", ";
    out += models[i];
  }
  if (models.size() > kShown) out += ", ... (" + std::to_string(models.size()) + " in all)";
  return out;
}

}  // namespace

const char* to_string(HealthStatus status) noexcept {
  switch (status) {
    case HealthStatus::kHealthy: return "healthy";
    case HealthStatus::kDegraded: return "degraded";
    case HealthStatus::kUnhealthy: return "unhealthy";
  }
  return "unhealthy";
}

ModelList parse_models(std::string_view provider, const http::Response& response) {
  ModelList list;
  if (response.error != http::TransportError::kNone) {
    list.error = classify_transport_error(response.error, response.error_message,
                                          http::Request{}.max_response_bytes)
                     .error;
    return list;
  }
  if (response.status < 200 || response.status >= 300) {
    list.error = response.status == 0 ? connection_error("no HTTP response") : http_error(int(response.status));
    return list;
  }
  const ProviderSpec* spec = find_provider(provider);
  const bool ollama = spec && spec->dialect == Dialect::kOllama;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(response.body);
  simdjson::dom::element doc;
  simdjson::dom::object root;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS || doc.get(root) != simdjson::SUCCESS) {
    list.error = invalid_json_error("the model list is not a JSON object");
    return list;
  }
  simdjson::dom::array entries;
  const char* key = ollama ? "models" : "data";
  if (root[key].get(entries) != simdjson::SUCCESS) {
    list.error = invalid_json_error(std::string("the model list has no \"") + key + "\" array");
    return list;
  }
  for (simdjson::dom::element entry : entries) {
    std::string_view name;
    if (ollama) {
      if (entry["name"].get(name) == simdjson::SUCCESS) add_unique(list.models, name);
      if (entry["model"].get(name) == simdjson::SUCCESS) add_unique(list.models, name);
    } else if (entry["id"].get(name) == simdjson::SUCCESS) {
      add_unique(list.models, name);
    }
    list.max_model_lens.resize(list.models.size(), 0);
    std::int64_t context = 0;
    if (!ollama && !list.models.empty() && list.models.back() == name &&
        entry["max_model_len"].get(context) == simdjson::SUCCESS && context > 0 &&
        list.max_model_lens.back() == 0)
      list.max_model_lens.back() = static_cast<long>(context);
  }
  list.ok = true;
  return list;
}

long ModelList::max_model_len(std::string_view model) const noexcept {
  for (std::size_t i = 0; i < models.size() && i < max_model_lens.size(); ++i)
    if (models[i] == model) return max_model_lens[i];
  return 0;
}

http::Request models_request(std::string_view provider, std::string_view base_url, std::string_view api_key,
                             double timeout_s) {
  http::Request r;
  r.method = "GET";
  // Unknown names (registered OpenAI-compatible providers) list models as OpenAI does.
  const ProviderSpec* spec = find_provider(provider);
  r.url = config::normalized_base_url(base_url) +
          std::string(spec ? spec->models_path : provider_spec("openai").models_path);
  r.headers.push_back({"Accept", "application/json"});
  if (!api_key.empty()) r.headers.push_back({"Authorization", "Bearer " + std::string(api_key)});
  r.timeout_ms = http::seconds_to_ms(timeout_s, 10000);
  r.connect_timeout_ms = r.timeout_ms;
  return r;
}

bool model_matches(std::string_view provider, std::string_view configured, std::string_view served) {
  if (configured == served) return true;
  const ProviderSpec* spec = find_provider(provider);
  if (!spec || spec->dialect != Dialect::kOllama) return false;
  return with_default_tag(configured) == with_default_tag(served);
}

HealthReport evaluate_health(std::string_view provider, std::string_view model, const http::Response& response,
                             const HealthOptions& options) {
  HealthReport report;
  report.latency_ms = response.elapsed_ms;
  report.model = std::string(model);
  ModelList list = parse_models(provider, response);
  if (!list.ok) {
    report.status = HealthStatus::kUnhealthy;
    report.reason = list.error;
    return report;
  }
  report.models = list.models;  // small; `list` still answers max_model_len below
  report.status = HealthStatus::kHealthy;
  if (model.empty()) {
    if (report.models.empty()) {
      report.status = HealthStatus::kDegraded;
      report.reason = "the server lists no models";
    } else {
      report.model = report.models.front();
    }
  } else {
    bool served = false;
    for (const auto& m : report.models)
      if (model_matches(provider, model, m)) served = true;
    if (!served) {
      report.status = HealthStatus::kDegraded;
      report.reason = "model '" + std::string(model) + "' is not served" +
                      (report.models.empty() ? std::string(" (the server lists no models)")
                                             : " (served: " + join_models(report.models) + ")");
    }
  }
  report.max_model_len = list.max_model_len(report.model);
  if (report.status == HealthStatus::kHealthy && report.latency_ms > options.slow_threshold_ms) {
    report.status = HealthStatus::kDegraded;
    report.reason = "slow: answered in " + format_ms(report.latency_ms) + " (threshold " +
                    format_ms(options.slow_threshold_ms) + ")";
  }
  return report;
}

HealthReport check_health(http::Engine& engine, std::string_view provider, std::string_view base_url,
                          std::string_view model, std::string_view api_key, double timeout_s,
                          const HealthOptions& options) {
  if (base_url.find(',') == std::string_view::npos) {
    auto done = std::make_shared<std::promise<http::Response>>();
    std::future<http::Response> response = done->get_future();
    engine.submit(models_request(provider, base_url, api_key, timeout_s),
                  [done](http::Response&& r) { done->set_value(std::move(r)); });
    return evaluate_health(provider, model, response.get(), options);
  }
  // Several replicas: all asked at once, so the check takes one timeout at most.
  const std::vector<std::string> urls = config::replica_urls(base_url);
  std::vector<std::future<http::Response>> responses;
  for (const auto& url : urls) {
    auto done = std::make_shared<std::promise<http::Response>>();
    responses.push_back(done->get_future());
    engine.submit(models_request(provider, url, api_key, timeout_s),
                  [done](http::Response&& r) { done->set_value(std::move(r)); });
  }
  HealthReport best;
  std::size_t best_index = 0;
  std::vector<ReplicaHealth> replicas;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    HealthReport r = evaluate_health(provider, model, responses[i].get(), options);
    replicas.push_back({config::display_url(urls[i]), r.status, r.latency_ms, r.reason});
    if (i == 0 || int(r.status) < int(best.status)) {  // kHealthy < kDegraded < kUnhealthy
      best = std::move(r);
      best_index = i;
    }
  }
  (void)best_index;
  if (best.status != HealthStatus::kHealthy) {
    std::string reason;
    for (const auto& r : replicas) {
      if (!reason.empty()) reason += "; ";
      reason += r.url + ": " + (r.reason.empty() ? std::string(to_string(r.status)) : r.reason);
    }
    best.reason = std::move(reason);
  }
  best.replicas = std::move(replicas);
  return best;
}

HealthReport check_health(std::string_view provider, std::string_view base_url, std::string_view model,
                          std::string_view api_key, double timeout_s, const HealthOptions& options) {
  http::Engine engine;
  return check_health(engine, provider, base_url, model, api_key, timeout_s, options);
}

}  // namespace llmbridge::llm
