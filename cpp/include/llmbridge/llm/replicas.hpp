// Several servers of one model behind one client: which replica each HTTP try goes to,
// and passive health (outlier detection, as Envoy does it).
//
// A plain, thread-safe class with no I/O: the Client asks it for a replica before each
// try, tells it how the try ended, and sends the probes it asks for. Time is passed in,
// so every rule is testable without a network or a clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::llm {

enum class Routing {
  kLeastOutstanding,  // fewest tries in flight, ties broken at random
  kPrefix,            // rendezvous hash of the call's prefix key, bounded by load
};

// "least_outstanding" / "prefix"; nullptr-free: false when the name is unknown.
bool parse_routing(std::string_view name, Routing& out) noexcept;
const char* to_string(Routing routing) noexcept;

// Ejection intervals: 1 s, 2 s, 4 s, ... doubling with each ejection in a row, capped.
inline constexpr double kBaseEjectionSeconds = 1.0;
inline constexpr double kMaxEjectionSeconds = 30.0;

struct ReplicaOptions {
  Routing routing = Routing::kLeastOutstanding;
  double prefix_overload_factor = 2.0;  // prefix: fall back when chosen > factor x mean in flight
  int eject_after = 3;                  // consecutive failed tries that eject a replica
  double base_ejection_s = kBaseEjectionSeconds;
  double max_ejection_s = kMaxEjectionSeconds;
};

// How one try ended, for outlier detection.
enum class TryOutcome {
  kSuccess,    // the replica answered (any status below 500)
  kFailure,    // connection error, timeout, TLS or other transport failure, or a 5xx
  kCancelled,  // the caller or close() stopped it: says nothing about the replica
};

struct ReplicaStats {
  std::string url;  // normalised, as display_url() shows it (no user:password@)
  bool healthy = true;
  long in_flight = 0;
  std::uint64_t requests = 0;  // tries sent to it
  std::uint64_t errors = 0;    // tries that failed (TryOutcome::kFailure)
  double ewma_latency_ms = 0;  // of answered tries; 0 before the first
  std::uint64_t ejections = 0;
};

struct ReplicaEvent {
  enum class Kind { kEjected, kReadmitted };
  Kind kind;
  std::string url;     // as display_url() shows it
  std::string reason;  // ejected: the last failure; re-admitted: what the probe saw
  double ejected_for_s = 0;  // ejected: the interval
};

class ReplicaSet {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kNone = std::size_t(-1);

  // `urls`: normalised base URLs, at least one, no duplicates (split_base_urls gives them).
  explicit ReplicaSet(std::vector<std::string> urls, ReplicaOptions options = {},
                      std::uint64_t seed = std::random_device{}());

  std::size_t size() const noexcept { return urls_.size(); }
  const std::string& url(std::size_t i) const { return urls_[i]; }
  // Replica i's URL without userinfo (config::display_url), for logs and try records.
  const std::string& display_url(std::size_t i) const { return display_[i]; }
  const ReplicaOptions& options() const noexcept { return options_; }

  // The replica for the next try; counts it in flight until release(). `key` is the
  // call's prefix key (prefix routing; 0 = none: least outstanding). `avoid` is the
  // replica the call's previous try failed on: another one is preferred when any is
  // healthy. Ejected and probing replicas get no traffic, except when none is healthy.
  std::size_t acquire(std::uint64_t key = 0, std::size_t avoid = kNone);

  // The try sent to `i` ended. A failure may eject the replica (never the last healthy
  // one): then the result is true and the caller schedules a probe for after
  // ejection_delay_ms(i). `reason` is the failure in the contract's words.
  bool release(std::size_t i, TryOutcome outcome, double latency_ms, std::string_view reason,
               Clock::time_point now = Clock::now());

  // Milliseconds until replica i's ejection interval ends (0 when not ejected or over).
  long ejection_delay_ms(std::size_t i, Clock::time_point now = Clock::now()) const;

  // The probe of an ejected replica ended: ok (a 200 from the models path) re-admits
  // it; otherwise it is ejected again for a longer interval and the result is true
  // (schedule the next probe after ejection_delay_ms).
  bool probe_result(std::size_t i, bool ok, std::string_view reason, Clock::time_point now = Clock::now());

  std::vector<ReplicaStats> stats() const;
  std::size_t healthy_count() const;

  // Ejections and re-admissions since the last drain, oldest first (at most 256 kept).
  std::vector<ReplicaEvent> drain_events();
  std::size_t pending_events() const;

  // Prefix keys: a stable 64-bit hash of the text (FNV-1a, mixed).
  static std::uint64_t key_of(std::string_view text) noexcept;
  // Rendezvous score of replica url hash `url_hash` for `key`; the highest wins.
  static std::uint64_t score(std::uint64_t key, std::uint64_t url_hash) noexcept;

 private:
  struct Replica {
    long in_flight = 0;
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    double ewma_latency_ms = 0;
    std::uint64_t ejections = 0;
    int consecutive_failures = 0;
    int ejection_streak = 0;  // ejections in a row without a quiet period; sets the interval
    bool ejected = false;     // out of rotation (waiting for its interval, or being probed)
    Clock::time_point ejected_until{};
    Clock::time_point readmitted_at{};
  };

  std::size_t least_outstanding(const std::vector<std::size_t>& candidates);
  void eject(std::size_t i, std::string_view reason, Clock::time_point now);
  void push_event(ReplicaEvent&& e);

  std::vector<std::string> urls_;
  std::vector<std::string> display_;
  std::vector<std::uint64_t> url_hashes_;
  ReplicaOptions options_;
  mutable std::mutex mu_;
  std::vector<Replica> replicas_;  // guarded by mu_
  std::vector<ReplicaEvent> events_;  // guarded by mu_
  std::mt19937_64 rng_;            // guarded by mu_
};

}  // namespace llmbridge::llm
