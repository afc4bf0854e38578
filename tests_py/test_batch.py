"""Batch extraction (extract_many and its ordered and sync twins) against a real MockLLMServer.

The bound under test: documents pulled from the source minus results handed to the
consumer never exceeds `concurrency`, so memory stays flat however long the corpus is.
Stopping (cancel, break, aclose, close) must abort the transfers in flight: the mock sees
the client hang up (`requests_abandoned`) and no request arrives afterwards.

The big run uses 20,000 documents by default (the mock shares this process's GIL and
answers about 2,500 calls/s on the 2-core CI box); LLMBRIDGE_BATCH_DOCS=100000 runs the
full size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from llmbridge import BatchResults, ExtractionAttempt, SyncBatchResults, VLLMClient
from llmbridge.testing import MockLLMServer, Reply

PROMPTS = {"system": "Extract.", "user": "Document: {document_text}"}
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}
FAST = {"timeout": 10.0, "max_retries": 0, "retry_base_delay": 0.01, "retry_max_delay": 0.05}
BIG = int(os.environ.get("LLMBRIDGE_BATCH_DOCS", "20000"))
DOC = re.compile(r"Document: doc-(\d+)(-slow)?(-bad)?")


def echo(request: Any) -> Reply:
    """Answer {"n": <the document's number>}; "-slow" documents wait, "-bad" ones get 400."""
    m = DOC.search(request.prompt)
    if m is None:
        return Reply(status=500)
    if m.group(3):
        return Reply(status=400)
    return Reply(content=json.dumps({"n": int(m.group(1))}), delay=0.3 if m.group(2) else 0.0)


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer(max_recorded=0) as s:
        s.responder = echo
        yield s


@contextlib.contextmanager
def make_client(server: MockLLMServer, **overrides: Any) -> Iterator[VLLMClient]:
    client = VLLMClient(base_url=server.url + "/v1", model="test-model", **{**FAST, **overrides})
    try:
        yield client
    finally:
        client.close()


class Counted:
    """A document generator that counts what it handed out."""

    def __init__(self, n: int, slow: frozenset[int] = frozenset()) -> None:
        self.n = n
        self.slow = slow
        self.pulled = 0

    def __iter__(self) -> Iterator[str]:
        for i in range(self.n):
            self.pulled += 1
            yield f"doc-{i}-slow" if i in self.slow else f"doc-{i}"


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


async def async_wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return bool(condition())


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def assert_stopped(server: MockLLMServer, in_flight: int) -> None:
    """Nothing of the batch is left: no task, every transfer aborted, no new request."""
    assert other_tasks() == set()
    assert await async_wait_until(lambda: server.requests_abandoned >= in_flight)
    seen = server.request_count
    await asyncio.sleep(0.3)
    assert server.request_count == seen


# ---------------------------------------------------------------- bound and laziness


def test_many_documents_bounded_and_each_once(server: MockLLMServer) -> None:
    concurrency = 64
    docs = Counted(BIG)
    seen = bytearray(BIG)
    ahead = 0

    async def main() -> None:
        nonlocal ahead
        yielded = 0
        with make_client(server) as client:
            async for index, attempt in client.extract_many(
                docs, PROMPTS, SCHEMA, concurrency=concurrency
            ):
                ahead = max(ahead, docs.pulled - yielded)
                yielded += 1
                assert attempt.success, attempt.error
                assert attempt.data == {"n": index}
                seen[index] += 1

    asyncio.run(main())
    assert seen == bytes([1]) * BIG  # every index exactly once
    assert ahead <= concurrency  # never more than `concurrency` documents out of the source
    assert ahead == concurrency  # ... and the slots were used
    assert server.request_count == BIG


def test_ordered_keeps_input_order_with_slow_documents(server: MockLLMServer) -> None:
    n, concurrency = 300, 16
    docs = Counted(n, slow=frozenset({0, 5, 40, 41, 199, 299}))

    async def main() -> list[int]:
        order = []
        with make_client(server) as client:
            async for index, attempt in client.extract_many_ordered(
                docs, PROMPTS, SCHEMA, concurrency=concurrency
            ):
                assert docs.pulled - len(order) <= concurrency  # the reorder buffer is bounded
                assert attempt.data == {"n": index}
                order.append(index)
        return order

    assert asyncio.run(main()) == list(range(n))


def test_unordered_yields_as_calls_finish(server: MockLLMServer) -> None:
    async def main() -> list[int]:
        with make_client(server) as client:
            docs = Counted(20, slow=frozenset({0}))
            return [i async for i, _ in client.extract_many(docs, PROMPTS, concurrency=4)]

    order = asyncio.run(main())
    assert sorted(order) == list(range(20))
    assert order[-1] == 0  # the slow first document came last


def test_async_iterable_source(server: MockLLMServer) -> None:
    async def source() -> AsyncIterator[str]:
        for i in range(50):
            if i % 10 == 0:
                await asyncio.sleep(0.01)  # a source that waits (a queue, a socket)
            yield f"doc-{i}"

    async def main() -> dict[int, Any]:
        with make_client(server) as client:
            results = client.extract_many(source(), PROMPTS, concurrency=8)
            return {i: a.data async for i, a in results}

    assert asyncio.run(main()) == {i: {"n": i} for i in range(50)}


def test_errors_are_per_document(server: MockLLMServer) -> None:
    docs = [f"doc-{i}-bad" if i % 3 == 0 else f"doc-{i}" for i in range(30)]

    async def main() -> dict[int, ExtractionAttempt]:
        with make_client(server) as client:
            return {i: a async for i, a in client.extract_many(docs, PROMPTS, concurrency=5)}

    results = asyncio.run(main())
    assert len(results) == 30
    for i, attempt in results.items():
        if i % 3 == 0:
            assert (attempt.success, attempt.error, attempt.retryable) == (False, "http_400", False)
        else:
            assert attempt.success and attempt.data == {"n": i}


# ---------------------------------------------------------------- stopping


def test_cancel_mid_way_leaves_nothing_running(server: MockLLMServer) -> None:
    concurrency = 8

    async def main() -> None:
        got: list[int] = []

        async def consume(client: VLLMClient) -> None:
            docs = Counted(1000, slow=frozenset(range(10, 1000)))
            async for index, _ in client.extract_many(docs, PROMPTS, concurrency=concurrency):
                got.append(index)

        with make_client(server) as client:
            task = asyncio.create_task(consume(client))
            # the ten fast documents are done, then 8 slow ones are in flight
            assert await async_wait_until(lambda: len(got) == 10 and server.request_count >= 18)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await assert_stopped(server, concurrency)

    asyncio.run(main())


def test_break_out_of_async_for_stops_the_batch(server: MockLLMServer) -> None:
    async def main() -> None:
        with make_client(server) as client:
            docs = Counted(1000, slow=frozenset(range(1, 1000)))
            async for index, _ in client.extract_many(docs, PROMPTS, concurrency=6):
                assert index == 0
                break
            # asyncio finalises the abandoned generator on the loop's next turns
            assert await async_wait_until(lambda: not other_tasks())
            assert docs.pulled == 6  # the first six; 1-5 were in flight
            await assert_stopped(server, 5)

    asyncio.run(main())


def test_aclose_and_async_with_stop_at_once(server: MockLLMServer) -> None:
    async def main() -> None:
        with make_client(server) as client:
            docs = Counted(100, slow=frozenset(range(1, 100)))
            async with client.extract_many_ordered(docs, PROMPTS, concurrency=4) as results:
                assert isinstance(results, BatchResults)
                async for index, _ in results:
                    assert index == 0
                    break
            # nothing to wait for after `async with`; 1-3 were in flight
            await assert_stopped(server, 3)
            results = client.extract_many(
                Counted(100, slow=frozenset(range(100))), PROMPTS, concurrency=3
            )
            first = asyncio.ensure_future(results.__anext__())
            assert await async_wait_until(lambda: server.request_count >= 4 + 3)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            await results.aclose()
            await assert_stopped(server, 3 + 3)

    asyncio.run(main())


def test_a_source_that_raises_cancels_the_rest(server: MockLLMServer) -> None:
    def source() -> Iterator[str]:
        yield "doc-0"
        yield "doc-1-slow"
        yield "doc-2-slow"
        # read when doc-0 is done, with the two slow ones in flight
        raise OSError("the queue went away")

    async def main() -> None:
        with make_client(server) as client:
            with pytest.raises(OSError, match="the queue went away"):
                async for _ in client.extract_many(source(), PROMPTS, concurrency=3):
                    pass
            await assert_stopped(server, 2)

    asyncio.run(main())


# ---------------------------------------------------------------- arguments


def test_bad_arguments(server: MockLLMServer) -> None:
    with make_client(server) as client:
        for bad in (0, -1):
            with pytest.raises(ValueError, match="concurrency"):
                client.extract_many(["doc-1"], PROMPTS, concurrency=bad)
        with pytest.raises(TypeError, match="concurrency"):
            client.extract_many_sync(["doc-1"], PROMPTS, concurrency=True)
        with pytest.raises(TypeError, match="single str"):
            client.extract_many("doc-1", PROMPTS)
        with pytest.raises(TypeError, match="iterable"):
            client.extract_many(42, PROMPTS)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'user'"):
            client.extract_many(["doc-1"], {"system": "no user prompt"})

        secret = b"confidential payroll data " * 40
        docs: list[Any] = ["doc-0", "doc-1", secret]
        with pytest.raises(TypeError, match=r"document 2 must be str, got bytes") as info:
            for _ in client.extract_many_sync(docs, PROMPTS, concurrency=1):
                pass
        assert "payroll" not in str(info.value)


# ---------------------------------------------------------------- sync twins


def test_sync_twins(server: MockLLMServer) -> None:
    with make_client(server) as client:
        results = client.extract_many_sync(Counted(100), PROMPTS, SCHEMA, concurrency=10)
        assert isinstance(results, SyncBatchResults)
        got = dict(results)
        assert got.keys() == set(range(100))
        assert all(a.data == {"n": i} for i, a in got.items())

        docs = Counted(60, slow=frozenset({3, 30}))
        order = [i for i, _ in client.extract_many_ordered_sync(docs, PROMPTS, concurrency=7)]
        assert order == list(range(60))


def test_sync_close_mid_way_cancels(server: MockLLMServer) -> None:
    with make_client(server) as client:
        docs = Counted(100, slow=frozenset(range(1, 100)))
        with client.extract_many_sync(docs, PROMPTS, concurrency=5) as results:
            assert next(results)[0] == 0
        assert wait_until(lambda: server.requests_abandoned >= 4)  # 1-4 were in flight
        seen = server.request_count
        time.sleep(0.3)
        assert server.request_count == seen
        with pytest.raises(StopIteration):
            next(results)


def test_sync_twin_refuses_a_running_loop(server: MockLLMServer) -> None:
    async def main() -> None:
        with make_client(server) as client:
            results = client.extract_many_sync(["doc-1"], PROMPTS)
            with pytest.raises(RuntimeError, match="running event loop"):
                next(results)

    asyncio.run(main())
