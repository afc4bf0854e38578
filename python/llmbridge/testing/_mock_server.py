"""A scriptable, real HTTP/1.1 LLM server for tests: `MockLLMServer`.

It speaks a subset of vLLM's OpenAI-compatible API and of Ollama's native API, streaming
included (SSE and NDJSON, with scripted faults), on 127.0.0.1, on its own asyncio event
loop in a daemon thread. Running its own loop is what lets one object serve sync tests
(threads, blocking clients) and async tests alike: the caller's loop is never used, so a
client under test cannot deadlock it.

The HTTP layer is deliberately small (request line, headers, Content-Length or chunked
bodies, keep-alive, `Expect: 100-continue` as libcurl sends it) and deliberately real: a
client sees genuine sockets, resets and short bodies, never a patched transport.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import json
import logging
import random
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Callable, Optional

from ._media import caption_for, embedding_for, embedding_text, float32_base64, request_images
from ._reply import (
    RecordedRequest,
    Reply,
    ReplyLike,
    as_reply,
    json_array,
    json_object,
    split_tokens,
)

__all__ = ["MockLLMServer", "run", "serve_forever"]

logger = logging.getLogger("llmbridge.testing")

Responder = Callable[[RecordedRequest], Optional[ReplyLike]]

_MAX_HEAD_LINE = 64 * 1024
_MAX_HEADERS = 200
_MAX_BODY = 64 * 1024 * 1024
_STREAM_LIMIT = 2 * _MAX_HEAD_LINE
_LISTEN_BACKLOG = 1024
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_DISCONNECT_POLL = 0.05
# Stream events are written in batches of about this many bytes, each followed by
# drain(): the server holds one batch plus the transport's buffer, however long the
# stream, and a client that stops reading stops the server.
_STREAM_BATCH = 16 * 1024
_KEEPALIVE_INTERVAL = 0.2
# Tool-call arguments stream in fragments of this many characters.
_ARGUMENT_FRAGMENT = 8

# What a client sees when a reply asks for a malformed body: the start of a real answer,
# cut mid-token, so a parser fails the way it would on a proxy that lost the tail.
_MALFORMED_BODY = b'{"id": "chatcmpl-mock", "object": "chat.completion", "choices": [{"mess'

_MALFORMED_EMBEDDINGS = b'{"id": "embd-mock", "object": "list", "data": [{"index": 0, "embe'

_OPENAI_GENERATION = {"/v1/chat/completions", "/v1/completions"}
_OLLAMA_GENERATION = {"/api/chat", "/api/generate"}
_OPENAI_EMBEDDINGS = "/v1/embeddings"
_OLLAMA_EMBED = "/api/embed"


class _BadRequest(Exception):
    """The client sent something that is not HTTP/1.x we can parse; answer 400, close."""


class _HungUp(Exception):
    """The client closed the connection while a stream was being written."""


class _Route:
    __slots__ = ("methods", "handler")

    def __init__(self, methods: tuple[str, ...], handler: str) -> None:
        self.methods = methods
        self.handler = handler


_ROUTES: dict[str, _Route] = {
    "/v1/chat/completions": _Route(("POST",), "_generation"),
    "/v1/completions": _Route(("POST",), "_generation"),
    "/api/chat": _Route(("POST",), "_generation"),
    "/api/generate": _Route(("POST",), "_generation"),
    "/v1/embeddings": _Route(("POST",), "_embeddings"),
    "/api/embed": _Route(("POST",), "_embeddings"),
    "/v1/models": _Route(("GET", "HEAD"), "_models"),
    "/health": _Route(("GET", "HEAD"), "_health"),
    "/version": _Route(("GET", "HEAD"), "_version"),
    "/api/tags": _Route(("GET", "HEAD"), "_tags"),
    "/api/version": _Route(("GET", "HEAD"), "_version"),
    "/": _Route(("GET", "HEAD"), "_root"),
}


class _Response:
    """A response ready to be written, plus the fault to inject while writing it."""

    __slots__ = ("status", "headers", "body", "truncate", "reset", "stream")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
        truncate: bool = False,
        reset: bool = False,
        stream: _Stream | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.truncate = truncate
        self.reset = reset
        #: When set, the body is this stream, sent with chunked transfer encoding.
        self.stream = stream
        self.headers: list[tuple[str, str]] = []
        if content_type is not None:
            self.headers.append(("Content-Type", content_type))
        for name, value in (headers or {}).items():
            self.set_header(name, value)

    def set_header(self, name: str, value: str) -> None:
        lower = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != lower]
        self.headers.append((name, value))

    def has_header(self, name: str) -> bool:
        lower = name.lower()
        return any(n.lower() == lower for n, _ in self.headers)


def _json_body(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# Streams are serialised as vLLM (pydantic) and Ollama (Go) do: compact, UTF-8 unescaped.
_stream_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_HOLE = "\x00hole\x00"
_HOLE_JSON = _stream_json(_HOLE)


class _Template:
    """One stream event as compact JSON with a hole, filled per event with a JSON value.

    A 200,000-token stream then costs one string encoding per token instead of one
    serialisation of the whole chunk object.
    """

    __slots__ = ("_before", "_after")

    def __init__(self, obj: Any, sse: bool) -> None:
        before, after = _stream_json(obj).split(_HOLE_JSON)
        self._before = ("data: " if sse else "") + before
        self._after = after + ("\n\n" if sse else "\n")

    def fill(self, value_json: str) -> bytes:
        return (self._before + value_json + self._after).encode()


def _sse(obj: Any) -> bytes:
    return f"data: {_stream_json(obj)}\n\n".encode()


def _ndjson(obj: Any) -> bytes:
    return f"{_stream_json(obj)}\n".encode()


class _Stream:
    """A streamed answer: the events to write, in three parts, and the fault to inject.

    `prologue` (the role chunk) is written first; `tokens` yields the token events
    (reasoning, content, tool calls), which `Reply.fault_after` counts; `epilogue` ends
    with the final marker (``data: [DONE]``, Ollama's ``done: true`` line).
    """

    __slots__ = ("sse", "prologue", "tokens", "epilogue", "error_events", "reply")

    def __init__(
        self,
        *,
        sse: bool,
        prologue: list[bytes],
        tokens: Iterator[bytes],
        epilogue: list[bytes],
        error_events: list[bytes],
        reply: Reply,
    ) -> None:
        self.sse = sse
        self.prologue = prologue
        self.tokens = tokens
        self.epilogue = epilogue
        self.error_events = error_events
        self.reply = reply

    @property
    def garbage(self) -> bytes:
        return b"data: not json\n\n" if self.sse else b"not json\n"

    @property
    def keepalive(self) -> bytes:
        return b": keep-alive\n\n" if self.sse else b"\n"


class _EventWriter:
    """Frames stream events as HTTP chunks and writes them in drained batches."""

    __slots__ = ("server", "reader", "writer", "delay", "_parts", "_size", "_events", "_started")

    def __init__(
        self,
        server: MockLLMServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        delay: float,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self._parts: list[bytes] = []
        self._size = 0
        self._events = 0
        self._started = False

    def raw(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)

    def chunk(self, data: bytes) -> None:
        self.raw(b"%x\r\n%s\r\n" % (len(data), data))

    async def event(self, data: bytes) -> None:
        """One counted event, `delay` seconds after the previous one."""
        if self.delay > 0 and self._started:
            await self.flush()
            await self.sleep(self.delay)
        self._started = True
        self.chunk(data)
        self._events += 1
        if self.delay > 0 or self._size >= _STREAM_BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self.writer.transport.is_closing():
            raise _HungUp
        # Counted before the bytes leave, so a client that has read them sees the count.
        if self._events:
            with self.server._lock:
                self.server._events_written += self._events
            self._events = 0
        if self._parts:
            self.writer.write(b"".join(self._parts))
            self._parts.clear()
            self._size = 0
        await self.writer.drain()

    async def sleep(self, seconds: float) -> None:
        if not await self.server._sleep_unless_hung_up(seconds, self.reader, self.writer):
            raise _HungUp


def _object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: the mock takes any shape."""
    return json_object(value) or {}


def _array(value: object) -> list[object]:
    """`value` when it is a JSON array, else an empty one."""
    return json_array(value) or []


def _wants_stream(request: RecordedRequest) -> bool:
    """OpenAI streams on ``"stream": true``; Ollama unless ``"stream": false``."""
    data = json_object(request.json)
    if data is None:
        return False  # nothing to go by: answer in one piece
    if request.path in _OLLAMA_GENERATION:
        return data.get("stream") is not False
    return data.get("stream") is True


def _tool_call_id(call: dict[str, Any]) -> str:
    given = call.get("id")
    return given if isinstance(given, str) else f"chatcmpl-tool-{uuid.uuid4().hex}"


def _openai_arguments(arguments: Any) -> str:
    # A str goes out as is, so a test can send broken JSON.
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _ollama_arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def _ollama_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "function": {"name": call.get("name", ""),
                     "arguments": _ollama_arguments(call.get("arguments", {}))}
    }
    if isinstance(call.get("id"), str):
        out["id"] = call["id"]
    return out


def _requested_schema(request: RecordedRequest) -> dict[str, Any] | None:
    """The JSON Schema a generation request asks the answer to follow, if any."""
    data = _object(request.json)
    fmt = _object(data.get("response_format"))
    wrapper = json_object(fmt.get("json_schema"))
    if wrapper is not None:
        return json_object(wrapper.get("schema"))
    return json_object(data.get("format"))  # Ollama


def _schema_instance(given: object, depth: int = 0) -> Any:
    """A small value that satisfies `schema`, as a server enforcing it would produce:
    the first enum value, required properties, minimum sizes."""
    schema = json_object(given)
    if schema is None or depth > 20:
        return None
    if "const" in schema:
        return schema["const"]
    if _array(schema.get("enum")):
        return _array(schema["enum"])[0]
    for key in ("anyOf", "oneOf", "allOf"):
        if _array(schema.get(key)):
            return _schema_instance(_array(schema[key])[0], depth + 1)
    kind = schema.get("type")
    kinds = json_array(kind)
    if kinds is not None:
        kind = next((k for k in kinds if k != "null"), kinds[0] if kinds else None)
    if kind == "object" or (kind is None and "properties" in schema):
        props = _object(schema.get("properties"))
        required = json_array(schema.get("required"))
        names = required if required is not None else list(props)
        return {name: _schema_instance(props.get(name, {}) if isinstance(name, str) else {},
                                       depth + 1)
                for name in names}
    if kind == "array":
        min_items = schema.get("minItems")
        count = min_items if isinstance(min_items, int) else 1
        return [_schema_instance(schema.get("items", {}), depth + 1) for _ in range(count)]
    if kind == "string":
        min_length = schema.get("minLength")
        size = min_length if isinstance(min_length, int) else 4
        return "x" * max(size, 1)
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return True
    return None


def _estimate_tokens(text: str | None) -> int:
    # About one token per 4 characters, as a rule of thumb for English BPE tokenizers;
    # tests only need stable, plausible numbers.
    if not text:
        return 0
    return max(1, (len(text) + 3) // 4)


def _rfc3339_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _format_retry_after(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class MockLLMServer:
    """A real HTTP/1.1 server on 127.0.0.1 that answers like vLLM and Ollama.

    Generation endpoints (``/v1/chat/completions``, ``/v1/completions``, ``/api/chat``,
    ``/api/generate``) answer from, in order: the `responder` (if set and it returns a
    reply), the FIFO script filled by `enqueue`, then the default reply. All public
    methods and properties are thread-safe and may be called from any thread.

    Use as ``with MockLLMServer() as server:``, ``async with MockLLMServer() as
    server:``, or with explicit `start` / `stop`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        models: list[str] | None = None,
        max_model_len: int = 32768,
        max_recorded: int | None = None,
        api_key: str | None = None,
        strict: bool = False,
        embedding_dimensions: int = 8,
        embeddings_shuffle: bool = False,
        embeddings_ignore_base64: bool = False,
        vision_models: list[str] | None = None,
    ) -> None:
        if max_recorded is not None and max_recorded < 0:
            raise ValueError(f"max_recorded must be None or >= 0, got {max_recorded}")
        self.host = host
        self._requested_port = port
        #: Served model names (``/v1/models``, ``/api/tags``; default answer ``model``).
        self.models: list[str] = list(models) if models is not None else ["mock-model"]
        #: ``max_model_len`` reported by ``/v1/models``.
        self.max_model_len = max_model_len
        #: Status of ``GET /health`` (vLLM answers 503 when its engine is dead).
        self.health_status = 200
        #: Like ``vllm serve --api-key``: every ``/v1/`` request without
        #: ``Authorization: Bearer <api_key>`` gets vLLM's 401 ``{"error": "Unauthorized"}``.
        self.api_key = api_key
        #: Refuse what vLLM 0.32 refuses before generating, with its status and error
        #: shape: a model it does not serve (404), a body that is not a JSON object (400),
        #: a prompt over ``max_model_len`` (400; tokens estimated at one per 4 characters)
        #: or a ``max_tokens`` over it (400); and answer a schema with an instance of it.
        #: Off by default, so scripted tests may use any model name.
        self.strict = strict
        #: Size of the embedding vectors when a request gives no ``dimensions``.
        self.embedding_dimensions = embedding_dimensions
        #: ``/v1/embeddings`` answers its ``data`` out of order (never in input order when
        #: there are several inputs), so a client must sort by ``index``.
        self.embeddings_shuffle = embeddings_shuffle
        #: ``/v1/embeddings`` answers float lists even when ``encoding_format`` is
        #: ``"base64"``, as some OpenAI-compatible servers do.
        self.embeddings_ignore_base64 = embeddings_ignore_base64
        #: Models that accept images; served in addition to `models`. With `strict`, a
        #: request carrying images to any other model is refused with 400.
        self.vision_models: list[str] = list(vision_models or [])
        #: Optional callable(RecordedRequest) -> Reply | str | dict | None, consulted
        #: before the script for every generation request. It runs on the server's
        #: event loop: keep it quick and non-blocking (use `Reply.delay` to be slow).
        self.responder: Responder | None = None

        self._lock = threading.Lock()
        self._requests_changed = threading.Condition(self._lock)
        self._script: collections.deque[Reply] = collections.deque()
        self._default = Reply()
        # A request with images gets a caption instead of the built-in default reply,
        # but not instead of one the test chose with set_default().
        self._default_is_builtin = True
        # The newest `max_recorded` requests (all when None): a long soak or load test
        # would otherwise hold every request it ever sent. `request_count` counts all.
        self._requests: collections.deque[RecordedRequest] = collections.deque(maxlen=max_recorded)
        self._request_count = 0
        self._errors: list[BaseException] = []
        self._connections_accepted = 0
        self._requests_abandoned = 0
        self._streams_started = 0
        self._streams_completed = 0
        self._events_written = 0
        self._embedding_requests = 0
        self._embedded_inputs = 0
        self._port: int | None = None

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._conn_tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> MockLLMServer:
        """Bind and start serving; returns when the port accepts connections.

        Calling it on a running server does nothing. A stopped server can be started
        again (on a new ephemeral port when `port` was 0).
        """
        if self._thread is not None and self._thread.is_alive():
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._thread_main,
            args=(ready, failure),
            name="llmbridge-mock-server",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"MockLLMServer did not start within {_START_TIMEOUT:.0f} s")
        if failure:
            self._thread.join(_STOP_TIMEOUT)
            self._thread = None
            raise failure[0]
        logger.debug("mock LLM server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and join the server thread.

        Requests still waiting on a `Reply.delay` are abandoned (their connections are
        closed). Bounded: returns within a few seconds even if something misbehaves.
        Calling it twice, or on a server never started, is safe.
        """
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None:
            try:
                loop.call_soon_threadsafe(stop_requested.set)
            except RuntimeError:  # the loop already closed
                pass
        if threading.current_thread() is thread:
            return  # called from a responder: the loop winds down on its own
        thread.join(_STOP_TIMEOUT * 2)
        if thread.is_alive():
            logger.debug("mock LLM server thread did not exit in time")
        self._thread = None

    def __enter__(self) -> MockLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> MockLLMServer:
        # start()/stop() block for milliseconds; run them in a worker thread anyway so
        # the caller's loop keeps serving its own tasks meanwhile.
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The bound TCP port (valid after `start`)."""
        if self._port is None:
            raise RuntimeError("MockLLMServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL for clients, e.g. ``http://127.0.0.1:43121`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ scripting

    def enqueue(self, *replies: ReplyLike) -> None:
        """Append replies to the FIFO script (a `str` is content, a `dict` JSON content)."""
        converted = [as_reply(r) for r in replies]
        with self._lock:
            self._script.extend(converted)

    def set_default(self, reply: ReplyLike) -> None:
        """The reply used when the responder declines and the script is empty."""
        converted = as_reply(reply)
        with self._lock:
            self._default = converted
            self._default_is_builtin = False

    @property
    def pending_replies(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._lock:
            return len(self._script)

    @property
    def request_count(self) -> int:
        """Requests received since start (or `reset`), recorded or not."""
        with self._lock:
            return self._request_count

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received (the newest `max_recorded` when set),
        in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests were received; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._requests_changed:
            while self._request_count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._requests_changed.wait(remaining)
            return True

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start (or the last `reset`)."""
        with self._lock:
            return self._connections_accepted

    @property
    def open_connections(self) -> int:
        """TCP connections currently open."""
        with self._lock:
            return len(self._writers)

    @property
    def requests_abandoned(self) -> int:
        """Delayed requests whose client hung up before the answer was due."""
        with self._lock:
            return self._requests_abandoned

    @property
    def streams_started(self) -> int:
        """Streamed answers begun (SSE or NDJSON), since start or `reset`."""
        with self._lock:
            return self._streams_started

    @property
    def streams_completed(self) -> int:
        """Streams whose final marker was written: ``data: [DONE]`` (also after an
        "error" fault, as vLLM sends it) or Ollama's ``done: true`` line."""
        with self._lock:
            return self._streams_completed

    @property
    def events_written(self) -> int:
        """Stream events (SSE ``data:`` events, NDJSON lines; not keep-alives) handed to
        the socket. Written in batches followed by a drain, so it stops growing while a
        client does not read: a test of backpressure."""
        with self._lock:
            return self._events_written

    @property
    def embedding_requests(self) -> int:
        """Requests received on ``/v1/embeddings`` and ``/api/embed`` (refused ones too)."""
        with self._lock:
            return self._embedding_requests

    @property
    def embedded_inputs(self) -> int:
        """Inputs across those requests: the strings of a valid ``input`` (1 for a single
        string, 1 for a chat-style ``messages`` request, 0 for a refused one). With
        `embedding_requests`, a test of client-side batching."""
        with self._lock:
            return self._embedded_inputs

    @property
    def served_models(self) -> list[str]:
        """`models` followed by the `vision_models` not already among them."""
        return list(dict.fromkeys([*self.models, *self.vision_models]))

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the `responder` (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    def reset(self) -> None:
        """Back to a fresh server: script, default reply, `responder`, `health_status`,
        records, errors and counters. Configuration stays: `models`, `max_model_len`,
        `vision_models`, the ``embedding*`` attributes, `api_key`, `strict`.

        Meant for a long-lived (session-scoped) server shared by many tests.
        """
        self.responder = None
        self.health_status = 200
        with self._lock:
            self._script.clear()
            self._default = Reply()
            self._default_is_builtin = True
            self._requests.clear()
            self._request_count = 0
            self._errors.clear()
            self._connections_accepted = 0
            self._requests_abandoned = 0
            self._streams_started = 0
            self._streams_completed = 0
            self._events_written = 0
            self._embedding_requests = 0
            self._embedded_inputs = 0

    # -------------------------------------------------------------- event loop

    def _thread_main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, failure))
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not ready.is_set():
                failure.append(exc)
            logger.debug("mock LLM server loop failed", exc_info=True)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                loop.close()
                ready.set()

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._stop_requested = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._on_connection,
                self.host,
                self._requested_port,
                backlog=_LISTEN_BACKLOG,
                limit=_STREAM_LIMIT,
            )
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        self._port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            server.close()
            await self._close_all_connections()
            try:
                await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT)
            except asyncio.TimeoutError:
                logger.debug("listener did not close in time")

    async def _close_all_connections(self) -> None:
        tasks = list(self._conn_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
        with self._lock:
            writers = list(self._writers)
        for writer in writers:
            writer.transport.abort()
        # abort() closes the socket from a call_soon callback: let it run.
        for _ in range(3):
            await asyncio.sleep(0)

    # -------------------------------------------------------------- connections

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conn_tasks.add(task)
        with self._lock:
            self._connections_accepted += 1
            self._writers.add(writer)
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            # Only stop() cancels these tasks. Finishing normally (not re-raising) keeps
            # asyncio's start_server callback from logging the cancellation as an error.
            writer.transport.abort()
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            logger.debug("connection ended: %r", exc)
            writer.transport.abort()
        except Exception:  # noqa: BLE001 - a bug here must not kill the server
            logger.debug("connection handler failed", exc_info=True)
            writer.transport.abort()
        finally:
            if not writer.transport.is_closing():
                writer.close()
            with self._lock:
                self._writers.discard(writer)
            self._conn_tasks.discard(task)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                head = await self._read_head(reader)
            except _BadRequest as exc:
                await self._write(writer, self._detail(400, str(exc)), keep_alive=False)
                return
            if head is None:
                return  # the client closed an idle connection
            method, target, version, headers = head
            try:
                body = await self._read_body(reader, writer, headers)
            except _BadRequest as exc:
                await self._write(writer, self._detail(400, str(exc)), keep_alive=False)
                return
            keep_alive = self._wants_keep_alive(version, headers)
            path, _, query = target.partition("?")
            request = RecordedRequest(
                method=method,
                path=path,
                headers=headers,
                body=body,
                json=self._parse_json(body),
                received_at=time.monotonic(),
                query=query,
            )
            with self._requests_changed:
                self._requests.append(request)
                self._request_count += 1
                self._requests_changed.notify_all()
            logger.debug("%s %s (%d body bytes)", method, target, len(body))

            response = await self._dispatch(request, reader)
            if response is None:
                return  # the client hung up during a delay; nothing to answer
            if response.reset:
                self._reset(writer)
                return
            if response.stream is not None:
                if not await self._write_stream(reader, writer, response, keep_alive=keep_alive):
                    return
                continue
            if not await self._write(
                writer, response, keep_alive=keep_alive, head_only=method == "HEAD"
            ):
                return
            if not keep_alive:
                return

    @staticmethod
    def _parse_json(body: bytes) -> Any:
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    @staticmethod
    def _wants_keep_alive(version: str, headers: dict[str, str]) -> bool:
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        if version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    async def _read_head(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, str, dict[str, str]] | None:
        line = await self._read_line(reader)
        while line == b"\r\n" or line == b"\n":  # RFC 9112: ignore leading empty lines
            line = await self._read_line(reader)
        if not line:
            return None
        try:
            method, target, version = line.decode("latin-1").strip().split(" ")
        except ValueError:
            raise _BadRequest("malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise _BadRequest("unsupported HTTP version")
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = await self._read_line(reader)
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            text = line.decode("latin-1").rstrip("\r\n")
            if not text:
                return method.upper(), target, version, headers
            name, sep, value = text.partition(":")
            if not sep or not name.strip():
                raise _BadRequest("malformed header line")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise _BadRequest("too many headers")

    @staticmethod
    async def _read_line(reader: asyncio.StreamReader) -> bytes:
        try:
            return await reader.readline()
        except ValueError:  # longer than the stream limit
            raise _BadRequest("header line too long") from None

    async def _read_body(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
    ) -> bytes:
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length_text = headers.get("content-length")
        if not chunked and length_text is None:
            return b""
        if headers.get("expect", "").lower() == "100-continue":
            # libcurl sends this for large POST bodies and waits (1 s) for the go-ahead.
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if chunked:
            return await self._read_chunked(reader)
        try:
            length = int(length_text or "")
        except ValueError:
            raise _BadRequest("invalid Content-Length") from None
        if length < 0 or length > _MAX_BODY:
            raise _BadRequest("invalid Content-Length")
        return await reader.readexactly(length)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await self._read_line(reader)
            if not size_line:
                raise asyncio.IncompleteReadError(b"", None)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size == 0:
                break
            total += size
            if size < 0 or total > _MAX_BODY:
                raise _BadRequest("request body too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)  # the CRLF after each chunk
        while True:  # trailer section, ended by an empty line
            line = await self._read_line(reader)
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        response: _Response,
        *,
        keep_alive: bool,
        head_only: bool = False,
    ) -> bool:
        """Write `response`; False when the connection must be closed afterwards."""
        body = response.body
        response.set_header("Content-Length", str(len(body)))
        head = self._head(response, close=not keep_alive or response.truncate)
        if head_only:
            body = b""
        if response.truncate:
            writer.write(head + body[: len(body) // 2])
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            return False
        writer.write(head + body)
        await writer.drain()
        return keep_alive

    @staticmethod
    def _head(response: _Response, *, close: bool) -> bytes:
        if not response.has_header("Date"):
            response.set_header("Date", formatdate(usegmt=True))
        if not response.has_header("Server"):
            response.set_header("Server", "llmbridge-mock")
        if close:
            response.set_header("Connection", "close")
        lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _write_stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        response: _Response,
        *,
        keep_alive: bool,
    ) -> bool:
        """Write a streamed answer; False when the connection must be closed afterwards.

        Events go out as one HTTP chunk each, in batches followed by ``drain()``, so the
        memory held is one batch plus the transport's buffer and a client that stops
        reading makes the server wait. A hang-up ends the stream early.
        """
        stream = response.stream
        assert stream is not None
        reply = stream.reply
        fault = reply.stream_fault
        response.set_header("Transfer-Encoding", "chunked")
        # A cut stream ends the connection, and says so in advance, so that a pooling
        # client does not race the close by reusing it.
        close = not keep_alive or fault in ("cut", "cut_hard")
        out = _EventWriter(self, reader, writer, reply.chunk_delay)
        with self._lock:
            self._streams_started += 1
        try:
            out.raw(self._head(response, close=close))
            for event in stream.prologue:
                await out.event(event)
            sent = 0
            pending = fault is not None
            ended = False
            for event in stream.tokens:
                if pending and sent == reply.fault_after:
                    pending = False
                    ended = await self._inject(fault, stream, out)
                    if ended:
                        break
                await out.event(event)
                sent += 1
            if pending:
                ended = await self._inject(fault, stream, out)
            if not ended:
                for event in stream.epilogue:
                    await out.event(event)
                out.raw(b"0\r\n\r\n")
                with self._lock:
                    self._streams_completed += 1
                await out.flush()
        except (_HungUp, ConnectionError) as exc:
            logger.debug("client left during a stream: %r", exc)
            writer.transport.abort()
            return False
        if close or writer.transport.is_closing():
            writer.close()
            return False
        return True

    async def _inject(self, fault: str | None, stream: _Stream, out: _EventWriter) -> bool:
        """Apply a `Reply.stream_fault`; True when the response ended here (the body is
        complete, or the connection is closing), False when the stream goes on."""
        reply = stream.reply
        if fault == "garbage":
            await out.event(stream.garbage)
            return False
        if fault == "cut":
            # A well-formed end of the body, without the stream's own end marker.
            out.raw(b"0\r\n\r\n")
            await out.flush()
            out.writer.close()
            return True
        if fault == "cut_hard":
            # Announce a whole chunk, send half of it, close: an incomplete body.
            event = stream.epilogue[0]
            out.raw(b"%x\r\n" % len(event) + event[: len(event) // 2])
            await out.flush()
            out.writer.close()
            return True
        if fault == "error":
            for event in stream.error_events:
                await out.event(event)
            out.raw(b"0\r\n\r\n")
            if stream.sse:
                with self._lock:
                    self._streams_completed += 1  # vLLM still sends [DONE]
            await out.flush()
            return True
        if fault in ("stall", "stall_keepalive"):
            await out.flush()
            deadline = time.monotonic() + reply.stall_seconds
            keepalive = fault == "stall_keepalive"
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                await out.sleep(min(remaining, _KEEPALIVE_INTERVAL) if keepalive else remaining)
                if keepalive and time.monotonic() < deadline:
                    out.chunk(stream.keepalive)
                    await out.flush()
        raise AssertionError(f"unknown stream fault {fault!r}")  # Reply validates it

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                # Linger on, timeout 0: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    # ----------------------------------------------------------------- routing

    @staticmethod
    def _detail(status: int, detail: str) -> _Response:
        return _Response(status, _json_body({"detail": detail}))

    @staticmethod
    def _openai_error(status: int, message: str, kind: str, param: str | None = None) -> _Response:
        return _Response(status, _json_body(
            {"error": {"message": message, "type": kind, "param": param, "code": status}}))

    def _refusal(self, request: RecordedRequest) -> _Response | None:
        """What vLLM answers before generating, or None to go on (see `api_key`, `strict`)."""
        if self.api_key is not None and request.path.startswith("/v1/"):
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return _Response(401, _json_body({"error": "Unauthorized"}))
        if not self.strict:
            return None
        if request.path in _OLLAMA_GENERATION:
            return self._vision_refusal(request)
        if request.path not in _OPENAI_GENERATION and request.path != _OPENAI_EMBEDDINGS:
            return None
        data = json_object(request.json)
        if data is None:
            return self._openai_error(400, "1 validation error: the request body is not a "
                                      "JSON object", "Bad Request", "body")
        if data.get("stream_options") and not data.get("stream"):
            # vLLM's request validator, with its truthiness tests.
            return self._openai_error(
                400, "Stream options can only be defined when stream=True.",
                "Bad Request", "stream_options")
        model = data.get("model")
        served = self.served_models
        if model is not None and model not in served:
            return self._openai_error(
                404, f"The model `{model}` does not exist. Valid aliases: "
                f"{', '.join(served)}.", "NotFoundError", "model")
        refusal = self._vision_refusal(request)
        if refusal is not None or request.path == _OPENAI_EMBEDDINGS:
            return refusal
        # vLLM 0.32 refuses a prompt or a max_tokens over the context on its own; a prompt
        # that fits with a max_tokens that does not is accepted (the answer stops at the
        # context).
        prompt_tokens = _estimate_tokens(request.prompt)
        if prompt_tokens > self.max_model_len:
            return self._openai_error(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, "
                f"your prompt contains at least {prompt_tokens} input tokens, which exceeds "
                "this limit even without any output tokens. Please reduce the length of the "
                f"input prompt. (parameter=input_tokens, value={prompt_tokens})",
                "BadRequestError", "input_tokens")
        max_tokens = data.get("max_tokens") or data.get("max_completion_tokens")
        if isinstance(max_tokens, int) and max_tokens > self.max_model_len:
            return self._openai_error(
                400,
                f"max_tokens={max_tokens} cannot be greater than max_model_len="
                f"{self.max_model_len}. Please request fewer output tokens. "
                f"(parameter=max_tokens, value={max_tokens})",
                "BadRequestError", "max_tokens")
        return None

    def _vision_refusal(self, request: RecordedRequest) -> _Response | None:
        """With `strict`: images sent to a model outside `vision_models` get a 400."""
        data = json_object(request.json)
        if data is None or not request_images(data):
            return None
        model = data.get("model")
        if not isinstance(model, str) or not model:
            served = self.served_models
            model = served[0] if served else "mock-model"
        if model in self.vision_models:
            return None
        if request.path.startswith("/api/"):
            return _Response(400, _json_body(
                {"error": "this model is missing data required for image input"}))
        return self._openai_error(400, f"{model} is not a multimodal model",
                                  "BadRequestError")

    async def _dispatch(
        self, request: RecordedRequest, reader: asyncio.StreamReader
    ) -> _Response | None:
        route = _ROUTES.get(request.path)
        if route is None:
            return self._detail(404, "Not Found")
        if request.method not in route.methods:
            response = self._detail(405, "Method Not Allowed")
            response.set_header("Allow", ", ".join(route.methods))
            return response
        if route.handler == "_embeddings":
            with self._lock:
                self._embedding_requests += 1
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if route.handler == "_generation":
            return await self._generation(request, reader)
        if route.handler == "_embeddings":
            return await self._embeddings(request, reader)
        if route.handler == "_models":
            return self._models()
        if route.handler == "_tags":
            return self._tags()
        if route.handler == "_version":
            return _Response(200, _json_body({"version": "0.0.0-mock"}))
        if route.handler == "_health":
            return _Response(self.health_status, b"", content_type=None)
        return _Response(200, b"Ollama is running", content_type="text/plain; charset=utf-8")

    def _next_reply(self, request: RecordedRequest) -> Reply:
        responder = self.responder
        if responder is not None:
            try:
                chosen = responder(request)
            except Exception as exc:  # noqa: BLE001 - surfaced via .errors and a 500
                logger.debug("responder raised", exc_info=True)
                with self._lock:
                    self._errors.append(exc)
                return Reply.error(500, f"responder raised {type(exc).__name__}: {exc}")
            if chosen is not None:
                return as_reply(chosen)
        with self._lock:
            if self._script:
                return self._script.popleft()
            return self._default

    async def _generation(
        self, request: RecordedRequest, reader: asyncio.StreamReader
    ) -> _Response | None:
        reply = self._next_reply(request)
        if reply is self._default:
            images = request_images(request.json)
            if images and self._default_is_builtin:
                # Says what arrived, so a test can check the images came through intact.
                reply = dataclasses.replace(reply, content=caption_for(images))
            elif self.strict or reply.follow_schema:
                # A real server constrained by a schema answers with an instance of it.
                reply = self._schema_reply(request, reply)
        elif reply.follow_schema:
            reply = self._schema_reply(request, reply)

        def success(headers: dict[str, str]) -> _Response:
            if _wants_stream(request):
                content_type = ("application/x-ndjson" if request.path in _OLLAMA_GENERATION
                                else "text/event-stream; charset=utf-8")
                return _Response(reply.status, content_type=content_type, headers=headers,
                                 stream=self._stream_plan(request, reply))
            return _Response(reply.status, _json_body(self._success_body(request, reply)),
                             headers=headers, truncate=reply.truncate_body)

        return await self._scripted(request, reader, reply, success, _MALFORMED_BODY)

    @staticmethod
    def _schema_reply(request: RecordedRequest, reply: Reply) -> Reply:
        """`reply` with an instance of the request's schema as its content (as is when
        the request has no schema)."""
        schema = _requested_schema(request)
        if schema is None:
            return reply
        return dataclasses.replace(reply, content=json.dumps(_schema_instance(schema)),
                                   tokens=None)

    async def _scripted(
        self,
        request: RecordedRequest,
        reader: asyncio.StreamReader,
        reply: Reply,
        success: Callable[[dict[str, str]], _Response],
        malformed_body: bytes,
    ) -> _Response | None:
        """Apply `reply` in its documented order; `success` builds the endpoint's answer
        when the reply reaches the success shape."""
        if reply.delay > 0 and not await self._sleep_unless_hung_up(reply.delay, reader):
            with self._lock:
                self._requests_abandoned += 1
            logger.debug("client hung up during a %.3f s delay", reply.delay)
            return None
        if reply.reset:
            return _Response(0, reset=True)

        ollama = request.path.startswith("/api/")
        headers: dict[str, str] = {}
        request_id = request.headers.get("x-request-id")
        if request_id is not None:
            headers["x-request-id"] = request_id
        if reply.retry_after is not None:
            headers["Retry-After"] = _format_retry_after(reply.retry_after)
        headers.update(reply.headers)

        if reply.raw_body is not None:
            body = reply.raw_body
        elif reply.malformed:
            body = malformed_body
        elif reply.status >= 400:
            message = reply.error_message or _reason(reply.status)
            if ollama:
                body = _json_body({"error": message})
            else:
                body = _json_body(
                    {
                        "error": {
                            "message": message,
                            "type": _reason(reply.status),
                            "param": None,
                            "code": reply.status,
                        }
                    }
                )
        else:
            return success(headers)
        return _Response(reply.status, body, headers=headers, truncate=reply.truncate_body)

    # --------------------------------------------------------------- embeddings

    def _embedding_request(
        self, request: RecordedRequest
    ) -> tuple[list[str], int, bool] | _Response:
        """(texts, dimensions, base64 wanted) of an embeddings request, or the 400 the
        real server answers before embedding anything."""
        data = json_object(request.json)
        default_dims = self.embedding_dimensions
        if request.path == _OLLAMA_EMBED:
            if data is None:
                message = "missing request body" if not request.body else "invalid JSON body"
                return _Response(400, _json_body({"error": message}))
            value = data.get("input")
            dims = data.get("dimensions")
            if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
                dims = default_dims
            # Ollama answers no input, "" and [] with an empty list of embeddings.
            if value is None:
                return [], dims, False
            if isinstance(value, str):
                return ([value] if value else []), dims, False
            values = json_array(value)
            strings = [v for v in values or () if isinstance(v, str)]
            if values is not None and len(strings) == len(values):
                return strings, dims, False
            return _Response(400, _json_body({"error": "invalid input type"}))

        def invalid(param: str, message: str) -> _Response:
            return self._openai_error(400, f"1 validation error: {param}: {message}",
                                      "Bad Request", param)

        if data is None:
            return invalid("body", "the request body is not a JSON object")
        fmt = data.get("encoding_format")
        if fmt is not None and fmt not in ("float", "base64"):
            return invalid("encoding_format", "Input should be 'float' or 'base64'")
        dims = data.get("dimensions")
        if dims is None:
            dims = default_dims
        elif isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            return invalid("dimensions", "Input should be an integer >= 1")
        if "input" in data:
            value = data["input"]
            values = json_array(value)
            strings = [v for v in values or () if isinstance(v, str)]
            if isinstance(value, str):
                texts = [value]
            elif values and len(strings) == len(values):
                texts = strings
            elif values is not None and not values:
                return invalid("input", "Input should not be empty")
            else:
                return invalid("input", "Input should be a valid string or a list of strings")
        elif "messages" in data:
            messages = json_array(data["messages"])
            if not messages:
                return invalid("messages", "Input should be a non-empty list of messages")
            texts = [embedding_text(messages)]
        else:
            return invalid("input", "Field required")
        return texts, dims, fmt == "base64"

    async def _embeddings(
        self, request: RecordedRequest, reader: asyncio.StreamReader
    ) -> _Response | None:
        parsed = self._embedding_request(request)
        if isinstance(parsed, _Response):
            return parsed  # refused before the script is consulted, as strict refusals
        texts, dims, want_base64 = parsed
        with self._lock:
            self._embedded_inputs += len(texts)
        reply = self._next_reply(request)

        def success(headers: dict[str, str]) -> _Response:
            body = self._embeddings_body(request, reply, texts, dims, want_base64)
            return _Response(reply.status, _json_body(body), headers=headers,
                             truncate=reply.truncate_body)

        return await self._scripted(request, reader, reply, success, _MALFORMED_EMBEDDINGS)

    def _embeddings_body(self, request: RecordedRequest, reply: Reply, texts: list[str],
                         dims: int, want_base64: bool) -> dict[str, Any]:
        model = self._answer_model(request, reply)
        if reply.embeddings is not None:
            vectors = [list(v) for v in reply.embeddings]
        else:
            vectors = [embedding_for(text, dims) for text in texts]
        prompt_tokens = (reply.prompt_tokens if reply.prompt_tokens is not None
                         else sum(_estimate_tokens(text) for text in texts))
        if request.path == _OLLAMA_EMBED:
            if not texts and reply.embeddings is None:
                return {"model": model, "embeddings": []}  # Go omits the zero metrics
            elapsed_ns = max(1, int((time.monotonic() - request.received_at) * 1e9))
            return {"model": model, "embeddings": vectors, "total_duration": elapsed_ns,
                    "load_duration": 0, "prompt_eval_count": prompt_tokens}
        encode = want_base64 and not self.embeddings_ignore_base64
        data = [
            {"index": index, "object": "embedding",
             "embedding": float32_base64(vector) if encode else vector}
            for index, vector in enumerate(vectors)
        ]
        if self.embeddings_shuffle and len(data) > 1:
            shuffled = data[:]
            while shuffled == data:  # an unchanged order would prove nothing
                random.shuffle(shuffled)
            data = shuffled
        return {
            "id": f"embd-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": model,
            "data": data,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens,
                      "completion_tokens": 0},
        }

    @staticmethod
    async def _sleep_unless_hung_up(
        delay: float,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None = None,
    ) -> bool:
        """Wait `delay` seconds; False as soon as the client closes its side."""
        deadline = time.monotonic() + delay
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            # at_eof() turns true once the peer's FIN arrived and any pipelined bytes were
            # consumed; polling keeps those bytes for the next request. An RST does not
            # set it, but closes the transport.
            if reader.at_eof() or (writer is not None and writer.transport.is_closing()):
                return False
            await asyncio.sleep(min(remaining, _DISCONNECT_POLL))

    def _answer_model(self, request: RecordedRequest, reply: Reply) -> str:
        requested_model = _object(request.json).get("model")
        return reply.model or (
            requested_model
            if isinstance(requested_model, str) and requested_model
            else (self.models[0] if self.models else "mock-model")
        )

    @staticmethod
    def _usage_numbers(
        request: RecordedRequest, reply: Reply, content: str | None
    ) -> tuple[int, int]:
        prompt_tokens = (
            reply.prompt_tokens
            if reply.prompt_tokens is not None
            else _estimate_tokens(request.prompt)
        )
        if reply.completion_tokens is not None:
            completion_tokens = reply.completion_tokens
        elif reply.tokens is not None and not reply.empty_choices:
            completion_tokens = len(reply.tokens)
        else:
            completion_tokens = _estimate_tokens(content)
        return prompt_tokens, completion_tokens

    @staticmethod
    def _finish_reason(request: RecordedRequest, reply: Reply) -> str:
        if reply.finish_reason is not None:
            return reply.finish_reason
        # Ollama reports "stop" after tool calls; OpenAI says "tool_calls".
        if reply.tool_calls and request.path == "/v1/chat/completions":
            return "tool_calls"
        return "stop"

    @staticmethod
    def _ollama_metrics(request: RecordedRequest, prompt_tokens: int, completion_tokens: int,
                        done_reason: str) -> dict[str, Any]:
        elapsed_ns = max(1, int((time.monotonic() - request.received_at) * 1e9))
        return {
            "done": True,
            "done_reason": done_reason,
            "total_duration": elapsed_ns,
            "load_duration": 0,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": elapsed_ns // 2,
            "eval_count": completion_tokens,
            "eval_duration": elapsed_ns // 2,
        }

    def _success_body(self, request: RecordedRequest, reply: Reply) -> dict[str, Any]:
        model = self._answer_model(request, reply)
        text = reply.answer_text
        content = "" if reply.empty_choices else text
        prompt_tokens, completion_tokens = self._usage_numbers(request, reply, content)
        finish_reason = self._finish_reason(request, reply)
        tool_calls = reply.tool_calls or []

        if request.path in _OLLAMA_GENERATION:
            result: dict[str, Any] = {"model": model, "created_at": _rfc3339_now()}
            ollama_calls = [_ollama_tool_call(c) for c in tool_calls]
            if request.path == "/api/chat":
                message: dict[str, Any] = {"role": "assistant", "content": content or ""}
                if reply.reasoning is not None:
                    message["thinking"] = reply.reasoning
                if ollama_calls:
                    message["tool_calls"] = ollama_calls
                result["message"] = message
            else:
                result["response"] = content or ""
                if reply.reasoning is not None:
                    result["thinking"] = reply.reasoning
                if ollama_calls:
                    result["tool_calls"] = ollama_calls
            result.update(self._ollama_metrics(request, prompt_tokens, completion_tokens,
                                               finish_reason))
            return result

        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": None,
        }
        created = int(time.time())
        if request.path == "/v1/completions":
            choices: list[dict[str, Any]] = [
                {
                    "index": 0,
                    "text": text or "",
                    "logprobs": None,
                    "finish_reason": finish_reason,
                    "stop_reason": None,
                }
            ]
            return {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [] if reply.empty_choices else choices,
                "usage": usage,
            }
        message = {
            "role": "assistant",
            "content": text,
            "reasoning": reply.reasoning,
            "refusal": None,
        }
        if tool_calls:  # vLLM leaves the key out when there are none
            message["tool_calls"] = [
                {
                    "id": _tool_call_id(call),
                    "type": "function",
                    "function": {
                        "name": call.get("name", ""),
                        "arguments": _openai_arguments(call.get("arguments", {})),
                    },
                }
                for call in tool_calls
            ]
        choices = [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
            }
        ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [] if reply.empty_choices else choices,
            "usage": usage,
        }

    # ------------------------------------------------------------------ streams

    def _stream_plan(self, request: RecordedRequest, reply: Reply) -> _Stream:
        if request.path in _OLLAMA_GENERATION:
            return self._ollama_stream(request, reply)
        return self._openai_stream(request, reply)

    def _openai_stream(self, request: RecordedRequest, reply: Reply) -> _Stream:
        data = _object(request.json)
        model = self._answer_model(request, reply)
        created = int(time.time())
        chat = request.path == "/v1/chat/completions"
        content_tokens = [] if reply.empty_choices else reply.stream_tokens()
        reasoning_tokens = split_tokens(reply.reasoning) if chat else []
        tool_calls = list(reply.tool_calls or []) if chat else []
        finish_reason = self._finish_reason(request, reply)
        prompt_tokens, completion_tokens = self._usage_numbers(
            request, reply, None if reply.empty_choices else reply.answer_text)

        if chat:
            head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                    "created": created, "model": model}
            choice = {"index": 0, "delta": _HOLE, "logprobs": None, "finish_reason": None}
            final_choice: dict[str, Any] = {"index": 0, "delta": {}, "logprobs": None,
                            "finish_reason": finish_reason, "stop_reason": None}
        else:
            head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                    "created": created, "model": model}
            choice = {"index": 0, "text": _HOLE, "logprobs": None, "finish_reason": None,
                      "stop_reason": None}
            final_choice = {"index": 0, "text": "", "logprobs": None,
                            "finish_reason": finish_reason, "stop_reason": None}
        token_event = _Template({**head, "choices": [choice]}, sse=True)

        def tokens() -> Iterator[bytes]:
            if not chat:
                for tok in content_tokens:
                    yield token_event.fill(_stream_json(tok))
                return
            for tok in reasoning_tokens:
                yield token_event.fill('{"reasoning":' + _stream_json(tok) + "}")
            for tok in content_tokens:
                yield token_event.fill('{"content":' + _stream_json(tok) + "}")
            for index, call in enumerate(tool_calls):
                first = {"tool_calls": [{
                    "index": index, "id": _tool_call_id(call), "type": "function",
                    "function": {"name": call.get("name", ""), "arguments": ""}}]}
                yield token_event.fill(_stream_json(first))
                arguments = _openai_arguments(call.get("arguments", {}))
                for start in range(0, len(arguments), _ARGUMENT_FRAGMENT):
                    fragment = arguments[start:start + _ARGUMENT_FRAGMENT]
                    delta = {"tool_calls": [{"index": index,
                                             "function": {"arguments": fragment}}]}
                    yield token_event.fill(_stream_json(delta))

        prologue: list[bytes] = []
        if chat:
            prologue.append(token_event.fill('{"role":"assistant","content":""}'))
        epilogue = [_sse({**head, "choices": [final_choice]})]
        options = _object(data.get("stream_options"))
        if reply.usage_chunk and options.get("include_usage"):
            epilogue.append(_sse({**head, "choices": [], "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }}))
        epilogue.append(b"data: [DONE]\n\n")
        message = reply.error_message or "Internal Server Error"
        error_events = [
            _sse({"error": {"message": message, "type": "InternalServerError",
                            "param": None, "code": 500}}),
            b"data: [DONE]\n\n",
        ]
        return _Stream(sse=True, prologue=prologue, tokens=tokens(), epilogue=epilogue,
                       error_events=error_events, reply=reply)

    def _ollama_stream(self, request: RecordedRequest, reply: Reply) -> _Stream:
        model = self._answer_model(request, reply)
        created_at = _rfc3339_now()
        chat = request.path == "/api/chat"
        content_tokens = [] if reply.empty_choices else reply.stream_tokens()
        thinking_tokens = split_tokens(reply.reasoning)
        tool_calls = list(reply.tool_calls or [])
        head = {"model": model, "created_at": created_at}

        def event(**fields: Any) -> dict[str, Any]:
            if chat:
                return {**head, "message": {"role": "assistant", **fields}, "done": False}
            renamed = {("response" if k == "content" else k): v for k, v in fields.items()}
            return {**head, **renamed, "done": False}

        content_event = _Template(event(content=_HOLE), sse=False)
        thinking_event = _Template(event(content="", thinking=_HOLE), sse=False)

        def tokens() -> Iterator[bytes]:
            for tok in thinking_tokens:
                yield thinking_event.fill(_stream_json(tok))
            for tok in content_tokens:
                yield content_event.fill(_stream_json(tok))
            for call in tool_calls:
                yield _ndjson(event(content="", tool_calls=[_ollama_tool_call(call)]))

        prompt_tokens, completion_tokens = self._usage_numbers(
            request, reply, None if reply.empty_choices else reply.answer_text)
        final = {**event(content=""), **self._ollama_metrics(
            request, prompt_tokens, completion_tokens, self._finish_reason(request, reply))}
        message = reply.error_message or "Internal Server Error"
        return _Stream(sse=False, prologue=[], tokens=tokens(), epilogue=[_ndjson(final)],
                       error_events=[_ndjson({"error": message})], reply=reply)

    def _models(self) -> _Response:
        created = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": name,
                "parent": None,
                "max_model_len": self.max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{uuid.uuid4().hex}",
                        "object": "model_permission",
                        "created": created,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in self.served_models
        ]
        return _Response(200, _json_body({"object": "list", "data": data}))

    def _tags(self) -> _Response:
        modified = _rfc3339_now()
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": modified,
                "size": 4_683_087_332,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama", "clip"] if name in self.vision_models else ["llama"],
                    "parameter_size": "7.6B",
                    "quantization_level": "Q4_K_M",
                },
            }
            for name in self.served_models
        ]
        return _Response(200, _json_body({"models": models}))


def run(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    models: list[str] | None = None,
    default: ReplyLike | None = None,
    on_ready: Callable[[MockLLMServer], None] | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Serve until `stop_event` is set or the process gets KeyboardInterrupt.

    For command-line use (``llmbridge serve-mock``, ``python -m llmbridge.testing``):
    `on_ready` receives the started server, e.g. to print its URL.
    """
    server = MockLLMServer(host, port, models=models)
    if default is not None:
        server.set_default(default)
    waiter = stop_event if stop_event is not None else threading.Event()
    # Ctrl-C may land anywhere, on_ready included (the server thread can answer a client
    # before the main thread returns from it), so the whole block is guarded.
    try:
        with server:
            if on_ready is not None:
                on_ready(server)
            # A bounded wait in a loop keeps the main thread responsive to Ctrl-C.
            while not waiter.wait(0.5):
                pass
    except KeyboardInterrupt:
        logger.debug("mock LLM server interrupted")
        server.stop()


serve_forever = run
