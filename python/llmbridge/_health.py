"""Health checks: is the server up, does it serve the model, how fast did it answer.

The check itself (GET /v1/models or /api/tags, then healthy / degraded / unhealthy) is
the C++ core's ``llm::check_health``; it blocks with the GIL released, so the async
functions run it in the loop's default executor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from . import _native

if TYPE_CHECKING:  # pragma: no cover
    from ._client import _BaseClient
    from ._native import NativeHealth

__all__ = [
    "HealthReport",
    "ReplicaHealth",
    "check_ollama_health",
    "check_ollama_health_sync",
    "check_vllm_health",
    "check_vllm_health_sync",
    "health",
    "health_sync",
]

DEFAULT_SLOW_THRESHOLD = 2.0  # seconds; slower answers are "degraded"


@dataclass(frozen=True)
class ReplicaHealth:
    """One replica's part of a health check of several base URLs."""

    url: str
    status: str
    latency_ms: float = 0.0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "healthy"


@dataclass(frozen=True)
class HealthReport:
    """One health check's outcome.

    ``status`` is ``"healthy"`` (reachable, model served), ``"degraded"`` (reachable but
    the model is missing, nothing is listed, or the answer was slower than the
    threshold) or ``"unhealthy"`` (timeout, connection error, HTTP error, not a model
    list). ``reason`` says why when not healthy. ``model`` is the model calls use: the
    configured one, or the first listed when none is configured.
    """

    status: str
    models: tuple[str, ...] = ()
    latency_ms: float = 0.0
    reason: str = ""
    model: str = ""
    provider: str = ""
    base_url: str = ""
    #: The model's context length when the server lists it (vLLM's ``max_model_len``).
    max_model_len: Optional[int] = None
    #: With several base URLs: each replica's result (the report is healthy when any
    #: replica is). Empty for one URL.
    replicas: tuple[ReplicaHealth, ...] = ()

    def __repr__(self) -> str:
        extra = f", replicas={self.replicas!r}" if self.replicas else ""
        return (f"HealthReport(status={self.status!r}, models={self.models!r}, "
                f"latency_ms={self.latency_ms!r}, reason={self.reason!r}, model={self.model!r}, "
                f"provider={self.provider!r}, base_url={display_url(self.base_url)!r}, "
                f"max_model_len={self.max_model_len!r}{extra})")

    @property
    def ok(self) -> bool:
        """True when healthy."""
        return self.status == "healthy"

    @property
    def reachable(self) -> bool:
        """True unless unhealthy: the server answered with a model list."""
        return self.status != "unhealthy"

    @classmethod
    def _from_native(cls, native: NativeHealth, provider: str, base_url: str) -> HealthReport:
        # The report keeps the URL as logs show it: no user:password@.
        replicas = tuple(ReplicaHealth(url=r.url, status=r.status, latency_ms=r.latency_ms,
                                       reason=r.reason) for r in native.replicas)
        return cls(native.status, tuple(native.models), native.latency_ms, native.reason, native.model,
                   provider, display_url(base_url), native.max_model_len or None, replicas)


def display_url(url: str) -> str:
    """The URL as reprs and logs show it: credentials in it (user:pass@) are dropped."""
    return _native.display_url(url)


def log_report(report: HealthReport, logger: Optional[logging.Logger] = None) -> None:
    """INFO when healthy, WARNING with the reason otherwise; prefixed with the provider."""
    log = logger or logging.getLogger(f"llmbridge.{report.provider}")
    url = display_url(report.base_url)
    if report.status == "healthy":
        log.info("%s: healthy at %s (%d models)", report.provider, url, len(report.models))
    else:
        log.warning("%s: %s at %s: %s", report.provider, report.status, url, report.reason)


def _check(provider: str, base_url: Union[str, Sequence[str]], timeout: float, model: str,
           api_key: Optional[str], slow_threshold: float) -> HealthReport:
    if not isinstance(base_url, str):  # several replicas: each is checked
        base_url = ",".join(base_url)
    fields = _native.check_health(provider, base_url, model or "", api_key or "", float(timeout),
                                  float(slow_threshold) * 1000.0)
    report = HealthReport._from_native(fields, provider, base_url)
    log_report(report)
    return report


async def _check_async(provider: str, base_url: str, timeout: float, model: str,
                       api_key: Optional[str], slow_threshold: float) -> HealthReport:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, _check, provider, base_url, timeout, model, api_key, slow_threshold
    )


async def check_vllm_health(base_url: str, timeout: float = 10.0, *, model: str = "",
                            api_key: Optional[str] = None,
                            slow_threshold: float = DEFAULT_SLOW_THRESHOLD) -> bool:
    """True when the vLLM server at ``base_url`` answers ``GET /v1/models`` (degraded counts:
    it is reachable). Logs INFO ``vllm: healthy at {url} ({n} models)`` or a WARNING with
    the reason on logger ``llmbridge.vllm``. Never raises for network problems."""
    report = await _check_async("vllm", base_url, timeout, model, api_key, slow_threshold)
    return report.reachable


def check_vllm_health_sync(base_url: str, timeout: float = 10.0, *, model: str = "",
                           api_key: Optional[str] = None,
                           slow_threshold: float = DEFAULT_SLOW_THRESHOLD) -> bool:
    """Blocking twin of :func:`check_vllm_health` (releases the GIL while it waits)."""
    return _check("vllm", base_url, timeout, model, api_key, slow_threshold).reachable


async def check_ollama_health(base_url: str, timeout: float = 10.0, *, model: str = "",
                              api_key: Optional[str] = None,
                              slow_threshold: float = DEFAULT_SLOW_THRESHOLD) -> bool:
    """As :func:`check_vllm_health` for Ollama (``GET /api/tags``, logger ``llmbridge.ollama``)."""
    report = await _check_async("ollama", base_url, timeout, model, api_key, slow_threshold)
    return report.reachable


def check_ollama_health_sync(base_url: str, timeout: float = 10.0, *, model: str = "",
                             api_key: Optional[str] = None,
                             slow_threshold: float = DEFAULT_SLOW_THRESHOLD) -> bool:
    """Blocking twin of :func:`check_ollama_health`."""
    return _check("ollama", base_url, timeout, model, api_key, slow_threshold).reachable


async def health(client: _BaseClient, *, force: bool = False) -> HealthReport:
    """``await client.health(force=force)``: the client's HealthReport (cached for
    ``client.health_ttl`` seconds)."""
    return await client.health(force=force)


def health_sync(client: _BaseClient, *, force: bool = False) -> HealthReport:
    """``client.health_sync(force=force)``."""
    return client.health_sync(force=force)
