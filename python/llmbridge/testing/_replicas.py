"""Several mock servers as the replicas of one model, for routing and failover tests.

``MockReplicas(3)`` starts three `MockLLMServer` instances on 127.0.0.1; ``.urls`` is
what a client's ``base_url`` takes (a list). One replica can be stopped and started
again on the same port (its clients see a refused connection in between, as when a vLLM
pod restarts), or made slow (every answer waits ``delay`` seconds first).
"""

from __future__ import annotations

from typing import Any

from ._mock_server import MockLLMServer
from ._reply import Reply

__all__ = ["MockReplicas"]


class MockReplicas:
    """``n`` mock LLM servers; a context manager (sync and async) that stops them all."""

    def __init__(self, n: int = 3, **server_options: Any) -> None:
        if n < 1:
            raise ValueError(f"MockReplicas needs n >= 1, got {n}")
        #: The servers, in ``urls`` order. Script them like any MockLLMServer.
        self.servers: list[MockLLMServer] = [MockLLMServer(**server_options) for _ in range(n)]

    def start(self) -> MockReplicas:
        for server in self.servers:
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    @property
    def urls(self) -> list[str]:
        """Each replica's base URL; the ports stay the same across stop/restart."""
        return [s.url for s in self.servers]

    def stop_replica(self, i: int) -> None:
        """Stop replica ``i``: its port refuses connections until `restart_replica`."""
        server = self.servers[i]
        port = server.port
        server.stop()
        server._requested_port = port  # noqa: SLF001 - restart on the same port

    def restart_replica(self, i: int) -> None:
        """Start replica ``i`` again on the port it had."""
        server = self.servers[i]
        server._requested_port = server.port  # noqa: SLF001
        server.start()

    def make_slow(self, i: int, delay: float) -> None:
        """Every answer of replica ``i`` waits ``delay`` seconds first (0: fast again)."""
        self.servers[i].set_default(Reply(delay=delay))

    def request_counts(self) -> list[int]:
        """Requests each replica received (generation, models and probes alike)."""
        return [s.request_count for s in self.servers]

    def __enter__(self) -> MockReplicas:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> MockReplicas:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.stop)
