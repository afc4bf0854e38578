"""OpenTelemetry tracing of every logical call, following the GenAI semantic conventions.

Off until ``llmbridge.instrument()`` runs (or ``LLMBRIDGE_OTEL=1`` is set when llmbridge
is imported). Then each call (call_llm, chat, generate, caption, complete, embed,
embed_image, chat_stream, complete_stream and their ``*_sync`` twins) is one CLIENT span
named ``"{gen_ai.operation.name} {gen_ai.request.model}"``, and each of its HTTP tries
is a span event (``llmbridge.try``) built from the core's per-try records.

Nothing here imports opentelemetry before instrument() runs. While tracing is off a call
pays one check: ``_tracing.active is None``. Tracing never raises into the caller: a
tracer or exporter that fails is logged once and the call goes on untraced.

Prompts, documents and answers are recorded only when content capture is on
(``instrument(capture_content=True)`` or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT);
the API key and headers never are. See docs/observability.md, "Tracing".
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional, cast
from urllib.parse import urlsplit

from . import _native

if TYPE_CHECKING:
    from ._client import ExtractionAttempt
    from ._native import ChatResult, EmbeddingResult

__all__ = ["instrument", "is_instrumented", "uninstrument"]

#: Set to 1 / true / yes / on when llmbridge is imported: instrument() with the defaults.
ENV_ENABLE = "LLMBRIDGE_OTEL"
#: The OpenTelemetry GenAI instrumentations' switch for recording message content.
ENV_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

TRY_EVENT = "llmbridge.try"

_log = logging.getLogger("llmbridge.tracing")

# Operation names: the conventions' well-known values.
CHAT = "chat"
TEXT_COMPLETION = "text_completion"
EMBEDDINGS = "embeddings"

_TRUE = frozenset({"1", "true", "yes", "on"})
# The GenAI utilities' enum for the capture variable: content goes on spans for these.
# (llmbridge emits no log events, so EVENT_ONLY records nothing here.)
_CAPTURE_ON = _TRUE | {"span_only", "span_and_event"}


def capture_from_env(value: Optional[str]) -> bool:
    """True when the capture variable asks for content on spans."""
    return (value or "").strip().lower() in _CAPTURE_ON


class _Tracing:
    """What instrument() set up: the tracer and the content switch."""

    __slots__ = ("tracer", "capture", "_kind", "_status", "_error_code")

    def __init__(self, tracer: Any, capture: bool, trace: Any) -> None:
        self.tracer = tracer
        self.capture = capture
        self._kind = trace.SpanKind.CLIENT
        self._status = trace.Status
        self._error_code = trace.StatusCode.ERROR

    # ---- span start ----

    def _start(
        self, client: Any, operation: str, model: str, attributes: dict[str, Any]
    ) -> Optional[_Span]:
        try:
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": client.provider,
                "gen_ai.system": client.provider,  # the name before semconv 1.37
            }
            if model:
                attrs["gen_ai.request.model"] = model
            host, port = _first_server(client.config.base_url)
            if host:
                attrs["server.address"] = host
                if port:
                    attrs["server.port"] = port
            attrs.update(attributes)
            name = f"{operation} {model}" if model else operation
            span = self.tracer.start_span(name, kind=self._kind, attributes=attrs)
            return _Span(self, span, host, port)
        except Exception as exc:  # noqa: BLE001 - tracing must never fail a call
            _broken(exc)
            return None

    def start_call_llm(self, client: Any, args: Sequence[str]) -> Optional[_Span]:
        config = client.config
        attrs: dict[str, Any] = {"gen_ai.output.type": "json"}
        _put(attrs, "gen_ai.request.max_tokens", getattr(config, "max_tokens", None))
        _put(attrs, "gen_ai.request.temperature", getattr(config, "temperature", None))
        span = self._start(client, CHAT, client._native.current_model, attrs)
        if span is not None and self.capture:
            system, user, messages_json, _schema, document = args[:5]
            span.record_input(lambda: _call_llm_messages(system, user, messages_json, document))
        return span

    def start_generate(
        self, client: Any, op: int, messages_json: str, prompt: str, options: Any,
        stream: bool = False,
    ) -> Optional[_Span]:
        try:
            config = client.config
            attrs: dict[str, Any] = {}
            max_tokens = options.max_tokens
            temperature = options.temperature
            _put(attrs, "gen_ai.request.max_tokens",
                 max_tokens if max_tokens is not None else getattr(config, "max_tokens", None))
            _put(attrs, "gen_ai.request.temperature",
                 temperature if temperature is not None else getattr(config, "temperature", None))
            _put(attrs, "gen_ai.request.top_p", options.top_p)
            _put(attrs, "gen_ai.request.seed", options.seed)
            if options.stop:
                attrs["gen_ai.request.stop_sequences"] = list(options.stop)
            if options.json_schema or "json" in options.response_format:
                attrs["gen_ai.output.type"] = "json"
            if stream:
                attrs["gen_ai.request.stream"] = True
            model = options.model or client._native.current_model
        except Exception as exc:  # noqa: BLE001
            _broken(exc)
            return None
        operation = CHAT if op == 0 else TEXT_COMPLETION
        span = self._start(client, operation, model, attrs)
        if span is not None and self.capture:
            span.record_input(lambda: _generate_messages(messages_json, prompt))
        return span

    def start_embed(self, client: Any, model: str, dimensions: int) -> Optional[_Span]:
        try:
            model = client._native.embedding_model(model)
        except Exception as exc:  # noqa: BLE001
            _broken(exc)
            return None
        attrs: dict[str, Any] = {}
        if dimensions:
            attrs["gen_ai.embeddings.dimension.count"] = dimensions
        return self._start(client, EMBEDDINGS, model, attrs)

    # ---- traced calls (the clients hand over here when tracing is on) ----

    async def call_llm(self, client: Any, args: Sequence[str]) -> ExtractionAttempt:
        from ._client import ExtractionAttempt

        submit = client._native.submit
        span = self.start_call_llm(client, args)
        result = await _awaited(span, client._await_native(_submitter(submit, *args)))
        return ExtractionAttempt._from_native(result)

    def call_llm_sync(self, client: Any, args: Sequence[str]) -> ExtractionAttempt:
        from ._client import ExtractionAttempt

        span = self.start_call_llm(client, args)
        result = _ran(span, client._native.call_sync, *args)
        if client._replicated:
            client._note_replica_events()
        return ExtractionAttempt._from_native(result)

    async def generate(
        self, client: Any, op: int, messages_json: str, prompt: str, options: Any
    ) -> ChatResult:
        submit = client._native.submit_generate
        span = self.start_generate(client, op, messages_json, prompt, options)
        # A generation's token completes with a ChatResult.
        return cast("ChatResult", await _awaited(
            span,
            client._await_native(_submitter(submit, op, messages_json, prompt, options)),
        ))

    def generate_sync(
        self, client: Any, op: int, messages_json: str, prompt: str, options: Any
    ) -> ChatResult:
        span = self.start_generate(client, op, messages_json, prompt, options)
        result: ChatResult = _ran(span, client._native.generate_sync, op, messages_json, prompt, options)
        if client._replicated:
            client._note_replica_events()
        return result

    async def embed(self, client: Any, args: Sequence[Any]) -> EmbeddingResult:
        submit = client._native.submit_embed
        span = self.start_embed(client, args[1], args[2])
        # An embedding's tokens complete with an EmbeddingResult.
        return cast(
            "EmbeddingResult",
            await _awaited(span, client._await_native(_submitter(submit, *args))),
        )

    def embed_sync(self, client: Any, args: Sequence[Any]) -> EmbeddingResult:
        span = self.start_embed(client, args[1], args[2])
        result: EmbeddingResult = _ran(span, client._native.embed_sync, *args)
        return result


class _Span:
    """One call's span: started by _Tracing, ended exactly once by finish/fail/end_stream."""

    __slots__ = ("tracing", "span", "host", "port", "open")

    def __init__(self, tracing: _Tracing, span: Any, host: str, port: int) -> None:
        self.tracing = tracing
        self.span = span
        self.host = host
        self.port = port
        self.open = True

    def record_input(self, messages: Callable[[], list[dict[str, Any]]]) -> None:
        try:
            self.span.set_attribute("gen_ai.input.messages", _dumps(messages()))
        except Exception as exc:  # noqa: BLE001
            _broken(exc)

    def finish(self, result: Any) -> None:
        """End with a result value (ChatResult, EmbeddingResult): usage, model, tries, error."""
        if not self.open:
            return
        self.open = False
        try:
            span = self.span
            attrs: dict[str, Any] = {}
            if result.model:
                attrs["gen_ai.response.model"] = result.model
            _put(attrs, "gen_ai.usage.input_tokens", result.prompt_tokens)
            _put(attrs, "gen_ai.usage.output_tokens", getattr(result, "completion_tokens", None))
            finish_reason = getattr(result, "finish_reason", None)
            if finish_reason:
                attrs["gen_ai.response.finish_reasons"] = [finish_reason]
            if result.request_id:
                attrs["llmbridge.request_id"] = result.request_id
            if self.tracing.capture and result.success and hasattr(result, "text"):
                attrs["gen_ai.output.messages"] = _dumps(_output_messages(result, finish_reason))
            self._tries(result.tries, attrs)
            span.set_attributes(attrs)
            if not result.success:
                self._error(_native.error_kind(result.error or "") or "_OTHER")
            span.end()
        except Exception as exc:  # noqa: BLE001
            _broken(exc)

    def end_stream(self, event: Any) -> None:
        """End with a stream's last event (StreamEnd or StreamError)."""
        if not self.open:
            return
        self.open = False
        try:
            attrs: dict[str, Any] = {}
            if type(event) is _native.StreamEnd:
                metrics = event.metrics
                if event.model:
                    attrs["gen_ai.response.model"] = event.model
                _put(attrs, "gen_ai.usage.input_tokens", metrics.prompt_tokens)
                _put(attrs, "gen_ai.usage.output_tokens", metrics.completion_tokens)
                if event.finish_reason:
                    attrs["gen_ai.response.finish_reasons"] = [event.finish_reason]
                if metrics.ttft_ms is not None:
                    attrs["gen_ai.response.time_to_first_chunk"] = metrics.ttft_ms / 1000.0
                self._tries(event.tries, attrs)
                self.span.set_attributes(attrs)
            else:
                self._tries(event.tries, attrs)
                self.span.set_attributes(attrs)
                self._error(_native.error_kind(event.error) or "_OTHER")
            self.span.end()
        except Exception as exc:  # noqa: BLE001
            _broken(exc)

    def fail(self, exc: BaseException) -> None:
        """End because the call raised: cancelled (the task, or a stream closed early), or
        an exception on the way (its class name is the error type)."""
        if not self.open:
            return
        self.open = False
        try:
            cancelled = isinstance(exc, asyncio.CancelledError)
            self._error("cancelled" if cancelled else type(exc).__qualname__)
            self.span.end()
        except Exception as err:  # noqa: BLE001
            _broken(err)

    def cancel(self) -> None:
        self.fail(asyncio.CancelledError())

    def _error(self, kind: str) -> None:
        self.span.set_attribute("error.type", kind)
        self.span.set_status(self.tracing._status(self.tracing._error_code, kind))

    def _tries(self, tries: Sequence[Any], attrs: dict[str, Any]) -> None:
        span = self.span
        for t in tries:
            event: dict[str, Any] = {
                "llmbridge.try.attempt": t.attempt,
                "llmbridge.try.replica": t.replica,
                "llmbridge.try.duration_ms": t.elapsed_ms,
            }
            if t.status_code is not None:
                event["http.response.status_code"] = t.status_code
            if t.error is not None:
                event["error.type"] = _native.error_kind(t.error) or "_OTHER"
            span.add_event(TRY_EVENT, event, timestamp=int(t.start_ms * 1e6))
        if tries:
            # The server that gave the outcome: with several replicas, the last try's.
            host, port = _server(tries[-1].replica)
            if host and (host, port) != (self.host, self.port):
                attrs["server.address"] = host
                if port:
                    attrs["server.port"] = port


async def _awaited(span: Optional[_Span], call: Awaitable[Any]) -> Any:
    if span is None:
        return await call
    try:
        result = await call
    except BaseException as exc:
        span.fail(exc)
        raise
    span.finish(result)
    return result


def _ran(span: Optional[_Span], fn: Any, *args: Any) -> Any:
    if span is None:
        return fn(*args)
    try:
        result = fn(*args)
    except BaseException as exc:
        span.fail(exc)
        raise
    span.finish(result)
    return result


# ---- helpers ----


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attrs[key] = value


_warned = False


def _broken(exc: BaseException) -> None:
    """A tracer, span or exporter failed: say so once, then quietly go on."""
    global _warned
    if not _warned:
        _warned = True
        _log.warning("llmbridge tracing failed (%s: %s); calls go on, and this is not repeated",
                     type(exc).__name__, str(exc)[:200])
    else:
        _log.debug("llmbridge tracing failed again: %r", exc)


@functools.lru_cache(maxsize=64)
def _server(url: str) -> tuple[str, int]:
    """(host, port) of a base URL; ('', 0) when it has none. Never the userinfo."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return "", 0
    return host, port


@functools.lru_cache(maxsize=64)
def _first_server(base_url: str) -> tuple[str, int]:
    """The first replica's (host, port) of a config's base_url (comma-separated list)."""
    return _server(_native.display_url(base_url.split(",", 1)[0]))


def _submitter(submit: Any, *args: Any) -> Callable[[_native.CompletionQueue, int], Any]:
    """``submit`` bound to its arguments: what a client's _await_native starts."""

    def start(queue: _native.CompletionQueue, token: int) -> Any:
        return submit(queue, token, *args)

    return start


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


def _dict(value: Any) -> dict[str, Any]:
    """A JSON object as a typed dict; anything else as an empty one."""
    return cast("dict[str, Any]", value) if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """A JSON array as a typed list; anything else as an empty one."""
    if not isinstance(value, list):
        return []
    return list(cast("Iterable[Any]", value))


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as the conventions' parts. Images are marked, never copied."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_part(content)] if content else []
    out: list[dict[str, Any]] = []
    for item in _list(content):
        part = _dict(item)
        kind = part.get("type")
        if kind == "text":
            out.append(_text_part(str(part.get("text", ""))))
        elif kind in ("image_url", "image"):
            out.append({"type": "image"})
        else:
            out.append({"type": str(part.get("type", "unknown"))})
    return out


def _chat_messages(messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in _list(messages):
        if not isinstance(item, dict):
            continue
        m = _dict(item)
        role = str(m.get("role", ""))
        parts = _parts(m.get("content"))
        for entry in _list(m.get("tool_calls")):
            call = _dict(entry)
            function = _dict(call.get("function"))
            parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments")})
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": m.get("tool_call_id"),
                      "response": m.get("content")}]
        out.append({"role": role, "parts": parts})
    return out


def _call_llm_messages(
    system: str, user: str, messages_json: str, document: str
) -> list[dict[str, Any]]:
    if messages_json:
        return _chat_messages(json.loads(messages_json))
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "parts": [_text_part(system)]})
    out.append({"role": "user", "parts": [_text_part(_native.render_user_prompt(user, document))]})
    return out


def _generate_messages(messages_json: str, prompt: str) -> list[dict[str, Any]]:
    if messages_json:
        return _chat_messages(json.loads(messages_json))
    return [{"role": "user", "parts": [_text_part(prompt)]}]


def _output_messages(result: Any, finish_reason: Optional[str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    reasoning = getattr(result, "reasoning", None)
    if reasoning:
        parts.append({"type": "reasoning", "content": reasoning})
    text = result.text or result.raw_response  # call_llm's answer is its raw_response
    if text:
        parts.append(_text_part(text))
    for call in getattr(result, "tool_calls", ()) or ():
        arguments = call.arguments if call.arguments is not None else call.arguments_text
        parts.append({"type": "tool_call", "id": call.id, "name": call.name,
                      "arguments": arguments})
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason or "stop"}]


# ---- public switch ----

active: Optional[_Tracing] = None


def instrument(*, tracer_provider: Any = None, capture_content: Optional[bool] = None) -> None:
    """Trace every llmbridge call with OpenTelemetry (GenAI semantic conventions).

    ``tracer_provider``: the provider to take the tracer from (default: the global one,
    set by your OpenTelemetry setup). ``capture_content``: record prompts, documents and
    answers on the spans (default: the OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
    environment variable; off when unset). Calling it again replaces both settings.
    Raises ImportError when opentelemetry-api is not installed (the ``otel`` extra).
    """
    global active
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError(
            "llmbridge.instrument() needs the OpenTelemetry API: "
            "pip install 'llmbridge[otel]' (or pip install opentelemetry-api)"
        ) from None
    from . import __version__

    if capture_content is None:
        capture_content = capture_from_env(os.environ.get(ENV_CAPTURE))
    tracer = trace.get_tracer("llmbridge", __version__, tracer_provider=tracer_provider)
    active = _Tracing(tracer, bool(capture_content), trace)


def uninstrument() -> None:
    """Stop tracing (calls already started keep their spans). Safe to call when off."""
    global active
    active = None


def is_instrumented() -> bool:
    """True while instrument() is in effect."""
    return active is not None


def instrument_from_env() -> None:
    """At import: LLMBRIDGE_OTEL=1 turns tracing on with the defaults. Without
    opentelemetry-api installed that is a warning, never an import failure."""
    if os.environ.get(ENV_ENABLE, "").strip().lower() not in _TRUE:
        return
    try:
        instrument()
    except Exception as exc:  # noqa: BLE001 - importing llmbridge must not fail for this
        _log.warning("%s is set, but tracing stays off: %s", ENV_ENABLE, exc)
