// ReplicaSet: least-outstanding picks and their random tie-break, rendezvous stability,
// the overload fallback, ejection (after N failures, growing intervals, never the last),
// re-admission by probe, and retries that avoid the replica that just failed. Time is
// passed in; nothing here sleeps. One Client test routes real tries through two local
// servers, one of them dead.
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/client.hpp"
#include "llmbridge/llm/replicas.hpp"
#include "support/test_http_server.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;
using Clock = ReplicaSet::Clock;

namespace {

std::vector<std::string> urls(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("http://r" + std::to_string(i) + ":8000");
  return out;
}

ReplicaOptions prefix_options(double factor = 2.0) {
  ReplicaOptions o;
  o.routing = Routing::kPrefix;
  o.prefix_overload_factor = factor;
  return o;
}

void fail(ReplicaSet& set, std::size_t i, int times, Clock::time_point now) {
  for (int k = 0; k < times; ++k) {
    set.acquire(0, ReplicaSet::kNone);  // counted somewhere; only the release below matters
    set.release(i, TryOutcome::kFailure, 1.0, "connection_error: refused", now);
  }
}

}  // namespace

TEST_CASE("replicas: least outstanding picks the replica with the fewest in flight", "[replicas]") {
  ReplicaSet set(urls(3), {}, 1);
  const auto a = set.acquire();
  const auto b = set.acquire();
  const auto c = set.acquire();
  CHECK(std::set<std::size_t>{a, b, c} == std::set<std::size_t>{0, 1, 2});  // one each
  set.release(b, TryOutcome::kSuccess, 5, "");
  CHECK(set.acquire() == b);  // the only one with 0 in flight
  auto stats = set.stats();
  for (const auto& s : stats) CHECK(s.in_flight == 1);
  CHECK(stats[b].requests == 2);
}

TEST_CASE("replicas: the random tie-break reaches every replica", "[replicas]") {
  ReplicaSet set(urls(4), {}, 42);
  std::map<std::size_t, int> picks;
  for (int k = 0; k < 400; ++k) {
    const auto i = set.acquire();  // all idle: a four-way tie every time
    ++picks[i];
    set.release(i, TryOutcome::kSuccess, 1, "");
  }
  REQUIRE(picks.size() == 4);
  for (const auto& [i, n] : picks) CHECK(n > 50);  // ~100 each
}

TEST_CASE("replicas: rendezvous hashing sends a key to the same replica", "[replicas]") {
  ReplicaSet set(urls(3), prefix_options(), 7);
  const auto key = ReplicaSet::key_of("You extract invoices.");
  const auto first = set.acquire(key);
  set.release(first, TryOutcome::kSuccess, 1, "");
  for (int k = 0; k < 50; ++k) {
    const auto i = set.acquire(key);
    CHECK(i == first);
    set.release(i, TryOutcome::kSuccess, 1, "");
  }
  // Another set with the same URLs (another client, another process) agrees.
  ReplicaSet other(urls(3), prefix_options(), 99);
  CHECK(other.acquire(key) == first);
}

TEST_CASE("replicas: many keys spread, and removing a replica only moves its own keys", "[replicas]") {
  const auto three = urls(3);
  std::vector<std::string> two = {three[0], three[2]};  // r1 removed
  ReplicaSet big(three, prefix_options(), 1), small(two, prefix_options(), 1);
  std::map<std::size_t, int> spread;
  for (int k = 0; k < 300; ++k) {
    const auto key = ReplicaSet::key_of("prompt " + std::to_string(k));
    const auto i = big.acquire(key);
    big.release(i, TryOutcome::kSuccess, 1, "");
    const auto j = small.acquire(key);
    small.release(j, TryOutcome::kSuccess, 1, "");
    ++spread[i];
    if (i != 1) CHECK(two[j] == three[i]);  // a key of r0 or r2 stays where it was
  }
  REQUIRE(spread.size() == 3);
  for (const auto& [i, n] : spread) CHECK(n > 60);
}

TEST_CASE("replicas: an overloaded prefix replica yields to least outstanding", "[replicas]") {
  ReplicaSet set(urls(3), prefix_options(2.0), 3);
  const auto key = ReplicaSet::key_of("hot prefix");
  const auto home = set.acquire(key);
  // Counting the new try: home would hold 2 of 2, mean 2/3, bound ceil(4/3) = 2: stays.
  CHECK(set.acquire(key) == home);
  // Then 3 of 3, mean 1, bound 2: yields to the least loaded.
  const auto next = set.acquire(key);
  CHECK(next != home);
  // Without the bound (a huge factor) the key always goes home.
  ReplicaSet loose(urls(3), prefix_options(1000.0), 3);
  const auto h = loose.acquire(key);
  for (int k = 0; k < 20; ++k) CHECK(loose.acquire(key) == h);
  CHECK(h == home);
}

TEST_CASE("replicas: eject_after consecutive failures eject; a success in between resets", "[replicas]") {
  ReplicaSet set(urls(3), {}, 5);
  const auto now = Clock::now();
  fail(set, 1, 2, now);
  set.acquire();
  set.release(1, TryOutcome::kSuccess, 1, "", now);  // the streak is broken
  fail(set, 1, 2, now);
  CHECK(set.stats()[1].healthy);
  set.acquire();
  CHECK(set.release(1, TryOutcome::kFailure, 1, "http_503", now));  // third in a row
  const auto stats = set.stats();
  CHECK_FALSE(stats[1].healthy);
  CHECK(stats[1].ejections == 1);
  CHECK(stats[1].errors == 5);
  // Ejected: no traffic.
  for (int k = 0; k < 30; ++k) CHECK(set.acquire() != 1);
  const auto events = set.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == ReplicaEvent::Kind::kEjected);
  CHECK(events[0].url == "http://r1:8000");
  CHECK(events[0].reason == "http_503");
  CHECK(events[0].ejected_for_s == Approx(1.0));
  // Cancelled tries say nothing about the replica.
  ReplicaSet quiet(urls(2), {}, 5);
  for (int k = 0; k < 10; ++k) quiet.release(quiet.acquire(), TryOutcome::kCancelled, 0, "");
  CHECK(quiet.healthy_count() == 2);
}

TEST_CASE("replicas: the ejection interval grows 1, 2, 4 ... seconds up to 30", "[replicas]") {
  ReplicaSet set(urls(2), {}, 5);
  auto now = Clock::now();
  fail(set, 0, 3, now);
  CHECK(set.ejection_delay_ms(0, now) == 1000);
  std::vector<long> delays;
  for (int k = 0; k < 7; ++k) {
    now += std::chrono::milliseconds(set.ejection_delay_ms(0, now));
    CHECK(set.ejection_delay_ms(0, now) == 0);  // the interval is over: probe time
    CHECK(set.probe_result(0, false, "probe: connection_error: refused", now));
    delays.push_back(set.ejection_delay_ms(0, now));
  }
  CHECK(delays == std::vector<long>{2000, 4000, 8000, 16000, 30000, 30000, 30000});
  CHECK(set.stats()[0].ejections == 1);  // failed probes extend the one ejection
  // Re-admitted, then ejected again soon after: the streak goes on (30 s).
  CHECK_FALSE(set.probe_result(0, true, "probe answered 200", now));
  fail(set, 0, 3, now + std::chrono::seconds(1));
  CHECK(set.ejection_delay_ms(0, now + std::chrono::seconds(1)) == 30000);
  // After a quiet period as long as the cap, it starts over at 1 s.
  set.probe_result(0, true, "probe answered 200", now + std::chrono::seconds(31));
  const auto later = now + std::chrono::seconds(100);
  fail(set, 0, 3, later);
  CHECK(set.ejection_delay_ms(0, later) == 1000);
}

TEST_CASE("replicas: the last healthy replica is never ejected", "[replicas]") {
  ReplicaSet set(urls(2), {}, 5);
  const auto now = Clock::now();
  fail(set, 0, 3, now);
  CHECK(set.healthy_count() == 1);
  fail(set, 1, 10, now);
  CHECK(set.healthy_count() == 1);
  CHECK(set.stats()[1].healthy);
  CHECK(set.acquire() == 1);
  ReplicaSet one(urls(1), {}, 5);
  fail(one, 0, 10, now);
  CHECK(one.stats()[0].healthy);
  // eject_after = 0: never eject.
  ReplicaOptions never;
  never.eject_after = 0;
  ReplicaSet calm(urls(2), never, 5);
  fail(calm, 0, 10, now);
  CHECK(calm.healthy_count() == 2);
}

TEST_CASE("replicas: a probe answering 200 re-admits the replica", "[replicas]") {
  ReplicaSet set(urls(3), {}, 5);
  const auto now = Clock::now();
  fail(set, 2, 3, now);
  set.drain_events();
  CHECK_FALSE(set.probe_result(2, true, "probe answered 200", now + std::chrono::seconds(1)));
  CHECK(set.stats()[2].healthy);
  const auto events = set.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == ReplicaEvent::Kind::kReadmitted);
  CHECK(events[0].url == "http://r2:8000");
  std::set<std::size_t> seen;
  for (int k = 0; k < 60; ++k) {
    const auto i = set.acquire();
    seen.insert(i);
    set.release(i, TryOutcome::kSuccess, 1, "");
  }
  CHECK(seen.count(2));
}

TEST_CASE("replicas: a retry avoids the replica that just failed", "[replicas]") {
  ReplicaSet set(urls(3), {}, 11);
  for (int k = 0; k < 100; ++k) {
    const auto failed = std::size_t(k % 3);
    const auto i = set.acquire(0, failed);
    CHECK(i != failed);
    set.release(i, TryOutcome::kSuccess, 1, "");
  }
  // Prefix routing too: the key's home is skipped when it just failed.
  ReplicaSet pre(urls(3), prefix_options(), 11);
  const auto key = ReplicaSet::key_of("k");
  const auto home = pre.acquire(key);
  pre.release(home, TryOutcome::kFailure, 1, "timeout");
  CHECK(pre.acquire(key, home) != home);
  // With one replica there is nothing else to prefer.
  ReplicaSet one(urls(1), {}, 11);
  CHECK(one.acquire(0, 0) == 0);
}

TEST_CASE("replicas: the client fails over from a dead replica and ejects it", "[replicas]") {
  testing::TestHttpServer live;
  testing::Reply ok;
  ok.body = R"({"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"{\"ok\": true}"},"finish_reason":"stop"}]})";
  ok.headers.emplace_back("Content-Type", "application/json");
  live.route("/v1/chat/completions", ok);
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::closed_port());
  config::VLLMConfig c;
  c.base_url = dead + ", " + live.url("") + "/v1";
  c.model = "tiny";
  c.max_retries = 2;
  c.retry_base_delay = 0;
  c.retry_max_delay = 0;
  c.eject_after = 2;
  Client client(c);
  REQUIRE(client.replica_count() == 2);
  ChatCall call;
  call.prompts.system = "s";
  call.prompts.user = "u";
  for (int k = 0; k < 20; ++k) {
    const Attempt a = client.call(call);
    REQUIRE(a.success);
    CHECK(a.attempts <= 2);  // a failed try is retried on the other replica
  }
  const auto stats = client.replica_stats();
  CHECK(stats[0].url == dead);
  CHECK_FALSE(stats[0].healthy);
  CHECK(stats[0].ejections >= 1);
  CHECK(stats[1].healthy);
  CHECK(stats[1].requests >= 20);
  const auto events = client.drain_replica_events();
  REQUIRE_FALSE(events.empty());
  CHECK(events[0].kind == ReplicaEvent::Kind::kEjected);
  CHECK(events[0].url == dead);
  client.close();
}

TEST_CASE("replicas: base_url lists are validated entry by entry", "[replicas]") {
  config::VLLMConfig c;
  c.base_url = "http://a:8000, http://b:8000/v1";
  CHECK(config::validate(c).empty());
  CHECK(config::replica_urls(c.base_url) == std::vector<std::string>{"http://a:8000", "http://b:8000"});
  c.base_url = "http://a:8000,ftp://b";
  auto problems = config::validate(c);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].value == "'ftp://b'");
  c.base_url = "http://a:8000,http://a:8000/v1/";
  problems = config::validate(c);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].allowed.find("listed once") != std::string::npos);
  c.base_url = "http://a:8000";
  c.routing = "random";
  problems = config::validate(c);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].field == "routing");
  CHECK(config::display_url("http://u:p@a:1,http://b:2") == "http://a:1,http://b:2");
}

// Not a check, a measurement (hidden from ctest, like the repair timings): what routing
// costs one try when 128 are in flight. Prints nanoseconds per acquire + release.
// Run: llmbridge_tests "[perf][replicas]"; the figure is in docs/benchmarks.md.
TEST_CASE("replicas: cost of routing at 128 in flight", "[.][perf][replicas]") {
  for (const Routing routing : {Routing::kLeastOutstanding, Routing::kPrefix}) {
    ReplicaOptions opts;
    opts.routing = routing;
    ReplicaSet set(urls(3), opts, 42);
    std::vector<std::size_t> held;
    for (int i = 0; i < 128; ++i) held.push_back(set.acquire(ReplicaSet::key_of("system prompt")));
    constexpr int kRounds = 200000;
    const auto t0 = Clock::now();
    for (int i = 0; i < kRounds; ++i) {  // one ends, one starts: 128 stay in flight
      const std::size_t slot = std::size_t(i) % held.size();
      set.release(held[slot], TryOutcome::kSuccess, 5.0, "");
      held[slot] = set.acquire(ReplicaSet::key_of("system prompt"));
    }
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kRounds;
    WARN((routing == Routing::kPrefix ? "prefix" : "least_outstanding")
         << ": " << ns << " ns per acquire + release at 128 in flight (key hashing included)");
    std::size_t in_flight = 0;  // the bookkeeping held through 200,000 picks
    for (const ReplicaStats& r : set.stats()) in_flight += std::size_t(r.in_flight);
    CHECK(in_flight == held.size());
  }
}
