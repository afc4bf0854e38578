"""A real vLLM (CPU build) for the real-server tests: the cached venv, the tiny model,
the servers and their pytest fixtures.

The venv comes from `bash scripts/real_servers/vllm_cpu.sh` (outside the checkout, under
`real_common.cache_dir()`); the test interpreter never imports vLLM or torch. The model
is written at test time by `real_vllm_model.py`, run with the venv's python. vLLM takes
about a minute and ~3 GB to start on CPU, so the session-scoped fixtures `vllm_server`
and `vllm_server_auth` (`--api-key`) start both servers together, in parallel, the first
time either is asked for, and a test session pays one start-up.

Registered as a plugin by `conftest.py`; importing it is cheap.
"""

from __future__ import annotations

import contextlib
import glob
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from real_common import RunningServer, cache_dir, free_port, run_server, skip_real_servers

VLLM_VERSION = "0.32.0"
SERVED_MODEL = "tiny"
MAX_MODEL_LEN = 8192
API_KEY = "sk-vllm-test"
READY_TIMEOUT = 300.0  # seconds; ~60 s on two idle cores, CI's are busy
INSTALL_HINT = "bash scripts/real_servers/vllm_cpu.sh"
MODEL_SCRIPT = Path(__file__).with_name("real_vllm_model.py")
_MARKER = ".llmbridge-ready"  # written last by the install script

# Offline, quiet, small: no hub, no usage report, a 1 GiB KV cache, OpenMP threads left
# unpinned (the CI machine is shared), two threads for two cores.
SERVER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "OMP_NUM_THREADS": "2",
}


def venv_dir() -> Path:
    return cache_dir() / f"vllm-cpu-{VLLM_VERSION}"


def vllm_python() -> Path | None:
    """The venv's python, or None when the install script has not finished there."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if (venv / _MARKER).is_file() and python.exists():
        return python
    return None


def write_tiny_model(out_dir: Path, python: Path | None = None) -> Path:
    """Write the tiny Llama (HF format) into `out_dir` with the venv's python."""
    python = python or vllm_python()
    if python is None:
        raise RuntimeError(f"no vLLM venv at {venv_dir()}: run `{INSTALL_HINT}`")
    result = subprocess.run(
        [str(python), str(MODEL_SCRIPT), str(out_dir)],
        capture_output=True, text=True, env={**os.environ, **SERVER_ENV}, timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"writing the tiny model failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return out_dir


def _preloads(venv: Path) -> list[str]:
    """tcmalloc (Debian's libtcmalloc-minimal4) and the venv's Intel OpenMP, as vLLM's
    CPU docs recommend: both are faster than glibc's malloc and GNU OpenMP there."""
    found = sorted(glob.glob("/usr/lib/*/libtcmalloc_minimal.so.4")
                   + glob.glob("/usr/lib/libtcmalloc_minimal.so.4"))
    libs = found[:1]
    iomp = venv / "lib" / "libiomp5.so"
    if iomp.exists():
        libs.append(str(iomp))
    return libs


def server_env(venv: Path) -> dict[str, str]:
    env = dict(SERVER_ENV)
    preload = [p for p in os.environ.get("LD_PRELOAD", "").split(":") if p] + _preloads(venv)
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    return env


# Tool calling on the plain server: vLLM refuses every tool_choice but "none" without a
# --tool-call-parser (400). "pythonic" is a parser that needs no special tokens in the
# tiny model's vocabulary (hermes, llama3_json and mistral refuse to start without
# theirs); with it, tool_choice "required" or a named function is constrained by a
# grammar and answered with real tool calls, and "auto" stays text (the tiny model never
# writes a pythonic call). Only requests with `tools` are affected. The auth server keeps
# vLLM's default, so the refusal is tested too.
TOOL_ARGS = ("--enable-auto-tool-choice", "--tool-call-parser", "pythonic")


def vllm_argv(venv: Path, model_dir: Path, port: int, api_key: str | None,
              extra_args: tuple[str, ...] = ()) -> list[str]:
    argv = [
        str(venv / "bin" / "vllm"), "serve", str(model_dir),
        "--served-model-name", SERVED_MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32",
        "--max-model-len", str(MAX_MODEL_LEN),
        "--enforce-eager",
    ]
    if api_key:
        argv += ["--api-key", api_key]
    return argv + list(extra_args)


@contextlib.contextmanager
def start_vllm_server(
    model_dir: Path, tmp_dir: Path, *, api_key: str | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    """`vllm serve model_dir` on a free port, ready on /health; stopped on exit."""
    python = vllm_python()
    if python is None:
        raise RuntimeError(f"no vLLM venv at {venv_dir()}: run `{INSTALL_HINT}`")
    venv = venv_dir()
    port = free_port()
    name = "vllm-auth" if api_key else "vllm"
    with run_server(
        "vllm", vllm_argv(venv, model_dir, port, api_key, extra_args),
        port=port, model=SERVED_MODEL, max_model_len=MAX_MODEL_LEN, api_key=api_key,
        log_path=tmp_dir / f"{name}.log", ready_path="/health",
        ready_timeout=READY_TIMEOUT, env=server_env(venv),
    ) as server:
        server.extra["args"] = list(extra_args)
        yield server


# name: (API key, extra arguments)
_VARIANTS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "plain": (None, TOOL_ARGS),
    "auth": (API_KEY, ()),
}


@contextlib.contextmanager
def start_vllm_servers(
    model_dir: Path, tmp_dir: Path
) -> Iterator[dict[str, RunningServer | BaseException]]:
    """Start "plain" (no key) and "auth" (`--api-key API_KEY`) in parallel, so the pair
    costs one start-up; yield {name: server, or the error that kept it from starting}."""
    managers = {name: start_vllm_server(model_dir, tmp_dir, api_key=key, extra_args=args)
                for name, (key, args) in _VARIANTS.items()}
    results: dict[str, RunningServer | BaseException] = {}
    with contextlib.ExitStack() as stack:
        # Each start blocks until its server is ready (or fails): one thread each.
        pool = ThreadPoolExecutor(len(managers), thread_name_prefix="vllm-start")
        futures = {name: pool.submit(cm.__enter__) for name, cm in managers.items()}
        pool.shutdown(wait=False)
        try:
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except Exception as exc:  # noqa: BLE001 - reported by whoever needs it
                    results[name] = exc
                else:
                    stack.push(managers[name])  # its __exit__ stops the server
        except BaseException:
            # Interrupted (Ctrl-C) while waiting: let the other start finish, so that the
            # stack stops it too instead of leaving a 3 GB server running.
            for name, future in futures.items():
                if name not in results and future.exception() is None:
                    stack.push(managers[name])
            raise
        yield results


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def _vllm_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, RunningServer | BaseException]]:
    """Both vLLM servers, started at the first test that needs either."""
    if skip_real_servers():
        pytest.skip("LLMBRIDGE_SKIP_REAL_SERVERS is set")
    python = vllm_python()
    if python is None:
        pytest.fail(f"the vLLM venv is missing ({venv_dir()}): run `{INSTALL_HINT}` first",
                    pytrace=False)
    tmp_dir = tmp_path_factory.mktemp("vllm")
    started = time.monotonic()
    model_dir = write_tiny_model(tmp_dir / "tiny-llama", python)
    wrote = time.monotonic() - started
    with start_vllm_servers(model_dir, tmp_dir) as servers:
        ready = ", ".join(f"{name} ready in {s.started_in_s:.0f} s"
                          for name, s in servers.items() if isinstance(s, RunningServer))
        sys.stderr.write(f"[real_vllm] model written in {wrote:.1f} s; {ready or 'no server up'}\n")
        yield servers


def _server(servers: dict[str, RunningServer | BaseException], name: str) -> RunningServer:
    server = servers[name]
    if isinstance(server, BaseException):
        pytest.fail(f"vLLM ({name}) did not start: {server}", pytrace=False)
    return server


@pytest.fixture(scope="session")
def vllm_server(_vllm_servers: dict[str, RunningServer | BaseException]) -> RunningServer:
    """A real vLLM serving the tiny model as "tiny", max_model_len 8192, no API key,
    tool calling on (`TOOL_ARGS`)."""
    return _server(_vllm_servers, "plain")


@pytest.fixture(scope="session")
def vllm_server_auth(_vllm_servers: dict[str, RunningServer | BaseException]) -> RunningServer:
    """The same with `--api-key sk-vllm-test` (`server.api_key`), without tool calling
    (vLLM's default: requests with a tool_choice other than "none" get 400)."""
    return _server(_vllm_servers, "auth")
