// Provider client: one engine, retries as engine timers, exactly one completion per call.
#include "llmbridge/llm/client.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <random>

#include "llmbridge/http/stream_parser.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/schema_check.hpp"
#include "llmbridge/text/ascii.hpp"
#include "llmbridge/text/repair.hpp"
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

double unix_ms_now() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
}

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

// The state of a token stream; touched only on the I/O thread (chunk callback,
// completion callback, watchdog), so it needs no lock.
struct Client::Stream {
  std::shared_ptr<StreamChannel> channel;
  bool sse = true;
  http::SseParser sse_parser;
  http::NdjsonParser ndjson_parser;
  StreamDecoder decoder;
  bool started = false;  // a byte of a 2xx body arrived: no more retries
  bool ended = false;    // StreamEnd or StreamError was pushed
  bool marker = false;   // [DONE] (SSE) or done:true (NDJSON) seen
  Clock::time_point last_event;
  Clock::time_point ended_at;
  double first_token_ms = -1;
  std::string abort_error;  // why the client aborted the try: "timeout", or a too-large event
  bool abort_retryable = true;
  long first_byte_ms = 0;
  long idle_ms = 0;
  std::vector<StreamEvent> batch;  // the events of the piece being decoded
  char first_byte = 0;              // of the body: '{' means JSON, not an event stream

  Stream(const ProviderSpec& spec, Operation op)
      : sse(spec.stream_format == StreamFormat::kSse), decoder(spec.dialect, op) {}
};

struct Client::Call {
  std::uint64_t id = 0;
  http::Request request;
  std::string request_id;
  Clock::time_point started;
  int tries = 0;
  Clock::time_point send_at;  // when the current try leaves (after its backoff delay)
  http::RequestId http_id = 0;
  bool cancelled = false;  // guarded by Client::mu_
  std::string model;       // the model this call was sent with
  // The outcome of one HTTP try, and where the final one goes.
  std::function<ChatResult(const http::Response&)> parse;
  ChatDone done;
  std::unique_ptr<Stream> stream;  // set for token streams
  // Routing: the replica the current try went to, the one the last try failed on (the
  // next try avoids it), and the prefix key (0: least outstanding).
  std::size_t replica = ReplicaSet::kNone;
  std::size_t failed_replica = ReplicaSet::kNone;
  std::uint64_t route_key = 0;
  bool in_try = false;      // a try was sent and its response has not come back
  bool embed_batch = false;  // one batch of an embed(): stats count the whole job once
  // The tries' records (note_try), and the one send() opened and nobody noted yet.
  std::vector<TryRecord> try_records;
  bool try_open = false;
  int tries_at_send = 0;
  std::size_t try_replica = ReplicaSet::kNone;
  double try_sent_ms = 0;  // Unix epoch ms
  // Structured answers: the schema 2xx answers are checked against (null: none), and
  // the request of a re-ask from (answer, re-ask message); null: a mismatch is retried
  // with the same request.
  std::shared_ptr<const schema::Schema> schema;
  std::function<http::Request(std::string_view answer, std::string_view reask)> reask;
};

Client::Client(const ProviderSpec& spec, config::ProviderConfig base, ClientOptions options)
    : spec_(&spec),
      provider_(spec.name),
      model_(base.model),
      policy_(RetryPolicy::from_config(base)),
      options_(std::move(options)),
      active_model_(base.model),
      engine_(std::make_unique<http::Engine>(engine_options(options_))) {}

Client::Client(const config::VLLMConfig& config, ClientOptions options)
    : Client(provider_spec(kProviderVLLM), config, std::move(options)) {
  openai_ = config;
  init_replicas(openai_);
}

Client::Client(const config::OpenAIConfig& config, ClientOptions options)
    : Client(provider_spec(kProviderOpenAI), config, std::move(options)) {
  openai_ = config;
  init_replicas(openai_);
}

Client::Client(const config::OllamaConfig& config, ClientOptions options)
    : Client(provider_spec(kProviderOllama), config, std::move(options)) {
  ollama_ = config;
  init_replicas(ollama_);
}

// Splits base_url into its replicas once. Requests are built against the first one and
// re-pointed per try (send()), so a single URL takes exactly the old path.
void Client::init_replicas(config::ProviderConfig& stored) {
  ReplicaOptions o;
  if (!parse_routing(stored.routing, o.routing)) o.routing = Routing::kLeastOutstanding;
  o.prefix_overload_factor = stored.prefix_overload_factor;
  o.eject_after = stored.eject_after;
  replicas_ = std::make_unique<ReplicaSet>(config::replica_urls(stored.base_url), o);
  stored.base_url = replicas_->url(0);
}

std::uint64_t Client::route_key(std::string_view prefix, std::string_view schema) const {
  if (replicas_->size() < 2 || replicas_->options().routing != Routing::kPrefix) return 0;
  // What vLLM's prefix cache can reuse: the start of the prompt (system prompt, or the
  // first messages) and the schema, which guided decoding compiles per request.
  std::string key(prefix.substr(0, 2048));
  key += '\0';
  key.append(schema);
  return ReplicaSet::key_of(key);
}

std::shared_ptr<const schema::Schema> Client::schema_for(std::string_view schema_json) {
  if (!base_config().validate_schema || text::trim(schema_json).empty()) return nullptr;
  const std::size_t key = std::hash<std::string_view>{}(schema_json);
  {
    std::lock_guard<std::mutex> lock(warnings_mu_);
    if (broken_schemas_.count(key)) return nullptr;  // warned about once; not compiled again
  }
  std::shared_ptr<const schema::Schema> compiled;
  std::string warning;
  try {
    compiled = schema::compile_cached(schema_json);  // once per text, process-wide
    if (!compiled->unsupported().empty()) {
      std::lock_guard<std::mutex> lock(warnings_mu_);
      if (warned_schemas_.count(key)) return compiled;
      warning = "the JSON schema uses what the validator cannot check, so answers are not checked there: ";
      const auto& parts = compiled->unsupported();
      for (std::size_t i = 0; i < parts.size() && i < 10; ++i) warning += (i ? "; " : "") + parts[i];
      if (parts.size() > 10) warning += "; and " + std::to_string(parts.size() - 10) + " more";
    }
  } catch (const std::exception& e) {
    // The server may well accept what we cannot compile: send the call, do not check it.
    warning = std::string("the JSON schema cannot be compiled by the validator, so answers to it are not "
                          "checked: ") + e.what();
    compiled = nullptr;
  }
  if (warning.empty()) return compiled;
  std::lock_guard<std::mutex> lock(warnings_mu_);
  if (!compiled) broken_schemas_.insert(key);
  if (!warned_schemas_.insert(key).second) return compiled;
  if (warned_schemas_.size() > 4096) warned_schemas_.clear();  // bounded: at worst a warning repeats
  if (broken_schemas_.size() > 4096) broken_schemas_.clear();
  text::make_valid_utf8(warning);
  warnings_.push_back(text::utf8_excerpt(warning, 1000));
  pending_warnings_.store(warnings_.size());
  return compiled;
}

std::vector<std::string> Client::drain_schema_warnings() {
  std::lock_guard<std::mutex> lock(warnings_mu_);
  std::vector<std::string> out;
  out.swap(warnings_);
  pending_warnings_.store(0);
  return out;
}

void Client::schedule_probe(std::size_t replica) {
  engine_->post([this, replica] { probe(replica); }, std::max(1L, replicas_->ejection_delay_ms(replica)));
}

// On the I/O thread: one GET of the models path on an ejected replica.
void Client::probe(std::size_t replica) {
  if (closed_.load()) return;
  http::Request request = build_models_request(*spec_, base_config());
  const std::string& base0 = replicas_->url(0);
  if (request.url.compare(0, base0.size(), base0) == 0)
    request.url = replicas_->url(replica) + request.url.substr(base0.size());
  request.timeout_ms = http::seconds_to_ms(std::min(base_config().timeout, 10.0), 10000);
  request.connect_timeout_ms = std::min(request.connect_timeout_ms, request.timeout_ms);
  request.max_sends = 1;
  engine_->submit(std::move(request), [this, replica](http::Response&& r) {
    if (r.error == http::TransportError::kCancelled) return;  // closing
    const bool ok = r.error == http::TransportError::kNone && r.status == 200;
    std::string reason = ok ? std::string("probe answered 200")
                         : r.error != http::TransportError::kNone
                             ? classify_transport_error(r.error, r.error_message, options_.max_response_bytes).error
                             : http_error(int(r.status));
    if (replicas_->probe_result(replica, ok, "probe: " + reason)) schedule_probe(replica);
  });
}

const config::ProviderConfig& Client::base_config() const noexcept {
  if (spec_->dialect == Dialect::kOllama) return ollama_;
  return openai_;
}

Client::~Client() { close(); }

http::Request Client::build(const ChatCall& call, const std::string& request_id,
                            const std::string& model, long context_limit) const {
  const bool ollama = spec_->dialect == Dialect::kOllama;
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
  return spec_->dialect == Dialect::kOllama
             ? parse_ollama_response(response, model, options_.max_response_bytes)
             : parse_openai_response(response, provider_, model, options_.max_response_bytes);
}

http::Request Client::build_generate(const GenerateCall& call, const std::string& request_id,
                                     const std::string& model) const {
  const bool ollama = spec_->dialect == Dialect::kOllama;
  RequestContext ctx{base_config(), model, ollama ? ollama_.num_ctx : 0,
                     ollama ? std::string_view(ollama_.keep_alive) : std::string_view(), request_id};
  long limit = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (model == active_model_) limit = context_limit_;  // learnt for this model only
  }
  http::Request r;
  if (limit > 0 && !call.options.max_tokens) {
    // As call_llm: the config's max_tokens, cut to what the prompt leaves of the context.
    GenerateCall fitted = call;
    fitted.options.max_tokens = fitted_max_tokens(base_config().max_tokens, limit,
                                                  call.messages_json.size() + call.prompt.size());
    r = build_generate_request(*spec_, ctx, fitted);
  } else {
    r = build_generate_request(*spec_, ctx, call);
  }
  r.max_response_bytes = options_.max_response_bytes;
  return r;
}

std::shared_ptr<Client::Call> Client::new_call() {
  auto call = std::make_shared<Call>();
  call->id = next_id_.fetch_add(1);
  call->request_id = new_request_id();
  return call;
}

// Registers the call and sends its first try; on a closed client it completes at once.
std::uint64_t Client::launch(const std::shared_ptr<Call>& call) {
  call->started = Clock::now();
  if (!call->embed_batch) stats_.begin();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_.load()) {
      calls_.emplace(call->id, call);
    } else {
      call->cancelled = true;
    }
  }
  if (call->cancelled) {
    ChatResult r;
    static_cast<Attempt&>(r) = cancelled_attempt(provider_, call->model);
    r.request_id = call->request_id;
    if (!call->embed_batch) stats_.record(r);
    if (call->stream) {
      call->stream->channel->push(StreamStarted{call->request_id, call->model});
      StreamErrorEvent e;
      e.error = std::string(kErrorCancelled);
      call->stream->channel->close(std::move(e));
      return call->id;
    }
    ChatDone done = std::move(call->done);
    if (done) done(std::move(r));
    return call->id;
  }
  send(call, 0);
  if (call->stream) watch_stream(call, 0);
  return call->id;
}

std::uint64_t Client::start(const ChatCall& chat, Done done) {
  auto call = new_call();
  long context_limit = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->model = active_model_;
    context_limit = context_limit_;
  }
  // Throws on bad input, before any I/O.
  call->request = build(chat, call->request_id, call->model, context_limit);
  call->route_key = route_key(chat.prompts.messages_json.empty() ? chat.prompts.system : chat.prompts.messages_json,
                              chat.schema_json);
  call->parse = [this, model = call->model](const http::Response& r) {
    ChatResult out;
    static_cast<Attempt&>(out) = parse(r, model);
    return out;
  };
  call->schema = schema_for(chat.schema_json);
  if (call->schema && base_config().schema_retry) {
    // The original call is kept: every re-ask is it plus the latest answer and errors.
    call->reask = [this, chat, request_id = call->request_id, model = call->model, context_limit](
                      std::string_view answer, std::string_view reask) {
      return build(reask_call(chat, answer, reask), request_id, model, context_limit);
    };
  }
  call->done = [done = std::move(done)](ChatResult&& r) { done(std::move(static_cast<Attempt&>(r))); };
  return launch(call);
}

std::uint64_t Client::start_generate(const GenerateCall& gen, ChatDone done) {
  auto call = new_call();
  call->model = gen.options.model.empty() ? current_model() : gen.options.model;
  call->request = build_generate(gen, call->request_id, call->model);  // throws on bad input
  call->route_key = route_key(gen.messages_json.empty() ? gen.prompt : gen.messages_json, gen.options.json_schema);
  const bool want_json = !gen.options.json_schema.empty() || gen.options.response_format.find("json") != std::string::npos;
  call->parse = [this, op = gen.op, model = call->model, want_json](const http::Response& r) {
    return parse_generate_response(*spec_, op, r, model, want_json, options_.max_response_bytes);
  };
  call->schema = schema_for(gen.options.json_schema);
  if (call->schema && base_config().schema_retry) {
    call->reask = [this, gen, request_id = call->request_id, model = call->model](std::string_view answer,
                                                                                  std::string_view reask) {
      return build_generate(reask_call(gen, answer, reask), request_id, model);
    };
  }
  call->done = std::move(done);
  return launch(call);
}

ChatResult Client::generate(const GenerateCall& gen) {
  auto result = std::make_shared<std::promise<ChatResult>>();
  std::future<ChatResult> f = result->get_future();
  start_generate(gen, [result](ChatResult&& r) { result->set_value(std::move(r)); });
  return f.get();
}

std::uint64_t Client::start_stream(const GenerateCall& gen, std::shared_ptr<StreamChannel> channel) {
  auto call = new_call();
  call->model = gen.options.model.empty() ? current_model() : gen.options.model;
  GenerateCall streamed = gen;
  streamed.stream = true;
  call->request = build_generate(streamed, call->request_id, call->model);  // throws on bad input
  call->route_key = route_key(gen.messages_json.empty() ? gen.prompt : gen.messages_json, gen.options.json_schema);
  auto stream = std::make_unique<Stream>(*spec_, gen.op);
  stream->channel = std::move(channel);
  const double first_byte_s = gen.options.timeout_s > 0 ? gen.options.timeout_s : base_config().timeout;
  stream->first_byte_ms = http::seconds_to_ms(first_byte_s, 120000);
  stream->idle_ms = http::seconds_to_ms(gen.options.stream_idle_timeout_s, 60000);
  call->request.timeout_ms = 0;  // no total limit: the watchdog keeps the two stream clocks
  call->stream = std::move(stream);
  std::weak_ptr<Call> weak = call;
  call->stream->channel->set_resume([this, weak] {
    if (auto c = weak.lock()) {
      http::RequestId id;
      {
        std::lock_guard<std::mutex> lock(mu_);
        id = c->http_id;
      }
      engine_->resume(id);
    }
  });
  call->parse = [this, op = gen.op, model = call->model](const http::Response& r) {
    // Only reached for a try that failed before its body: the error classification.
    return parse_generate_response(*spec_, op, r, model, false, options_.max_response_bytes);
  };
  return launch(call);
}

// ---- embeddings ----

struct Client::EmbedJob {
  std::mutex mu;
  std::vector<EmbeddingResult> batches;  // the last try's parse of each batch
  std::vector<Attempt> outcomes;         // each batch's final outcome
  std::size_t left = 0;
  EmbedDone done;
  int expected_dimensions = 0;
  Clock::time_point started;
  std::string model;
};

std::string Client::embedding_model(std::string_view requested) const {
  std::string model(requested);
  if (model.empty() && spec_->dialect == Dialect::kOpenAI) model = openai_.embedding_model;
  if (model.empty()) model = current_model();
  return model;
}

std::vector<std::uint64_t> Client::start_embed(const EmbedCall& call, EmbedDone done) {
  const std::string model = embedding_model(call.model);
  if (call.batch_size == 0) throw std::invalid_argument("embedding_batch_size must be >= 1");
  const bool by_messages = !call.messages_json.empty();
  if (by_messages && spec_->dialect != Dialect::kOpenAI)
    throw std::invalid_argument("image embeddings need an OpenAI-compatible server such as vLLM (" + provider_ +
                                " has no chat-style embeddings request)");
  if (call.texts.empty() && !by_messages) {
    EmbeddingResult r;
    r.success = true;
    r.provider = provider_;
    r.model = model;
    stats_.begin();
    stats_.record(r);
    done(std::move(r));
    return {};
  }
  auto job = std::make_shared<EmbedJob>();
  const std::size_t n = by_messages ? 1 : call.texts.size();
  const std::size_t batches = by_messages ? 1 : (n + call.batch_size - 1) / call.batch_size;
  job->batches.resize(batches);
  job->outcomes.resize(batches);
  job->left = batches;
  job->done = std::move(done);
  // embeddings.hpp: dimensions asked of the server are checked like expected_dimensions.
  job->expected_dimensions = call.dimensions > 0 ? call.dimensions : call.expected_dimensions;
  job->started = Clock::now();
  job->model = model;
  // Every request is built before any is sent: bad input throws with nothing sent.
  std::vector<std::shared_ptr<Call>> calls;
  calls.reserve(batches);
  for (std::size_t b = 0; b < batches; ++b) {
    const std::size_t begin = b * call.batch_size, end = std::min(n, begin + call.batch_size);
    auto c = new_call();
    c->embed_batch = true;
    c->model = model;
    c->request = build_embed_request(*spec_, base_config(), model, call.texts, begin, end, call.dimensions,
                                     c->request_id, call.messages_json);
    c->request.max_response_bytes = options_.max_response_bytes;
    if (call.timeout_s > 0) c->request.timeout_ms = http::seconds_to_ms(call.timeout_s, c->request.timeout_ms);
    c->parse = [this, job, b, rows = end - begin, model](const http::Response& response) {
      EmbeddingResult e = parse_embed_response(*spec_, response, model, rows, options_.max_response_bytes);
      ChatResult out;
      static_cast<Attempt&>(out) = static_cast<const Attempt&>(e);
      std::lock_guard<std::mutex> lock(job->mu);
      job->batches[b] = std::move(e);
      return out;
    };
    c->done = [this, job, b](ChatResult&& r) {
      std::size_t left;
      {
        std::lock_guard<std::mutex> lock(job->mu);
        job->outcomes[b] = std::move(static_cast<Attempt&>(r));
        left = --job->left;
      }
      if (left == 0) finish_embed(job);
    };
    calls.push_back(std::move(c));
  }
  stats_.begin();  // the job is one logical call; finish_embed() records it
  std::vector<std::uint64_t> ids;
  ids.reserve(calls.size());
  for (auto& c : calls) ids.push_back(c->id);
  for (auto& c : calls) launch(c);
  return ids;
}

void Client::finish_embed(const std::shared_ptr<EmbedJob>& job) {
  EmbeddingResult out;
  out.provider = provider_;
  out.model = job->model;
  out.success = true;
  int prompt_tokens = 0;
  bool tokens_known = true;
  std::size_t rows = 0;
  for (std::size_t b = 0; b < job->outcomes.size(); ++b) {
    const Attempt& a = job->outcomes[b];
    out.attempts += a.attempts;
    if (!a.success && out.success) {
      // The first failed batch (in input order) is the result's error.
      static_cast<Attempt&>(out) = a;
      out.success = false;
    }
    if (a.prompt_tokens < 0) tokens_known = false;
    else prompt_tokens += a.prompt_tokens;
    rows += job->batches[b].rows;
  }
  if (out.success) {
    out.dims = job->batches.empty() ? 0 : job->batches.front().dims;
    out.vectors.reserve(rows * out.dims);
    for (auto& b : job->batches) {
      if (b.dims != out.dims) {
        out.success = false;
        out.retryable = true;
        out.error = invalid_json_error("the batches' embeddings have different lengths (" + std::to_string(out.dims) +
                                       " and " + std::to_string(b.dims) + ")");
        break;
      }
      out.vectors.insert(out.vectors.end(), b.vectors.begin(), b.vectors.end());
      if (!b.model.empty()) out.model = b.model;
      if (!b.request_id.empty() && out.request_id.empty()) out.request_id = b.request_id;
      if (out.status_code == 0) out.status_code = b.status_code;
    }
    out.rows = rows;
    if (out.success && job->expected_dimensions > 0 && out.dims != std::size_t(job->expected_dimensions)) {
      out.success = false;
      out.retryable = false;
      out.error = embedding_dimension_error(job->expected_dimensions, out.dims);
    }
  }
  if (!out.success) {
    out.vectors.clear();
    out.rows = out.dims = 0;
  }
  int attempts = 0;
  out.tries.clear();  // the failed batch's own, copied above: every batch's follow
  for (auto& a : job->outcomes) {
    attempts += a.attempts;
    for (auto& t : a.tries) out.tries.push_back(std::move(t));
  }
  out.attempts = attempts;
  out.prompt_tokens = tokens_known ? prompt_tokens : -1;
  out.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - job->started).count();
  if (out.provider.empty()) out.provider = provider_;
  make_text_valid(out);
  stats_.record(out);
  EmbedDone done = std::move(job->done);
  job->batches.clear();
  if (done) done(std::move(out));
}

EmbeddingResult Client::embed(const EmbedCall& call) {
  auto result = std::make_shared<std::promise<EmbeddingResult>>();
  std::future<EmbeddingResult> f = result->get_future();
  start_embed(call, [result](EmbeddingResult&& r) { result->set_value(std::move(r)); });
  return f.get();
}

void Client::send(const std::shared_ptr<Call>& call, long delay_ms) {
  call->send_at = Clock::now() + std::chrono::milliseconds(delay_ms);
  // The sends left in the retry budget: libcurl's own re-sends on a fresh connection
  // count as tries too, so a call never sends more requests than 1 + max_retries.
  call->request.max_sends = std::max(1, policy_.max_retries + 1 - call->tries);
  http::Request request = call->request;
  call->replica = replicas_->acquire(call->route_key, call->failed_replica);
  call->try_open = true;
  call->tries_at_send = call->tries;
  call->try_replica = call->replica;
  call->try_sent_ms = unix_ms_now() + double(delay_ms);
  if (call->replica != 0) {
    // The request was built against replica 0's URL: only the base changes.
    const std::string& base0 = replicas_->url(0);
    if (request.url.compare(0, base0.size(), base0) == 0)
      request.url = replicas_->url(call->replica) + request.url.substr(base0.size());
  }
  if (call->stream) {
    call->stream->abort_error.clear();
    std::weak_ptr<Call> weak = call;
    request.on_body_chunk = [this, weak](std::string_view bytes) {
      auto c = weak.lock();
      return c ? on_stream_chunk(c, bytes) : http::ChunkAction::kAbort;
    };
  }
  // The engine may run the callback synchronously (after shutdown), so no lock is
  // held across submit().
  call->in_try = true;
  const http::RequestId id = engine_->submit(
      std::move(request), [this, call](http::Response&& r) { on_response(call, std::move(r)); }, delay_ms);
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->http_id = id;
    cancelled = call->cancelled;
  }
  if (cancelled) engine_->cancel(id);  // cancel() ran between submit and here
}

void Client::on_response(const std::shared_ptr<Call>& call, http::Response&& response) {
  call->in_try = false;
  if (call->replica != ReplicaSet::kNone) {
    // Outlier detection: connection errors, timeouts and 5xx count against the replica.
    const std::size_t replica = call->replica;
    call->replica = ReplicaSet::kNone;
    TryOutcome outcome = TryOutcome::kSuccess;
    std::string reason;
    if (response.error == http::TransportError::kCancelled) {
      outcome = TryOutcome::kCancelled;
    } else if (response.error != http::TransportError::kNone && response.error != http::TransportError::kTooLarge) {
      outcome = TryOutcome::kFailure;
      reason = classify_transport_error(response.error, response.error_message, options_.max_response_bytes).error;
    } else if (response.status >= 500) {
      outcome = TryOutcome::kFailure;
      reason = http_error(int(response.status));
    }
    call->failed_replica = outcome == TryOutcome::kFailure ? replica : ReplicaSet::kNone;
    if (replicas_->release(replica, outcome, response.elapsed_ms, reason)) schedule_probe(replica);
  }
  // A try cancelled while it still waited out its backoff never left: not a try.
  if (!(response.error == http::TransportError::kCancelled && Clock::now() < call->send_at))
    call->tries += std::max(1, response.sends);  // a try that never sent still counts once
  if (call->stream && (call->stream->started || call->stream->ended)) {
    on_stream_response(call, std::move(response));
    return;
  }
  ChatResult a;
  try {
    a = call->parse(response);
  } catch (const std::exception& e) {
    // A parser that throws (out of memory, or a bug) must not leave the call without a
    // result: the engine swallows what escapes its callbacks, so the call would hang.
    static_cast<Attempt&>(a) = Attempt{};
    a.provider = provider_;
    a.model = call->model;
    a.status_code = static_cast<int>(response.status);
    a.error = invalid_json_error(std::string("the answer could not be parsed (") + e.what() + ")");
    a.retryable = true;
  }
  if (call->schema) check_schema(*call->schema, a);
  if (call->stream && !call->stream->abort_error.empty()) {
    // The watchdog aborted a try that had no byte yet: the first-byte clock ran out.
    a.error = call->stream->abort_error;
    a.retryable = call->stream->abort_retryable;
    a.success = false;
  } else if (call->stream && a.success) {
    // A 2xx whose body never came (empty body): not a stream.
    a.success = false;
    a.error = connection_error("the stream ended before its first event");
    a.retryable = true;
  }
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = call->cancelled;
  }
  if (cancelled && a.error != kErrorCancelled && !a.success) {
    static_cast<Attempt&>(a) = cancelled_attempt(provider_, call->model);
  }
  note_try(*call, static_cast<int>(response.status), a.error, response.elapsed_ms);
  const int retries_done = call->tries - 1;
  if (!cancelled && !closed_.load() && policy_.should_retry(a, retries_done)) {
    long delay_ms = 0;
    if (!a.schema_errors.empty()) {
      // The server answered; the answer was wrong. Nothing to wait out: ask again now,
      // showing the model its errors when re-asking is on.
      if (call->reask) {
        try {
          call->request = call->reask(a.raw_response, reask_message(a.schema_errors));
        } catch (const std::exception&) {
          // Not expected (the call was checked when it started); the same request, then.
        }
      }
    } else {
      const double jitter = options_.jitter ? std::clamp(options_.jitter(), 0.0, 1.0) : jitter01();
      delay_ms = http::seconds_to_ms(policy_.next_delay(a, retries_done, jitter), 0);
    }
    if (options_.on_retry) options_.on_retry(retries_done, delay_ms);
    send(call, delay_ms);
    return;
  }
  if (call->stream) {
    end_stream(call, std::move(a));
    forget(call);
    return;
  }
  finish(call, std::move(a));
}

http::ChunkAction Client::on_stream_chunk(const std::shared_ptr<Call>& call, std::string_view bytes) {
  Stream& st = *call->stream;
  if (st.ended) return http::ChunkAction::kContinue;  // after the marker: drain quietly
  const auto now = Clock::now();
  if (!st.started) {
    st.started = true;
    st.first_byte = bytes.empty() ? '\0' : bytes.front();
    st.last_event = now;
    st.channel->push(StreamStarted{call->request_id, call->model});
  }
  // The events of this piece go to the channel together: one lock, one wake-up.
  struct Ctx {
    Client::Stream* st;
    Client::Call* call;
    Clock::time_point now;
  } ctx{&st, call.get(), now};
  const StreamDecoder::Sink sink = [p = &ctx](StreamEvent&& e) {
    if (p->st->first_token_ms < 0 && std::holds_alternative<Token>(e))
      p->st->first_token_ms = std::chrono::duration<double, std::milli>(p->now - p->call->started).count();
    p->st->batch.push_back(std::move(e));
  };
  http::StreamError perr;
  if (st.sse) {
    perr = st.sse_parser.feed(bytes, [&](const http::SseEvent& ev) {
      st.last_event = now;
      if (ev.done) {
        st.marker = true;
        return;
      }
      st.decoder.feed(ev.data, sink);
    });
  } else {
    perr = st.ndjson_parser.feed(bytes, [&](const http::NdjsonLine& line) {
      st.last_event = now;
      st.decoder.feed(line.json, sink);
      if (st.decoder.done()) st.marker = true;
    });
  }
  const bool full = st.channel->push_many(st.batch);
  if (perr != http::StreamError::kNone) {
    st.abort_error = invalid_json_error(std::string("a stream event is too large (") + http::to_string(perr) + ")");
    st.abort_retryable = false;
    return http::ChunkAction::kAbort;
  }
  if (st.decoder.failed()) return http::ChunkAction::kAbort;
  if (st.marker) {
    // The stream is complete: deliver its end now, without waiting for the body's end
    // (some gateways linger after [DONE]); the rest of the body is drained quietly.
    ChatResult none;
    end_stream(call, std::move(none));
    return http::ChunkAction::kContinue;
  }
  return full ? http::ChunkAction::kPause : http::ChunkAction::kContinue;
}

void Client::on_stream_response(const std::shared_ptr<Call>& call, http::Response&& response) {
  Stream& st = *call->stream;
  if (!st.ended && !st.sse && response.error == http::TransportError::kNone && !st.decoder.failed()) {
    // The body ended cleanly. A last NDJSON line without its LF is still a value when
    // it is whole JSON (protocols.md §3.3): decode it like any other line. A line cut
    // short leaves the stream cut (reported below as ending before done:true).
    std::string last;
    st.ndjson_parser.finish([&](const http::NdjsonLine& line) {
      if (text::is_valid_json(line.json) || text::is_valid_json(text::replace_invalid_utf8(line.json)))
        last.assign(line.json);
    });
    if (!last.empty()) {
      st.ndjson_parser = http::NdjsonParser();  // finished (and empty): take the line anew
      last += '\n';
      on_stream_chunk(call, last);
    }
  }
  if (st.ended) {
    forget(call);
    return;
  }
  // Started and not complete: the body ended, failed, or was aborted before its marker.
  ChatResult failure;
  failure.status_code = static_cast<int>(response.status);
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = call->cancelled;
  }
  if (st.decoder.failed()) {
    failure.error = st.decoder.error();
    failure.retryable = st.decoder.error_status() == 0 || is_retryable_status(st.decoder.error_status());
    failure.raw_response = st.decoder.error_message();
    if (st.decoder.error_status()) failure.status_code = st.decoder.error_status();
  } else if (!st.abort_error.empty()) {
    failure.error = st.abort_error;
    failure.retryable = st.abort_retryable;
  } else if (cancelled || closed_.load()) {
    failure.error = std::string(kErrorCancelled);
  } else if (response.error != http::TransportError::kNone) {
    ErrorClass e = classify_transport_error(response.error, response.error_message, options_.max_response_bytes);
    failure.error = std::move(e.error);
    failure.retryable = e.retryable;
  } else if (st.sse && st.sse_parser.events() == 0 && st.first_byte == '{') {
    // A server (or proxy) that ignored "stream": true and answered with one JSON body.
    failure.error = invalid_json_error("the server answered with one JSON body, not an event stream "
                                       "(it ignored \"stream\": true?)");
    failure.retryable = false;
  } else {
    const std::string marker = st.sse ? "[DONE]" : "done:true";
    failure.error = connection_error("the stream ended before " + marker + " (" +
                                     std::to_string(st.decoder.tokens()) + " tokens received)");
    failure.retryable = true;
  }
  note_try(*call, static_cast<int>(response.status), failure.error, response.elapsed_ms);
  end_stream(call, std::move(failure));
  forget(call);
}

// Pushes the stream's last event: StreamEnd when `failure` holds no error, else
// StreamError (after a StreamStarted when the stream never started).
void Client::end_stream(const std::shared_ptr<Call>& call, ChatResult&& failure) {
  Stream& st = *call->stream;
  if (st.ended) return;
  st.ended = true;
  st.ended_at = Clock::now();
  // The marker ends the stream while its try is still open: a body piece arrives only
  // for a final 2xx (http::Request::on_body_chunk), and servers stream with 200.
  note_try(*call, 200, failure.error,
           std::chrono::duration<double, std::milli>(st.ended_at - call->send_at).count());
  {
    // The stream's one record in the stats. From the chunk callback (the marker) the
    // current try has not been counted in call->tries yet.
    Attempt counted;
    counted.success = failure.error.empty();
    counted.error = failure.error;
    counted.attempts = call->tries + (call->in_try ? 1 : 0);
    counted.latency_ms = std::chrono::duration<double, std::milli>(st.ended_at - call->started).count();
    counted.prompt_tokens = st.decoder.prompt_tokens();
    counted.completion_tokens = st.decoder.completion_tokens();
    stats_.record(counted);
  }
  if (!st.started) {
    st.started = true;
    st.channel->push(StreamStarted{call->request_id, call->model});
  }
  if (!failure.error.empty()) {
    StreamErrorEvent e;
    e.error = std::move(failure.error);
    e.retryable = failure.retryable;
    e.status_code = failure.status_code;
    // 401/403 bodies are left out: some servers quote the key they were sent.
    if (!failure.auth_refused)
      e.message = text::utf8_excerpt(st.decoder.failed() ? failure.raw_response
                                                       : error_message_from_body(failure.raw_response),
                                   200);
    text::make_valid_utf8(e.error);
    text::make_valid_utf8(e.message);  // it quotes the server: an error page in Latin-1, say
    e.tries = std::move(call->try_records);
    st.channel->close(std::move(e));
    return;
  }
  StreamEndEvent end;
  end.finish_reason = st.decoder.finish_reason();
  end.model = st.decoder.model().empty() ? call->model : st.decoder.model();
  end.tool_calls = st.decoder.tool_calls();
  end.metrics.tokens = st.decoder.tokens();
  end.metrics.prompt_tokens = st.decoder.prompt_tokens();
  end.metrics.completion_tokens = st.decoder.completion_tokens();
  finish_metrics(end.metrics, st.first_token_ms,
                 std::chrono::duration<double, std::milli>(st.ended_at - call->started).count());
  end.tries = std::move(call->try_records);
  st.channel->close(std::move(end));
}

void Client::watch_stream(const std::shared_ptr<Call>& call, long delay_ms) {
  std::weak_ptr<Call> weak = call;
  Stream& st = *call->stream;
  const long tick = std::clamp(std::min(st.first_byte_ms, st.idle_ms) / 8, 5L, 250L);
  engine_->post(
      [this, weak, tick] {
        auto c = weak.lock();
        if (!c) return;
        Stream& s = *c->stream;
        http::RequestId id;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (!calls_.count(c->id)) return;  // finished
          id = c->http_id;
        }
        const auto now = Clock::now();
        auto ms = [&](Clock::time_point t) { return std::chrono::duration<double, std::milli>(now - t).count(); };
        if (s.ended) {
          // Complete, but the body has not ended: give a lingering gateway a second.
          if (ms(s.ended_at) > 1000.0) engine_->cancel(id);
          else watch_stream(c, tick);
          return;
        }
        if (s.channel->paused()) {
          s.last_event = now;  // the consumer is the slow one: the server is not idle
        } else if (!s.started) {
          if (now >= c->send_at && ms(c->send_at) > double(s.first_byte_ms)) {
            s.abort_error = std::string(kErrorTimeout);
            s.abort_retryable = true;
            engine_->cancel(id);
          }
        } else if (ms(s.last_event) > double(s.idle_ms)) {
          s.abort_error = std::string(kErrorTimeout);
          s.abort_retryable = true;
          engine_->cancel(id);
        }
        watch_stream(c, tick);
      },
      delay_ms == 0 ? tick : delay_ms);
}

void Client::forget(const std::shared_ptr<Call>& call) {
  bool close_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!calls_.erase(call->id)) return;
    close_now = close_when_idle_ && calls_.empty();
  }
  if (close_now) close();
}

void Client::finish(const std::shared_ptr<Call>& call, ChatResult&& a) {
  a.attempts = call->tries;
  a.tries = std::move(call->try_records);
  a.latency_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - call->started).count();
  if (a.request_id.empty()) a.request_id = call->request_id;
  if (a.provider.empty()) a.provider = provider_;
  if (a.model.empty()) a.model = call->model;
  make_text_valid(a);
  text::make_valid_utf8(a.text);
  text::make_valid_utf8(a.reasoning);
  for (auto& t : a.tool_calls) {
    text::make_valid_utf8(t.id);
    text::make_valid_utf8(t.name);
    text::make_valid_utf8(t.arguments_text);
  }
  if (!call->embed_batch) stats_.record(a);
  bool close_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(call->id);
    close_now = close_when_idle_ && calls_.empty();
  }
  ChatDone done = std::move(call->done);
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
  stats_.forget_in_flight();
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

ModelsResult Client::list_models(double timeout_s) {
  http::Request request = build_models_request(*spec_, base_config());
  request.timeout_ms = http::seconds_to_ms(timeout_s, 10000);
  request.connect_timeout_ms = std::min(request.connect_timeout_ms, request.timeout_ms);
  auto result = std::make_shared<std::promise<http::Response>>();
  std::future<http::Response> f = result->get_future();
  engine_->submit(std::move(request), [result](http::Response&& r) { result->set_value(std::move(r)); });
  ModelsResult m = parse_models_response(*spec_, f.get());
  m.attempts = 1;
  make_text_valid(m);
  for (auto& info : m.models) {
    text::make_valid_utf8(info.id);
    text::make_valid_utf8(info.owned_by);
  }
  return m;
}

HealthReport Client::check_health(double timeout_s, const HealthOptions& options) {
  const config::ProviderConfig& base =
      base_config();
  const std::string model = current_model();
  std::string urls = base.base_url;  // replica 0; the others follow, comma-separated
  for (std::size_t i = 1; i < replicas_->size(); ++i) urls += "," + replicas_->url(i);
  HealthReport report = llm::check_health(*engine_, provider_, urls, model, base.api_key, timeout_s, options);
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

// Closes the try send() opened: one record per try, whichever path ends it first (the
// response, or a stream's marker while the body lingers). A try cancelled during its
// backoff never left and gets none.
void Client::note_try(Call& call, int status, const std::string& error, double elapsed_ms) {
  if (!call.try_open) return;
  call.try_open = false;
  const int attempt = call.in_try ? call.tries + 1 : call.tries;  // in_try: not counted yet
  if (attempt == call.tries_at_send) return;
  TryRecord t;
  t.attempt = attempt;
  t.status = status;
  t.error = error;
  if (call.try_replica != ReplicaSet::kNone) t.replica = replicas_->display_url(call.try_replica);
  t.start_ms = call.try_sent_ms;
  t.elapsed_ms = elapsed_ms;
  text::make_valid_utf8(t.error);
  call.try_records.push_back(std::move(t));
}

}  // namespace llmbridge::llm
