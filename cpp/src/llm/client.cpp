// Provider client: one engine, retries as engine timers, exactly one completion per call.
#include "llmbridge/llm/client.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <random>

#include "llmbridge/llm/errors.hpp"
#include "llmbridge/text/utf8.hpp"

namespace llmbridge::llm {

namespace {

using Clock = std::chrono::steady_clock;

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen(std::random_device{}() ^
                                   std::uint64_t(Clock::now().time_since_epoch().count()));
  return gen;
}

std::string new_request_id() {
  char buf[24];
  std::snprintf(buf, sizeof buf, "llmb-%016llx", static_cast<unsigned long long>(rng()()));
  return buf;
}

double jitter01() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng()); }

http::EngineOptions engine_options(const ClientOptions& o) {
  http::EngineOptions e;
  e.max_connections = o.max_connections;
  e.ca_file = o.ca_file;
  e.verify_tls = o.verify_tls;
  return e;
}

Attempt cancelled_attempt(const std::string& provider, const std::string& model) {
  Attempt a;
  a.error = kErrorCancelled;
  a.provider = provider;
  a.model = model;
  return a;
}

// Every string an attempt carries came from the server or from libcurl: invalid UTF-8
// in any of them (an answer in Latin-1, a binary body, a header value) becomes U+FFFD
// here, once, so no layer above can fail to decode a result.
void make_text_valid(Attempt& a) {
  text::make_valid_utf8(a.raw_response);
  text::make_valid_utf8(a.error);
  text::make_valid_utf8(a.finish_reason);
  text::make_valid_utf8(a.request_id);
  text::make_valid_utf8(a.model);
}

}  // namespace

struct Client::Call {
  std::uint64_t id = 0;
  http::Request request;
  std::string request_id;
  Done done;
  Clock::time_point started;
  int tries = 0;
  Clock::time_point send_at;  // when the current try leaves (after its backoff delay)
  http::RequestId http_id = 0;
  bool cancelled = false;  // guarded by Client::mu_
  std::string model;       // the model this call was sent with
};

Client::Client(ProviderKind kind, std::string provider, config::ProviderConfig base,
               ClientOptions options)
    : kind_(kind),
      provider_(std::move(provider)),
      model_(base.model),
      policy_(RetryPolicy::from_config(base)),
      options_(std::move(options)),
      active_model_(base.model),
      engine_(std::make_unique<http::Engine>(engine_options(options_))) {}

Client::Client(const config::VLLMConfig& config, ClientOptions options)
    : Client(ProviderKind::kVLLM, std::string(kProviderVLLM), config, std::move(options)) {
  openai_ = config;
}

Client::Client(const config::OpenAIConfig& config, ClientOptions options)
    : Client(ProviderKind::kOpenAI, std::string(kProviderOpenAI), config, std::move(options)) {
  openai_ = config;
}

Client::Client(const config::OllamaConfig& config, ClientOptions options)
    : Client(ProviderKind::kOllama, std::string(kProviderOllama), config, std::move(options)) {
  ollama_ = config;
}

Client::~Client() { close(); }

http::Request Client::build(const ChatCall& call, const std::string& request_id,
                            const std::string& model, long context_limit) const {
  const bool ollama = kind_ == ProviderKind::kOllama;
  const int configured = ollama ? ollama_.max_tokens : openai_.max_tokens;
  const int max_tokens = fitted_max_tokens(configured, context_limit, call);
  http::Request r;
  if (model == model_ && max_tokens == configured) {  // the common case: no copy of the config
    r = ollama ? build_ollama_request(ollama_, call, request_id)
               : build_openai_request(openai_, call, request_id);
  } else if (ollama) {
    config::OllamaConfig c = ollama_;
    c.model = model;
    c.max_tokens = max_tokens;
    r = build_ollama_request(c, call, request_id);
  } else {
    config::OpenAICompatibleConfig c = openai_;
    c.model = model;
    c.max_tokens = max_tokens;
    r = build_openai_request(c, call, request_id);
  }
  r.max_response_bytes = options_.max_response_bytes;
  return r;
}

Attempt Client::parse(const http::Response& response, const std::string& model) const {
  return kind_ == ProviderKind::kOllama
             ? parse_ollama_response(response, model, options_.max_response_bytes)
             : parse_openai_response(response, provider_, model, options_.max_response_bytes);
}

std::uint64_t Client::start(const ChatCall& chat, Done done) {
  auto call = std::make_shared<Call>();
  call->id = next_id_.fetch_add(1);
  call->request_id = new_request_id();
  long context_limit = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->model = active_model_;
    context_limit = context_limit_;
  }
  // Throws on bad input, before any I/O.
  call->request = build(chat, call->request_id, call->model, context_limit);
  call->done = std::move(done);
  call->started = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_.load()) {
      calls_.emplace(call->id, call);
    } else {
      call->cancelled = true;
    }
  }
  if (call->cancelled) {
    Attempt a = cancelled_attempt(provider_, call->model);
    a.request_id = call->request_id;
    call->done(std::move(a));
    return call->id;
  }
  send(call, 0);
  return call->id;
}

void Client::send(const std::shared_ptr<Call>& call, long delay_ms) {
  call->send_at = Clock::now() + std::chrono::milliseconds(delay_ms);
  // The sends left in the retry budget: libcurl's own re-sends on a fresh connection
  // count as tries too, so a call never sends more requests than 1 + max_retries.
  call->request.max_sends = std::max(1, policy_.max_retries + 1 - call->tries);
  // The engine may run the callback synchronously (after shutdown), so no lock is
  // held across submit().
  const http::RequestId id = engine_->submit(
      call->request, [this, call](http::Response&& r) { on_response(call, std::move(r)); },
      delay_ms);
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->http_id = id;
    cancelled = call->cancelled;
  }
  if (cancelled) engine_->cancel(id);  // cancel() ran between submit and here
}

void Client::on_response(const std::shared_ptr<Call>& call, http::Response&& response) {
  // A try cancelled while it still waited out its backoff never left: not a try.
  if (!(response.error == http::TransportError::kCancelled && Clock::now() < call->send_at))
    call->tries += std::max(1, response.sends);  // a try that never sent still counts once
  Attempt a = parse(response, call->model);
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = call->cancelled;
  }
  if (cancelled && a.error != kErrorCancelled && !a.success) {
    a = cancelled_attempt(provider_, call->model);
  }
  const int retries_done = call->tries - 1;
  if (!cancelled && !closed_.load() && policy_.should_retry(a, retries_done)) {
    const double delay_s = policy_.next_delay(a, retries_done, jitter01());
    send(call, static_cast<long>(delay_s * 1000.0 + 0.5));
    return;
  }
  finish(call, std::move(a));
}

void Client::finish(const std::shared_ptr<Call>& call, Attempt&& a) {
  a.attempts = call->tries;
  a.latency_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - call->started).count();
  if (a.request_id.empty()) a.request_id = call->request_id;
  if (a.provider.empty()) a.provider = provider_;
  if (a.model.empty()) a.model = call->model;
  make_text_valid(a);
  bool close_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(call->id);
    close_now = close_when_idle_ && calls_.empty();
  }
  Done done = std::move(call->done);
  if (done) done(std::move(a));
  // On the I/O thread, engine shutdown only marks the stop; ~Engine joins the thread.
  if (close_now) close();
}

void Client::cancel(std::uint64_t call_id) {
  http::RequestId http_id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return;
    it->second->cancelled = true;
    http_id = it->second->http_id;
  }
  if (http_id) engine_->cancel(http_id);
}

Attempt Client::call(const ChatCall& chat) {
  auto result = std::make_shared<std::promise<Attempt>>();
  std::future<Attempt> f = result->get_future();
  start(chat, [result](Attempt&& a) { result->set_value(std::move(a)); });
  return f.get();
}

void Client::close() {
  if (closed_.exchange(true)) return;
  // shutdown() completes every transfer and pending retry with kCancelled; each
  // completion finishes its call (no retry: closed_ is set).
  engine_->shutdown();
}

void Client::abandon_after_fork() noexcept {
  engine_->abandon();
  engine_.release();  // deliberately leaked: its thread and sockets belong to the parent
  engine_ = std::make_unique<http::Engine>(engine_options(options_));
  std::lock_guard<std::mutex> lock(mu_);
  calls_.clear();
}

void Client::set_model(std::string model) {
  std::lock_guard<std::mutex> lock(mu_);
  // A limit learnt for another model no longer holds; one learnt while no model was
  // set (auto-pick) is the listed model's, which is what gets set.
  if (!active_model_.empty() && model != active_model_) context_limit_ = 0;
  active_model_ = std::move(model);
}

long Client::context_limit() const {
  std::lock_guard<std::mutex> lock(mu_);
  return context_limit_;
}

std::string Client::current_model() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_model_;
}

void Client::close_when_idle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    close_when_idle_ = true;
    if (!calls_.empty()) return;  // the last finish() closes
  }
  close();
}

bool Client::closing_when_idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return close_when_idle_;
}

HealthReport Client::check_health(double timeout_s, const HealthOptions& options) {
  const config::ProviderConfig& base =
      kind_ == ProviderKind::kOllama ? static_cast<const config::ProviderConfig&>(ollama_) : openai_;
  const std::string model = current_model();
  HealthReport report = llm::check_health(*engine_, provider_, base.base_url, model, base.api_key, timeout_s, options);
  if (report.max_model_len > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    // Learnt for the model the check was about: the configured one, or (empty model)
    // the first listed, which the caller then sets with set_model().
    if (active_model_ == model || (model.empty() && active_model_.empty()))
      context_limit_ = report.max_model_len;
  }
  return report;
}

std::size_t Client::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_.size();
}

}  // namespace llmbridge::llm
