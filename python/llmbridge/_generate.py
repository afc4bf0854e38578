"""The generation surface: chat, generate, complete, token streams and model lists.

Every method here is on every client (VLLMClient, OpenAICompatibleClient, OllamaClient)
and has a ``*_sync`` twin. The native core builds the requests, runs the retries,
parses SSE / NDJSON streams on its I/O thread and hands results back as typed values
(``ChatResult``, ``ModelInfo``, the stream events); this module only converts the
arguments and bridges to asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Union, cast

from . import _native, _tracing
from ._image import Image
from .errors import LLMCallError

if TYPE_CHECKING:  # pragma: no cover
    from ._native import CompletionQueue, GenerateOptions, NativeClient, NativeStream
    from .config import _ProviderConfig

__all__ = [
    "AsyncEventStream",
    "ChatResult",
    "EmbeddingResult",
    "ModelInfo",
    "ReasoningToken",
    "StreamEnd",
    "StreamError",
    "StreamEvent",
    "StreamMetrics",
    "StreamStarted",
    "SyncEventStream",
    "Token",
    "ToolCall",
    "ToolCallDelta",
    "TryRecord",
]

ChatResult = _native.ChatResult
TryRecord = _native.TryRecord
EmbeddingResult = _native.EmbeddingResult
ToolCall = _native.ToolCall
ModelInfo = _native.ModelInfo
StreamStarted = _native.StreamStarted
Token = _native.Token
ReasoningToken = _native.ReasoningToken
ToolCallDelta = _native.ToolCallDelta
StreamEnd = _native.StreamEnd
StreamError = _native.StreamError
StreamMetrics = _native.StreamMetrics

#: Any event of a stream (``isinstance`` tells which).
StreamEvent = Union[StreamStarted, Token, ReasoningToken, ToolCallDelta, StreamEnd, StreamError]
#: What caption() and embed_image() take: an Image, its bytes, or a path to the file.
ImageInput = Union[Image, bytes, bytearray, memoryview, str, "os.PathLike[str]"]

_CHAT = 0
_COMPLETION = 1

#: Events a stream may hold before its transfer pauses (the consumer is too slow).
STREAM_BUFFER_EVENTS = 1024

_RESULT_FIELDS = (
    "success",
    "text",
    "data",
    "error",
    "retryable",
    "status_code",
    "finish_reason",
    "tool_calls",
    "reasoning",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "attempts",
    "model",
    "provider",
    "request_id",
    "truncated",
    "repaired",
    "schema_errors",
)


def _result_to_dict(self: Any) -> dict[str, Any]:
    out = {name: getattr(self, name) for name in _RESULT_FIELDS}
    out["tool_calls"] = [
        {"id": t.id, "name": t.name, "arguments": t.arguments, "arguments_text": t.arguments_text}
        for t in self.tool_calls
    ]
    return out


def _result_raise_for_error(self: Any) -> None:
    if not self.success:
        raise LLMCallError(self)


def _result_repr(self: Any) -> str:
    shown = ("success", "error", "status_code", "attempts", "provider", "model", "finish_reason")
    inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
    text = self.text
    if len(text) > 40:
        text = text[:40] + "..."
    return f"ChatResult({inner}, text={text!r}, tool_calls={len(self.tool_calls)})"


# The native result classes get their Python-level methods here (the stub declares them);
# mypy refuses assigning to a method, which is exactly what installing one is.
ChatResult.to_dict = _result_to_dict  # type: ignore[method-assign]
ChatResult.raise_for_error = _result_raise_for_error  # type: ignore[method-assign]
ChatResult.__repr__ = _result_repr  # type: ignore[method-assign]


def _embedding_to_numpy(self: Any) -> Any:
    """A float32 numpy array (rows x dimensions) viewing the result's buffer: no copy.
    Needs numpy, which llmbridge never requires."""
    try:
        import numpy
    except ImportError:
        raise ImportError("EmbeddingResult.to_numpy() needs numpy (pip install numpy); "
                          "without it, use .vectors or memoryview(result)") from None
    return numpy.asarray(self)


EmbeddingResult.to_numpy = _embedding_to_numpy  # type: ignore[method-assign]  # as above
EmbeddingResult.raise_for_error = _result_raise_for_error  # type: ignore[method-assign]  # as above


def _json(value: Any, name: str) -> str:
    from ._client import _to_json

    return _to_json(value, name)


def _messages_json(messages: Sequence[Mapping[str, Any]]) -> str:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(
            "messages must be a list of OpenAI-style message dicts "
            f"({{'role': ..., 'content': ...}}), got {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages is empty: give at least one message")
    out: list[Mapping[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise TypeError(
                f"messages[{i}] must be a dict with 'role' and 'content', got {type(m).__name__}"
            )
        if "role" not in m:
            raise ValueError(f"messages[{i}] has no 'role'")
        content = m.get("content")
        items = cast("list[object]", content) if isinstance(content, list) else []
        if any(isinstance(p, (Image, str)) for p in items):
            # Images become image_url parts and bare strings text parts.
            parts = [
                p.to_part() if isinstance(p, Image)
                else {"type": "text", "text": p} if isinstance(p, str)
                else p
                for p in items
            ]
            m = {**m, "content": parts}
        out.append(m)
    return _json(out, "messages")


def _options(
    *,
    model: Optional[str] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    top_p: Optional[float] = None,
    stop: Union[str, Sequence[str], None] = None,
    seed: Optional[int] = None,
    json_schema: Optional[Mapping[str, Any]] = None,
    response_format: Optional[Mapping[str, Any]] = None,
    tools: Optional[Sequence[Mapping[str, Any]]] = None,
    tool_choice: Union[str, Mapping[str, Any], None] = None,
    extra_body: Optional[Mapping[str, Any]] = None,
    timeout: Optional[float] = None,
    stream_idle_timeout: Optional[float] = None,
) -> GenerateOptions:
    o = _native.GenerateOptions()
    if model is not None:
        if not isinstance(model, str):
            raise TypeError(f"model must be str, got {type(model).__name__}")
        o.model = model
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise TypeError(f"max_tokens must be int, got {type(max_tokens).__name__}")
        o.max_tokens = max_tokens
    if temperature is not None:
        o.temperature = _number(temperature, "temperature")
    if top_p is not None:
        o.top_p = _number(top_p, "top_p")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else list(stop)
        if not all(isinstance(s, str) for s in stops):
            raise TypeError("stop must be a str or a list of str")
        o.stop = stops
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be int, got {type(seed).__name__}")
        o.seed = seed
    if json_schema is not None:
        if not isinstance(json_schema, Mapping):
            raise TypeError(
                f"json_schema must be a dict (JSON Schema), got {type(json_schema).__name__}"
            )
        from ._client import _schema_text

        o.json_schema = _schema_text(json_schema)
    if response_format is not None:
        if not isinstance(response_format, Mapping):
            raise TypeError("response_format must be a dict (OpenAI response_format)")
        o.response_format = _json(dict(response_format), "response_format")
    if tools is not None:
        if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
            raise TypeError("tools must be a list of OpenAI function-tool dicts")
        if not tools:
            raise ValueError("tools is empty: leave it out, or give at least one tool")
        o.tools = _json(list(tools), "tools")
    if tool_choice is not None:
        if not isinstance(tool_choice, (str, Mapping)):
            raise TypeError("tool_choice must be 'auto', 'none', 'required' or a dict")
        o.tool_choice = _json(
            tool_choice if isinstance(tool_choice, str) else dict(tool_choice), "tool_choice"
        )
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise TypeError(f"extra_body must be a dict, got {type(extra_body).__name__}")
        o.extra_body = _json(dict(extra_body), "extra_body")
    if timeout is not None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        o.timeout = float(timeout)
    if stream_idle_timeout is not None:
        if stream_idle_timeout <= 0:
            raise ValueError(
                f"stream_idle_timeout must be > 0 seconds, got {stream_idle_timeout!r}"
            )
        o.stream_idle_timeout = float(stream_idle_timeout)
    return o


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _generate_messages(prompt: str, system: Optional[str]) -> list[dict[str, str]]:
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be str, got {type(prompt).__name__}")
    if system is not None and not isinstance(system, str):
        raise TypeError(f"system must be str or None, got {type(system).__name__}")
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


def _as_image(image: ImageInput) -> Image:
    """An Image, or one built from bytes or a path."""
    if isinstance(image, Image):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Image.from_bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Image.from_path(image)
    raise TypeError(f"image must be an Image, bytes or a path, got {type(image).__name__}")


def _prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be str, got {type(prompt).__name__}")
    return prompt


_stream_tokens = itertools.count(1 << 62)  # apart from call tokens


def _is_last(event: StreamEvent) -> bool:
    t = type(event)
    return t is StreamEnd or t is StreamError


class _EventStream:
    """What both stream flavours share: the native stream, the events taken from it and
    not yet handed out, and aborting the transfer."""

    __slots__ = ("_native", "_buf", "_finished", "_span", "__weakref__")

    _native: NativeStream
    _buf: collections.deque[StreamEvent]
    _finished: bool

    def _open(
        self, client: GenerationMixin, queue: Any, token: int, op: int, messages_json: str,
        prompt: str, options: GenerateOptions,
    ) -> None:
        self._buf = collections.deque()
        self._finished = False
        self._span: Any = None
        tracing = _tracing.active
        if tracing is not None:
            # The stream's span ends with its last event, or when it is closed early.
            self._span = tracing.start_generate(client, op, messages_json, prompt, options, True)
        try:
            self._native = client._native.open_stream(
                queue, token, op, messages_json, prompt, options, STREAM_BUFFER_EVENTS
            )
        except BaseException as exc:
            if self._span is not None:
                self._span.fail(exc)
            raise

    def _ended(self, event: Any) -> None:
        self._finished = True
        if self._span is not None:
            self._span.end_stream(event)

    def close(self) -> None:
        """Abort the transfer and free its connection (no-op once the stream has ended)."""
        if not self._finished:
            self._finished = True
            self._buf.clear()
            self._native.cancel()
            if self._span is not None:
                self._span.cancel()

    def __del__(self) -> None:
        # Dropping an unfinished stream (a `break` out of the loop) aborts its transfer.
        try:
            if not self._finished:
                self._native.cancel()
                if self._span is not None:
                    self._span.cancel()
        except Exception:  # noqa: BLE001 - half-built object, or interpreter shutdown
            pass


class AsyncEventStream(_EventStream):
    """The events of one token stream, as an async iterator (and async context manager).

    Exactly one ``StreamStarted`` comes first and exactly one ``StreamEnd`` or
    ``StreamError`` last. Breaking out of the loop and dropping the stream, ``aclose()``,
    leaving ``async with``, cancelling the task or closing the client abort the transfer
    and free its connection.
    """

    __slots__ = ("_token", "_bridge")

    def __init__(
        self, client: GenerationMixin, op: int, messages_json: str, prompt: str,
        options: GenerateOptions,
    ) -> None:
        from ._client import _bridge

        loop = asyncio.get_running_loop()
        self._bridge = _bridge(loop)
        self._token = next(_stream_tokens)
        self._open(client, self._bridge.queue, self._token, op, messages_json, prompt, options)

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        buf = self._buf
        if not buf:
            if self._finished:
                raise StopAsyncIteration
            await self._fill()
        event = buf.popleft()
        t = type(event)  # inlined _is_last: this runs once per token
        if t is StreamEnd or t is StreamError:
            self._ended(event)
        return event

    async def _fill(self) -> None:
        native = self._native
        pending = self._bridge.pending
        while True:
            batch = native.take()
            if batch:
                self._buf.extend(batch)
                return
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            pending[self._token] = fut
            # An event may have come (and its wake-up been drained) before the future was
            # registered: look once more before waiting.
            batch = native.take()
            if batch:
                pending.pop(self._token, None)
                self._buf.extend(batch)
                return
            try:
                await fut
            except asyncio.CancelledError:
                pending.pop(self._token, None)
                self.close()
                raise

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def collect(self) -> tuple[str, Optional[StreamEvent]]:
        """Read the whole stream: (joined token text, the last event)."""
        parts: list[str] = []
        last: Optional[StreamEvent] = None
        async for event in self:
            if isinstance(event, Token):
                parts.append(event.text)
            last = event
        return "".join(parts), last


class SyncEventStream(_EventStream):
    """The blocking twin of :class:`AsyncEventStream`: a plain iterator (and context
    manager). Waiting releases the GIL."""

    __slots__ = ()

    #: Seconds per wait, so that Ctrl-C reaches a thread blocked on a silent stream.
    _WAIT_SLICE = 0.2

    def __init__(
        self, client: GenerationMixin, op: int, messages_json: str, prompt: str,
        options: GenerateOptions,
    ) -> None:
        self._open(client, None, 0, op, messages_json, prompt, options)

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        buf = self._buf
        while not buf:
            if self._finished:
                raise StopIteration
            buf.extend(self._native.wait_take(self._WAIT_SLICE))
        event = buf.popleft()
        if _is_last(event):
            self._ended(event)
        return event

    def __enter__(self) -> SyncEventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collect(self) -> tuple[str, Optional[StreamEvent]]:
        """Read the whole stream: (joined token text, the last event)."""
        parts: list[str] = []
        last: Optional[StreamEvent] = None
        for event in self:
            if isinstance(event, Token):
                parts.append(event.text)
            last = event
        return "".join(parts), last


class GenerationMixin:
    """chat / generate / complete / streams / list_models, shared by every client."""

    _native: NativeClient
    _replicated: bool = False

    if TYPE_CHECKING:
        # Defined by _BaseClient (_client.py), the class that mixes this in.
        provider: ClassVar[str]
        config: _ProviderConfig
        health_ttl: float
        auto_pick_model: bool
        _model_state: int

        def _pick_model(self) -> None: ...
        async def _pick_model_async(self) -> None: ...
        def _note_replica_events(self) -> None: ...

    # ---- shared plumbing ----

    def _ensure_ready_sync(self) -> None:
        from ._client import _MODEL_READY

        self._check_open()
        if self._model_state != _MODEL_READY:
            if self._native.current_model or not self.auto_pick_model:
                self._model_state = _MODEL_READY
            else:
                self._pick_model()

    async def _ensure_ready(self) -> None:
        from ._client import _MODEL_READY

        self._check_open()
        if self._model_state != _MODEL_READY:
            await self._pick_model_async()

    def _check_open(self) -> None:
        if self._native.closed:
            from .errors import LLMBridgeError

            raise LLMBridgeError(f"{type(self).__name__} is closed")

    async def _await_native(
        self, submit: Callable[[CompletionQueue, int], Union[int, list[int]]]
    ) -> Any:
        """Starts a native call with ``submit(queue, token)`` (which returns its call id, or
        a list of them) and awaits its typed result through this loop's completion queue.
        Cancelling the awaiting task cancels the native call(s)."""
        from ._client import _bridge, _tokens

        loop = asyncio.get_running_loop()
        bridge = _bridge(loop)
        token = next(_tokens)
        fut: asyncio.Future[Any] = loop.create_future()
        bridge.pending[token] = fut
        try:
            ids = submit(bridge.queue, token)
        except BaseException:
            bridge.pending.pop(token, None)
            raise
        if self._native.pending_schema_warnings:
            self._note_schema_warnings()  # type: ignore[attr-defined]
        try:
            result = await fut
            if self._replicated:
                self._note_replica_events()
            return result
        except asyncio.CancelledError:
            bridge.pending.pop(token, None)
            for call_id in ids if isinstance(ids, list) else (ids,):
                self._native.cancel(call_id)
            raise

    async def _submit(
        self, op: int, messages_json: str, prompt: str, options: GenerateOptions
    ) -> ChatResult:
        # Refused options are refused before anything is sent, model look-up included.
        self._native.check_generate(op, messages_json, prompt, options)
        await self._ensure_ready()
        tracing = _tracing.active
        if tracing is not None:
            return await tracing.generate(self, op, messages_json, prompt, options)
        # A generation's token completes with a ChatResult.
        return cast(ChatResult, await self._await_native(
            lambda queue, token: self._native.submit_generate(
                queue, token, op, messages_json, prompt, options
            )
        ))

    def _run_sync(
        self, op: int, messages_json: str, prompt: str, options: GenerateOptions
    ) -> ChatResult:
        self._native.check_generate(op, messages_json, prompt, options)
        self._ensure_ready_sync()
        tracing = _tracing.active
        if tracing is not None:
            return tracing.generate_sync(self, op, messages_json, prompt, options)
        result = self._native.generate_sync(op, messages_json, prompt, options)
        if self._native.pending_schema_warnings:
            self._note_schema_warnings()  # type: ignore[attr-defined]
        if self._replicated:
            self._note_replica_events()
        return result

    # ---- chat ----

    async def chat(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> ChatResult:
        """Send a chat (OpenAI-style messages); returns a ChatResult, never raises for
        transport or model problems. Options: model, max_tokens, temperature, top_p,
        stop, seed, json_schema, response_format, tools, tool_choice, extra_body, timeout."""
        return await self._submit(_CHAT, _messages_json(messages), "", _options(**options))

    def chat_sync(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> ChatResult:
        """Blocking twin of :meth:`chat`."""
        return self._run_sync(_CHAT, _messages_json(messages), "", _options(**options))

    async def generate(
        self, prompt: str, system: Optional[str] = None, **options: Any
    ) -> ChatResult:
        """A chat of [system, user]: the usual one-shot generation."""
        return await self.chat(_generate_messages(prompt, system), **options)

    def generate_sync(
        self, prompt: str, system: Optional[str] = None, **options: Any
    ) -> ChatResult:
        """Blocking twin of :meth:`generate`."""
        return self.chat_sync(_generate_messages(prompt, system), **options)

    async def complete(self, prompt: str, **options: Any) -> ChatResult:
        """Raw completion: /v1/completions (OpenAI-compatible) or /api/generate (Ollama)."""
        return await self._submit(_COMPLETION, "", _prompt(prompt), _options(**options))

    def complete_sync(self, prompt: str, **options: Any) -> ChatResult:
        """Blocking twin of :meth:`complete`."""
        return self._run_sync(_COMPLETION, "", _prompt(prompt), _options(**options))

    # ---- streams ----

    def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], **options: Any
    ) -> AsyncEventStream:
        """Stream a chat's tokens: ``async for event in client.chat_stream(messages)``.
        Takes chat()'s options plus ``stream_idle_timeout`` (seconds between events,
        default 60); ``timeout`` bounds the wait for the first byte."""
        messages_json = _messages_json(messages)
        opts = _options(**options)
        self._check_stream_ready()
        return AsyncEventStream(self, _CHAT, messages_json, "", opts)

    def chat_stream_sync(
        self, messages: Sequence[Mapping[str, Any]], **options: Any
    ) -> SyncEventStream:
        """Blocking twin of :meth:`chat_stream`: a plain iterator of events."""
        messages_json = _messages_json(messages)
        opts = _options(**options)
        self._native.check_generate(_CHAT, messages_json, "", opts)
        self._ensure_ready_sync()
        return SyncEventStream(self, _CHAT, messages_json, "", opts)

    def complete_stream(self, prompt: str, **options: Any) -> AsyncEventStream:
        """Stream a completion's tokens (/v1/completions or Ollama /api/generate)."""
        opts = _options(**options)
        self._check_stream_ready()
        return AsyncEventStream(self, _COMPLETION, "", _prompt(prompt), opts)

    def complete_stream_sync(self, prompt: str, **options: Any) -> SyncEventStream:
        """Blocking twin of :meth:`complete_stream`."""
        opts = _options(**options)
        self._native.check_generate(_COMPLETION, "", _prompt(prompt), opts)
        self._ensure_ready_sync()
        return SyncEventStream(self, _COMPLETION, "", _prompt(prompt), opts)

    def _check_stream_ready(self) -> None:
        self._check_open()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "chat_stream()/complete_stream() need a running event loop; "
                "use chat_stream_sync()/complete_stream_sync() outside asyncio"
            ) from None
        # A stream starts without awaiting, so an empty model is not looked up here: it
        # is sent as is (vLLM serves its own model); chat() or health() pick one first.

    # ---- vision ----

    #: What caption() asks when no prompt is given.
    caption_prompt: str = "Describe this image."

    def _vision_model(self, model: Optional[str]) -> str:
        if model is not None:
            if not isinstance(model, str):
                raise TypeError(f"model must be str, got {type(model).__name__}")
            return model
        return str(getattr(self.config, "vision_model", "") or "")

    def _caption_messages(self, image: ImageInput, prompt: Optional[str]) -> list[dict[str, Any]]:
        image = _as_image(image)
        text = self.caption_prompt if prompt is None else prompt
        return [{"role": "user", "content": [{"type": "text", "text": text}, image]}]

    def _no_vision(self) -> ChatResult:
        return _native.failed_chat_result(
            "vision_unavailable: no vision model configured (set vision_model, "
            "VLLM_VISION_MODEL, or pass model=)",
            self.provider,
            "",
        )

    async def caption(
        self, image: ImageInput, prompt: Optional[str] = None, model: Optional[str] = None,
        **options: Any,
    ) -> ChatResult:
        """Describe an image (an Image, bytes or a path) with the vision model (the config's
        vision_model unless `model` is given). Without a vision model: a ChatResult with
        the error ``vision_unavailable: ...``, nothing sent."""
        vision = self._vision_model(model)
        messages = self._caption_messages(image, prompt)
        if not vision:
            return self._no_vision()
        return await self.chat(messages, model=vision, **options)

    def caption_sync(
        self, image: ImageInput, prompt: Optional[str] = None, model: Optional[str] = None,
        **options: Any,
    ) -> ChatResult:
        """Blocking twin of :meth:`caption`."""
        vision = self._vision_model(model)
        messages = self._caption_messages(image, prompt)
        if not vision:
            return self._no_vision()
        return self.chat_sync(messages, model=vision, **options)

    _vision_cache: Optional[tuple[float, str, bool]] = None

    def supports_vision_sync(self, model: Optional[str] = None) -> bool:
        """True when a vision model is configured (or given) and the server lists it. The
        answer is cached for ``health_ttl`` seconds; a server that cannot be reached is
        False."""
        vision = self._vision_model(model)
        if not vision:
            return False
        ttl = float(self.health_ttl)
        cached = self._vision_cache
        if cached is not None and cached[1] == vision and time.monotonic() - cached[0] < ttl:
            return cached[2]
        ids: set[str]
        try:
            ids = {m.id for m in self.list_models_sync()}
        except LLMCallError:
            ids = set()
        ok = vision in ids or (":" not in vision and f"{vision}:latest" in ids)
        self._vision_cache = (time.monotonic(), vision, ok)
        return ok

    async def supports_vision(self, model: Optional[str] = None) -> bool:
        """Async twin of :meth:`supports_vision_sync` (runs in the default executor)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.supports_vision_sync, model)

    # ---- embeddings ----

    def _embed_args(
        self, texts: Union[str, Sequence[str]], model: Optional[str], dimensions: Optional[int]
    ) -> tuple[list[str], str, int, int, int, float]:
        if isinstance(texts, str):
            texts = [texts]
        elif isinstance(texts, (bytes, Mapping)) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be str, got {type(t).__name__}")
        texts = list(texts)
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be str, got {type(model).__name__}")
        if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int)):
            raise TypeError(f"dimensions must be int, got {type(dimensions).__name__}")
        if dimensions is not None and dimensions < 1:
            raise ValueError(f"dimensions must be >= 1, got {dimensions}")
        config = self.config
        expected = int(getattr(config, "embedding_dimensions", 0) or 0)
        return (texts, model or "", dimensions or 0, expected, int(config.embedding_batch_size), 0.0)

    async def embed(
        self, texts: Union[str, Sequence[str]], model: Optional[str] = None, dimensions: Optional[int] = None
    ) -> EmbeddingResult:
        """Embeddings of one text or a list (/v1/embeddings, Ollama /api/embed), in input
        order. Lists longer than the config's embedding_batch_size are split into requests
        sent concurrently. Returns an EmbeddingResult; never raises for server problems."""
        args = self._embed_args(texts, model, dimensions)
        self._check_open()
        tracing = _tracing.active
        if tracing is not None:
            return await tracing.embed(self, args)
        # An embedding's tokens complete with an EmbeddingResult.
        return cast(EmbeddingResult, await self._await_native(
            lambda queue, token: self._native.submit_embed(queue, token, *args)
        ))

    def embed_sync(
        self, texts: Union[str, Sequence[str]], model: Optional[str] = None, dimensions: Optional[int] = None
    ) -> EmbeddingResult:
        """Blocking twin of :meth:`embed`."""
        args = self._embed_args(texts, model, dimensions)
        self._check_open()
        tracing = _tracing.active
        if tracing is not None:
            return tracing.embed_sync(self, args)
        return self._native.embed_sync(*args)


    def _image_embed_args(
        self, image: ImageInput, model: Optional[str]
    ) -> tuple[list[str], str, int, int, int, float, str]:
        image = _as_image(image)
        messages = _messages_json([{"role": "user", "content": [image]}])
        texts, model_, dims, expected, batch, timeout = self._embed_args([], model, None)
        return (texts, model_, dims, expected, batch, timeout, messages)

    async def embed_image(
        self, image: ImageInput, model: Optional[str] = None
    ) -> EmbeddingResult:
        """The embedding of an image from a multimodal embedding model: vLLM's chat-style
        embeddings request (/v1/embeddings with ``messages``). OpenAI-compatible servers
        only (ValueError for Ollama); a server that refuses gives the error value."""
        args = self._image_embed_args(image, model)
        self._check_open()
        tracing = _tracing.active
        if tracing is not None:
            return await tracing.embed(self, args)
        return cast(EmbeddingResult, await self._await_native(  # as in embed()
            lambda queue, token: self._native.submit_embed(queue, token, *args)
        ))

    def embed_image_sync(
        self, image: ImageInput, model: Optional[str] = None
    ) -> EmbeddingResult:
        """Blocking twin of :meth:`embed_image`."""
        args = self._image_embed_args(image, model)
        self._check_open()
        tracing = _tracing.active
        if tracing is not None:
            return tracing.embed_sync(self, args)
        return self._native.embed_sync(*args)

    # ---- models ----

    def list_models_sync(self, timeout: Optional[float] = None) -> list[ModelInfo]:
        """The server's models (GET /v1/models or /api/tags). Raises LLMCallError when
        the list cannot be had (connection, HTTP or format problem)."""
        if timeout is None:
            timeout = min(float(self.config.timeout), 10.0)
        return list(self._native.list_models(float(timeout)))

    async def list_models(self, timeout: Optional[float] = None) -> list[ModelInfo]:
        """Async twin of :meth:`list_models_sync` (runs in the default executor)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.list_models_sync, timeout)
