// A provider client: request building, one engine, retries with backoff as engine
// timers. One start() is one logical call; its callback runs exactly once with the
// final Attempt, after every retry, on the engine's I/O thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/engine.hpp"
#include "llmbridge/llm/attempt.hpp"
#include "llmbridge/llm/embeddings.hpp"
#include "llmbridge/llm/generation.hpp"
#include "llmbridge/llm/health.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/llm/provider_table.hpp"
#include "llmbridge/llm/replicas.hpp"
#include "llmbridge/llm/retry.hpp"
#include "llmbridge/llm/stats.hpp"
#include "llmbridge/llm/stream.hpp"
#include "llmbridge/schema/validator.hpp"

namespace llmbridge::llm {

struct ClientOptions {
  long max_connections = 64;
  std::string ca_file;     // custom CA bundle; empty = the system's
  bool verify_tls = true;
  std::size_t max_response_bytes = std::size_t(64) << 20;
  // Timing seams, for tests that check the retry schedule without measuring time:
  // `jitter` replaces the random draw in [0, 1] that RetryPolicy::next_delay takes, and
  // `on_retry` sees every retry the client schedules (the retry's number from 0, and the
  // delay in milliseconds it asked the engine for) on the I/O thread, before it is sent.
  std::function<double()> jitter;
  std::function<void(int retry, long delay_ms)> on_retry;
};

class Client {
 public:
  using Done = std::function<void(Attempt&&)>;
  using ChatDone = std::function<void(ChatResult&&)>;
  using EmbedDone = std::function<void(EmbeddingResult&&)>;

  Client(const config::VLLMConfig& config, ClientOptions options = {});
  Client(const config::OpenAIConfig& config, ClientOptions options = {});
  Client(const config::OllamaConfig& config, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a call. Bad input (a schema that is not a JSON object, messages that are
  // not a JSON array) throws std::invalid_argument before anything is sent. On a
  // closed client `done` runs at once with a "cancelled" attempt.
  //
  // Structured answers (docs/schema-validation.md): with the config's validate_schema,
  // the data of a call that gave a JSON schema (call_llm's schema; json_schema of
  // chat/generate/complete) is checked against it (schema_check.hpp). A mismatch is
  // retried at once, without a backoff delay, within max_retries; with schema_retry the
  // retry is a re-ask (reask_call: the model's answer and the list of errors added to
  // the conversation), else the same request again. A schema the validator cannot
  // compile is not checked; it and keywords the validator cannot check are reported
  // once per schema text (drain_schema_warnings). Streams are not checked.
  std::uint64_t start(const ChatCall& call, Done done);
  // chat / generate / complete: one logical call with retries, like start(). Bad input
  // (check_generate_call) throws std::invalid_argument before anything is sent.
  std::uint64_t start_generate(const GenerateCall& call, ChatDone done);
  ChatResult generate(const GenerateCall& call);

  // A token stream. Events go to `channel` (StreamStarted first, then tokens, then one
  // StreamEnd or StreamError, after which nothing is pushed). Tries are retried only
  // while no byte of the body has arrived; after that an error ends the stream. The
  // first-byte clock is the call's timeout (or the config's), the idle clock
  // options.stream_idle_timeout_s (keep-alive comments do not reset it). When the
  // channel is full the transfer pauses until the consumer empties it. cancel() ends
  // the stream with "cancelled" and frees the connection.
  std::uint64_t start_stream(const GenerateCall& call, std::shared_ptr<StreamChannel> channel);

  // Embeddings of call.texts: split into batches of call.batch_size, all sent at once
  // (the engine's connection limit applies), each with the usual retries, put back in
  // input order. One failed batch fails the result with that batch's error; no partial
  // result. The model is call.model, else the config's embedding_model, else the
  // current model. Empty texts: `done` runs at once with an empty success. Returns the
  // ids of the batches' calls (cancel() each to cancel the whole).
  std::vector<std::uint64_t> start_embed(const EmbedCall& call, EmbedDone done);
  // Thread-safe: the model an embed() with this EmbedCall::model uses (see start_embed).
  std::string embedding_model(std::string_view requested) const;
  EmbeddingResult embed(const EmbedCall& call);

  // Blocking: the server's model list through this client's engine (no retries).
  // Must not be called from the engine's I/O thread.
  ModelsResult list_models(double timeout_s);

  // Aborts the call (its transfer or its pending retry); `done` then gets "cancelled".
  void cancel(std::uint64_t call_id);
  // Blocks until the call is over.
  Attempt call(const ChatCall& call);
  // Completes every call in flight with "cancelled" and stops the engine. Idempotent.
  void close();
  bool closed() const noexcept { return closed_.load(); }
  // In a forked child: forget the parent's engine without touching it.
  void abandon_after_fork() noexcept;

  const ProviderSpec& spec() const noexcept { return *spec_; }
  const std::string& provider() const noexcept { return provider_; }
  const std::string& model() const noexcept { return model_; }
  std::size_t in_flight() const;

  // Thread-safe. The model of calls started from now on (calls in flight keep theirs);
  // model() still returns the configured one. Used to fill in an empty vLLM model with
  // the one the server lists.
  void set_model(std::string model);
  // Thread-safe: the model calls use now (configured, or the last set_model()).
  std::string current_model() const;

  // Thread-safe: close() as soon as no call is in flight (now, when none is). Calls may
  // still be started meanwhile; each keeps the client open until it finishes. When the
  // last one finishes, close() runs on the I/O thread right after its completion
  // callback, so that call's result is delivered normally.
  void close_when_idle();
  bool closing_when_idle() const;

  // Blocking: lists the server's models through this client's engine (same
  // connections, TLS settings and key) and evaluates them for current_model().
  // Must not be called from the engine's I/O thread (a completion callback).
  // When the server lists the model's max_model_len, calls started from then on ask
  // for at most what fits (fitted_max_tokens); context_limit() says what was learnt.
  HealthReport check_health(double timeout_s, const HealthOptions& options = {});
  // Thread-safe: the current model's context length as last listed by the server, or 0.
  long context_limit() const;

  // The config's base URLs (one, or several replicas): each HTTP try goes to the one
  // the ReplicaSet picks; a replica failing eject_after tries in a row is ejected and
  // probed (GET of the models path) until it answers 200. Thread-safe.
  std::size_t replica_count() const noexcept { return replicas_->size(); }
  std::vector<ReplicaStats> replica_stats() const { return replicas_->stats(); }
  // Ejections and re-admissions since the last call, for the caller to log.
  std::vector<ReplicaEvent> drain_replica_events() { return replicas_->drain_events(); }
  std::size_t pending_replica_events() const { return replicas_->pending_events(); }

  // Thread-safe: counters of this client's logical calls (call / chat / generate /
  // complete / embed / streams, each counted once when it completes), and their latency
  // quantiles. See stats.hpp for what a snapshot promises.
  StatsSnapshot stats() const { return stats_.snapshot(); }

  // Thread-safe: warnings about the schemas calls were started with, each once per
  // schema text and client: a schema that cannot be compiled (its answers are not
  // checked) or keywords the validator cannot check (those parts are not checked). The
  // caller logs them; the core never prints.
  std::vector<std::string> drain_schema_warnings();
  std::size_t pending_schema_warnings() const noexcept { return pending_warnings_.load(); }

 private:
  struct Call;
  struct Stream;
  struct EmbedJob;
  Client(const ProviderSpec& spec, config::ProviderConfig base, ClientOptions options);
  const config::ProviderConfig& base_config() const noexcept;
  http::Request build(const ChatCall& call, const std::string& request_id, const std::string& model,
                      long context_limit) const;
  http::Request build_generate(const GenerateCall& call, const std::string& request_id,
                               const std::string& model) const;
  Attempt parse(const http::Response& response, const std::string& model) const;
  std::shared_ptr<Call> new_call();
  std::uint64_t launch(const std::shared_ptr<Call>& call);
  void send(const std::shared_ptr<Call>& call, long delay_ms);
  void on_response(const std::shared_ptr<Call>& call, http::Response&& response);
  void on_stream_response(const std::shared_ptr<Call>& call, http::Response&& response);
  http::ChunkAction on_stream_chunk(const std::shared_ptr<Call>& call, std::string_view bytes);
  void watch_stream(const std::shared_ptr<Call>& call, long delay_ms);
  void end_stream(const std::shared_ptr<Call>& call, ChatResult&& failure);
  void finish(const std::shared_ptr<Call>& call, ChatResult&& result);
  void note_try(Call& call, int status, const std::string& error, double elapsed_ms);
  void forget(const std::shared_ptr<Call>& call);
  void finish_embed(const std::shared_ptr<EmbedJob>& job);
  void init_replicas(config::ProviderConfig& stored);
  std::uint64_t route_key(std::string_view prefix, std::string_view schema) const;
  void schedule_probe(std::size_t replica);
  void probe(std::size_t replica);
  // The compiled schema a call's answers are checked against, or null (validation off,
  // no schema, or a schema that does not compile). Notes warnings once per text.
  std::shared_ptr<const schema::Schema> schema_for(std::string_view schema_json);

  const ProviderSpec* spec_;
  std::string provider_;
  std::string model_;
  config::OpenAICompatibleConfig openai_;
  config::OllamaConfig ollama_;
  RetryPolicy policy_;
  ClientOptions options_;

  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Call>> calls_;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<bool> closed_{false};
  std::string active_model_;   // guarded by mu_; what set_model() set (starts as model_)
  long context_limit_ = 0;     // guarded by mu_; active_model_'s max_model_len, 0 = unknown
  bool close_when_idle_ = false;  // guarded by mu_
  CallStats stats_;
  mutable std::mutex warnings_mu_;
  std::unordered_set<std::size_t> warned_schemas_;  // guarded by warnings_mu_: hashes of texts warned about
  std::unordered_set<std::size_t> broken_schemas_;  // guarded by warnings_mu_: hashes of texts that did not compile
  std::vector<std::string> warnings_;               // guarded by warnings_mu_
  std::atomic<std::size_t> pending_warnings_{0};
  // Declared before the engine: the engine's pending probes use it until it is gone.
  std::unique_ptr<ReplicaSet> replicas_;
  std::unique_ptr<http::Engine> engine_;
};

}  // namespace llmbridge::llm
