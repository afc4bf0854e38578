"""What the real-server fixtures share: the cache folder, ports, start-up and shut-down.

A real server (vLLM on CPU, llama.cpp's llama-server) runs as a child process in its own
process group, on 127.0.0.1 and a free port, with its output in a log file; it is
stopped (the whole group: vLLM runs several processes) whatever happens, and a server
that is not ready in time fails the test with the tail of its log.

`LLMBRIDGE_SKIP_REAL_SERVERS=1` skips the real-server tier for a quick local loop; CI
never sets it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SKIP_ENV = "LLMBRIDGE_SKIP_REAL_SERVERS"


def skip_real_servers() -> bool:
    """True when the environment asks to skip the real-server tier."""
    return os.environ.get(SKIP_ENV, "").strip() not in ("", "0")


def cache_dir() -> Path:
    """Where set-up scripts keep builds and venvs, outside the checkout
    (`LLMBRIDGE_CACHE`, default ~/.cache/llmbridge)."""
    return Path(os.environ.get("LLMBRIDGE_CACHE", Path.home() / ".cache" / "llmbridge"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """One real server, started by a fixture."""

    kind: str  # "vllm" or "llama"
    base_url: str  # http://127.0.0.1:PORT (no /v1)
    model: str  # the served model id
    max_model_len: int
    api_key: str | None
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in_s: float = 0.0  # from spawn to ready
    extra: dict[str, object] = field(default_factory=dict)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _ready(url: str, headers: dict[str, str]) -> bool:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def run_server(
    kind: str,
    argv: Sequence[str],
    *,
    port: int,
    model: str,
    max_model_len: int,
    api_key: str | None,
    log_path: Path,
    ready_path: str = "/health",
    ready_timeout: float = 300.0,
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Start `argv` in its own process group, wait until GET `ready_path` answers 2xx,
    yield it, and stop the whole group on exit (SIGTERM, then SIGKILL after 15 s)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, **(env or {})},
    )
    server = RunningServer(kind, f"http://127.0.0.1:{port}", model, max_model_len, api_key,
                           proc, log_path)
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        deadline = started + ready_timeout
        while not _ready(server.base_url + ready_path, headers):
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited with {proc.returncode} before it was "
                                   f"ready; log {log_path}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server not ready after {ready_timeout:.0f} s; "
                                   f"log {log_path}:\n{server.log_tail()}")
            time.sleep(0.2)
        server.started_in_s = time.monotonic() - started
        yield server
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after `grace` s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (vLLM's workers)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
