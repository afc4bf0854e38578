"""Token streams end to end: chat_stream / complete_stream (and their *_sync twins) on
every client against a real MockLLMServer streaming SSE (OpenAI, vLLM) or NDJSON
(Ollama).

Covers the event contract (one StreamStarted first, one StreamEnd or StreamError last),
metrics, tool-call and reasoning events, every scripted stream fault, retries before the
first byte, and the resource behaviour: back-pressure on a slow consumer, aborting by
break / close / cancel / client.close(), and many concurrent streams.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Iterator
from typing import Any

import llmbridge
import pytest
from generation_helpers import (
    DIALECTS,
    MESSAGES,
    MODEL,
    MODES,
    PROVIDERS,
    TOOLS,
    async_wait_until,
    check_event_order,
    free_closed_port,
    invoke,
    is_ollama,
    make_client,
    rss_bytes,
    token_text,
    wait_until,
)
from llmbridge import (
    ReasoningToken,
    StreamEnd,
    StreamError,
    StreamStarted,
    Token,
    ToolCallDelta,
    VLLMClient,
)
from llmbridge.testing import MockLLMServer, Reply

STREAM_METHODS = ["chat_stream", "complete_stream"]


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        yield s


def stream_args(method: str) -> tuple[Any, ...]:
    return (MESSAGES,) if method == "chat_stream" else ("the prompt",)


# --------------------------------------------------------------------------- a normal stream


@pytest.mark.parametrize("method", STREAM_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_stream_events_and_metrics(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    tokens = ["Hel", "lo", ", wörld", " 😀", "\n", ' "q"']
    server.enqueue(Reply(tokens=tokens, prompt_tokens=9, completion_tokens=6))
    with make_client(server, cls) as client:
        events = invoke(client, mode, method, *stream_args(method))
    check_event_order(events)
    started, end = events[0], events[-1]
    assert type(end) is StreamEnd, end
    assert [type(e) for e in events[1:-1]] == [Token] * len(tokens)
    assert token_text(events) == "".join(tokens)
    assert started.request_id == server.last_request.headers["x-request-id"]
    assert started.model == MODEL
    assert end.finish_reason == "stop"
    assert end.tool_calls == []
    m = end.metrics
    assert m.tokens == len(tokens)
    assert m.prompt_tokens == 9
    assert m.completion_tokens == 6
    assert m.ttft_ms is not None and 0 <= m.ttft_ms <= m.total_ms
    assert m.tokens_per_s >= 0
    assert server.request_count == 1
    assert server.streams_started == server.streams_completed == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_stream_finish_reason_length(server: MockLLMServer, cls: type, mode: str) -> None:
    server.enqueue(Reply.truncated("cut by the limit"))
    with make_client(server, cls) as client:
        events = invoke(client, mode, "chat_stream", MESSAGES)
    check_event_order(events)
    assert events[-1].finish_reason == "length"
    assert token_text(events) == "cut by the limit"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_stream_without_usage_chunk_has_unknown_counts(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    server.enqueue(Reply("a b c", usage_chunk=False))
    with make_client(server, cls) as client:
        events = invoke(client, mode, "chat_stream", MESSAGES)
    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamEnd and end.metrics.tokens == 3
    if not is_ollama(cls):  # Ollama's counts come from the done line, which is always there
        assert end.metrics.prompt_tokens is None and end.metrics.completion_tokens is None


# --------------------------------------------------------------------------- tools, reasoning


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_tool_call_stream(server: MockLLMServer, cls: type, mode: str) -> None:
    weather = {"city": "Paris", "days": [1, 2, 3], "note": "a long enough string"}
    server.enqueue(
        Reply(
            tool_calls=[
                {"name": "get_weather", "arguments": weather, "id": "call_a"},
                {"name": "noop", "arguments": {}, "id": "call_b"},
            ]
        )
    )
    with make_client(server, cls) as client:
        events = invoke(client, mode, "chat_stream", MESSAGES, tools=TOOLS)
    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamEnd, end
    deltas = [e for e in events if type(e) is ToolCallDelta]
    assert deltas and len(deltas) == len(events) - 2
    assert sorted({d.index for d in deltas}) == [0, 1]
    names = {d.index: d.name for d in deltas if d.name}
    assert names == {0: "get_weather", 1: "noop"}
    joined = {i: "".join(d.arguments for d in deltas if d.index == i) for i in (0, 1)}
    assert json.loads(joined[0]) == weather
    assert json.loads(joined[1]) == {}
    assert [(t.id, t.name, t.arguments) for t in end.tool_calls] == [
        ("call_a", "get_weather", weather),
        ("call_b", "noop", {}),
    ]
    assert json.loads(end.tool_calls[0].arguments_text) == weather
    assert token_text(events) == ""
    assert end.metrics.tokens == 0
    assert end.metrics.ttft_ms is None  # no content token came
    assert server.last_request.json["tools"] == TOOLS
    if not is_ollama(cls):
        assert end.finish_reason == "tool_calls"
        assert [d.id for d in deltas if d.name] == ["call_a", "call_b"]


@pytest.mark.parametrize("mode", MODES)
def test_tool_call_stream_with_broken_arguments_is_repaired(
    server: MockLLMServer, mode: str
) -> None:
    broken = '{"city": "Lyon", "days": [1, 2'
    server.enqueue(Reply.tool_call("get_weather", broken, id="c1"))
    with make_client(server, VLLMClient) as client:
        events = invoke(client, mode, "chat_stream", MESSAGES, tools=TOOLS)
    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamEnd, end
    assert "".join(e.arguments for e in events if type(e) is ToolCallDelta) == broken
    (call,) = end.tool_calls
    assert call.arguments == {"city": "Lyon", "days": [1, 2]}
    assert call.arguments_text == broken
    assert call.repaired is True


@pytest.mark.parametrize("method", STREAM_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_reasoning_tokens(server: MockLLMServer, cls: type, mode: str, method: str) -> None:
    server.enqueue(Reply("The answer.", reasoning="Let me think it through."))
    with make_client(server, cls) as client:
        events = invoke(client, mode, method, *stream_args(method))
    check_event_order(events)
    assert type(events[-1]) is StreamEnd, events[-1]
    if method == "complete_stream" and not is_ollama(cls):
        # /v1/completions has no reasoning field: only the text
        assert not any(type(e) is ReasoningToken for e in events)
    else:
        reasoning = [e for e in events if type(e) is ReasoningToken]
        assert "".join(e.text for e in reasoning) == "Let me think it through."
        assert [e.index for e in reasoning] == list(range(len(reasoning)))
        # the reasoning comes before the content, and is not counted as content tokens
        last_reasoning = max(i for i, e in enumerate(events) if type(e) is ReasoningToken)
        first_token = min(i for i, e in enumerate(events) if type(e) is Token)
        assert last_reasoning < first_token
    assert token_text(events) == "The answer."
    assert events[-1].metrics.tokens == 2


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("fault", ["cut", "cut_hard", "error", "garbage"])
@pytest.mark.parametrize("method", STREAM_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_stream_fault_after_tokens(
    server: MockLLMServer, cls: type, mode: str, method: str, fault: str
) -> None:
    """A failure after the first token ends the stream with the right StreamError and is
    never retried."""
    server.enqueue(
        Reply("one two three four", stream_fault=fault, fault_after=2, error_message="boom!")
    )
    with make_client(server, cls) as client:
        events = invoke(client, mode, method, *stream_args(method))
    check_event_order(events)
    err = events[-1]
    assert type(err) is StreamError, err
    assert token_text(events) == "one two"
    if fault in ("cut", "cut_hard"):
        assert err.error.startswith("connection_error:"), err.error
        assert err.retryable is True
    elif fault == "error":
        assert err.error == "http_500"
        assert err.status_code == 500
        assert err.message == "boom!"
    else:
        assert err.error.startswith("invalid_json:"), err.error
    assert server.request_count == 1  # after the first token: no retry
    if fault in ("cut", "cut_hard"):
        assert server.streams_completed == 0
    assert wait_until(lambda: server.open_connections == 0 or fault == "error", 1.0)


@pytest.mark.parametrize("fault", ["stall", "stall_keepalive"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_stalled_stream_times_out(server: MockLLMServer, cls: type, mode: str, fault: str) -> None:
    """The idle clock ends a stalled stream; keep-alive comments do not reset it."""
    server.enqueue(Reply("one two three", stream_fault=fault, fault_after=1, stall_seconds=30))
    with make_client(server, cls) as client:
        start = time.monotonic()
        events = invoke(client, mode, "chat_stream", MESSAGES, stream_idle_timeout=0.5)
        elapsed = time.monotonic() - start
        check_event_order(events)
        err = events[-1]
        assert type(err) is StreamError, err
        assert err.error == "timeout"
        assert token_text(events) == "one"
        assert elapsed < 5.0  # generous: 0.5 s idle timeout
        # the stalled connection is given up, not kept in the pool
        assert wait_until(lambda: server.open_connections == 0, 1.0)
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_first_byte_timeout(server: MockLLMServer, cls: type, mode: str) -> None:
    server.enqueue(Reply("late", delay=3))
    with make_client(server, cls, max_retries=0) as client:
        start = time.monotonic()
        events = invoke(client, mode, "chat_stream", MESSAGES, timeout=0.5)
        elapsed = time.monotonic() - start
    assert [type(e) for e in events] == [StreamStarted, StreamError]
    assert events[-1].error == "timeout"
    assert events[-1].retryable is True
    assert elapsed < 2.5  # generous: it must not wait for the 3 s reply
    assert server.request_count == 1


@pytest.mark.parametrize("method", STREAM_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_error_before_the_stream_is_retried(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    server.set_default(Reply.error(503, "busy"))
    with make_client(server, cls, max_retries=2) as client:
        events = invoke(client, mode, method, *stream_args(method))
    assert [type(e) for e in events] == [StreamStarted, StreamError]
    err = events[-1]
    assert err.error == "http_503" and err.status_code == 503 and err.retryable is True
    assert server.request_count == 3
    assert server.streams_started == 0


@pytest.mark.parametrize("method", STREAM_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_500_then_success_is_a_normal_stream(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    server.enqueue(Reply.error(500), Reply("after the retry"))
    with make_client(server, cls) as client:
        events = invoke(client, mode, method, *stream_args(method))
    check_event_order(events)
    assert type(events[-1]) is StreamEnd, events[-1]
    assert token_text(events) == "after the retry"
    assert server.request_count == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_reset_before_the_stream_is_retried(server: MockLLMServer, cls: type, mode: str) -> None:
    server.enqueue(Reply(reset=True), Reply("second try"))
    with make_client(server, cls) as client:
        events = invoke(client, mode, "chat_stream", MESSAGES)
    check_event_order(events)
    assert type(events[-1]) is StreamEnd, events[-1]
    assert token_text(events) == "second try"
    assert server.request_count == 2


@pytest.mark.parametrize("cls", DIALECTS)
def test_timeout_bounds_the_first_byte_not_the_whole_stream(
    server: MockLLMServer, cls: type
) -> None:
    """A stream longer than the call timeout, with gaps shorter than the idle timeout,
    completes: `timeout` is the wait for the first byte only."""
    server.enqueue(Reply(tokens=["t"] * 8, chunk_delay=0.06))
    with make_client(server, cls, timeout=0.25, max_retries=0) as client:
        events = invoke(client, "sync", "chat_stream", MESSAGES, stream_idle_timeout=0.25)
    check_event_order(events)
    assert type(events[-1]) is StreamEnd, events[-1]
    assert token_text(events) == "t" * 8
    assert events[-1].metrics.total_ms > 250


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_400_before_the_stream_is_not_retried(server: MockLLMServer, cls: type, mode: str) -> None:
    server.set_default(Reply.error(400, "no"))
    with make_client(server, cls) as client:
        events = invoke(client, mode, "chat_stream", MESSAGES)
    assert [type(e) for e in events] == [StreamStarted, StreamError]
    assert events[-1].error == "http_400" and events[-1].retryable is False
    assert server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused_stream(mode: str) -> None:
    with make_client(f"http://127.0.0.1:{free_closed_port()}/v1", VLLMClient) as client:
        events = invoke(client, mode, "chat_stream", MESSAGES)
    assert [type(e) for e in events] == [StreamStarted, StreamError]
    assert events[-1].error.startswith("connection_error: ")


# --------------------------------------------------------------------------- back-pressure

MANY = 200_000
MB = 1 << 20


@pytest.mark.parametrize("cls", DIALECTS)
def test_slow_async_consumer_pauses_the_transfer(server: MockLLMServer, cls: type) -> None:
    server.enqueue(Reply(tokens=["tok "] * MANY))

    async def main() -> tuple[int, int, int]:
        with make_client(server, cls) as client:
            rss_before = rss_bytes()
            read = 0
            async for _event in client.chat_stream(MESSAGES):
                read += 1
                if read % 50 == 0:
                    await asyncio.sleep(0.005)
                if read == 2000:
                    await asyncio.sleep(0.3)  # stop reading for a while
                    written = server.events_written
                    growth = rss_bytes() - rss_before
                    break
            freed = await async_wait_until(lambda: server.open_connections == 0, 1.0)
            assert freed, server.open_connections
            return read, written, growth

    read, written, growth = asyncio.run(main())
    assert read == 2000
    assert written < MANY // 2, written  # the server was made to wait
    assert growth < 100 * MB, growth
    assert server.streams_completed == 0


@pytest.mark.parametrize("cls", DIALECTS)
def test_slow_sync_consumer_pauses_the_transfer(server: MockLLMServer, cls: type) -> None:
    server.enqueue(Reply(tokens=["tok "] * MANY))
    with make_client(server, cls) as client:
        rss_before = rss_bytes()
        with client.chat_stream_sync(MESSAGES) as stream:
            for read, _event in enumerate(stream, 1):
                if read % 50 == 0:
                    time.sleep(0.005)
                if read == 2000:
                    time.sleep(0.3)
                    written = server.events_written
                    growth = rss_bytes() - rss_before
                    break
        assert wait_until(lambda: server.open_connections == 0, 1.0), server.open_connections
    assert written < MANY // 2, written
    assert growth < 100 * MB, growth


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_paused_stream_resumes_and_completes(server: MockLLMServer, cls: type, mode: str) -> None:
    """Pausing loses and duplicates nothing: a consumer that stops long enough for the
    buffer to fill, then reads on, gets every token in order."""
    tokens = [f"{i} " for i in range(20_000)]
    server.enqueue(Reply(tokens=tokens))
    with make_client(server, cls) as client:
        if mode == "sync":
            with client.chat_stream_sync(MESSAGES) as stream:
                events = [next(stream), next(stream)]
                time.sleep(0.3)
                events.extend(stream)
        else:

            async def main() -> list[Any]:
                async with client.chat_stream(MESSAGES) as stream:
                    out = [await stream.__anext__(), await stream.__anext__()]
                    await asyncio.sleep(0.3)
                    out.extend([e async for e in stream])
                    return out

            events = asyncio.run(main())
    check_event_order(events)
    assert type(events[-1]) is StreamEnd, events[-1]
    assert token_text(events) == "".join(tokens)
    assert events[-1].metrics.tokens == len(tokens)


# --------------------------------------------------------------------------- aborting

SLOW = {"tokens": ["x"] * 1000, "chunk_delay": 0.01}  # 10 s if nobody stops it


@pytest.mark.parametrize("how", ["break-and-drop", "async-with", "aclose"])
@pytest.mark.parametrize("cls", DIALECTS)
def test_async_abort_frees_the_connection(server: MockLLMServer, cls: type, how: str) -> None:
    server.enqueue(Reply(**SLOW))

    async def main() -> None:
        with make_client(server, cls) as client:
            tokens = 0
            if how == "break-and-drop":
                async for event in client.chat_stream(MESSAGES):
                    tokens += type(event) is Token
                    if tokens == 3:
                        break
            elif how == "async-with":
                async with client.chat_stream(MESSAGES) as stream:
                    async for event in stream:
                        tokens += type(event) is Token
                        if tokens == 3:
                            break
            else:
                stream = client.chat_stream(MESSAGES)
                async for event in stream:
                    tokens += type(event) is Token
                    if tokens == 3:
                        break
                await stream.aclose()
                with pytest.raises(StopAsyncIteration):
                    await stream.__anext__()
            assert tokens == 3
            freed = await async_wait_until(lambda: server.open_connections == 0, 1.0)
            assert freed, server.open_connections
            # the client is still fine
            result = await client.chat(MESSAGES)
            assert result.success, result

    asyncio.run(main())
    assert server.streams_started == 1 and server.streams_completed == 0


@pytest.mark.parametrize("how", ["with-break", "close", "drop"])
@pytest.mark.parametrize("cls", DIALECTS)
def test_sync_abort_frees_the_connection(server: MockLLMServer, cls: type, how: str) -> None:
    server.enqueue(Reply(**SLOW))
    with make_client(server, cls) as client:
        if how == "with-break":
            with client.chat_stream_sync(MESSAGES) as stream:
                for event in stream:
                    if type(event) is Token and event.index == 2:
                        break
        else:
            stream = client.chat_stream_sync(MESSAGES)
            tokens = [e for _, e in zip(range(4), stream)]
            assert [type(e) for e in tokens] == [StreamStarted, Token, Token, Token]
            if how == "close":
                stream.close()
                assert list(stream) == []
            else:
                del stream, tokens
                gc.collect()
        assert wait_until(lambda: server.open_connections == 0, 1.0), server.open_connections
        assert client.chat_sync(MESSAGES).success
    assert server.streams_completed == 0


@pytest.mark.parametrize("cls", DIALECTS)
def test_cancelling_the_task_aborts_the_stream(server: MockLLMServer, cls: type) -> None:
    server.enqueue(Reply(**SLOW))

    async def main() -> None:
        seen: list[Any] = []

        async def consume(client: Any) -> None:
            async for event in client.chat_stream(MESSAGES):
                seen.append(event)

        with make_client(server, cls) as client:
            task = asyncio.create_task(consume(client))
            assert await async_wait_until(lambda: len(seen) >= 3, 2.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            freed = await async_wait_until(lambda: server.open_connections == 0, 1.0)
            assert freed, server.open_connections
            assert not any(isinstance(e, (StreamEnd, StreamError)) for e in seen)

    asyncio.run(main())
    assert server.streams_completed == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
def test_client_close_ends_the_stream_with_cancelled(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    server.enqueue(Reply(**SLOW))
    with make_client(server, cls) as client:
        if mode == "sync":
            events = []
            with client.chat_stream_sync(MESSAGES) as stream:
                for event in stream:
                    events.append(event)
                    if len(events) == 3:
                        client.close()
        else:

            async def main() -> list[Any]:
                out = []
                async for event in client.chat_stream(MESSAGES):
                    out.append(event)
                    if len(out) == 3:
                        client.close()
                return out

            events = asyncio.run(main())
        check_event_order(events)
        err = events[-1]
        assert type(err) is StreamError, err
        assert err.error == "cancelled"
        assert err.retryable is False
        assert len(events) < 100
        assert wait_until(lambda: server.open_connections == 0, 1.0), server.open_connections


@pytest.mark.parametrize("cls", DIALECTS)
def test_500_concurrent_streams(server: MockLLMServer, cls: type) -> None:
    server.responder = lambda request: Reply(tokens=[request.prompt, " is", " done"])

    async def main() -> list[tuple[str, Any]]:
        with make_client(server, cls) as client:
            return await asyncio.gather(
                *(
                    client.chat_stream([{"role": "user", "content": f"prompt-{i}"}]).collect()
                    for i in range(500)
                )
            )

    results = asyncio.run(main())
    for i, (text, last) in enumerate(results):
        assert type(last) is StreamEnd, (i, last)
        assert text == f"prompt-{i} is done"
    assert server.streams_completed == 500
    assert server.request_count == 500


def test_stream_needs_a_running_loop(server: MockLLMServer) -> None:
    with make_client(server, VLLMClient) as client:
        with pytest.raises(RuntimeError, match="chat_stream_sync"):
            client.chat_stream(MESSAGES)
        with pytest.raises(RuntimeError):
            client.complete_stream("p")
    assert server.request_count == 0


def test_stream_event_types_are_exported() -> None:
    for name in (
        "StreamStarted",
        "Token",
        "ReasoningToken",
        "ToolCallDelta",
        "StreamEnd",
        "StreamError",
    ):
        assert getattr(llmbridge, name) is getattr(llmbridge._generate, name)


@pytest.mark.parametrize("mode", MODES)
def test_unread_stream_dropped_frees_the_connection(server: MockLLMServer, mode: str) -> None:
    """A stream that is opened (the request goes out at once) and dropped unread."""
    server.enqueue(Reply(**SLOW))
    with make_client(server, VLLMClient) as client:
        if mode == "sync":
            stream: Any = client.chat_stream_sync(MESSAGES)
            assert wait_until(lambda: server.streams_started == 1, 2.0)
            del stream
        else:

            async def main() -> None:
                stream = client.chat_stream(MESSAGES)
                assert await async_wait_until(lambda: server.streams_started == 1, 2.0)
                del stream

            asyncio.run(main())
        assert wait_until(lambda: server.open_connections == 0, 1.0), server.open_connections
    assert server.streams_completed == 0
