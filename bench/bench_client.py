"""HTTP client benchmark: llmbridge against httpx, aiohttp and openai, with wrk as the ceiling.

    PYTHONPATH=<site> python3 bench/bench_client.py [--quick] [--out FILE] [--concurrency 1,16,128]

A local nginx (bench/nginx.conf.template, run as the current user on a free port)
answers every POST /v1/chat/completions with one fixed OpenAI chat completion whose
content is a small JSON object in a ```json fence. Every client does the same work per
call: POST the same chat-completion body, read the response, take
choices[0].message.content, strip the fence, parse the JSON, and check that the result
is the expected object. llmbridge does the post-processing itself (call_llm); for the
peers it is the few lines in `strip_fence` + json.loads.

For each concurrency C, each Python client runs `calls` calls from C worker tasks on a
fresh asyncio loop, after a warm-up, with a connection pool of C. Reported: requests/s
(wall clock), CPU microseconds per call (the whole process: llmbridge's I/O thread is in
the process and counted), how much of that ran on the event loop's thread, nginx's CPU
per call, and the ratios. wrk (one thread, C connections, the same body) is the ceiling.
Then llmbridge runs 100,000 calls at the highest C while RSS is sampled every 10,000.

nginx and the clients share the machine's cores: nothing is pinned.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import datetime
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nginx_server import INSTALL_HINT, NginxServer, find_nginx  # noqa: E402

# ---- the fixed exchange: what every client sends and gets back ----

MODEL = "m"
SYSTEM = "You extract invoice fields. Answer with JSON only."
USER = "Extract the invoice number, the total, the currency, the line items and whether it is paid."
DOCUMENT = ("Invoice INV-2024-0042 from ACME GmbH. 2 x Widget A (12.50 EUR), "
            "1 x Gadget B (99.00 EUR). Total 124.00 EUR. Paid.")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total": {"type": "number"},
        "currency": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"},
                               "unit_price": {"type": "number"}},
                "required": ["sku", "qty", "unit_price"],
            },
        },
        "paid": {"type": "boolean"},
    },
    "required": ["invoice_number", "total", "currency", "items", "paid"],
}
EXPECTED: dict[str, Any] = {
    "invoice_number": "INV-2024-0042",
    "total": 124.0,
    "currency": "EUR",
    "items": [
        {"sku": "Widget A", "qty": 2, "unit_price": 12.5},
        {"sku": "Gadget B", "qty": 1, "unit_price": 99.0},
    ],
    "paid": True,
}
CONTENT = "```json\n" + json.dumps(EXPECTED, indent=2) + "\n```"
RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "content": CONTENT},
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {"prompt_tokens": 120, "completion_tokens": 60, "total_tokens": 180},
}
RESPONSE_BODY = json.dumps(RESPONSE).encode()

PROMPTS = {"system": SYSTEM, "user": USER}
MAX_TOKENS = 4096  # llmbridge's default; the peers send the same body
RESPONSE_FORMAT = {"type": "json_schema",
                   "json_schema": {"name": "extraction", "schema": SCHEMA, "strict": True}}


def messages() -> list[dict[str, str]]:
    # What llmbridge sends for PROMPTS + DOCUMENT: no {document_text} placeholder in the
    # user text, so the document follows it after a blank line.
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": USER + "\n\n" + DOCUMENT}]


def request_body() -> dict[str, Any]:
    return {"model": MODEL, "messages": messages(), "max_tokens": MAX_TOKENS,
            "temperature": 0.0, "response_format": RESPONSE_FORMAT}


def strip_fence(text: str) -> str:
    """The peers' fence strip: drop a leading ```lang line and a trailing ```."""
    text = text.strip()
    if text.startswith("```"):
        newline = text.find("\n")
        text = text[newline + 1:] if newline >= 0 else text[3:]
        if text.endswith("```"):
            text = text[:-3]
    return text


class CallFailed(RuntimeError):
    pass


# ---- the clients: open(base_url, C), call() -> parsed object, close() ----


class Client:
    name = ""
    module = ""  # the import that must work for this client to run

    async def open(self, base_url: str, concurrency: int) -> None:
        raise NotImplementedError

    async def call(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class LLMBridgeClient(Client):
    name = "llmbridge"
    module = "llmbridge"

    async def open(self, base_url: str, concurrency: int) -> None:
        import llmbridge

        self.client = llmbridge.VLLMClient(base_url=base_url, model=MODEL, max_retries=0,
                                           timeout=30, max_connections=concurrency)

    async def call(self) -> Any:
        attempt = await self.client.call_llm(PROMPTS, SCHEMA, DOCUMENT)
        if not attempt.success:
            raise CallFailed(f"llmbridge: {attempt.error}")
        return attempt.data

    async def close(self) -> None:
        await self.client.close()


class LLMBridgeUncheckedClient(LLMBridgeClient):
    """llmbridge with the schema check off (validate_schema=False): the difference to the
    llmbridge row is what checking each answer against SCHEMA costs per call."""

    name = "llmbridge-unchecked"

    async def open(self, base_url: str, concurrency: int) -> None:
        import llmbridge

        self.client = llmbridge.VLLMClient(base_url=base_url, model=MODEL, max_retries=0,
                                           timeout=30, max_connections=concurrency,
                                           validate_schema=False)


class LLMBridgeCallSoonClient(LLMBridgeClient):
    """llmbridge with the other completion bridge: loop.call_soon_threadsafe per result,
    the GIL taken on the I/O thread (design.md asks for both to be measured)."""

    name = "llmbridge-callsoon"

    async def call(self) -> Any:
        from llmbridge._client import ExtractionAttempt, _call_args

        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def done(fields: tuple[Any, ...]) -> None:
            if not fut.done():
                fut.set_result(ExtractionAttempt._from_native(fields))

        self.client._native._submit_call_soon(loop.call_soon_threadsafe, done,
                                              *_call_args(PROMPTS, SCHEMA, DOCUMENT))
        attempt = await fut
        if not attempt.success:
            raise CallFailed(f"llmbridge: {attempt.error}")
        return attempt.data


class HttpxClient(Client):
    name = "httpx"
    module = "httpx"

    async def open(self, base_url: str, concurrency: int) -> None:
        import httpx

        self.url = base_url + "/v1/chat/completions"
        self.client = httpx.AsyncClient(
            timeout=30,
            limits=httpx.Limits(max_connections=concurrency,
                                max_keepalive_connections=concurrency))

    async def call(self) -> Any:
        r = await self.client.post(self.url, json=request_body())
        if r.status_code != 200:
            raise CallFailed(f"httpx: http_{r.status_code}")
        content = r.json()["choices"][0]["message"]["content"]
        return json.loads(strip_fence(content))

    async def close(self) -> None:
        await self.client.aclose()


class AiohttpClient(Client):
    name = "aiohttp"
    module = "aiohttp"

    async def open(self, base_url: str, concurrency: int) -> None:
        import aiohttp

        self.url = base_url + "/v1/chat/completions"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=30))

    async def call(self) -> Any:
        async with self.session.post(self.url, json=request_body()) as r:
            if r.status != 200:
                raise CallFailed(f"aiohttp: http_{r.status}")
            payload = await r.json()
        content = payload["choices"][0]["message"]["content"]
        return json.loads(strip_fence(content))

    async def close(self) -> None:
        await self.session.close()


class OpenAIClient(Client):
    name = "openai"
    module = "openai"

    async def open(self, base_url: str, concurrency: int) -> None:
        import httpx
        import openai

        # The same pool size as the others (openai's default is 1000 / 100 keep-alive).
        http_client = openai.DefaultAsyncHttpxClient(
            limits=httpx.Limits(max_connections=concurrency,
                                max_keepalive_connections=concurrency))
        self.client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0,
                                         timeout=30, http_client=http_client)

    async def call(self) -> Any:
        completion = await self.client.chat.completions.create(
            model=MODEL, messages=messages(), max_tokens=MAX_TOKENS, temperature=0.0,
            response_format=RESPONSE_FORMAT)  # type: ignore[arg-type]
        content = completion.choices[0].message.content or ""
        return json.loads(strip_fence(content))

    async def close(self) -> None:
        await self.client.close()


ALL_CLIENTS: dict[str, type[Client]] = {
    c.name: c for c in (LLMBridgeClient, LLMBridgeUncheckedClient, LLMBridgeCallSoonClient,
                        HttpxClient, AiohttpClient, OpenAIClient)
}

# ---- measuring ----


@dataclass
class Result:
    client: str
    concurrency: int
    calls: int
    seconds: float
    cpu_seconds: float
    loop_cpu_seconds: float | None  # CPU on the event loop's thread (None for wrk)
    server_cpu_seconds: float
    other_load: float  # cores used by other processes on the machine meanwhile
    rss_kib: list[int] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.calls / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.calls * 1e6

    @property
    def loop_cpu_us(self) -> float | None:
        return None if self.loop_cpu_seconds is None else self.loop_cpu_seconds / self.calls * 1e6

    @property
    def server_cpu_us(self) -> float:
        return self.server_cpu_seconds / self.calls * 1e6


def rss_kib() -> int:
    """Resident set size now (not the peak), from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


async def drive(call: Callable[[], Any], total: int, concurrency: int, max_seconds: float = 0.0,
                every: int = 0, on_every: Callable[[], None] | None = None) -> int:
    """Up to `total` calls from `concurrency` worker tasks, no new ones after `max_seconds`
    (0: no limit); every result must be EXPECTED. Returns the calls made."""
    remaining = total
    done = 0
    deadline = time.perf_counter() + max_seconds if max_seconds > 0 else float("inf")

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0:
            remaining -= 1
            data = await call()
            if data != EXPECTED:
                raise CallFailed(f"unexpected result: {data!r}")
            done += 1
            if every and done % every == 0 and on_every is not None:
                on_every()
            # Checking the clock every 64 calls keeps it out of the per-call cost.
            if done & 63 == 0 and time.perf_counter() > deadline:
                remaining = 0

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def wait_quiet(limit_s: float, threshold: float = 0.25) -> float:
    """Wait (up to `limit_s`) until other processes use under `threshold` cores.

    For shared machines: call it between measurements, when this process and nginx are
    idle, so whatever /proc/stat counts as busy is someone else. Returns the load seen last.
    """
    deadline = time.monotonic() + limit_s
    while True:
        busy0, own0, t0 = machine_busy_seconds(), time.process_time(), time.monotonic()
        time.sleep(0.5)
        load = ((machine_busy_seconds() - busy0) - (time.process_time() - own0)) / (
            time.monotonic() - t0)
        if load < threshold or time.monotonic() >= deadline:
            return load
        time.sleep(0.5)


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (Linux /proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def measure(cls: type[Client], base_url: str, concurrency: int, calls: int, warmup: int,
                  server: NginxServer, max_seconds: float = 0.0, rss_every: int = 0) -> Result:
    client = cls()
    await client.open(base_url, concurrency)
    try:
        await drive(client.call, warmup, concurrency)
        gc.collect()
        samples: list[int] = []
        server0, busy0 = server.cpu_seconds(), machine_busy_seconds()
        cpu0, loop0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
        made = await drive(client.call, calls, concurrency, max_seconds, rss_every,
                           lambda: samples.append(rss_kib()))
        t1, cpu1, loop1 = time.perf_counter(), time.process_time(), time.thread_time()
        server1, busy1 = server.cpu_seconds(), machine_busy_seconds()
    finally:
        await client.close()
    server_cpu = server1 - server0
    other = max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - server_cpu) / (t1 - t0)
    return Result(cls.name, concurrency, made, t1 - t0, cpu1 - cpu0, loop1 - loop0,
                  server_cpu, other, samples)


WRK_LUA = """\
-- POST the benchmark's chat-completion body (written by bench/bench_client.py).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""


def run_wrk(wrk: str, url: str, concurrency: int, seconds: int, server: NginxServer) -> Result:
    with tempfile.TemporaryDirectory(prefix="llmbridge-bench-wrk-") as tmp:
        script = os.path.join(tmp, "post.lua")
        with open(script, "w") as f:
            f.write(WRK_LUA.format(body=json.dumps(request_body())))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server0, busy0 = server.cpu_seconds(), machine_busy_seconds()
        proc = subprocess.run(
            [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", script, url],
            capture_output=True, text=True, timeout=seconds + 60)
        server1, busy1 = server.cpu_seconds(), machine_busy_seconds()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    out = proc.stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if not m or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk: unexpected output or errors:\n{out}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    # nginx is our child too but is not reaped yet, so RUSAGE_CHILDREN grew by wrk alone.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    wall = float(m.group(2)) * scale
    # busy also covers wrk's start and exit, outside `wall`: a slight overestimate.
    other = max(0.0, (busy1 - busy0) - cpu - (server1 - server0)) / wall
    return Result("wrk", concurrency, int(m.group(1)), wall, cpu, None, server1 - server0, other)


# ---- the report ----


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def libcurl_version() -> str:
    name = ctypes.util.find_library("curl")
    if not name:
        return "?"
    try:
        lib = ctypes.CDLL(name)
        lib.curl_version.restype = ctypes.c_char_p
        return lib.curl_version().decode().split()[0]
    except OSError:
        return "?"


def tool_version(argv: list[str], pattern: str) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(pattern, p.stdout + p.stderr)
    return m.group(1) if m else "?"


def machine() -> list[tuple[str, str]]:
    cpu_model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    nginx = find_nginx()
    wrk = shutil.which("wrk")
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu_model}, {usable} cores usable (nproc), shared by nginx, the client "
                "and wrk; nothing pinned"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}, "
                   "asyncio default loop"),
        ("llmbridge", f"{version_of('llmbridge')} (libcurl {libcurl_version()})"),
        ("httpx", version_of("httpx")),
        ("aiohttp", version_of("aiohttp")),
        ("openai", version_of("openai")),
        ("nginx", tool_version([nginx, "-v"], r"nginx/(\S+)") if nginx else "not installed"),
        ("wrk", tool_version([wrk, "-v"], r"wrk (\S+)") if wrk else "not installed"),
    ]


def fmt(x: float | None, spec: str) -> str:
    return "" if x is None else format(x, spec)


def report(results: list[Result], rss: Result | None, argv: list[str],
           calls_by_c: dict[int, int], wrk_seconds: int, max_seconds: float) -> str:
    by = {(r.client, r.concurrency): r for r in results}
    levels = sorted({r.concurrency for r in results})
    order = [n for n in (*ALL_CLIENTS, "wrk") if any(r.client == n for r in results)]
    lines = ["Command: `" + " ".join(["python3", "bench/bench_client.py", *argv]) + "`", ""]
    lines += [f"- {k}: {v}" for k, v in machine()]
    lines += ["- calls per client: " + ", ".join(f"{calls_by_c[c]:,} at c={c}" for c in levels)
              + f" after a warm-up, or as many as fit in {max_seconds:g} s; "
              f"wrk: {wrk_seconds} s per level", ""]
    lines += [
        "| client | in flight | calls | req/s | CPU µs/call | of which loop thread "
        "| nginx µs/call | vs httpx | % of wrk | other load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in levels:
        httpx_r, wrk_r = by.get(("httpx", c)), by.get(("wrk", c))
        for name in order:
            r = by.get((name, c))
            if r is None:
                continue
            vs_httpx = f"{r.rps / httpx_r.rps:.2f}×" if httpx_r else ""
            of_wrk = f"{100 * r.rps / wrk_r.rps:.0f} %" if wrk_r else ""
            lines.append(
                f"| {name} | {c} | {r.calls:,} | {r.rps:,.0f} | {r.cpu_us:,.0f} "
                f"| {fmt(r.loop_cpu_us, ',.0f')} | {r.server_cpu_us:,.1f} | {vs_httpx} | {of_wrk} "
                f"| {r.other_load:.2f} |")
    lines.append("")
    lines.append("CPU µs/call is the client process's user + system time (all its threads) "
                 "over the calls; for wrk, wrk's own. \"of which loop thread\" is the part on "
                 "the thread running the asyncio loop; the rest ran on other threads "
                 "(llmbridge's I/O thread). nginx µs/call is the server's CPU over the same "
                 "span. \"other load\" is the cores other processes on the machine used "
                 "meanwhile (from /proc/stat): above ~0.2 the row's req/s is contended.")
    lines.append("")

    top = max(levels)
    lb = by.get(("llmbridge", top))
    goals: list[tuple[str, str, bool | None]] = []
    peer_cpu_note = "which does not depend on what else runs on the machine"
    if lb is not None:
        lines.append(f"Ratios at {top} in flight (req/s; and CPU per call, {peer_cpu_note}):")
        lines.append("")
        for peer in ("httpx", "aiohttp", "openai", "wrk"):
            r = by.get((peer, top))
            if r is not None:
                lines.append(f"- llmbridge / {peer}: {lb.rps / r.rps:.2f}× the req/s; "
                             f"{peer} spends {r.cpu_us / lb.cpu_us:.2f}× llmbridge's CPU per call")
        lines.append("")

        def ratio_goal(peer: str, need: float, label: str) -> None:
            r = by.get((peer, top))
            if r is None:
                goals.append((label, "not measured", None))
            else:
                got = lb.rps / r.rps
                shown = f"{100 * got:.0f} %" if peer == "wrk" else f"{got:.2f}×"
                goals.append((label, shown, got >= need))

        ratio_goal("httpx", 10.0, "≥ 10× httpx")
        ratio_goal("aiohttp", 4.0, "≥ 4× aiohttp")
        ratio_goal("wrk", 0.5, "≥ 50 % of wrk")
        goals.append(("≤ 100 µs CPU per call", f"{lb.cpu_us:.0f} µs", lb.cpu_us <= 100))
    if rss is not None and rss.rss_kib:
        first, last = rss.rss_kib[0], rss.rss_kib[-1]
        step = rss.calls // len(rss.rss_kib)
        growth = last - first
        per_call = growth * 1024 / max(1, rss.calls - step)
        # "Flat": under 2 MiB over the run after the first sample (< ~25 B per call at 100k).
        flat = growth < 2048
        lines.append(f"RSS, llmbridge, {rss.calls:,} calls at {rss.concurrency} in flight "
                     f"({rss.rps:,.0f} req/s), sampled every {step:,} calls (MiB): "
                     + ", ".join(f"{k / 1024:.1f}" for k in rss.rss_kib))
        lines.append("")
        lines.append(f"First {first / 1024:.1f} MiB, last {last / 1024:.1f} MiB: "
                     f"{growth / 1024:+.2f} MiB ({per_call:+.1f} bytes per call).")
        lines.append("")
        goals.append(("RSS flat", f"{growth / 1024:+.2f} MiB over {rss.calls - step:,} calls",
                      flat))
    if goals:
        lines.append(f"Goals at {top} in flight:")
        lines.append("")
        lines.append("| goal | measured | met |")
        lines.append("|---|--:|:-:|")
        for label, shown, ok in goals:
            lines.append(f"| {label} | {shown} | {'' if ok is None else ('yes' if ok else 'no')} |")
        lines.append("")
    return "\n".join(lines)


# ---- main ----


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10x fewer calls (RSS run: 20,000)")
    p.add_argument("--out", help="also write the markdown results to this file")
    p.add_argument("--concurrency", default="1,16,128",
                   help="comma-separated calls in flight (default 1,16,128)")
    p.add_argument("--clients", default=",".join([*ALL_CLIENTS, "wrk"]),
                   help="comma-separated subset of: " + ", ".join([*ALL_CLIENTS, "wrk"]))
    p.add_argument("--max-seconds", type=float, default=20.0,
                   help="stop a client's run after this long even if calls remain (default 20)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="on a shared machine: before each measurement wait up to this long "
                        "for other processes to use < 0.25 cores (default 0: do not wait)")
    p.add_argument("--wrk-seconds", type=int, default=5, help="wrk duration per level (default 5)")
    p.add_argument("--rss-calls", type=int,
                   help="calls in the RSS run (default 100,000; quick 20,000)")
    args = p.parse_args(argv)

    levels = sorted({int(x) for x in args.concurrency.split(",") if x.strip()})
    if not levels or min(levels) < 1:
        p.error("--concurrency needs positive integers")
    wanted = [x.strip() for x in args.clients.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in ALL_CLIENTS and x != "wrk"]
    if unknown:
        p.error(f"unknown client(s): {', '.join(unknown)}")
    scale = 10 if args.quick else 1
    calls_by_c = {c: (2_000 if c == 1 else 20_000) // scale for c in levels}
    rss_calls = args.rss_calls or (20_000 if args.quick else 100_000)

    if find_nginx() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    clients: list[type[Client]] = []
    for name in wanted:
        if name == "wrk":
            continue
        cls = ALL_CLIENTS[name]
        try:
            importlib.import_module(cls.module)
        except ImportError as exc:
            hint = ("build and install it: pip install ." if name == "llmbridge"
                    else f"pip install {name}   (or pip install '.[bench]')")
            print(f"skipping {name}: {exc}. To include it, {hint}", file=sys.stderr)
            continue
        clients.append(cls)
    wrk = shutil.which("wrk") if "wrk" in wanted else None
    if "wrk" in wanted and wrk is None:
        print("skipping wrk (the ceiling): not found on PATH. Install it with "
              "`sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`.",
              file=sys.stderr)

    results: list[Result] = []
    rss: Result | None = None
    with NginxServer(RESPONSE_BODY) as server:
        print(f"nginx on {server.url} (pid {server.proc.pid if server.proc else '?'})",
              file=sys.stderr)
        for c in levels:
            calls = calls_by_c[c]
            warmup = max(200 // scale, 2 * c)
            for cls in clients:
                if args.wait_quiet:
                    wait_quiet(args.wait_quiet)
                r = asyncio.run(measure(cls, server.url, c, calls, warmup, server,
                                        args.max_seconds))
                results.append(r)
                print(f"  {r.client:9} c={c:<4} {r.rps:9,.0f} req/s  {r.cpu_us:6,.0f} µs CPU/call"
                      f"  ({r.calls:,} calls in {r.seconds:.1f} s)", file=sys.stderr)
            if wrk is not None:
                if args.wait_quiet:
                    wait_quiet(args.wait_quiet)
                r = run_wrk(wrk, server.url + "/v1/chat/completions", c, args.wrk_seconds, server)
                results.append(r)
                print(f"  {'wrk':9} c={c:<4} {r.rps:9,.0f} req/s  {r.cpu_us:6,.0f} µs CPU/call",
                      file=sys.stderr)
        if any(cls is LLMBridgeClient for cls in clients):
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            top = max(levels)
            rss = asyncio.run(measure(LLMBridgeClient, server.url, top, rss_calls,
                                      max(200, 2 * top), server, rss_every=rss_calls // 10))
            print(f"  RSS run: {rss.calls:,} calls, {rss.rps:,.0f} req/s, samples (KiB) "
                  f"{rss.rss_kib}", file=sys.stderr)

    text = report(results, rss, argv, calls_by_c, args.wrk_seconds, args.max_seconds)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the `with NginxServer` block stops nginx.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; nginx stopped", file=sys.stderr)
        sys.exit(130)
