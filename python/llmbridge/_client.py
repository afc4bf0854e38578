"""The drop-in clients: VLLMClient, OllamaClient, OpenAICompatibleClient.

Each client owns a native engine (one I/O thread running libcurl) that does the HTTP
work, the retries and the JSON repair without the GIL. Finished calls reach asyncio
through one eventfd per event loop: the loop's reader resolves every ready future in
one batch, so the I/O thread never takes the GIL.
"""

from __future__ import annotations

import asyncio
import atexit
import copy
import itertools
import json
import logging
import operator
import os
import threading
import time
import weakref
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Optional, cast

from . import _native, _tracing
from ._batch import BatchMixin
from ._health import HealthReport, log_report
from ._replicas import ReplicaStats, log_replica_events
from ._generate import GenerationMixin
from .config import OllamaConfig, OpenAIConfig, VLLMConfig, _ProviderConfig
from .errors import LLMBridgeError

if TYPE_CHECKING:  # pragma: no cover
    from ._native import ChatResult

__all__ = [
    "ExtractionAttempt",
    "OllamaClient",
    "OpenAICompatibleClient",
    "VLLMClient",
]


class ExtractionAttempt:
    """The outcome of one logical call (after every retry). Never raised: problems are values.

    ``error`` is None on success, else one of the contract strings: ``timeout``,
    ``http_{code}``, ``connection_error: ...``, ``empty_model_response``,
    ``invalid_json: ...``, ``schema_mismatch: ...``, ``cancelled``.

    ``schema_errors`` lists how the data broke the call's JSON schema, as
    ``(JSON pointer, message)`` pairs (at most 10; the pointer ``""`` is the whole
    answer); it is empty unless ``error`` is ``schema_mismatch: ...``, in which case
    ``data`` and ``raw_response`` still hold the answer (docs/schema-validation.md).
    """

    _FIELDS: ClassVar[tuple[str, ...]] = (
        "success",
        "data",
        "raw_response",
        "error",
        "retryable",
        "status_code",
        "attempts",
        "latency_ms",
        "provider",
        "model",
        "finish_reason",
        "truncated",
        "repaired",
        "prompt_tokens",
        "completion_tokens",
        "request_id",
        "auth_refused",
        "schema_errors",
    )
    __slots__ = (*_FIELDS, "tries")

    success: bool
    data: Any
    raw_response: str
    error: Optional[str]
    retryable: bool
    status_code: Optional[int]
    attempts: int
    latency_ms: float
    provider: str
    model: str
    finish_reason: Optional[str]
    truncated: bool
    repaired: bool
    prompt_tokens: Optional[int]
    completion_tokens: Optional[int]
    request_id: Optional[str]
    auth_refused: bool
    schema_errors: list[tuple[str, str]]
    #: Every HTTP try (``TryRecord``: attempt, status_code, error, replica, start_ms,
    #: elapsed_ms), in order. Not part of ``to_dict()``, whose keys are the contract's.
    tries: list[_native.TryRecord]

    def __init__(
        self,
        success: bool = False,
        data: Any = None,
        raw_response: str = "",
        error: Optional[str] = None,
        retryable: bool = False,
        status_code: Optional[int] = None,
        attempts: int = 0,
        latency_ms: float = 0.0,
        provider: str = "",
        model: str = "",
        finish_reason: Optional[str] = None,
        truncated: bool = False,
        repaired: bool = False,
        prompt_tokens: Optional[int] = None,
        completion_tokens: Optional[int] = None,
        request_id: Optional[str] = None,
        auth_refused: bool = False,
        schema_errors: Optional[list[tuple[str, str]]] = None,
        tries: Optional[list[_native.TryRecord]] = None,
    ) -> None:
        # Plain slot stores: this runs once per call, on the event loop's thread.
        self.success = success
        self.data = data
        self.raw_response = raw_response
        self.error = error
        self.retryable = retryable
        self.status_code = status_code
        self.attempts = attempts
        self.latency_ms = latency_ms
        self.provider = provider
        self.model = model
        self.finish_reason = finish_reason
        self.truncated = truncated
        self.repaired = repaired
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.request_id = request_id
        self.auth_refused = auth_refused
        self.schema_errors = [] if schema_errors is None else schema_errors
        self.tries = [] if tries is None else tries

    @classmethod
    def _from_native(cls, result: ChatResult) -> ExtractionAttempt:
        """From the core's typed result (a ChatResult), field by field by name."""
        attempt = cls(*_attempt_fields(result))
        attempt.tries = result.tries
        return attempt

    @property
    def ok(self) -> bool:
        """Alias of ``success``."""
        return self.success

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (JSON-serialisable when ``data`` is)."""
        return {name: getattr(self, name) for name in self._FIELDS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExtractionAttempt):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ("success", "error", "status_code", "attempts", "provider", "model",
                 "finish_reason", "truncated", "repaired")
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"ExtractionAttempt({inner}, latency_ms={self.latency_ms:.1f})"


_attempt_fields = operator.attrgetter(*ExtractionAttempt._FIELDS)


# ---- asyncio bridge: one completion queue (eventfd) per event loop ----


class _LoopBridge:
    __slots__ = ("queue", "pending", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.queue = _native.CompletionQueue()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        loop.add_reader(self.queue.fileno(), self._ready)

    def _ready(self) -> None:
        # Every drained result completes its future, whatever happens to the others: the
        # native drain turns a result it cannot convert into a failed attempt, and a
        # failure here becomes that one future's exception.
        # A payload is a typed result (the awaiting call converts it to what it
        # returns), or None: a stream has events waiting in its own channel.
        for token, payload in self.queue.drain():
            fut = self.pending.pop(token, None)
            if fut is None or fut.done():
                continue
            fut.set_result(payload)


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBridge] = (
    weakref.WeakKeyDictionary()
)
_tokens = itertools.count(1)
_live_clients: weakref.WeakSet[_BaseClient] = weakref.WeakSet()


def _bridge(loop: asyncio.AbstractEventLoop) -> _LoopBridge:
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    return bridge


class _Closed:
    """What close() returns: already done, awaitable, and harmless when not awaited."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


# Workers pass the same schema dict on every call: its JSON text is cached, keyed by the
# object, and reused only while the dict still equals the copy taken when it was
# serialised (so a schema mutated in place is serialised again). Comparing costs a
# fraction of json.dumps.
_SCHEMA_CACHE_SIZE = 64
_schema_cache: dict[int, tuple[Mapping[str, Any], Any, str]] = {}


def _to_json(value: Any, name: str) -> str:
    """JSON text of a caller's value; errors name the caller's argument, never quote it."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as e:  # NaN / Infinity, or a circular reference
        raise ValueError(f"{name} is not valid JSON: {e}") from None
    except TypeError as e:  # an object json cannot serialise
        raise TypeError(f"{name} is not JSON-serialisable: {e}") from None


def _schema_text(schema: Mapping[str, Any]) -> str:
    hit = _schema_cache.get(id(schema))
    if hit is not None and hit[0] is schema and hit[1] == schema:
        return hit[2]
    text = _to_json(schema, "json_schema")
    if len(_schema_cache) >= _SCHEMA_CACHE_SIZE:
        _schema_cache.clear()
    # The entry holds the schema itself, so its id cannot be reused while cached.
    _schema_cache[id(schema)] = (schema, copy.deepcopy(schema), text)
    return text


def _call_args(
    prompts: Mapping[str, Any],
    json_schema: Optional[Mapping[str, Any]],
    document_text: Optional[str],
) -> tuple[str, str, str, str, str, str]:
    """call_llm's arguments as the native submit takes them. Type and shape problems are
    TypeError / ValueError naming the argument; the native side names a str argument
    that cannot be encoded as UTF-8 (a lone surrogate)."""
    if not isinstance(prompts, Mapping):
        raise TypeError(f"prompts must be a mapping with 'system' and 'user', got {type(prompts).__name__}")
    messages = prompts.get("messages")
    if messages is not None:
        if not isinstance(messages, (list, tuple)):
            raise TypeError("prompts['messages'] must be a list of OpenAI-style messages")
        if not messages:
            raise ValueError("prompts['messages'] is empty: give at least one message")
        messages_json = _to_json(list(cast("Sequence[Any]", messages)), "prompts['messages']")
        system = user = ""
    else:
        messages_json = ""
        given_system = prompts.get("system")
        given_user = prompts.get("user")
        if given_user is None:
            keys = ", ".join(repr(k)[:40] for k in list(prompts)[:5]) or "none"
            raise ValueError(
                "prompts must hold 'user' (the user prompt, usually with 'system'), or "
                f"'messages'; got keys: {keys}"
            )
        if given_system is None:
            given_system = ""
        if not isinstance(given_system, str) or not isinstance(given_user, str):
            raise TypeError("prompts['system'] and prompts['user'] must be str")
        system, user = given_system, given_user
    if json_schema is None:
        schema_json = ""
    elif isinstance(json_schema, Mapping):
        schema_json = _schema_text(json_schema)
    else:
        raise TypeError(f"json_schema must be a dict (JSON Schema) or None, got {type(json_schema).__name__}")
    if document_text is None:
        document_text = ""
    elif not isinstance(document_text, str):
        raise TypeError(f"document_text must be str, got {type(document_text).__name__}")
    return system, user, messages_json, schema_json, document_text, "extraction"


_MODEL_UNCHECKED = 0
_MODEL_READY = 1


class _BaseClient(GenerationMixin, BatchMixin):
    provider: ClassVar[str] = ""
    _config_type: ClassVar[type[_ProviderConfig]] = _ProviderConfig
    #: Seconds a health() result is reused; set per client (``client.health_ttl = 30``).
    health_ttl: float = 5.0
    #: Answers slower than this (seconds) make health() "degraded".
    health_slow_threshold: float = 2.0
    #: With an empty model, use the first model the server lists (looked up once, on the
    #: first call). False: send requests without a model (vLLM then picks its own).
    auto_pick_model: bool = True
    # _MODEL_READY once the model is known; until then call_llm checks, once, whether it
    # must pick one. A class default, so __init__ and the hot path stay as they were.
    _model_state: int = _MODEL_UNCHECKED
    _health_cache: Optional[tuple[float, HealthReport]] = None
    # True when base_url lists several replicas: only then are routing events looked for.
    _replicated: bool = False

    def __init__(
        self,
        config: Optional[_ProviderConfig] = None,
        /,
        *,
        max_connections: int = 64,
        ca_file: Optional[str] = None,
        verify_tls: bool = True,
        max_response_bytes: int = 64 << 20,
        **fields: Any,
    ) -> None:
        if config is None:
            config = self._config_type(**fields)
        else:
            if not isinstance(config, _ProviderConfig):
                raise TypeError(
                    f"{type(self).__name__} takes a {self._config_type.__name__}, "
                    f"got {type(config).__name__}"
                )
            if fields:
                config = config.replace(**fields)
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self.config = config
        self._native = _native.NativeClient(
            self.provider, config, max_connections, ca_file or "", verify_tls, max_response_bytes
        )
        self._replicated = self._native.replica_count > 1
        _live_clients.add(self)

    # ---- replicas (several base URLs) ----

    def replicas(self) -> list[ReplicaStats]:
        """Each replica's URL, health and counters, in ``base_url`` order (one entry for a
        single URL)."""
        self._note_replica_events()
        return [ReplicaStats._from_native(r) for r in self._native.replicas()]

    def stats(self) -> _native.StatsSnapshot:
        """This client's call counters and latency quantiles, kept in the C++ core.

        Every logical call (``call_llm``, ``chat``, ``generate``, ``complete``, ``embed``,
        a stream) counts once when it completes: ``calls``, ``successes``, ``errors`` by
        kind (``{"http_500": 2}``), ``retries`` (HTTP tries beyond the first),
        ``prompt_tokens`` / ``completion_tokens`` (where the server reported them),
        ``in_flight`` now, and ``latency_p50_ms`` / ``latency_p95_ms`` /
        ``latency_p99_ms`` from a log-bucket histogram (within ~5 %). Thread-safe and
        cheap; see docs/observability.md.
        """
        return self._native.stats()

    def _note_schema_warnings(self) -> None:
        # The core notes each schema problem once per schema text (a schema it cannot
        # compile, keywords it cannot check); they are logged here, on the caller's thread.
        log = logging.getLogger(f"llmbridge.{self.provider}")
        for warning in self._native.drain_schema_warnings():
            log.warning("%s: %s", self.provider, warning)

    def _note_replica_events(self) -> None:
        # The core queues ejections and re-admissions on its I/O thread; they are
        # logged here, on the caller's thread.
        if self._replicated and self._native.pending_replica_events:
            log_replica_events(self.provider, self._native.drain_replica_events())

    @property
    def model(self) -> str:
        """The model calls use: the configured one, or the one picked from the server's
        list when none was configured (after the first call)."""
        return self._native.current_model

    # ---- model auto-pick (an empty model: use the first one the server lists) ----

    def _pick_model(self) -> None:
        """Blocking; runs at most once per client, only when the model is empty."""
        lock = self.__dict__.setdefault("_pick_lock", threading.Lock())
        with lock:
            if self._model_state == _MODEL_READY:
                return
            if self.auto_pick_model and not self._native.current_model:
                log = logging.getLogger(f"llmbridge.{self.provider}")
                timeout = min(float(self.config.timeout), 10.0)
                checked = self._native.check_health(timeout)
                models, reason = checked.models, checked.reason
                if models:
                    self._native.set_model(models[0])
                    self._note_context_limit()
                    log.info("%s: no model configured; using %r, the first model the server lists",
                             self.provider, models[0])
                else:
                    log.warning("%s: no model configured and the server lists none (%s); "
                                "sending requests without a model", self.provider,
                                reason or "empty list")
            self._model_state = _MODEL_READY

    async def _pick_model_async(self) -> None:
        if self.auto_pick_model and not self._native.current_model:
            await asyncio.get_running_loop().run_in_executor(None, self._pick_model)
        else:
            self._model_state = _MODEL_READY

    _context_logged: int = 0

    def _note_context_limit(self) -> None:
        """INFO, once per learnt limit, when max_tokens will be fitted to the context."""
        limit = self._native.context_limit
        if limit and limit != self._context_logged and self.config.max_tokens >= limit:
            self._context_logged = limit
            logging.getLogger(f"llmbridge.{self.provider}").info(
                "%s: model %r has a context of %d tokens; max_tokens %d is reduced per call "
                "to what the prompt leaves", self.provider, self._native.current_model, limit,
                self.config.max_tokens)

    # ---- health ----

    def _cached_health(self, force: bool) -> Optional[HealthReport]:
        cached = self._health_cache
        if force or cached is None or time.monotonic() - cached[0] >= self.health_ttl:
            return None
        return cached[1]

    def _fresh_health(self, timeout: Optional[float]) -> HealthReport:
        if timeout is None:
            timeout = min(float(self.config.timeout), 10.0)
        fields = self._native.check_health(float(timeout), self.health_slow_threshold * 1000.0)
        report = HealthReport._from_native(fields, self.provider, self.config._base_url_text())
        self._note_context_limit()
        self._note_replica_events()
        previous = self._health_cache
        if previous is None or previous[1].status != report.status:
            log_report(report)  # logged when the status changes, not on every poll
        self._health_cache = (time.monotonic(), report)
        return report

    async def health(self, *, force: bool = False, timeout: Optional[float] = None) -> HealthReport:
        """The server's health for this client's model (GET /v1/models or /api/tags through
        the client's own connections). Cached for ``health_ttl`` seconds; ``force=True``
        checks now. Never raises for network problems: they make it "unhealthy"."""
        cached = self._cached_health(force)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._fresh_health, timeout)

    def health_sync(self, *, force: bool = False, timeout: Optional[float] = None) -> HealthReport:
        """Blocking twin of :meth:`health`."""
        cached = self._cached_health(force)
        if cached is not None:
            return cached
        return self._fresh_health(timeout)

    def close_when_idle(self) -> None:
        """Close as soon as no call is in flight (now, when none is). Calls in flight
        finish normally; used by ClientHolder when it switches clients."""
        self._native.close_when_idle()

    @property
    def closed(self) -> bool:
        return self._native.closed

    async def call_llm(
        self,
        prompts: Mapping[str, Any],
        json_schema: Optional[Mapping[str, Any]] = None,
        document_text: str = "",
    ) -> ExtractionAttempt:
        """Send one extraction request; retries happen inside. Never raises for
        transport or model problems: they come back as ``ExtractionAttempt.error``."""
        args = _call_args(prompts, json_schema, document_text)
        if self._native.closed:
            raise LLMBridgeError(f"{type(self).__name__} is closed")
        if self._model_state != _MODEL_READY:
            await self._pick_model_async()
        tracing = _tracing.active
        if tracing is not None:
            return await tracing.call_llm(self, args)
        loop = asyncio.get_running_loop()
        bridge = _bridge(loop)
        token = next(_tokens)
        fut: asyncio.Future[Any] = loop.create_future()
        bridge.pending[token] = fut
        try:
            call_id = self._native.submit(bridge.queue, token, *args)
        except BaseException:
            bridge.pending.pop(token, None)
            raise
        if self._native.pending_schema_warnings:
            self._note_schema_warnings()
        try:
            result = await fut
            if self._replicated:
                self._note_replica_events()
            return ExtractionAttempt._from_native(result)
        except asyncio.CancelledError:
            bridge.pending.pop(token, None)
            self._native.cancel(call_id)
            raise

    def call_llm_sync(
        self,
        prompts: Mapping[str, Any],
        json_schema: Optional[Mapping[str, Any]] = None,
        document_text: str = "",
    ) -> ExtractionAttempt:
        """Blocking twin of :meth:`call_llm`; releases the GIL while it waits."""
        args = _call_args(prompts, json_schema, document_text)
        if self._native.closed:
            raise LLMBridgeError(f"{type(self).__name__} is closed")
        if self._model_state != _MODEL_READY:
            if self._native.current_model or not self.auto_pick_model:
                self._model_state = _MODEL_READY
            else:
                self._pick_model()
        tracing = _tracing.active
        if tracing is not None:
            return tracing.call_llm_sync(self, args)
        result = self._native.call_sync(*args)
        if self._native.pending_schema_warnings:
            self._note_schema_warnings()
        if self._replicated:
            self._note_replica_events()
        return ExtractionAttempt._from_native(result)

    def close(self) -> _Closed:
        """Release the connections. Calls in flight complete with error 'cancelled'.

        Works awaited (``await client.close()``) and not (``client.close()``).
        """
        self._native.close()
        return _Closed()

    async def __aenter__(self) -> _BaseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __enter__(self) -> _BaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        url = _native.display_url(self.config._base_url_text())
        return (f"{type(self).__name__}(base_url={url!r}, "
                f"model={self.config.model!r}, closed={self.closed})")


class OpenAICompatibleClient(_BaseClient):
    """Any OpenAI-compatible server: OpenAI, OpenRouter, Together, LiteLLM, vLLM."""

    provider = "openai"
    _config_type: ClassVar[type[_ProviderConfig]] = OpenAIConfig


class VLLMClient(OpenAICompatibleClient):
    """A vLLM server through its OpenAI-compatible /v1/chat/completions."""

    provider = "vllm"
    _config_type: ClassVar[type[_ProviderConfig]] = VLLMConfig


class OllamaClient(_BaseClient):
    """An Ollama server through its native /api/chat."""

    provider = "ollama"
    _config_type: ClassVar[type[_ProviderConfig]] = OllamaConfig


def _close_all() -> None:
    for client in list(_live_clients):
        client._native.close()


def _after_fork_in_child() -> None:
    # The parent's engine threads do not exist here; its sockets belong to the parent.
    for client in list(_live_clients):
        client._native.abandon_after_fork()
    _bridges.clear()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
