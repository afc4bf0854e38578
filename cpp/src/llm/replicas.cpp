// Replica routing and passive health: see replicas.hpp. Every method takes one short
// lock; nothing here blocks or does I/O.
#include "llmbridge/llm/replicas.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/text/hash.hpp"

namespace llmbridge::llm {
namespace {

constexpr std::size_t kMaxEvents = 256;
constexpr double kEwmaAlpha = 0.2;

}  // namespace

bool parse_routing(std::string_view name, Routing& out) noexcept {
  if (name == "least_outstanding") {
    out = Routing::kLeastOutstanding;
    return true;
  }
  if (name == "prefix") {
    out = Routing::kPrefix;
    return true;
  }
  return false;
}

const char* to_string(Routing routing) noexcept {
  return routing == Routing::kPrefix ? "prefix" : "least_outstanding";
}

std::uint64_t ReplicaSet::key_of(std::string_view text) noexcept {
  return text::mix64(text::fnv1a(text)) | 1;  // never 0, which means "no key"
}

std::uint64_t ReplicaSet::score(std::uint64_t key, std::uint64_t url_hash) noexcept {
  return text::mix64(key ^ text::mix64(url_hash));
}

ReplicaSet::ReplicaSet(std::vector<std::string> urls, ReplicaOptions options, std::uint64_t seed)
    : urls_(std::move(urls)), options_(options), replicas_(urls_.size()), rng_(seed) {
  if (urls_.empty()) throw std::invalid_argument("a replica set needs at least one URL");
  for (const auto& u : urls_) {
    display_.push_back(config::display_url(u));
    url_hashes_.push_back(key_of(u));
  }
}

std::size_t ReplicaSet::least_outstanding(const std::vector<std::size_t>& candidates) {
  // Reservoir sampling over the minima: each tied replica is equally likely.
  std::size_t best = candidates.front();
  long best_load = replicas_[best].in_flight;
  int ties = 1;
  for (std::size_t k = 1; k < candidates.size(); ++k) {
    const std::size_t i = candidates[k];
    const long load = replicas_[i].in_flight;
    if (load < best_load) {
      best = i;
      best_load = load;
      ties = 1;
    } else if (load == best_load) {
      ++ties;
      if (std::uniform_int_distribution<int>(1, ties)(rng_) == 1) best = i;
    }
  }
  return best;
}

std::size_t ReplicaSet::acquire(std::uint64_t key, std::size_t avoid) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t n = replicas_.size();
  std::size_t chosen = 0;
  if (n > 1) {
    std::vector<std::size_t> candidates;
    candidates.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
      if (!replicas_[i].ejected) candidates.push_back(i);
    if (candidates.empty())  // every one ejected (cannot happen by ejection alone): use all
      for (std::size_t i = 0; i < n; ++i) candidates.push_back(i);
    if (avoid != kNone && candidates.size() > 1)
      candidates.erase(std::remove(candidates.begin(), candidates.end(), avoid), candidates.end());
    if (options_.routing == Routing::kPrefix && key != 0) {
      chosen = candidates.front();
      std::uint64_t best = 0;
      long total = 0;
      for (std::size_t i : candidates) {
        total += replicas_[i].in_flight;
        const std::uint64_t s = score(key, url_hashes_[i]);
        if (s >= best) {
          best = s;
          chosen = i;
        }
      }
      // Bounded load (consistent hashing with bounded loads, as Envoy and HAProxy do
      // it): counting this try, the chosen replica may hold at most ceil(factor x the
      // mean); beyond that the key's affinity yields to the load.
      const double mean = double(total + 1) / double(candidates.size());
      const double bound = std::ceil(options_.prefix_overload_factor * mean);
      if (double(replicas_[chosen].in_flight + 1) > bound && candidates.size() > 1)
        chosen = least_outstanding(candidates);
    } else {
      chosen = least_outstanding(candidates);
    }
  }
  Replica& r = replicas_[chosen];
  ++r.in_flight;
  ++r.requests;
  return chosen;
}

void ReplicaSet::eject(std::size_t i, std::string_view reason, Clock::time_point now) {
  Replica& r = replicas_[i];
  const auto quiet = std::chrono::duration<double>(options_.max_ejection_s);
  if (r.ejection_streak > 0 && r.readmitted_at != Clock::time_point{} && now - r.readmitted_at > quiet)
    r.ejection_streak = 0;  // it stayed healthy a whole cap's length: start over at the base
  const double seconds =
      std::min(options_.max_ejection_s, options_.base_ejection_s * std::ldexp(1.0, std::min(r.ejection_streak, 30)));
  ++r.ejection_streak;
  ++r.ejections;
  r.ejected = true;
  r.consecutive_failures = 0;
  r.ejected_until = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  push_event({ReplicaEvent::Kind::kEjected, display_[i], std::string(reason), seconds});
}

bool ReplicaSet::release(std::size_t i, TryOutcome outcome, double latency_ms, std::string_view reason,
                         Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica& r = replicas_.at(i);
  if (r.in_flight > 0) --r.in_flight;
  if (outcome == TryOutcome::kCancelled) return false;
  if (outcome == TryOutcome::kSuccess) {
    r.consecutive_failures = 0;
    r.ewma_latency_ms = r.ewma_latency_ms == 0 ? latency_ms : r.ewma_latency_ms + kEwmaAlpha * (latency_ms - r.ewma_latency_ms);
    return false;
  }
  ++r.errors;
  ++r.consecutive_failures;
  if (r.ejected || options_.eject_after <= 0 || r.consecutive_failures < options_.eject_after) return false;
  std::size_t healthy = 0;
  for (const auto& x : replicas_) healthy += x.ejected ? 0 : 1;
  if (healthy <= 1) return false;  // never the last healthy one
  eject(i, reason, now);
  return true;
}

long ReplicaSet::ejection_delay_ms(std::size_t i, Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Replica& r = replicas_.at(i);
  if (!r.ejected || r.ejected_until <= now) return 0;
  return long(std::ceil(std::chrono::duration<double, std::milli>(r.ejected_until - now).count()));
}

bool ReplicaSet::probe_result(std::size_t i, bool ok, std::string_view reason, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica& r = replicas_.at(i);
  if (!r.ejected) return false;
  if (ok) {
    r.ejected = false;
    r.consecutive_failures = 0;
    r.readmitted_at = now;
    push_event({ReplicaEvent::Kind::kReadmitted, display_[i], std::string(reason), 0});
    return false;
  }
  r.readmitted_at = Clock::time_point{};  // still failing: the streak goes on
  --r.ejections;                          // eject() counts it again: one ejection, re-extended
  eject(i, reason, now);
  return true;
}

std::vector<ReplicaStats> ReplicaSet::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ReplicaStats> out;
  out.reserve(replicas_.size());
  for (std::size_t i = 0; i < replicas_.size(); ++i) {
    const Replica& r = replicas_[i];
    out.push_back({display_[i], !r.ejected, r.in_flight, r.requests, r.errors, r.ewma_latency_ms, r.ejections});
  }
  return out;
}

std::size_t ReplicaSet::healthy_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const auto& r : replicas_) n += r.ejected ? 0 : 1;
  return n;
}

void ReplicaSet::push_event(ReplicaEvent&& e) {
  if (events_.size() >= kMaxEvents) events_.erase(events_.begin());
  events_.push_back(std::move(e));
}

std::vector<ReplicaEvent> ReplicaSet::drain_events() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ReplicaEvent> out;
  out.swap(events_);
  return out;
}

std::size_t ReplicaSet::pending_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

}  // namespace llmbridge::llm
