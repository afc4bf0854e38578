"""Several replicas behind one client: the typed stats of ``client.replicas()`` and the
log lines of ejections and re-admissions.

Routing and passive health live in the C++ core (``llm::ReplicaSet``). The core never
calls Python from its I/O thread: it queues its events, and the client logs them on the
caller's thread after a call completes (or when ``replicas()`` is read).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["ReplicaStats"]


@dataclass(frozen=True)
class ReplicaStats:
    """One replica of a client, as ``client.replicas()`` reports it.

    ``url`` is shown without ``user:password@``; ``healthy`` is False while the replica
    is ejected (it gets no calls until a probe of its models path answers 200);
    ``requests`` and ``errors`` count HTTP tries (a retry on another replica counts
    there); ``ewma_latency_ms`` averages answered tries (0.0 before the first).
    """

    url: str
    healthy: bool
    in_flight: int
    requests: int
    errors: int
    ewma_latency_ms: float
    ejections: int

    @classmethod
    def _from_native(cls, native: Any) -> ReplicaStats:
        return cls(url=native.url, healthy=native.healthy, in_flight=native.in_flight,
                   requests=native.requests, errors=native.errors,
                   ewma_latency_ms=native.ewma_latency_ms, ejections=native.ejections)


def log_replica_events(provider: str, events: list[Any]) -> None:
    """INFO per ejection and re-admission, on ``llmbridge.<provider>``."""
    log = logging.getLogger(f"llmbridge.{provider}")
    for e in events:
        if e.kind == "ejected":
            log.info("%s: replica %s ejected for %.0f s: %s", provider, e.url, e.ejected_for_s, e.reason)
        else:
            log.info("%s: replica %s re-admitted: %s", provider, e.url, e.reason)
