"""MockLLMServer streaming over raw sockets: SSE and NDJSON shapes, tool calls, faults,
backpressure and connection accounting."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from llmbridge.testing import STREAM_FAULTS, MockLLMServer, Reply, split_tokens

CHAT = "/v1/chat/completions"
VLLM_SAMPLES = Path(__file__).parent / "wire_samples" / "vllm"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as srv:
        yield srv


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class RawStream:
    """One request on a raw socket, with a hand-rolled chunked decoder, so a test sees
    exactly what the server sent and controls when (and whether) it reads."""

    def __init__(
        self,
        server: MockLLMServer,
        path: str,
        payload: Any,
        *,
        timeout: float = 5.0,
        rcvbuf: int | None = None,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the TCP window starts small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", server.port))
        body = json.dumps(payload).encode()
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        self.buf = bytearray()
        self.pos = 0  # parse offset into buf: no re-slicing per chunk on long streams
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        self.pos = end + 4
        self.status = int(lines[0].split(" ")[1])
        self.headers = {
            k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        if self.pos > 65536:
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n", self.pos)) < 0:
            self._fill()
        line = bytes(self.buf[self.pos : end])
        self.pos = end + 2
        return line

    def chunk(self) -> bytes | None:
        """The next chunk's data; None after the terminating 0-chunk."""
        size = int(self._line(), 16)
        if size == 0:
            assert self._line() == b""  # no trailers
            return None
        while len(self.buf) - self.pos < size + 2:
            self._fill()
        data = bytes(self.buf[self.pos : self.pos + size])
        assert self.buf[self.pos + size : self.pos + size + 2] == b"\r\n"
        self.pos += size + 2
        return data

    def body(self) -> bytes:
        parts = []
        while (data := self.chunk()) is not None:
            parts.append(data)
        return b"".join(parts)

    def at_eof(self) -> bool:
        """True if the server closed the connection (nothing more to read)."""
        try:
            self._fill()
        except EOFError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sse_data(body: bytes) -> list[str]:
    """The data of each SSE event (comments kept as ':...' entries)."""
    text = body.decode()
    assert text.endswith("\n\n") or not text
    events = []
    for block in text.split("\n\n")[:-1]:
        assert "\n" not in block, block  # vLLM: one line per event
        if block.startswith(":"):
            events.append(block)
        else:
            assert block.startswith("data: "), block
            events.append(block[len("data: ") :])
    return events


def sse_json(body: bytes) -> list[Any]:
    """Decoded SSE events; the literal [DONE] kept as the string "[DONE]"."""
    return [e if e == "[DONE]" else json.loads(e) for e in sse_data(body)]


def ndjson(body: bytes) -> list[Any]:
    text = body.decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def stream_chat(
    server: MockLLMServer, *, timeout: float = 5.0, rcvbuf: int | None = None, **extra: Any
) -> RawStream:
    """A streamed chat request; `extra` goes into the JSON body."""
    payload = {"model": "mock-model", "messages": MESSAGES, "stream": True, **extra}
    return RawStream(server, CHAT, payload, timeout=timeout, rcvbuf=rcvbuf)


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in events if e != "[DONE]" and e["choices"]]


# ------------------------------------------------------------------ OpenAI (vLLM) SSE


def test_chat_stream_chunk_order(server: MockLLMServer) -> None:
    server.enqueue(Reply("Hello big world", reasoning="think hard"))
    with stream_chat(server) as s:
        assert s.status == 200
        assert s.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert s.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in s.headers
        events = sse_json(s.body())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert {c["model"] for c in chunks} == {"mock-model"}
    assert deltas(events) == [
        {"role": "assistant", "content": ""},
        {"reasoning": "think"},
        {"reasoning": " hard"},
        {"content": "Hello"},
        {"content": " big"},
        {"content": " world"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 6 + ["stop"]
    assert all("usage" not in c for c in chunks)  # not requested
    assert (server.streams_started, server.streams_completed) == (1, 1)
    assert server.events_written == len(events)


def only_in_mock(mock: Any, real: Any, path: str = "$") -> list[str]:
    """Keys or JSON types the mock sends that the real answer does not have."""
    if mock is None or real is None:
        return []
    if type(mock) is not type(real):
        return [f"{path}: mock {type(mock).__name__}, real {type(real).__name__}"]
    problems: list[str] = []
    if isinstance(mock, dict):
        for key, value in mock.items():
            if key not in real:
                problems.append(f"{path}.{key}: only in the mock")
            else:
                problems += only_in_mock(value, real[key], f"{path}.{key}")
    elif isinstance(mock, list) and mock and real:
        problems += only_in_mock(mock[0], real[0], f"{path}[0]")
    return problems


def test_chat_stream_sends_nothing_a_real_vllm_does_not(server: MockLLMServer) -> None:
    # Recorded from vLLM 0.32 (tests_py/wire_samples/vllm/README.md): role chunk, six
    # token chunks, the last of which carries finish_reason "length", usage, [DONE].
    sample = json.loads((VLLM_SAMPLES / "chat_stream_include_usage.json").read_text())
    real = sse_json(sample["body"].encode())
    real_role, real_token, real_usage = real[0], real[1], real[-2]
    real_finish = real[-3]
    server.enqueue(Reply("a b", finish_reason="length"))
    with stream_chat(server, stream_options={"include_usage": True}) as s:
        mock = sse_json(s.body())
    assert len(mock) == len(["role", "a", " b", "finish", "usage", "[DONE]"])
    pairs = [(mock[0], real_role), (mock[1], real_token), (mock[2], real_token),
             (mock[3], real_finish), (mock[4], real_usage)]
    for mine, theirs in pairs:
        assert only_in_mock(mine, theirs) == []
    assert mock[-1] == real[-1] == "[DONE]"
    assert sample["headers"]["content-type"] == s.headers["content-type"]


def test_each_event_is_one_http_chunk_and_compact_utf8(server: MockLLMServer) -> None:
    server.enqueue(Reply(tokens=["h\u00e9", "llo"]))
    with stream_chat(server) as s:
        chunks = []
        while (data := s.chunk()) is not None:
            chunks.append(data)
    assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
    assert b'{"content":"h\xc3\xa9"}' in chunks[1]  # raw UTF-8, no spaces, no \u escape
    assert chunks[-1] == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("stream_options", "usage_chunk", "expected"),
    [
        ({"include_usage": True}, True, True),
        ({"include_usage": False}, True, False),
        (None, True, False),
        ({"include_usage": True}, False, False),
    ],
)
def test_usage_chunk_only_when_requested(
    server: MockLLMServer, stream_options: Any, usage_chunk: bool, expected: bool
) -> None:
    server.enqueue(Reply("a b c", prompt_tokens=7, completion_tokens=3, usage_chunk=usage_chunk))
    extra = {} if stream_options is None else {"stream_options": stream_options}
    with stream_chat(server, **extra) as s:
        events = sse_json(s.body())
    assert events[-1] == "[DONE]"
    usage = [e for e in events[:-1] if "usage" in e]
    if not expected:
        assert usage == []
        return
    # After the finish chunk, right before [DONE], with empty choices.
    assert usage == [events[-2]]
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"] == []
    assert events[-2]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_tokens_field_streams_and_joins(server: MockLLMServer) -> None:
    server.enqueue(Reply(tokens=["{", '"a"', ":", " 1}"]), Reply(tokens=["x", "y"]))
    with stream_chat(server, stream_options={"include_usage": True}) as s:
        events = sse_json(s.body())
    assert [d["content"] for d in deltas(events)[1:-1]] == ["{", '"a"', ":", " 1}"]
    assert events[-2]["usage"]["completion_tokens"] == 4  # one per token by default
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", CHAT, json.dumps({"messages": MESSAGES}))
    data = json.loads(conn.getresponse().read())
    conn.close()
    assert data["choices"][0]["message"]["content"] == "xy"
    assert data["usage"]["completion_tokens"] == 2


def test_split_tokens_joins_back() -> None:
    assert split_tokens("Hello, big\n world! ") == ["Hello,", " big", "\n world!", " "]
    assert split_tokens("") == [] and split_tokens(None) == []
    text = '  {"a": [1,  2]}\n\n'
    assert "".join(split_tokens(text)) == text


def test_completions_stream(server: MockLLMServer) -> None:
    server.enqueue(Reply("one two", finish_reason="length"))
    payload = {"prompt": "x", "max_tokens": 2, "stream": True,
               "stream_options": {"include_usage": True}}
    with RawStream(server, "/v1/completions", payload) as s:
        events = sse_json(s.body())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert chunks[0]["id"].startswith("cmpl-")
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == ["one", " two", ""]
    assert "delta" not in chunks[0]["choices"][0]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_stream_false_or_absent_is_not_streamed_on_openai_paths(server: MockLLMServer) -> None:
    for extra in ({}, {"stream": False}):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("POST", CHAT, json.dumps({"messages": MESSAGES, **extra}))
        resp = conn.getresponse()
        assert resp.getheader("content-type") == "application/json"
        assert json.loads(resp.read())["object"] == "chat.completion"
        conn.close()
    assert server.streams_started == 0


def test_error_status_on_a_stream_request_is_a_json_error(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(429, "slow down"), Reply.error(503, "busy"))
    with stream_chat(server) as s:
        assert s.status == 429 and s.headers["content-type"] == "application/json"
    with RawStream(server, "/api/chat", {"model": "m", "messages": []}) as s:
        assert s.status == 503 and s.headers["content-type"] == "application/json"
    assert server.streams_started == 0


def test_strict_refuses_stream_options_without_stream() -> None:
    with MockLLMServer(strict=True) as srv:
        for extra in ({}, {"stream": False}):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            payload = {"messages": MESSAGES, "stream_options": {"include_usage": True}, **extra}
            conn.request("POST", CHAT, json.dumps(payload))
            resp = conn.getresponse()
            assert resp.status == 400
            error = json.loads(resp.read())["error"]
            assert "Stream options can only be defined when stream=True" in error["message"]
            conn.close()
        with stream_chat(srv, stream_options={"include_usage": True}) as s:
            assert s.status == 200 and sse_json(s.body())[-1] == "[DONE]"
        assert srv.pending_replies == 0  # refused requests consumed no reply


# ------------------------------------------------------------------ Ollama NDJSON


@pytest.mark.parametrize("stream", [None, True])
def test_ollama_chat_streams_by_default(server: MockLLMServer, stream: bool | None) -> None:
    server.enqueue(Reply("Hi there", reasoning="hmm", prompt_tokens=5))
    payload: dict[str, Any] = {"model": "llama3", "messages": MESSAGES}
    if stream is not None:
        payload["stream"] = stream
    with RawStream(server, "/api/chat", payload) as s:
        assert s.headers["content-type"] == "application/x-ndjson"
        assert s.headers["transfer-encoding"] == "chunked"
        lines = ndjson(s.body())
    assert [line["message"] for line in lines[:-1]] == [
        {"role": "assistant", "content": "", "thinking": "hmm"},
        {"role": "assistant", "content": "Hi"},
        {"role": "assistant", "content": " there"},
    ]
    assert all(line["done"] is False and line["model"] == "llama3" for line in lines[:-1])
    assert all(line["created_at"].endswith("Z") for line in lines)
    last = lines[-1]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["message"] == {"role": "assistant", "content": ""}
    assert last["prompt_eval_count"] == 5 and last["eval_count"] >= 1
    for key in ("total_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(last[key], int) and last[key] > 0
    assert server.streams_completed == 1


def test_ollama_generate_stream(server: MockLLMServer) -> None:
    server.enqueue(Reply(tokens=["a", "b"], reasoning="t", finish_reason="length"))
    with RawStream(server, "/api/generate", {"model": "m", "prompt": "x"}) as s:
        lines = ndjson(s.body())
    assert [(line.get("thinking"), line["response"]) for line in lines] == [
        ("t", ""), (None, "a"), (None, "b"), (None, ""),
    ]
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "length"
    assert lines[-1]["eval_count"] == 2


def test_ollama_stream_false_is_one_json(server: MockLLMServer) -> None:
    with RawStream(server, "/api/chat", {"model": "m", "messages": [], "stream": False}) as s:
        assert s.headers["content-type"] == "application/json"
        assert "content-length" in s.headers
    assert server.streams_started == 0


# ------------------------------------------------------------------ tool calls


def test_reply_tool_call_constructor_and_validation() -> None:
    reply = Reply.tool_call("get_weather", {"city": "Paris"}, id="call_1")
    assert reply.tool_calls == [{"name": "get_weather", "arguments": {"city": "Paris"},
                                 "id": "call_1"}]
    assert reply.content is None and reply.finish_reason is None
    assert Reply(tool_calls=[{"name": "f", "arguments": {}}]).content is None
    assert Reply("text too", tool_calls=[{"name": "f", "arguments": {}}]).content == "text too"
    assert Reply().content == '{"ok": true}'
    with pytest.raises(ValueError, match="stream_fault"):
        Reply(stream_fault="explode")
    with pytest.raises(ValueError, match="fault_after"):
        Reply(stream_fault="cut", fault_after=-1)
    assert "cut" in STREAM_FAULTS


def test_openai_tool_calls_non_streaming(server: MockLLMServer) -> None:
    server.enqueue(
        Reply(tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"},
            {"name": "broken", "arguments": '{"city": "Par'},
        ]),
        Reply.tool_call("f", {}, finish_reason="stop", content="also text"),
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", CHAT, json.dumps({"messages": MESSAGES}))
    choice = json.loads(conn.getresponse().read())["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    first, second = message["tool_calls"]
    assert first == {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert second["id"].startswith("chatcmpl-tool-")
    assert second["function"] == {"name": "broken", "arguments": '{"city": "Par'}
    conn.request("POST", CHAT, json.dumps({"messages": MESSAGES}))
    choice = json.loads(conn.getresponse().read())["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("stop", "also text")
    conn.close()
    # Without tool calls the key is absent, as vLLM leaves it out.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", CHAT, json.dumps({"messages": MESSAGES}))
    assert "tool_calls" not in json.loads(conn.getresponse().read())["choices"][0]["message"]
    conn.close()


def test_openai_tool_calls_streaming(server: MockLLMServer) -> None:
    args = {"city": "Paris", "unit": "celsius"}
    server.enqueue(Reply(tool_calls=[
        {"name": "get_weather", "arguments": args, "id": "call_1"},
        {"name": "noop", "arguments": "{}"},
    ]))
    with stream_chat(server) as s:
        events = sse_json(s.body())
    ds = deltas(events)
    assert ds[0] == {"role": "assistant", "content": ""}
    assert ds[1] == {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": "get_weather", "arguments": ""}}]}
    calls: dict[int, dict[str, Any]] = {}
    for d in ds[1:-1]:
        assert list(d) == ["tool_calls"]
        (part,) = d["tool_calls"]
        call = calls.setdefault(part["index"], {"id": None, "name": None, "arguments": ""})
        if "id" in part:
            call["id"], call["name"] = part["id"], part["function"]["name"]
        call["arguments"] += part["function"]["arguments"]
    assert json.loads(calls[0]["arguments"]) == args
    assert (calls[1]["name"], calls[1]["arguments"]) == ("noop", "{}")
    assert calls[1]["id"].startswith("chatcmpl-tool-")
    assert sum(len(d["tool_calls"]) for d in ds[1:-1]) > 3  # the arguments came in pieces
    assert ds[-1] == {} and events[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_ollama_tool_calls(server: MockLLMServer) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "as_text", "arguments": '{"n": 1}'},
        {"name": "broken", "arguments": "{nope", "id": "call_9"},
    ]
    server.enqueue(Reply(tool_calls=calls), Reply(tool_calls=calls[:1]))
    expected = [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "as_text", "arguments": {"n": 1}}},
        {"id": "call_9", "function": {"name": "broken", "arguments": "{nope"}},
    ]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/api/chat", json.dumps({"model": "m", "messages": [], "stream": False}))
    data = json.loads(conn.getresponse().read())
    conn.close()
    assert data["message"]["tool_calls"] == expected
    assert data["message"]["content"] == "" and data["done_reason"] == "stop"
    with RawStream(server, "/api/chat", {"model": "m", "messages": []}) as s:
        lines = ndjson(s.body())
    assert lines[0]["message"] == {"role": "assistant", "content": "",
                                   "tool_calls": expected[:1]}
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"


# ------------------------------------------------------------------ faults


def test_cut_ends_the_body_cleanly_without_the_marker(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b c d", stream_fault="cut", fault_after=2),
                   Reply("a b c d", stream_fault="cut", fault_after=2))
    with stream_chat(server, stream_options={"include_usage": True}) as s:
        assert s.headers["connection"] == "close"
        events = sse_json(s.body())  # ends with a proper 0-chunk
        assert s.at_eof()
    assert deltas(events) == [{"role": "assistant", "content": ""}, {"content": "a"},
                              {"content": " b"}]
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    with RawStream(server, "/api/chat", {"model": "m", "messages": []}) as s:
        lines = ndjson(s.body())
        assert s.at_eof()
    assert [line["message"]["content"] for line in lines] == ["a", " b"]
    assert all(line["done"] is False for line in lines)
    assert (server.streams_started, server.streams_completed) == (2, 0)
    assert wait_until(lambda: server.open_connections == 0)


def test_cut_hard_drops_the_socket_mid_chunk(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b c", stream_fault="cut_hard", fault_after=1))
    with stream_chat(server) as s:
        assert s.chunk() is not None and s.chunk() is not None  # role, "a"
        with pytest.raises(EOFError):
            s.chunk()  # the size line came, the data did not
    server.enqueue(Reply("a b c", stream_fault="cut_hard", fault_after=0))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/api/generate", json.dumps({"model": "m", "prompt": "x"}))
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    assert server.streams_completed == 0
    assert wait_until(lambda: server.open_connections == 0)


def test_stall_sends_nothing_until_the_client_gives_up(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b c", stream_fault="stall", fault_after=1))
    with stream_chat(server, timeout=0.3) as s:
        assert s.chunk() is not None and s.chunk() is not None  # role, "a"
        assert wait_until(lambda: server.open_connections == 1)
        with pytest.raises(socket.timeout):
            s.chunk()
    # The client hung up: the server notices and frees the connection long before
    # stall_seconds (30 s) are over.
    assert wait_until(lambda: server.open_connections == 0)
    assert server.streams_completed == 0


def test_stall_resumes_after_stall_seconds(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b", stream_fault="stall", fault_after=1, stall_seconds=0.3))
    started = time.monotonic()
    with RawStream(server, "/api/chat", {"model": "m", "messages": []}) as s:
        lines = ndjson(s.body())
    assert time.monotonic() - started >= 0.25
    assert [line["message"]["content"] for line in lines] == ["a", " b", ""]
    assert server.streams_completed == 1


@pytest.mark.parametrize("path", [CHAT, "/api/chat"])
def test_stall_keepalive(server: MockLLMServer, path: str) -> None:
    server.enqueue(Reply("a b", stream_fault="stall_keepalive", fault_after=1,
                         stall_seconds=0.7))
    with RawStream(server, path, {"model": "m", "messages": [], "stream": True}) as s:
        body = s.body()
    if path == CHAT:
        events = sse_data(body)
        keepalives = [e for e in events if e.startswith(":")]
        assert set(keepalives) == {": keep-alive"}
        assert events[-1] == "[DONE]"
        # Between the first token and the rest.
        first = next(i for i, e in enumerate(events) if e.startswith(":"))
        assert json.loads(events[first - 1])["choices"][0]["delta"] == {"content": "a"}
    else:
        lines = body.decode().split("\n")
        keepalives = [line for line in lines[:-1] if line == ""]
        assert json.loads(lines[-2])["done"] is True
    assert 2 <= len(keepalives) <= 4  # every 0.2 s for 0.7 s
    assert server.streams_completed == 1


def test_error_fault_openai_sends_the_error_then_done(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b c", stream_fault="error", fault_after=2,
                         error_message="engine died"))
    with stream_chat(server, stream_options={"include_usage": True}) as s:
        events = sse_json(s.body())
    assert events[-1] == "[DONE]"
    assert events[-2] == {"error": {"message": "engine died", "type": "InternalServerError",
                                    "param": None, "code": 500}}
    assert [d.get("content") for d in deltas(events[:-2])] == ["", "a", " b"]
    assert all("usage" not in e for e in events[:-1])
    assert server.streams_completed == 1  # [DONE] was written, as vLLM does


def test_error_fault_ollama_sends_an_error_line_and_ends(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b c", stream_fault="error", fault_after=1))
    with RawStream(server, "/api/generate", {"model": "m", "prompt": "x"}) as s:
        lines = ndjson(s.body())
    assert lines == [lines[0], {"error": "Internal Server Error"}]
    assert lines[0]["response"] == "a"
    assert server.streams_completed == 0


def test_garbage_fault_then_the_stream_goes_on(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b", stream_fault="garbage", fault_after=1),
                   Reply("a b", stream_fault="garbage", fault_after=0))
    with stream_chat(server) as s:
        events = sse_data(s.body())
    assert events[2] == "not json"
    assert json.loads(events[1])["choices"][0]["delta"] == {"content": "a"}
    assert events[-1] == "[DONE]"
    with RawStream(server, "/api/chat", {"model": "m", "messages": []}) as s:
        lines = s.body().decode().split("\n")
    assert lines[0] == "not json"
    assert json.loads(lines[-2])["done"] is True
    assert server.streams_completed == 2


def test_fault_after_past_the_last_token_faults_before_the_finish(server: MockLLMServer) -> None:
    server.enqueue(Reply("a b", stream_fault="cut", fault_after=99))
    with stream_chat(server) as s:
        events = sse_json(s.body())
    assert [d.get("content") for d in deltas(events)] == ["", "a", " b"]  # no finish chunk


# ------------------------------------------------------------------ pacing, backpressure


def test_chunk_delay_paces_events_and_stops_when_the_client_leaves(
    server: MockLLMServer,
) -> None:
    server.enqueue(Reply(tokens=["x"] * 1000, chunk_delay=0.05))
    started = time.monotonic()
    with stream_chat(server) as s:
        for _ in range(4):  # role + 3 tokens
            assert s.chunk() is not None
    assert time.monotonic() - started >= 0.1
    assert wait_until(lambda: server.open_connections == 0)
    time.sleep(0.2)
    assert server.events_written < 20  # the server stopped, not 1000 events on
    assert server.streams_completed == 0


def test_backpressure_bounds_a_long_stream(server: MockLLMServer) -> None:
    count = 200_000
    server.enqueue(Reply(tokens=["tok"] * count))
    with stream_chat(server, rcvbuf=16 * 1024) as s:
        # Read nothing: the server must stop once the socket buffers are full.
        previous = -1
        while server.events_written != previous:
            previous = server.events_written
            time.sleep(0.1)
        paused_at = server.events_written
        assert 0 < paused_at < count // 4
        # Resume: everything arrives and the stream completes. Counted on the raw bytes
        # (the framing is checked by the other tests) to keep a 40 MB read quick.
        pattern = b'"content":"tok"'
        tokens = 0
        tail = bytes(s.buf[s.pos :])
        while not tail.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
            tail += s.sock.recv(1 << 18)
            tokens += tail.count(pattern)
            last = tail.rfind(pattern)
            tail = tail[last + len(pattern) :] if last >= 0 else tail[-64:]
    assert tokens == count
    assert server.events_written == count + 3  # role, tokens, finish, [DONE]
    assert server.streams_completed == 1


def test_a_client_that_stops_reading_and_leaves_frees_its_connection(
    server: MockLLMServer,
) -> None:
    server.enqueue(Reply(tokens=["tok"] * 200_000))
    s = stream_chat(server, rcvbuf=16 * 1024)
    assert s.chunk() is not None
    assert wait_until(lambda: server.open_connections == 1)
    written = server.events_written
    s.close()  # unread data: the kernel resets the connection
    assert wait_until(lambda: server.open_connections == 0)
    assert server.events_written < 200_000
    assert written <= server.events_written
    assert (server.streams_started, server.streams_completed) == (1, 0)


def test_streams_keep_the_connection_alive_and_reset_clears_counters(
    server: MockLLMServer,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for path, payload in [
        (CHAT, {"messages": MESSAGES, "stream": True}),
        ("/api/chat", {"model": "m", "messages": MESSAGES}),
        (CHAT, {"messages": MESSAGES}),
    ]:
        conn.request("POST", path, json.dumps(payload))
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read()
    conn.close()
    assert server.connections_accepted == 1
    assert (server.streams_started, server.streams_completed) == (2, 2)
    assert wait_until(lambda: server.open_connections == 0)
    server.reset()
    assert (server.streams_started, server.streams_completed, server.events_written) == (0, 0, 0)
