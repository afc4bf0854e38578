"""Fault soak: many calls through one VLLMClient while the server misbehaves on purpose.

    PYTHONPATH=<site> python3 bench/soak.py [--calls 100000] [--faults 0.10]
        [--concurrency 128] [--kinds all|k1,k2|all,-k] [--seed 1] [--timeout 1.0]
        [--max-retries 2] [--json] [--out FILE]

A MockLLMServer (llmbridge.testing) runs on 127.0.0.1 on an ephemeral port, in a child
process (this same file, ``--serve-child``), so that the figures taken from
/proc/self (RSS, open fds, threads) are the client's alone and the pure-Python server
gets its own interpreter. One VLLMClient makes ``--calls`` calls from ``--concurrency``
worker tasks. Before the run, a seeded plan gives every call a fault kind (or none) and,
for retryable kinds, a mode: ``persistent`` (every try fails) or ``transient`` (the
first try fails, the next ones succeed). The call's number, kind and mode travel in the
document text; the server's responder reads them and answers accordingly, so the
outcome every call must have is known in advance and checked field by field.

Invariants (the exit status is 1 when one fails, 3 when the run stalled outright):

- one ExtractionAttempt per call started: no exception, no call left hanging (each
  call is guarded by a deadline of 2 x the latency bound + 5 s; a call that misses it
  is cancelled and counted as stranded);
- every call's outcome is the expected one (zero mismatches per fault kind);
- the server saw exactly ``attempt.attempts`` requests for each call;
- the largest ``latency_ms`` stays within timeout x tries + the backoff waits (+ slack);
- no exception escaped into the event loop's exception handler;
- after close(): the process's open fds and threads are back to what they were before
  the client existed, the server holds no connection of ours, and RSS grew by less than
  ``--rss-limit-mb``.

The module is importable (tests_py/test_soak.py runs a small soak through `run_soak`).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import datetime
import faulthandler
import gc
import gzip
import json
import math
import os
import platform
import random
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

# ---- the fault kinds ---------------------------------------------------------------

#: Every fault kind, in report order.
ALL_KINDS: tuple[str, ...] = (
    "reset",          # the connection is closed with RST instead of an answer
    "truncated",      # full Content-Length announced, half the body sent, then close
    "malformed",      # a body that is not JSON (a completion cut mid-token)
    "http500",
    "http503",        # with Retry-After: 0
    "http429",
    "http400",        # not retryable
    "empty_choices",  # "choices": []
    "slow",           # the answer would come after the timeout
    "bad_utf8",       # invalid UTF-8 bytes inside the content string of the body
    "gzip",           # a gzip-compressed body without Content-Encoding
    "repairable",     # content the repairer must fix (fences, single quotes, prose, ...)
    "invalid_json",   # content with no JSON in it
)

#: Kinds where a retry can help; they get a persistent or a transient mode.
#: bad_utf8 is not a failure: the invalid bytes become U+FFFD and the call succeeds with
#: repaired=True on its first try.
RETRYABLE_KINDS = frozenset(ALL_KINDS) - {"http400", "repairable", "bad_utf8"}

MODES = ("none", "persistent", "transient")

MODEL = "soak-model"
PROMPTS = {"system": "Extract the call number as JSON.", "user": "Document:\n{document_text}"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"call": {"type": "integer"}},
    "required": ["call"],
}
_MARKER = re.compile(r"soak-call=(\d+) kind=(\w+) mode=(\w+)")

# Content the repairer must turn into {"call": N}; which one depends on N.
_REPAIRABLE = (
    "```json\n{{'call': {n}}}\n```",
    "{{'call': {n},}}",
    'Here is the JSON you asked for:\n```json\n{{"call": {n}}}\n```\nAnything else?',
    "{{call: {n}}}",
)
_NO_JSON = "I am sorry, I cannot help with that."
_BAD_BYTES = b"\xff\xfe\xc3("  # not UTF-8: two bytes never valid, then a broken pair


def document(call: int, kind: str, mode: str) -> str:
    return f"Ticket soak-call={call} kind={kind} mode={mode}. Please extract the call number."


# ---- the server side (runs in the child process) ----------------------------------


def _completion_body(call: int, content: str) -> bytes:
    return json.dumps({
        "id": f"chatcmpl-soak-{call}",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }).encode()


def fault_reply(kind: str, call: int, timeout: float) -> Any:
    """The mock server's answer for one try of a call hit by `kind`."""
    from llmbridge.testing import Reply

    ok = json.dumps({"call": call})
    if kind == "reset":
        return Reply(reset=True)
    if kind == "truncated":
        return Reply.text(ok, truncate_body=True)
    if kind == "malformed":
        return Reply(malformed=True)
    if kind == "http500":
        return Reply.error(500)
    if kind == "http503":
        return Reply.error(503, retry_after=0)
    if kind == "http429":
        return Reply.error(429)
    if kind == "http400":
        return Reply.error(400, "soak: bad request")
    if kind == "empty_choices":
        return Reply(empty_choices=True)
    if kind == "slow":
        return Reply.text(ok, delay=timeout + 1.0)
    if kind == "bad_utf8":
        body = _completion_body(call, f'{{"call": {call}, "note": "@@"}}')
        return Reply(raw_body=body.replace(b"@@", _BAD_BYTES))
    if kind == "gzip":
        return Reply(raw_body=gzip.compress(_completion_body(call, ok), mtime=0))
    if kind == "repairable":
        return Reply.text(_REPAIRABLE[call % len(_REPAIRABLE)].format(n=call))
    if kind == "invalid_json":
        return Reply.text(_NO_JSON)
    raise ValueError(f"unknown fault kind {kind!r}")


def _serve_child(calls: int, timeout: float) -> int:
    """The child process: a MockLLMServer whose responder follows the markers.

    Protocol on stdin/stdout: prints ``READY <port>``; each ``STATS`` line is answered
    with one JSON line; end of stdin stops the server and exits.
    """
    from llmbridge.testing import MockLLMServer, Reply

    counts = array.array("I", bytes(4 * calls))  # requests seen per call
    tally = {"requests": 0, "unmarked": 0}
    # Keep no request records: over 100,000 calls they would be hundreds of MB.
    server = MockLLMServer(models=[MODEL], max_recorded=0)

    def responder(request: Any) -> Any:
        tally["requests"] += 1
        m = _MARKER.search(request.prompt)
        if m is None:
            tally["unmarked"] += 1
            return Reply.error(400, "soak: no marker in the request")
        call, kind, mode = int(m[1]), m[2], m[3]
        if call < calls:
            counts[call] += 1
            tries = counts[call]
        else:
            tries = 1
        if kind == "none" or (mode == "transient" and tries > 1):
            return Reply.json({"call": call})
        return fault_reply(kind, call, timeout)

    server.responder = responder
    server.start()
    print(f"READY {server.port}", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "STATS":
                print(json.dumps({
                    "requests": tally["requests"],
                    "unmarked": tally["unmarked"],
                    "counts": counts.tolist(),
                    "open_connections": server.open_connections,
                    "connections_accepted": server.connections_accepted,
                    "requests_abandoned": server.requests_abandoned,
                    "errors": [repr(e) for e in server.errors],
                }), flush=True)
    finally:
        server.stop()
    return 0


class ServerProcess:
    """The child running the mock server (this file with --serve-child)."""

    def __init__(self, calls: int, timeout: float) -> None:
        import llmbridge

        env = dict(os.environ)
        site = os.path.dirname(os.path.dirname(os.path.abspath(llmbridge.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve-child",
             "--calls", str(calls), "--timeout", repr(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1,
        )
        line = self._readline(30.0)
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"mock server child did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return ""
        return self.proc.stdout.readline()

    def stats(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("STATS\n")
        self.proc.stdin.flush()
        line = self._readline(timeout)
        if not line:
            raise RuntimeError("mock server child did not answer STATS")
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- the plan and the expected outcomes --------------------------------------------


def parse_kinds(spec: str) -> tuple[str, ...]:
    """``all``, ``reset,http500``, or ``all,-bad_utf8,-gzip``; keeps ALL_KINDS order."""
    chosen: set[str] = set()
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        drop = item.startswith("-")
        name = item[1:] if drop else item
        names = set(ALL_KINDS) if name == "all" else {name}
        unknown = names - set(ALL_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind {sorted(unknown)[0]!r}; "
                             f"choose from: {', '.join(ALL_KINDS)}")
        chosen = chosen - names if drop else chosen | names
    return tuple(k for k in ALL_KINDS if k in chosen)


def make_plan(
    calls: int, faults: float, kinds: tuple[str, ...], seed: int
) -> tuple[bytearray, bytearray]:
    """Per call: the index of its kind (0: no fault, i: kinds[i-1]) and of its mode."""
    rng = random.Random(seed)
    kind_of = bytearray(calls)
    mode_of = bytearray(calls)
    if not kinds:
        return kind_of, mode_of
    for i in range(calls):
        if rng.random() < faults:
            k = rng.randrange(len(kinds))
            kind_of[i] = k + 1
            if kinds[k] in RETRYABLE_KINDS:
                mode_of[i] = 1 + rng.randrange(2)
            else:
                mode_of[i] = 1
    return kind_of, mode_of


def check_outcome(attempt: Any, call: int, kind: str, mode: str, tries: int) -> str | None:
    """None when `attempt` is what this call must return, else what is wrong."""
    problems: list[str] = []

    def want(name: str, expected: Any) -> None:
        actual = getattr(attempt, name)
        if actual != expected:
            problems.append(f"{name}={actual!r} (expected {expected!r})")

    if attempt.success != (attempt.error is None):
        problems.append(f"success={attempt.success!r} with error={attempt.error!r}")
    if kind == "none" or mode == "transient" or kind == "repairable":
        want("error", None)
        want("success", True)
        want("data", {"call": call})
        want("attempts", 2 if mode == "transient" else 1)
        want("repaired", kind == "repairable" and mode != "transient")
        return "; ".join(problems) or None

    # persistent faults: every try fails the same way
    error = attempt.error or ""
    if kind == "bad_utf8":
        # The invalid bytes become U+FFFD: a success, marked repaired, on the first try.
        want("error", None)
        want("success", True)
        want("repaired", True)
        want("attempts", 1)
        data = attempt.data
        if (not isinstance(data, dict) or data.get("call") != call
                or "\ufffd" not in str(data.get("note"))):
            problems.append(f"data={data!r} (expected call {call} with U+FFFD in note)")
        return "; ".join(problems) or None
    expected_error = {
        "reset": "connection_error: ",
        "truncated": "connection_error: ",
        "malformed": "invalid_json: ",
        "http500": "http_500",
        "http503": "http_503",
        "http429": "http_429",
        "http400": "http_400",
        "empty_choices": "empty_model_response",
        "slow": "timeout",
        "gzip": "invalid_json: ",
        "invalid_json": "invalid_json: ",
    }[kind]
    if expected_error.endswith(": "):
        if not error.startswith(expected_error) or len(error) == len(expected_error):
            problems.append(f"error={attempt.error!r} (expected {expected_error}...)")
    else:
        want("error", expected_error)
    want("success", False)
    want("data", None)
    want("retryable", kind != "http400")
    want("attempts", 1 if kind == "http400" else tries)
    if kind.startswith("http"):
        want("status_code", int(kind[4:]))
    return "; ".join(problems) or None


def error_bucket(error: str | None) -> tuple[str, str | None]:
    """("ok", None), ("http_500", None), ("connection_error", "<detail, digits as N>"), ..."""
    if error is None:
        return "ok", None
    head, sep, detail = error.partition(": ")
    if sep:
        return head, re.sub(r"\d+", "N", detail)
    return error, None


# ---- process figures --------------------------------------------------------------


@dataclass
class Snapshot:
    rss_mib: float
    fds: int
    threads: int
    fd_targets: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"rss_mib": round(self.rss_mib, 1), "fds": self.fds, "threads": self.threads}


def _fd_kind(target: str) -> str:
    # "socket:[123]" -> "socket", "anon_inode:[eventfd]" stays, a path stays.
    return re.sub(r":\[\d+\]$", "", target)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def snapshot(own_threads: int = 0) -> Snapshot:
    """RSS (resident now), open fds and threads of this process, from /proc/self;
    `own_threads` of the threads are the soak's (its watchdog) and are not counted."""
    fd_dir = "/proc/self/fd"
    entries = os.listdir(fd_dir)
    targets: collections.Counter[str] = collections.Counter()
    for name in entries:
        try:
            targets[_fd_kind(os.readlink(os.path.join(fd_dir, name)))] += 1
        except OSError:
            pass  # the descriptor listdir itself used, closed by now
    threads = len(os.listdir("/proc/self/task")) - own_threads
    return Snapshot(rss_mib(), sum(targets.values()), threads, dict(targets))


# ---- the run -----------------------------------------------------------------------


@dataclass
class SoakConfig:
    calls: int = 100_000
    faults: float = 0.10
    concurrency: int = 128
    kinds: tuple[str, ...] = ALL_KINDS
    seed: int = 1
    timeout: float = 1.0
    max_retries: int = 2
    retry_base_delay: float = 0.01
    retry_max_delay: float = 0.05
    max_connections: int = 0          # 0: as many as concurrency (no waiting for one)
    latency_slack: float = 1.0        # seconds allowed above the bound (scheduling)
    rss_limit_mb: float = 50.0
    exit_on_stall: bool = False       # os._exit(3) when no call finishes for a long time
    deadline: float = 0.0             # per-call guard in seconds; 0: 2 x bound + 5 s
    progress: Callable[[str], None] | None = None

    @property
    def tries(self) -> int:
        return self.max_retries + 1

    @property
    def latency_bound(self) -> float:
        """Seconds one call may take: every try times out, every backoff wait is full."""
        return self.tries * self.timeout + self.max_retries * self.retry_max_delay

    @property
    def call_deadline(self) -> float:
        """After this a call counts as stranded and is cancelled."""
        return self.deadline or 2 * self.latency_bound + 5.0


@dataclass
class SoakResult:
    config: SoakConfig
    started: int = 0
    returned: int = 0
    raised: int = 0
    stranded: int = 0
    loop_errors: int = 0
    wall_s: float = 0.0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    details: dict[str, collections.Counter[str]] = field(default_factory=dict)
    attempts_hist: collections.Counter[int] = field(default_factory=collections.Counter)
    # latency_ms per call, -1 for calls that returned nothing; allocated before the
    # baseline is taken so the soak's own bookkeeping does not count as RSS growth
    latency_ms: array.array = field(default_factory=lambda: array.array("d"))
    wall_max_ms: float = 0.0
    # "kind/mode" -> [calls, mismatches]
    outcomes: dict[str, list[int]] = field(default_factory=dict)
    mismatch_examples: list[str] = field(default_factory=list)
    stranded_by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    raised_examples: list[str] = field(default_factory=list)
    loop_error_examples: list[str] = field(default_factory=list)
    server_requests: int = 0
    server_count_mismatches: int = 0
    server_extra_requests: int = 0    # sum over calls of (requests seen - attempts)
    server_count_examples: list[str] = field(default_factory=list)
    server_count_by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    server_unmarked: int = 0
    server_errors: list[str] = field(default_factory=list)
    server_open_after_close: int = -1
    before: Snapshot | None = None
    after: Snapshot | None = None
    after_close: Snapshot | None = None
    rss_samples: list[tuple[int, float]] = field(default_factory=list)
    stalled: bool = False

    # -- derived figures --

    @property
    def calls_per_s(self) -> float:
        return self.returned / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        data = sorted(x for x in self.latency_ms if x >= 0)
        if not data:
            return 0.0
        return data[min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))]

    @property
    def latency_max(self) -> float:
        return max(self.latency_ms, default=0.0)

    @property
    def mismatches(self) -> int:
        return sum(m for _, m in self.outcomes.values())

    def invariants(self) -> list[tuple[str, bool, str]]:
        """(name, holds, figures) for every invariant."""
        c = self.config
        b, a = self.before, self.after_close
        bound_ms = (c.latency_bound + c.latency_slack) * 1000
        rss_growth = (a.rss_mib - b.rss_mib) if (a and b) else float("nan")
        checks = [
            ("one attempt returned per call",
             self.returned == self.started == c.calls and self.raised == 0 and self.stranded == 0,
             f"{self.started} started, {self.returned} returned, {self.raised} raised, "
             f"{self.stranded} stranded"),
            ("no run stall", not self.stalled, "stalled" if self.stalled else "no stall"),
            ("expected outcome for every call", self.mismatches == 0,
             f"{self.mismatches} mismatches"),
            ("server requests per call == attempt.attempts", self.server_count_mismatches == 0,
             f"{self.server_count_mismatches} calls differ"),
            ("every request carried its marker",
             self.server_unmarked == 0 and not self.server_errors,
             f"{self.server_unmarked} unmarked, {len(self.server_errors)} responder errors"),
            (f"max latency <= bound {c.latency_bound:.2f} s + slack {c.latency_slack:.2f} s",
             self.latency_max <= bound_ms, f"max {self.latency_max:.0f} ms"),
            ("no exception in event-loop callbacks", self.loop_errors == 0,
             f"{self.loop_errors} exceptions"),
        ]
        if a is not None and b is not None:
            checks += [
                ("fds back to baseline after close()", a.fds == b.fds, f"{b.fds} -> {a.fds}"),
                ("threads back to baseline after close()", a.threads == b.threads,
                 f"{b.threads} -> {a.threads}"),
                (f"RSS growth < {c.rss_limit_mb:g} MB", rss_growth < c.rss_limit_mb,
                 f"{rss_growth:+.1f} MiB"),
                ("server holds no connection after close()", self.server_open_after_close == 0,
                 f"{self.server_open_after_close} open"),
            ]
        else:
            checks.append(("process figures taken", False, "the run did not finish"))
        return checks

    @property
    def ok(self) -> bool:
        return all(holds for _, holds, _ in self.invariants())

    def fd_diff(self) -> dict[str, int]:
        if not (self.before and self.after_close):
            return {}
        keys = set(self.before.fd_targets) | set(self.after_close.fd_targets)
        diff = {k: self.after_close.fd_targets.get(k, 0) - self.before.fd_targets.get(k, 0)
                for k in keys}
        return {k: v for k, v in sorted(diff.items()) if v}


def _note(cfg: SoakConfig, message: str) -> None:
    if cfg.progress is not None:
        cfg.progress(message)


class _Watchdog(threading.Thread):
    """Ends the process (or marks the run) when no call finishes for `limit` seconds:
    the per-call deadline cannot fire if the event loop itself is blocked."""

    def __init__(self, limit: float, result: SoakResult, exit_on_stall: bool) -> None:
        super().__init__(name="soak-watchdog", daemon=True)
        self.limit = limit
        self.result = result
        self.exit_on_stall = exit_on_stall
        self.progress = 0
        self.done = threading.Event()

    def run(self) -> None:
        seen, since = -1, time.monotonic()
        while not self.done.wait(0.5):
            if self.progress != seen:
                seen, since = self.progress, time.monotonic()
            elif time.monotonic() - since > self.limit:
                self.result.stalled = True
                print(f"soak: no call finished for {self.limit:.0f} s; threads:",
                      file=sys.stderr, flush=True)
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                if self.exit_on_stall:
                    os._exit(3)
                return


async def _drive(cfg: SoakConfig, url: str, kind_of: bytearray, mode_of: bytearray,
                 result: SoakResult, attempts_of: bytearray, watchdog: _Watchdog) -> None:
    from llmbridge import VLLMClient

    loop = asyncio.get_running_loop()

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        result.loop_errors += 1
        if len(result.loop_error_examples) < 3:
            exc = context.get("exception")
            result.loop_error_examples.append(
                f"{context.get('message')}: {type(exc).__name__}: {exc}" if exc
                else str(context.get("message")))

    loop.set_exception_handler(on_loop_error)
    kinds = ("none",) + cfg.kinds
    client = VLLMClient(base_url=url + "/v1", model=MODEL, timeout=cfg.timeout,
                        max_retries=cfg.max_retries, retry_base_delay=cfg.retry_base_delay,
                        retry_max_delay=cfg.retry_max_delay,
                        max_connections=cfg.max_connections or cfg.concurrency)
    deadline = cfg.call_deadline
    tries = cfg.tries
    next_call = 0
    step = max(1, cfg.calls // 10)
    t_start = time.perf_counter()

    def record(call: int, kind: str, mode: str, attempt: Any, wall_ms: float) -> None:
        result.returned += 1
        bucket, detail = error_bucket(attempt.error)
        result.errors[bucket] += 1
        if detail is not None:
            result.details.setdefault(bucket, collections.Counter())[detail] += 1
        result.attempts_hist[attempt.attempts] += 1
        attempts_of[call] = min(attempt.attempts, 255)
        result.latency_ms[call] = attempt.latency_ms
        result.wall_max_ms = max(result.wall_max_ms, wall_ms)
        key = f"{kind}/{mode}"
        counts = result.outcomes.setdefault(key, [0, 0])
        counts[0] += 1
        problem = check_outcome(attempt, call, kind, mode, tries)
        if problem is not None:
            counts[1] += 1
            if len(result.mismatch_examples) < 20:
                result.mismatch_examples.append(f"call {call} ({key}): {problem}")

    async def worker() -> None:
        nonlocal next_call
        while next_call < cfg.calls:
            call = next_call
            next_call += 1
            kind = kinds[kind_of[call]]
            mode = MODES[mode_of[call]]
            result.started += 1
            t0 = time.perf_counter()
            try:
                attempt = await asyncio.wait_for(
                    client.call_llm(PROMPTS, SCHEMA, document(call, kind, mode)), deadline)
            except asyncio.TimeoutError:
                result.stranded += 1
                result.stranded_by_kind[f"{kind}/{mode}"] += 1
            except Exception as exc:  # noqa: BLE001 - counted: call_llm must not raise
                result.raised += 1
                if len(result.raised_examples) < 5:
                    result.raised_examples.append(f"call {call} ({kind}/{mode}): {exc!r}")
            else:
                record(call, kind, mode, attempt, (time.perf_counter() - t0) * 1000)
            watchdog.progress += 1
            done = watchdog.progress
            if done % step == 0:
                rss = rss_mib()
                result.rss_samples.append((done, rss))
                elapsed = time.perf_counter() - t_start
                _note(cfg, f"{done:>9,} calls  {done / elapsed:8,.0f} calls/s  "
                           f"RSS {rss:6.1f} MiB  stranded {result.stranded}")

    try:
        await asyncio.gather(*(worker() for _ in range(min(cfg.concurrency, cfg.calls))))
        result.wall_s = time.perf_counter() - t_start
        gc.collect()
        result.after = snapshot(own_threads=1 if watchdog.is_alive() else 0)
    finally:
        client.close()


def run_soak(cfg: SoakConfig) -> SoakResult:
    """Run one soak; never raises for client misbehaviour (the result says what failed)."""
    unknown = set(cfg.kinds) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
    if len(cfg.kinds) > 254:
        raise ValueError("too many kinds")
    import llmbridge  # noqa: F401 - imported before the baseline is taken

    result = SoakResult(config=cfg)
    kind_of, mode_of = make_plan(cfg.calls, cfg.faults, cfg.kinds, cfg.seed)
    attempts_of = bytearray(cfg.calls)
    result.latency_ms = array.array("d", [-1.0]) * cfg.calls
    with ServerProcess(cfg.calls, cfg.timeout) as server:
        gc.collect()
        result.before = snapshot()
        watchdog = _Watchdog(cfg.call_deadline + 10.0, result, cfg.exit_on_stall)
        watchdog.start()
        try:
            asyncio.run(_drive(cfg, server.url, kind_of, mode_of, result, attempts_of,
                               watchdog))
        finally:
            watchdog.done.set()
            watchdog.join()
        gc.collect()
        # The engine's I/O thread may take a moment to go; wait a little, not forever.
        settle = time.monotonic() + 5.0
        while True:
            result.after_close = snapshot()
            if (result.after_close.threads <= result.before.threads
                    and result.after_close.fds <= result.before.fds) or time.monotonic() > settle:
                break
            time.sleep(0.05)
        deadline = time.monotonic() + 5.0
        while True:
            stats = server.stats()
            if stats["open_connections"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    result.server_open_after_close = stats["open_connections"]
    result.server_requests = stats["requests"]
    result.server_unmarked = stats["unmarked"]
    result.server_errors = stats["errors"]
    kinds = ("none",) + cfg.kinds
    for call, (seen, tried) in enumerate(zip(stats["counts"], attempts_of)):
        if tried and seen != tried:  # calls that returned; stranded ones have no attempts
            result.server_count_mismatches += 1
            result.server_extra_requests += seen - tried
            result.server_count_by_kind[f"{kinds[kind_of[call]]}/{MODES[mode_of[call]]}"] += 1
            if len(result.server_count_examples) < 10:
                result.server_count_examples.append(
                    f"call {call} ({kinds[kind_of[call]]}/{MODES[mode_of[call]]}): "
                    f"server saw {seen} requests, attempt.attempts={tried}")
    return result


# ---- reporting ---------------------------------------------------------------------


def machine() -> dict[str, str]:
    import llmbridge

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "llmbridge": getattr(llmbridge, "__version__", "?"),
    }


def to_dict(r: SoakResult) -> dict[str, Any]:
    c = r.config
    return {
        "config": {"calls": c.calls, "faults": c.faults, "concurrency": c.concurrency,
                   "kinds": list(c.kinds), "seed": c.seed, "timeout": c.timeout,
                   "max_retries": c.max_retries, "retry_base_delay": c.retry_base_delay,
                   "retry_max_delay": c.retry_max_delay,
                   "max_connections": c.max_connections or c.concurrency,
                   "latency_bound_s": c.latency_bound, "call_deadline_s": c.call_deadline},
        "ok": r.ok,
        "invariants": [{"name": n, "ok": h, "figures": f} for n, h, f in r.invariants()],
        "calls_started": r.started, "attempts_returned": r.returned, "raised": r.raised,
        "stranded": r.stranded, "stranded_by_kind": dict(r.stranded_by_kind),
        "loop_errors": r.loop_errors, "loop_error_examples": r.loop_error_examples,
        "raised_examples": r.raised_examples,
        "wall_s": round(r.wall_s, 3), "calls_per_s": round(r.calls_per_s, 1),
        "errors": dict(r.errors.most_common()),
        "error_details": {k: dict(v.most_common()) for k, v in r.details.items()},
        "attempts_histogram": {str(k): v for k, v in sorted(r.attempts_hist.items())},
        "latency_ms": {"p50": round(r.percentile(0.50), 1), "p99": round(r.percentile(0.99), 1),
                       "max": round(r.latency_max, 1), "wall_max": round(r.wall_max_ms, 1),
                       "bound": round(c.latency_bound * 1000, 1),
                       "slack": round(c.latency_slack * 1000, 1)},
        "outcomes": {k: {"calls": v[0], "mismatches": v[1]} for k, v in sorted(r.outcomes.items())},
        "mismatch_examples": r.mismatch_examples,
        "server": {"requests": r.server_requests,
                   "count_mismatches": r.server_count_mismatches,
                   "extra_requests": r.server_extra_requests,
                   "count_examples": r.server_count_examples,
                   "count_mismatches_by_kind": dict(r.server_count_by_kind),
                   "unmarked": r.server_unmarked, "responder_errors": r.server_errors,
                   "open_connections_after_close": r.server_open_after_close},
        "process": {"before": r.before.row() if r.before else None,
                    "after": r.after.row() if r.after else None,
                    "after_close": r.after_close.row() if r.after_close else None,
                    "fd_diff_after_close": r.fd_diff(),
                    "rss_samples_mib": [[n, round(m, 1)] for n, m in r.rss_samples]},
    }


def _outcome_rows(r: SoakResult) -> list[tuple[str, str, int, int, int, int]]:
    rows = []
    order = ("none",) + ALL_KINDS
    keys = set(r.outcomes) | set(r.stranded_by_kind) | set(r.server_count_by_kind)
    for key in sorted(keys, key=lambda k: (order.index(k.split("/")[0]),
                                           MODES.index(k.split("/")[1]))):
        kind, mode = key.split("/")
        calls, bad = r.outcomes.get(key, [0, 0])
        rows.append((kind, mode, calls, bad, r.stranded_by_kind.get(key, 0),
                     r.server_count_by_kind.get(key, 0)))
    return rows


def _histogram(r: SoakResult) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(r.attempts_hist.items()))


def format_text(r: SoakResult) -> str:
    c = r.config
    out = []
    add = out.append
    add(f"llmbridge fault soak: {c.calls:,} calls, {c.faults:.0%} faults, concurrency "
        f"{c.concurrency}, timeout {c.timeout:g} s, max_retries {c.max_retries}, "
        f"backoff {c.retry_base_delay:g}-{c.retry_max_delay:g} s, seed {c.seed}")
    add(f"fault kinds: {', '.join(c.kinds) or '(none)'}")
    excluded = [k for k in ALL_KINDS if k not in c.kinds]
    if excluded:
        add(f"excluded kinds: {', '.join(excluded)}")
    add("")
    add(f"calls started        {r.started:>10,}")
    add(f"attempts returned    {r.returned:>10,}")
    add(f"exceptions raised    {r.raised:>10,}")
    add(f"stranded (> {c.call_deadline:.1f} s) {r.stranded:>8,}")
    add(f"loop callback errors {r.loop_errors:>10,}")
    add(f"wall                 {r.wall_s:>10.1f} s   {r.calls_per_s:,.0f} calls/s")
    add("")
    add("errors:")
    for name, n in r.errors.most_common():
        add(f"  {name:<24} {n:>9,}")
        for detail, m in r.details.get(name, collections.Counter()).most_common(8):
            add(f"      {m:>9,}  {detail}")
    add(f"attempts histogram: {_histogram(r)}")
    add(f"latency_ms: p50 {r.percentile(0.5):.1f}  p99 {r.percentile(0.99):.1f}  max "
        f"{r.latency_max:.1f}  (bound {c.latency_bound * 1000:.0f} + slack "
        f"{c.latency_slack * 1000:.0f}); wall max {r.wall_max_ms:.1f}")
    add("")
    add(f"{'kind':<14} {'mode':<11} {'calls':>8} {'mismatch':>9} {'stranded':>9} "
        f"{'srv!=att':>9}")
    for kind, mode, calls, bad, stranded, srv in _outcome_rows(r):
        add(f"{kind:<14} {mode:<11} {calls:>8,} {bad:>9,} {stranded:>9,} {srv:>9,}")
    add("(srv!=att: calls for which the server got a number of requests other than "
        "attempt.attempts)")
    for line in r.mismatch_examples[:10]:
        add(f"  mismatch: {line}")
    for line in r.raised_examples:
        add(f"  raised: {line}")
    for line in r.loop_error_examples:
        add(f"  loop error: {line}")
    add("")
    add(f"server: {r.server_requests:,} generation requests; requests per call != attempts: "
        f"{r.server_count_mismatches:,} ({r.server_extra_requests:+,} requests); "
        f"open connections after close: {r.server_open_after_close}")
    for line in r.server_count_examples[:5]:
        add(f"  {line}")
    add("")
    add(f"{'process':<22} {'RSS MiB':>8} {'fds':>5} {'threads':>8}")
    for label, s in (("before (no client)", r.before), ("after the calls", r.after),
                     ("after close()", r.after_close)):
        if s is not None:
            add(f"{label:<22} {s.rss_mib:>8.1f} {s.fds:>5} {s.threads:>8}")
    if r.fd_diff():
        add(f"fds after close() vs before: {r.fd_diff()}")
    if r.rss_samples:
        add("RSS every 10 % of the calls (MiB): " + ", ".join(f"{m:.1f}" for _, m in r.rss_samples))
    add("")
    for name, holds, figures in r.invariants():
        add(f"[{'PASS' if holds else 'FAIL'}] {name}: {figures}")
    add("soak: " + ("PASS" if r.ok else "FAIL"))
    return "\n".join(out)


def format_markdown(r: SoakResult, command: str, info: dict[str, str]) -> str:
    c = r.config
    out = []
    add = out.append
    add("### Fault soak results")
    add("")
    add(f"Command: `{command}`")
    add("")
    for k in ("date", "cpu", "os", "python", "llmbridge"):
        add(f"- {k}: {info[k]}")
    add(f"- {c.calls:,} calls, {c.faults:.0%} with a fault, {c.concurrency} in flight, "
        f"max_connections {c.max_connections or c.concurrency}, timeout {c.timeout:g} s, "
        f"max_retries {c.max_retries}, backoff {c.retry_base_delay:g}-{c.retry_max_delay:g} s, "
        f"seed {c.seed}")
    add(f"- fault kinds: {', '.join(c.kinds)}")
    excluded = [k for k in ALL_KINDS if k not in c.kinds]
    if excluded:
        add(f"- excluded: {', '.join(excluded)}")
    add("")
    add(f"{r.returned:,} attempts returned for {r.started:,} calls started "
        f"({r.raised} raised, {r.stranded} stranded) in {r.wall_s:.1f} s: "
        f"**{r.calls_per_s:,.0f} calls/s**. Outcome mismatches: {r.mismatches}. "
        f"Calls for which the server got a number of requests other than `attempts`: "
        f"{r.server_count_mismatches} ({r.server_extra_requests:+,} requests in all).")
    add("")
    add("| error | calls |")
    add("|---|--:|")
    for name, n in r.errors.most_common():
        add(f"| `{name}` | {n:,} |")
    add("")
    for name, details in sorted(r.details.items()):
        add(f"`{name}` details: " + "; ".join(f"{d} ({n:,})" for d, n in details.most_common(8)))
        add("")
    add(f"Attempts per call: {_histogram(r)}")
    add("")
    add(f"latency_ms: p50 {r.percentile(0.5):.1f}, p99 {r.percentile(0.99):.1f}, max "
        f"{r.latency_max:.1f} (bound {c.latency_bound * 1000:.0f} = {c.tries} × "
        f"{c.timeout:g} s + {c.max_retries} × {c.retry_max_delay:g} s backoff)")
    add("")
    add("| kind | mode | calls | outcome mismatches | stranded | server requests ≠ attempts |")
    add("|---|---|--:|--:|--:|--:|")
    for kind, mode, calls, bad, stranded, srv in _outcome_rows(r):
        add(f"| {kind} | {mode} | {calls:,} | {bad} | {stranded} | {srv} |")
    add("")
    add("| process | RSS MiB | open fds | threads |")
    add("|---|--:|--:|--:|")
    for label, s in (("before (no client yet)", r.before),
                     ("after the calls, client open", r.after),
                     ("after close()", r.after_close)):
        if s is not None:
            add(f"| {label} | {s.rss_mib:.1f} | {s.fds} | {s.threads} |")
    add("")
    if r.rss_samples:
        add("RSS every 10 % of the calls (MiB): "
            + ", ".join(f"{m:.1f}" for _, m in r.rss_samples))
        add("")
    add("| invariant | holds | figures |")
    add("|---|:-:|---|")
    for name, holds, figures in r.invariants():
        add(f"| {name} | {'yes' if holds else '**no**'} | {figures} |")
    add("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--faults", type=float, default=0.10, help="fraction of calls with a fault")
    p.add_argument("--concurrency", type=int, default=128, help="calls in flight")
    p.add_argument("--kinds", default="all",
                   help="fault mix: all, a comma list, or all,-kind,... (kinds: "
                        + ", ".join(ALL_KINDS) + ")")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1.0, help="client timeout per try (s)")
    p.add_argument("--max-retries", type=int, default=2)
    p.add_argument("--retry-base-delay", type=float, default=0.01)
    p.add_argument("--retry-max-delay", type=float, default=0.05)
    p.add_argument("--max-connections", type=int, default=0, help="default: --concurrency")
    p.add_argument("--latency-slack", type=float, default=1.0,
                   help="seconds allowed above the latency bound")
    p.add_argument("--rss-limit-mb", type=float, default=50.0)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--out", help="also write a markdown report to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.serve_child:
        return _serve_child(args.calls, args.timeout)
    try:
        kinds = parse_kinds(args.kinds)
    except ValueError as exc:
        p.error(str(exc))
    if args.calls < 1 or args.concurrency < 1 or not 0.0 <= args.faults <= 1.0:
        p.error("--calls and --concurrency must be >= 1, --faults in [0, 1]")

    cfg = SoakConfig(
        calls=args.calls, faults=args.faults, concurrency=args.concurrency, kinds=kinds,
        seed=args.seed, timeout=args.timeout, max_retries=args.max_retries,
        retry_base_delay=args.retry_base_delay, retry_max_delay=args.retry_max_delay,
        max_connections=args.max_connections, latency_slack=args.latency_slack,
        rss_limit_mb=args.rss_limit_mb, exit_on_stall=True,
        progress=None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True)),
    )
    result = run_soak(cfg)
    info = machine()
    if args.json:
        print(json.dumps({"machine": info, **to_dict(result)}, indent=2))
    else:
        print(format_text(result))
    if args.out:
        command = "python3 bench/soak.py " + " ".join(sys.argv[1:] if argv is None else argv)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(format_markdown(result, command.strip(), info))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
