"""client.stats(): the core's per-client call counters and latency quantiles, against
the bundled mock server. No wall-clock assertions: latencies are only checked to be
positive and ordered."""

from __future__ import annotations

import asyncio
from typing import Any

import llmbridge
import pytest
from generation_helpers import MESSAGES, PROVIDERS, make_client
from llmbridge import StatsSnapshot, VLLMClient
from llmbridge.testing import MockLLMServer, Reply

PROMPTS = {"system": "You extract names.", "user": "Document:\n{document_text}\nAnswer in JSON."}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


@pytest.fixture
def server() -> Any:
    with MockLLMServer() as s:
        yield s


def check_latency(s: StatsSnapshot) -> None:
    assert s.latency_p50_ms > 0
    assert s.latency_p50_ms <= s.latency_p95_ms <= s.latency_p99_ms


def test_a_fresh_client_has_empty_stats(server: MockLLMServer) -> None:
    with make_client(server) as client:
        s = client.stats()
    assert isinstance(s, StatsSnapshot)
    assert (s.calls, s.successes, s.retries, s.in_flight, s.latency_samples) == (0, 0, 0, 0, 0)
    assert s.errors == {}
    assert (s.prompt_tokens, s.completion_tokens) == (0, 0)
    assert s.latency_p50_ms == 0.0
    assert "StatsSnapshot(calls=0" in repr(s)
    assert repr(s).endswith("latency_p50_ms=0.0, latency_p95_ms=0.0, latency_p99_ms=0.0)")


@pytest.mark.parametrize("cls", PROVIDERS)
def test_successful_calls_and_tokens_are_counted(server: MockLLMServer, cls: type) -> None:
    n = 6
    for i in range(n):
        server.enqueue(Reply.json({"name": "x"}, prompt_tokens=10 + i, completion_tokens=3))
    with make_client(server, cls) as client:
        for _ in range(n):
            attempt = client.call_llm_sync(PROMPTS, SCHEMA, "Ada")
            assert attempt.success, attempt.error
        s = client.stats()
    assert s.calls == n
    assert s.successes == n
    assert s.errors == {}
    assert s.retries == 0
    assert s.prompt_tokens == sum(10 + i for i in range(n))
    assert s.completion_tokens == 3 * n
    assert s.in_flight == 0
    assert s.latency_samples == n
    check_latency(s)


def test_scripted_500s_count_retries_and_errors(server: MockLLMServer) -> None:
    server.set_default(Reply(status=500))
    k = 3
    with make_client(server, max_retries=1) as client:
        for _ in range(k):
            attempt = client.call_llm_sync(PROMPTS, SCHEMA, "Ada")
            assert attempt.error == "http_500"
        s = client.stats()
    assert s.calls == k
    assert s.successes == 0
    assert s.errors == {"http_500": k}
    assert s.retries == k  # one retry each
    assert s.in_flight == 0
    check_latency(s)


def test_errors_group_by_their_leading_word(server: MockLLMServer) -> None:
    server.enqueue(Reply(malformed=True), Reply(malformed=True), Reply(status=404))
    with make_client(server, max_retries=0) as client:
        errors = [client.call_llm_sync(PROMPTS, SCHEMA, "Ada").error for _ in range(3)]
        s = client.stats()
    assert errors[0].startswith("invalid_json")
    assert s.errors == {"invalid_json": 2, "http_404": 1}


def test_a_retry_that_succeeds_counts_a_success_and_a_retry(server: MockLLMServer) -> None:
    server.enqueue(Reply(status=503), Reply.json({"name": "x"}))
    with make_client(server, max_retries=2) as client:
        assert client.call_llm_sync(PROMPTS, SCHEMA, "Ada").success
        s = client.stats()
    assert (s.calls, s.successes, s.retries, s.errors) == (1, 1, 1, {})


def test_async_calls_chat_complete_embed_and_streams_each_count_once(server: MockLLMServer) -> None:
    server.set_default(Reply.matching_schema())  # call_llm's answers match SCHEMA
    with make_client(server, VLLMClient, embedding_batch_size=2) as client:

        async def main() -> None:
            calls = [client.call_llm(PROMPTS, SCHEMA, "Ada") for _ in range(4)]
            results = await asyncio.gather(*calls)
            assert all(r.success for r in results)

        asyncio.run(main())
        assert client.chat_sync(MESSAGES).success
        assert client.complete_sync("Say hi").success
        assert client.embed_sync(["a", "b", "c", "d", "e"]).success  # three batches, one call
        with client.chat_stream_sync(MESSAGES) as stream:
            events = list(stream)
        assert isinstance(events[-1], llmbridge.StreamEnd)
        s = client.stats()
    assert s.calls == 4 + 1 + 1 + 1 + 1
    assert s.successes == s.calls
    assert s.in_flight == 0
    assert s.latency_samples == s.calls
    assert s.prompt_tokens > 0
    check_latency(s)


def test_a_failed_stream_counts_its_error(server: MockLLMServer) -> None:
    server.set_default(Reply(status=500))
    with make_client(server, VLLMClient, max_retries=1) as client:
        with client.chat_stream_sync(MESSAGES) as stream:
            events = list(stream)
        assert isinstance(events[-1], llmbridge.StreamError)
        s = client.stats()
    assert (s.calls, s.successes, s.errors, s.retries, s.in_flight) == (1, 0, {"http_500": 1}, 1, 0)


def test_stats_stay_readable_after_close(server: MockLLMServer) -> None:
    with make_client(server) as client:
        client.call_llm_sync(PROMPTS, SCHEMA, "Ada")
    assert client.stats().calls == 1
