// The HTTP transfer engine: one I/O thread driving one libcurl multi handle.
//
// Any thread may submit, cancel, post or shut down; those calls only queue a command
// and wake the I/O thread. All libcurl work and every completion callback run on the
// I/O thread, with no engine lock held, so a callback may call back into the engine
// (a retry is a submit() with a delay from inside the previous try's callback).
// A request with Request::on_body_chunk set streams: its body pieces go to that function
// on the I/O thread as they arrive, then the completion callback runs once as usual.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "llmbridge/http/message.hpp"

namespace llmbridge::http {

struct EngineOptions {
  long max_connections = 64;      // CURLMOPT_MAX_TOTAL_CONNECTIONS (keep-alive pool limit)
  long max_host_connections = 0;  // CURLMOPT_MAX_HOST_CONNECTIONS, 0 = no limit
  std::string ca_file;            // custom CA bundle (CURLOPT_CAINFO); empty = system_ca_bundle()
  bool verify_tls = true;         // CURLOPT_SSL_VERIFYPEER/VERIFYHOST
  std::string user_agent = "llmbridge/0.1";
};

using RequestId = std::uint64_t;

// Runs on the I/O thread: it must be quick and must not block. Exceptions thrown by
// a callback are swallowed (there is nobody on the I/O thread to report them to).
using Callback = std::function<void(Response&&)>;

class Engine {
 public:
  explicit Engine(EngineOptions options = {});
  ~Engine();  // shutdown(), or abandon() when running in a forked child
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Thread-safe, also from inside a Callback. The transfer starts delay_ms after this
  // call (0 = now). Response::elapsed_ms counts from the hand-off to libcurl (after the
  // delay); for a request cancelled before it started, from this call. Starts the I/O thread on first use. After shutdown() (or in a
  // forked child of the process that started the thread) the callback runs at once,
  // on the calling thread, with kCancelled. The callback runs exactly once.
  RequestId submit(Request request, Callback on_done, long delay_ms = 0);

  // Thread-safe. Aborts a delayed, queued or running transfer; its callback runs on
  // the I/O thread with kCancelled. No-op for completed or unknown ids.
  void cancel(RequestId id);

  // Thread-safe. Lifts a pause that Request::on_body_chunk asked for (ChunkAction::kPause).
  // No-op for a transfer that is not paused, completed or unknown.
  void resume(RequestId id);

  // Runs fn on the I/O thread after delay_ms. Dropped without running on shutdown.
  void post(std::function<void()> fn, long delay_ms = 0);

  // Completes everything pending with kCancelled and stops the I/O thread. Idempotent.
  // From any other thread it also joins the I/O thread. From inside a callback (on the
  // I/O thread) it cannot join itself: it only marks the stop, the thread exits after
  // that callback returns, and a later shutdown()/~Engine() on another thread joins it.
  void shutdown();

  // Requests submitted and not yet completed (a request counts as completed just
  // before its callback is invoked).
  std::size_t in_flight() const;

  // For a forked child: forgets the inherited thread, curl handles and sockets without
  // touching them (deliberately leaking them) so a fresh Engine can be built. After it,
  // submit() completes with kCancelled at once. Safe to call more than once.
  void abandon() noexcept;

 private:
  struct State;  // defined in engine.cpp; shared with the I/O thread
  std::shared_ptr<State> state_;
};

}  // namespace llmbridge::http
