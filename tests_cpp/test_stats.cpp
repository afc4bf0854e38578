// CallStats: histogram quantiles on known inputs (within one bucket), counters from
// synthetic Attempts, and exact totals when two threads record at once.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>

#include "llmbridge/llm/stats.hpp"

using namespace llmbridge::llm;

namespace {

Attempt attempt(bool ok, std::string error, int attempts, double latency_ms, int in = -1, int out = -1) {
  Attempt a;
  a.success = ok;
  a.error = std::move(error);
  a.attempts = attempts;
  a.latency_ms = latency_ms;
  a.prompt_tokens = in;
  a.completion_tokens = out;
  return a;
}

// Within one bucket's width of `expected` (the growth factor either way).
bool near_bucket(double got, double expected) {
  return got >= expected / LatencyHistogram::kGrowth && got <= expected * LatencyHistogram::kGrowth;
}

}  // namespace

TEST_CASE("stats: buckets cover 0.1 ms to 10 minutes", "[stats]") {
  CHECK(LatencyHistogram::bucket_of(0.0) == 0);
  CHECK(LatencyHistogram::bucket_of(-1.0) == 0);
  CHECK(LatencyHistogram::bucket_of(std::nan("")) == 0);
  CHECK(LatencyHistogram::bucket_of(1e12) == LatencyHistogram::kBuckets - 1);
  CHECK(LatencyHistogram::lower_edge(LatencyHistogram::kBuckets - 2) >= 600000.0);
  for (double ms : {0.2, 1.0, 7.5, 100.0, 2500.0, 60000.0}) {
    const std::size_t b = LatencyHistogram::bucket_of(ms);
    CHECK(LatencyHistogram::lower_edge(b) <= ms * (1 + 1e-9));
    CHECK(ms < LatencyHistogram::lower_edge(b + 1) * (1 + 1e-9));
  }
}

TEST_CASE("stats: quantiles of 1..1000 ms are within one bucket", "[stats]") {
  LatencyHistogram h;
  CHECK(h.quantile(0.5) == 0.0);
  for (int i = 1; i <= 1000; ++i) h.record(double(i));
  CHECK(h.count() == 1000);
  CHECK(near_bucket(h.quantile(0.50), 500.0));
  CHECK(near_bucket(h.quantile(0.95), 950.0));
  CHECK(near_bucket(h.quantile(0.99), 990.0));
  CHECK(near_bucket(h.quantile(1.0), 1000.0));
  CHECK(h.quantile(0.50) <= h.quantile(0.95));
  CHECK(h.quantile(0.95) <= h.quantile(0.99));
}

TEST_CASE("stats: a skewed sample puts p99 in the tail", "[stats]") {
  LatencyHistogram h;
  for (int i = 0; i < 980; ++i) h.record(10.0);
  for (int i = 0; i < 20; ++i) h.record(5000.0);
  CHECK(near_bucket(h.quantile(0.50), 10.0));
  CHECK(near_bucket(h.quantile(0.95), 10.0));
  CHECK(near_bucket(h.quantile(0.99), 5000.0));
}

TEST_CASE("stats: error kinds drop the details after the colon", "[stats]") {
  CHECK(error_kind("connection_error: refused") == "connection_error");
  CHECK(error_kind("invalid_json: cut short") == "invalid_json");
  CHECK(error_kind("http_500") == "http_500");
  CHECK(error_kind("") == "");
}

TEST_CASE("stats: counters from synthetic attempts", "[stats]") {
  CallStats s;
  for (int i = 0; i < 5; ++i) s.begin();
  s.record(attempt(true, "", 1, 12.0, 10, 4));
  s.record(attempt(true, "", 3, 40.0, 7, -1));  // two retries; completion tokens unknown
  s.record(attempt(false, "http_500", 2, 30.0));
  s.record(attempt(false, "connection_error: refused", 1, 5.0));
  s.record(attempt(false, "connection_error: reset by peer", 0, 0.0));  // never sent

  const StatsSnapshot snap = s.snapshot();
  CHECK(snap.calls == 5);
  CHECK(snap.successes == 2);
  CHECK(snap.errors.size() == 2);
  CHECK(snap.errors.at("http_500") == 1);
  CHECK(snap.errors.at("connection_error") == 2);
  CHECK(snap.retries == 3);
  CHECK(snap.prompt_tokens == 17);
  CHECK(snap.completion_tokens == 4);
  CHECK(snap.in_flight == 0);
  CHECK(snap.latency_samples == 4);
  CHECK(snap.latency_p50_ms > 0);
  CHECK(snap.latency_p50_ms <= snap.latency_p95_ms);
  CHECK(snap.latency_p95_ms <= snap.latency_p99_ms);
  CHECK(near_bucket(snap.latency_p99_ms, 40.0));
}

TEST_CASE("stats: in flight counts begun calls until they are recorded", "[stats]") {
  CallStats s;
  s.begin();
  s.begin();
  CHECK(s.snapshot().in_flight == 2);
  s.record(attempt(true, "", 1, 1.0));
  CHECK(s.snapshot().in_flight == 1);
  s.forget_in_flight();
  CHECK(s.snapshot().in_flight == 0);
}

TEST_CASE("stats: two threads recording 100k each give exact totals", "[stats]") {
  CallStats s;
  constexpr int kEach = 100000;
  auto work = [&s](bool ok) {
    for (int i = 0; i < kEach; ++i) {
      s.begin();
      s.record(attempt(ok, ok ? "" : "timeout", 2, double(1 + i % 500), 3, 1));
    }
  };
  std::thread reader([&s] {
    for (int i = 0; i < 200; ++i) {
      const StatsSnapshot snap = s.snapshot();
      CHECK(snap.latency_p50_ms <= snap.latency_p99_ms);
    }
  });
  std::thread a(work, true), b(work, false);
  a.join();
  b.join();
  reader.join();
  const StatsSnapshot snap = s.snapshot();
  CHECK(snap.calls == 2 * kEach);
  CHECK(snap.successes == kEach);
  CHECK(snap.errors.at("timeout") == kEach);
  CHECK(snap.retries == 2 * kEach);
  CHECK(snap.prompt_tokens == 3 * 2 * kEach);
  CHECK(snap.completion_tokens == 2 * kEach);
  CHECK(snap.in_flight == 0);
  CHECK(snap.latency_samples == 2 * kEach);
}

// Run: llmbridge_tests "[perf][stats]"; the figures are in docs/benchmarks.md ("Stats").
// What one logical call costs the stats: begin() when it starts, record() when it ends,
// with 128 calls begun and not yet recorded (as at 128 in flight), a successful call and
// a failed one (the error map's mutex and lookup), while another thread takes a snapshot
// every 100 µs (a far busier monitor than any real one).
TEST_CASE("stats: cost of counting one call at 128 in flight", "[.][perf][stats]") {
  CallStats s;
  for (int i = 0; i < 128; ++i) s.begin();
  std::atomic<bool> stop{false};
  std::atomic<long> snapshots{0};
  std::thread monitor([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const StatsSnapshot snap = s.snapshot();
      if (snap.in_flight >= 0) snapshots.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  const Attempt ok = attempt(true, "", 1, 180.0, 420, 35);
  const Attempt failed = attempt(false, "http_503: Service Unavailable", 4, 2400.0);
  for (const Attempt* a : {&ok, &failed}) {
    constexpr int kRounds = 1000000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) {  // one ends, one starts: 128 stay in flight
      s.record(*a);
      s.begin();
    }
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kRounds;
    WARN((a->success ? "success" : "error") << ": " << ns << " ns per call counted (begin + record)");
  }
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kSnapshots = 20000;
  for (int i = 0; i < kSnapshots; ++i) CHECK(s.snapshot().in_flight == 128);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kSnapshots;
  WARN(us << " us per snapshot()");
  stop = true;
  monitor.join();
  CHECK(snapshots.load() > 0);
  CHECK(s.snapshot().calls == 2000000);
}
