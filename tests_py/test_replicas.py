"""Several vLLM replicas behind one client, against three real mock servers on
127.0.0.1: least-outstanding spread, a slow replica, failover with ejection and
re-admission, prefix affinity, replicas() and per-replica health. Waits are bounded
waits for conditions; nothing asserts on wall-clock time."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Iterator

import pytest

import llmbridge
from llmbridge import ConfigError, ReplicaStats, VLLMClient, VLLMConfig
from llmbridge.testing import MockReplicas

PROMPTS = {"system": "Extract.", "user": "{document_text}"}
SCHEMA = {"type": "object"}


@pytest.fixture
def replicas() -> Iterator[MockReplicas]:
    with MockReplicas(3) as r:
        yield r


def chat_counts(replicas: MockReplicas) -> list[int]:
    return [sum(1 for q in s.requests if q.path.endswith("/chat/completions")) for s in replicas.servers]


def client_for(urls: list[str], **fields: object) -> VLLMClient:
    options = {"model": "mock-model", "max_retries": 3, "retry_base_delay": 0.01,
               "retry_max_delay": 0.05, "timeout": 30.0}
    options.update(fields)
    return VLLMClient(VLLMConfig(base_url=urls, **options))  # type: ignore[arg-type]


def wait_for(condition, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


async def run_calls(client: VLLMClient, n: int, concurrency: int) -> list[llmbridge.ExtractionAttempt]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> llmbridge.ExtractionAttempt:
        async with sem:
            return await client.call_llm(PROMPTS, SCHEMA, f"doc {i}")

    return await asyncio.gather(*(one(i) for i in range(n)))


# ---- config ----------------------------------------------------------------


def test_base_url_takes_a_list_or_a_comma_separated_string() -> None:
    a = VLLMConfig(base_url=["http://a:8000", "http://b:8000/v1"])
    b = VLLMConfig(base_url="http://a:8000, http://b:8000/v1")
    assert a.base_url == "http://a:8000,http://b:8000/v1"
    assert [r.url for r in VLLMClient(a).replicas()] == ["http://a:8000", "http://b:8000"]
    assert [r.url for r in VLLMClient(b).replicas()] == ["http://a:8000", "http://b:8000"]
    assert a.replace(base_url=["http://c:1"]).base_url == "http://c:1"


@pytest.mark.parametrize(("urls", "bad"), [
    (["http://a:8000", "ftp://b"], "'ftp://b'"),
    ("http://a:8000,,http://b:1", "''"),
    (["http://a:8000", "http://a:8000/v1/"], "listed once"),
])
def test_a_bad_entry_is_named(urls: object, bad: str) -> None:
    with pytest.raises(ConfigError, match="base_url") as info:
        VLLMConfig(base_url=urls)  # type: ignore[arg-type]
    assert bad in str(info.value)
    assert isinstance(info.value, ValueError)


def test_list_entries_must_be_strings_without_commas() -> None:
    with pytest.raises(ValueError, match=r"base_url\[1\]"):
        VLLMConfig(base_url=["http://a:1", 7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty list"):
        VLLMConfig(base_url=[])


def test_routing_fields_are_validated() -> None:
    assert VLLMConfig().routing == "least_outstanding"
    assert VLLMConfig().prefix_overload_factor == 2.0
    assert VLLMConfig().eject_after == 3
    with pytest.raises(ConfigError, match="routing"):
        VLLMConfig(routing="random")
    with pytest.raises(ConfigError, match="prefix_overload_factor"):
        VLLMConfig(prefix_overload_factor=0.5)
    with pytest.raises(ConfigError, match="eject_after"):
        VLLMConfig(eject_after=-1)


def test_the_environment_takes_lists_and_routing() -> None:
    app = llmbridge.load_config({"VLLM_BASE_URL": "http://a:8000, http://b:8000",
                                 "VLLM_ROUTING": "prefix", "VLLM_EJECT_AFTER": "5",
                                 "VLLM_PREFIX_OVERLOAD_FACTOR": "1.5",
                                 "OLLAMA_HOST": "ollama-a, ollama-b:11500"})
    assert app.vllm.base_url == "http://a:8000, http://b:8000"
    assert (app.vllm.routing, app.vllm.eject_after, app.vllm.prefix_overload_factor) == ("prefix", 5, 1.5)
    assert app.ollama.base_url == "http://ollama-a:11434,http://ollama-b:11500"
    with pytest.raises(ConfigError, match="VLLM_BASE_URL=.*'nope' is not"):
        llmbridge.load_config({"VLLM_BASE_URL": "http://a:8000,nope"})
    with pytest.raises(ConfigError, match="VLLM_ROUTING"):
        llmbridge.load_config({"VLLM_ROUTING": "fastest"})


def test_reprs_and_errors_never_show_credentials() -> None:
    cfg = VLLMConfig(base_url=["http://u:pw@a:1", "http://b:2"], api_key="sk-secret")
    assert "pw" not in repr(cfg) and "sk-secret" not in repr(cfg)
    assert [r.url for r in VLLMClient(cfg).replicas()] == ["http://a:1", "http://b:2"]


# ---- one URL: unchanged ----------------------------------------------------


def test_a_single_url_behaves_as_before() -> None:
    with MockReplicas(1) as one:
        with client_for(one.urls[0]) as client:  # type: ignore[arg-type]
            assert client.config.base_url == one.urls[0]
            for i in range(5):
                a = client.call_llm_sync(PROMPTS, SCHEMA, f"d{i}")
                assert a.success and a.attempts == 1
            [stats] = client.replicas()
            assert stats.url == one.urls[0] and stats.healthy
            assert stats.requests == 5 and stats.errors == 0 and stats.ejections == 0
            report = client.health_sync(force=True)
            assert report.status == "healthy" and report.replicas == ()


# ---- routing -----------------------------------------------------------------


def test_replicas_reports_typed_fields(replicas: MockReplicas) -> None:
    with client_for(replicas.urls) as client:
        for i in range(6):
            assert client.call_llm_sync(PROMPTS, SCHEMA, f"d{i}").success
        stats = client.replicas()
    assert [s.url for s in stats] == replicas.urls
    for s in stats:
        assert isinstance(s, ReplicaStats)
        assert s.healthy is True
        assert isinstance(s.in_flight, int) and s.in_flight == 0
        assert isinstance(s.ewma_latency_ms, float)
        assert s.errors == 0 and s.ejections == 0
    assert sum(s.requests for s in stats) == 6
    assert set(ReplicaStats.__dataclass_fields__) == {
        "url", "healthy", "in_flight", "requests", "errors", "ewma_latency_ms", "ejections"}


def test_least_outstanding_spreads_calls_evenly(replicas: MockReplicas) -> None:
    for i in range(3):
        replicas.make_slow(i, 0.005)  # every replica alike; in-flight counts matter
    client = client_for(replicas.urls)

    async def main() -> list[llmbridge.ExtractionAttempt]:
        async with client:
            return await run_calls(client, 3000, 64)

    results = asyncio.run(main())
    assert all(a.success for a in results)
    counts = chat_counts(replicas)
    assert sum(counts) == 3000
    # Alike replicas get alike shares. Each mock replica is a process on this machine's
    # cores, so a loaded machine makes one of them slower for a while, and least
    # outstanding rightly sends it less (seen: [875, 1153, 972] at load 7 on 2 cores).
    for c in counts:
        assert abs(c - 1000) <= 250, counts


def test_a_ten_times_slower_replica_gets_under_ten_percent(replicas: MockReplicas) -> None:
    replicas.make_slow(0, 0.2)
    replicas.make_slow(1, 0.02)
    replicas.make_slow(2, 0.02)
    client = client_for(replicas.urls)

    async def main() -> list[llmbridge.ExtractionAttempt]:
        async with client:
            return await run_calls(client, 900, 24)

    results = asyncio.run(main())
    assert all(a.success for a in results)
    counts = chat_counts(replicas)
    assert counts[0] < 0.10 * sum(counts), counts


def test_failover_ejects_a_stopped_replica_and_readmits_it(
        replicas: MockReplicas, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmbridge")
    for i in range(3):
        replicas.make_slow(i, 0.005)
    client = client_for(replicas.urls, api_key="sk-secret-key")

    async def main() -> list[llmbridge.ExtractionAttempt]:
        # Not `async with client`: the client must stay open for its probes.
        first = asyncio.ensure_future(run_calls(client, 600, 16))
        while sum(chat_counts(replicas)) < 100:
            await asyncio.sleep(0.01)
        await asyncio.get_running_loop().run_in_executor(None, replicas.stop_replica, 1)
        results = await first
        results += await run_calls(client, 300, 16)
        return results

    results = asyncio.run(main())
    assert all(a.success for a in results), collections.Counter(a.error for a in results)
    stats = client.replicas()
    assert not stats[1].healthy
    assert stats[1].ejections >= 1 and stats[1].errors >= 3
    replicas.restart_replica(1)
    # The probe (GET /v1/models when the interval ends) re-admits it.
    assert wait_for(lambda: client.replicas()[1].healthy, timeout=90)
    messages = [r.getMessage() for r in caplog.records]
    assert any("ejected" in m and replicas.urls[1] in m for m in messages), messages
    assert any("re-admitted" in m and replicas.urls[1] in m for m in messages), messages
    assert not any("sk-secret-key" in m for m in messages)
    client.close()


def test_prefix_routing_keeps_a_prefix_on_one_replica(replicas: MockReplicas) -> None:
    with client_for(replicas.urls, routing="prefix") as client:
        for i in range(200):
            assert client.call_llm_sync({"system": "You extract invoices.", "user": "{document_text}"},
                                        SCHEMA, f"d{i}").success
        counts = chat_counts(replicas)
        assert max(counts) >= 0.95 * 200, counts
        home = counts.index(max(counts))
        for s in replicas.servers:
            s.reset()
        seen: collections.Counter[int] = collections.Counter()
        for p in range(50):
            before = chat_counts(replicas)
            assert client.call_llm_sync({"system": f"Prompt family {p}.", "user": "{document_text}"},
                                        SCHEMA, "d").success
            after = chat_counts(replicas)
            seen[[a - b for a, b in zip(after, before)].index(1)] += 1
        assert set(seen) == {0, 1, 2}, seen
        assert home in range(3)


# ---- health ------------------------------------------------------------------


def test_health_reports_each_replica(replicas: MockReplicas) -> None:
    replicas.stop_replica(2)
    with client_for(replicas.urls) as client:
        report = client.health_sync(force=True)
    assert report.status == "healthy"
    assert [r.url for r in report.replicas] == replicas.urls
    assert [r.status for r in report.replicas] == ["healthy", "healthy", "unhealthy"]
    assert report.replicas[2].reason.startswith("connection_error")
    assert llmbridge.check_vllm_health_sync(replicas.urls, timeout=5)
    replicas.stop_replica(0)
    replicas.stop_replica(1)
    assert not llmbridge.check_vllm_health_sync(replicas.urls, timeout=5)
