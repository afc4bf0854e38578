"""Stream framing edge cases (shared/protocols.md §2.2 and §3.3) through the whole client:
the mock sends an exact SSE or NDJSON body (`Reply.raw_body` with the stream's
Content-Type), and the events must be those of the plain stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from generation_helpers import MESSAGES, MODEL, check_event_order, make_client, token_text
from llmbridge import OllamaClient, ReasoningToken, StreamEnd, StreamError, VLLMClient
from llmbridge.testing import MockLLMServer, Reply

SSE = {"Content-Type": "text/event-stream; charset=utf-8"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        yield s


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
    }
    body.update(extra)
    return json.dumps(body)


USAGE = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
)
ROLE = chunk({"role": "assistant", "content": ""})
HEL = chunk({"content": "Hel"})
LO = chunk({"content": "lo"})
FINISH = chunk({}, "stop")
PLAIN = [ROLE, HEL, LO, FINISH, USAGE, "[DONE]"]


def sse(events: list[str], nl: str = "\n") -> bytes:
    return "".join(f"data: {e}{nl}{nl}" for e in events).encode()


def split_data(event: str) -> str:
    """One event as two `data:` lines, split between two JSON members."""
    cut = event.index(', "choices"')
    return f"data: {event[:cut]}\ndata: {event[cut:]}\n\n"


SSE_BODIES = {
    "lf": sse(PLAIN),
    "crlf": sse(PLAIN, "\r\n"),
    "bare-cr": sse(PLAIN, "\r"),
    "comments-and-other-fields": b": hello\n\nevent: message\nid: 7\nretry: 100\n"
    + sse(PLAIN[:2])
    + b": keep-alive\n\n"
    + sse(PLAIN[2:]),
    "no-space-after-colon": b"".join(f"data:{e}\n\n".encode() for e in PLAIN),
    "multi-line-data": sse([ROLE]) + split_data(HEL).encode() + sse(PLAIN[2:]),
    "utf8-bom": b"\xef\xbb\xbf" + sse(PLAIN),
    "content-with-finish": sse([ROLE, HEL, chunk({"content": "lo"}, "stop"), USAGE, "[DONE]"]),
    "explicit-nulls": sse(
        [
            ROLE,
            chunk({"content": "Hel", "reasoning": None, "tool_calls": None}, usage=None),
            chunk({"content": None}),
            LO,
            chunk({}, "stop", usage=None),
            USAGE,
            "[DONE]",
        ]
    ),
    "junk-after-done": sse(PLAIN) + b"data: not json\n\n",
}


@pytest.mark.parametrize("body", list(SSE_BODIES.values()), ids=list(SSE_BODIES))
def test_sse_framing(server: MockLLMServer, body: bytes) -> None:
    server.enqueue(Reply(raw_body=body, headers=SSE))
    with make_client(server, VLLMClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamEnd, end
    assert token_text(events) == "Hello"
    assert end.finish_reason == "stop"
    assert (end.metrics.prompt_tokens, end.metrics.completion_tokens) == (5, 2)


def test_sse_reasoning_content_delta(server: MockLLMServer) -> None:
    body = sse([ROLE, chunk({"reasoning_content": "hmm"}), HEL, LO, FINISH, USAGE, "[DONE]"])
    server.enqueue(Reply(raw_body=body, headers=SSE))
    with make_client(server, VLLMClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    assert [e.text for e in events if type(e) is ReasoningToken] == ["hmm"]
    assert token_text(events) == "Hello"


@pytest.mark.parametrize(
    "body",
    [sse(PLAIN[:-1]), sse(PLAIN[:-2]), sse(PLAIN[:3])],
    ids=["usage-no-done", "finish-no-done", "tokens-only"],
)
def test_sse_without_done_is_an_error(server: MockLLMServer, body: bytes) -> None:
    server.enqueue(Reply(raw_body=body, headers=SSE))
    with make_client(server, VLLMClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    assert type(events[-1]) is StreamError
    assert events[-1].error.startswith("connection_error:"), events[-1].error
    assert token_text(events) == "Hello"


def test_sse_error_event_then_done(server: MockLLMServer) -> None:
    error = {
        "error": {"message": "oops", "type": "InternalServerError", "param": None, "code": 500}
    }
    server.enqueue(Reply(raw_body=sse([ROLE, HEL, json.dumps(error), "[DONE]"]), headers=SSE))
    with make_client(server, VLLMClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    err = events[-1]
    assert type(err) is StreamError
    assert (err.error, err.status_code, err.message) == ("http_500", 500, "oops")
    assert token_text(events) == "Hel"


def line(content: str, done: bool = False, **extra: Any) -> str:
    body: dict[str, Any] = {
        "model": MODEL,
        "created_at": "2024-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": done,
    }
    body.update(extra)
    return json.dumps(body)


LAST = line("", True, done_reason="stop", prompt_eval_count=5, eval_count=2)

NDJSON_BODIES = {
    "lf": f"{line('Hel')}\n{line('lo')}\n{LAST}\n",
    "crlf": f"{line('Hel')}\r\n{line('lo')}\r\n{LAST}\r\n",
    "empty-lines": f"\n{line('Hel')}\n\n\n{line('lo')}\n{LAST}\n",
    "text-on-the-done-line": f"{line('Hel')}\n"
    + line("lo", True, done_reason="stop", prompt_eval_count=5, eval_count=2)
    + "\n",
}


@pytest.mark.parametrize("body", list(NDJSON_BODIES.values()), ids=list(NDJSON_BODIES))
def test_ndjson_framing(server: MockLLMServer, body: str) -> None:
    server.enqueue(Reply(raw_body=body.encode(), headers=NDJSON))
    with make_client(server, OllamaClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamEnd, end
    assert token_text(events) == "Hello"
    assert end.finish_reason == "stop"
    assert (end.metrics.prompt_tokens, end.metrics.completion_tokens) == (5, 2)


def test_ndjson_final_line_without_newline(server: MockLLMServer) -> None:
    body = f"{line('Hel')}\n{line('lo')}\n{LAST}"
    server.enqueue(Reply(raw_body=body.encode(), headers=NDJSON))
    with make_client(server, OllamaClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    assert type(events[-1]) is StreamEnd, events[-1]
    assert token_text(events) == "Hello"


def test_ndjson_without_done_is_an_error(server: MockLLMServer) -> None:
    server.enqueue(Reply(raw_body=f"{line('Hel')}\n{line('lo')}\n".encode(), headers=NDJSON))
    with make_client(server, OllamaClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    assert type(events[-1]) is StreamError
    assert events[-1].error.startswith("connection_error:"), events[-1].error


def test_ndjson_error_line(server: MockLLMServer) -> None:
    body = f"{line('Hel')}\n" + json.dumps({"error": "model crashed"}) + "\n"
    server.enqueue(Reply(raw_body=body.encode(), headers=NDJSON))
    with make_client(server, OllamaClient, max_retries=0) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    err = events[-1]
    assert type(err) is StreamError
    assert err.error == "http_500" and err.message == "model crashed"
    assert token_text(events) == "Hel"


def test_a_json_body_instead_of_a_stream_says_so(server: MockLLMServer) -> None:
    # A proxy that drops "stream": true answers with one chat completion: not a cut
    # stream but a server that did not stream, and retrying would not change it.
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                    "finish_reason": "stop"}]})
    server.enqueue(Reply(raw_body=body.encode()))
    with make_client(server, VLLMClient, max_retries=2) as client:
        events = list(client.chat_stream_sync(MESSAGES))
    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamError, end
    assert end.error.startswith(
        "invalid_json: the server answered with one JSON body, not an event stream"
    )
    assert not end.retryable
    assert server.request_count == 1


def test_generation_fits_max_tokens_to_a_learnt_context(server: MockLLMServer) -> None:
    # As call_llm does: once health() has listed the model's max_model_len, calls that
    # do not set max_tokens ask for what the prompt leaves, never more than configured.
    server.max_model_len = 300
    server.models = [MODEL]
    with make_client(server, VLLMClient, max_tokens=4096) as client:
        client.chat_sync(MESSAGES)
        assert server.last_request.json["max_tokens"] == 4096  # nothing learnt yet
        client.health_sync(force=True)
        client.chat_sync(MESSAGES)
        fitted = server.last_request.json["max_tokens"]
        assert 1 <= fitted < 300
        client.chat_sync(MESSAGES, max_tokens=50)  # a caller's value is kept as given
        assert server.last_request.json["max_tokens"] == 50
        list(client.chat_stream_sync(MESSAGES))
        assert server.last_request.json["max_tokens"] == fitted
