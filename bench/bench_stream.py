"""Streaming benchmark: llmbridge's chat_stream against the openai SDK and httpx + json.loads.

    PYTHONPATH=<site> python3 bench/bench_stream.py [--tokens 20000] [--repeats 5]
        [--only openai,httpx,llmbridge,wrk,chat]

A local nginx (bench/nginx_stream.conf.template, as the current user on a free port)
answers every POST /v1/chat/completions with one canned server-sent-event stream, the
way vLLM sends a chat completion: a role chunk, N token chunks of "tok", a chunk with
finish_reason "stop", a usage chunk with "choices": [], then `data: [DONE]`. The stream
is generated into nginx's temp directory and served as a static file (Content-Length,
not chunked; nginx writes it as fast as the client reads).

Each consumer runs in a fresh subprocess (its imports and its loop alone): it opens its
client, streams once to warm up, then R times consumes the whole stream, touching every
content token, and times each run: wall clock (time.perf_counter), CPU of the whole
process (time.process_time: llmbridge's I/O thread is in the process and counted), and
the time from the call to the first non-empty content token (over the already-open
connection). Reported: the median over R of tokens/s, CPU µs per token and time to
first token, the ratios llmbridge/openai and llmbridge/httpx, and wrk's median latency
for one small GET to the same nginx as the floor of a request's round trip.

Then (chat) llmbridge's non-streaming `chat` beside `call_llm`, 128 calls in flight,
against a second nginx that answers with a small canned chat completion.

llmbridge's chat_stream and chat are new: while the installed llmbridge lacks one, its row
says so and the rest runs. llmbridge is imported only in the subprocesses that use it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_client import machine, machine_busy_seconds, wait_quiet  # noqa: E402
from nginx_server import INSTALL_HINT, NginxServer, find_nginx  # noqa: E402

HERE = Path(__file__).resolve().parent
STREAM_TEMPLATE = HERE / "nginx_stream.conf.template"
MODEL = "m"
MESSAGES = [{"role": "user", "content": "hi"}]
STREAMERS = ("openai", "httpx", "llmbridge")
SECTIONS = (*STREAMERS, "wrk", "chat")
CHAT_IN_FLIGHT = 128

# ---- the canned exchanges ----


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
    obj = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
           "choices": choices, **extra}
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def sse_body(tokens: int) -> bytes:
    """A vLLM chat-completion stream of `tokens` content chunks (stream_options
    include_usage): role chunk, token chunks, finish chunk, usage chunk, [DONE]."""

    def choice(delta: dict[str, str], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    token = _chunk(choice({"content": "tok"}))
    parts = [_chunk(choice({"role": "assistant", "content": ""}))]
    parts += [token] * tokens
    parts.append(_chunk(choice({}, "stop")))
    parts.append(_chunk([], usage={"prompt_tokens": 1, "total_tokens": tokens + 1,
                                   "completion_tokens": tokens}))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


CHAT_CONTENT = '{"answer": 42}'
CHAT_RESPONSE = json.dumps({
    "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": CHAT_CONTENT},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6},
}).encode()
PING_BODY = b'{"ok": true}\n'

# ---- the consumers (run in a child process) ----


class Unavailable(Exception):
    """This consumer cannot run here; the message is printed as its row."""


class Consumer:
    name = ""

    async def open(self, base_url: str) -> None:
        raise NotImplementedError

    async def stream(self) -> tuple[float | None, int]:
        """Consume one whole stream: (perf_counter at the first content token, tokens)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class OpenAIConsumer(Consumer):
    name = "openai"

    async def open(self, base_url: str) -> None:
        try:
            import openai
        except ImportError as exc:
            raise Unavailable(f"openai: not installed ({exc}); pip install openai") from exc
        self.client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0,
                                         timeout=120)

    async def stream(self) -> tuple[float | None, int]:
        first, n = None, 0
        stream = await self.client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True})
        async for chunk in stream:
            if chunk.choices:  # the usage chunk has none
                content = chunk.choices[0].delta.content
                if content:
                    if first is None:
                        first = time.perf_counter()
                    n += 1
        return first, n

    async def close(self) -> None:
        await self.client.close()


class HttpxConsumer(Consumer):
    name = "httpx"

    async def open(self, base_url: str) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise Unavailable(f"httpx: not installed ({exc}); pip install httpx") from exc
        self.url = base_url + "/v1/chat/completions"
        self.client = httpx.AsyncClient(timeout=120)

    async def stream(self) -> tuple[float | None, int]:
        first, n = None, 0
        body = {"model": MODEL, "messages": MESSAGES, "stream": True,
                "stream_options": {"include_usage": True}}
        async with self.client.stream("POST", self.url, json=body) as r:
            if r.status_code != 200:
                raise RuntimeError(f"httpx: http_{r.status_code}")
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    continue  # not break: read to the end so the connection is reused
                choices = json.loads(data)["choices"]
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        if first is None:
                            first = time.perf_counter()
                        n += 1
        return first, n

    async def close(self) -> None:
        await self.client.aclose()


class LLMBridgeConsumer(Consumer):
    name = "llmbridge"

    async def open(self, base_url: str) -> None:
        try:
            import llmbridge
        except ImportError as exc:
            raise Unavailable(f"llmbridge: not importable ({exc}); build it: "
                              "pip install --no-deps --no-build-isolation --target DIR .") from exc
        self.llmbridge = llmbridge
        self.client = llmbridge.VLLMClient(base_url=base_url, model=MODEL)
        self.metrics: list[dict[str, Any]] = []
        if not hasattr(self.client, "chat_stream"):
            await self.close()
            raise Unavailable("llmbridge: chat_stream not available yet")

    async def stream(self) -> tuple[float | None, int]:
        token_type, end_type = self.llmbridge.Token, self.llmbridge.StreamEnd
        first, n = None, 0
        async for ev in self.client.chat_stream(MESSAGES):
            if isinstance(ev, token_type):
                if ev.text:
                    if first is None:
                        first = time.perf_counter()
                    n += 1
            elif isinstance(ev, end_type):
                m = ev.metrics
                self.metrics.append({"ttft_ms": getattr(m, "ttft_ms", None),
                                     "tokens_per_s": getattr(m, "tokens_per_s", None)})
        return first, n

    async def close(self) -> None:
        await self.client.close()


CONSUMERS: dict[str, type[Consumer]] = {
    c.name: c for c in (OpenAIConsumer, HttpxConsumer, LLMBridgeConsumer)}


async def child_stream(name: str, base_url: str, tokens: int, repeats: int) -> dict[str, Any]:
    consumer = CONSUMERS[name]()
    try:
        await consumer.open(base_url)
    except Unavailable as exc:
        return {"status": "unavailable", "message": str(exc)}
    runs = []
    try:
        _, got = await consumer.stream()  # warm-up: connection, imports, caches
        if got != tokens:
            raise RuntimeError(f"{name}: {got} content tokens, expected {tokens}")
        for _ in range(repeats):
            gc.collect()
            cpu0, t0 = time.process_time(), time.perf_counter()
            first, got = await consumer.stream()
            t1, cpu1 = time.perf_counter(), time.process_time()
            if got != tokens or first is None:
                raise RuntimeError(f"{name}: {got} content tokens, expected {tokens}")
            runs.append({"wall_s": t1 - t0, "cpu_s": cpu1 - cpu0, "ttft_s": first - t0})
    finally:
        await consumer.close()
    out: dict[str, Any] = {"status": "ok", "runs": runs}
    if isinstance(consumer, LLMBridgeConsumer):
        out["stream_end_metrics"] = consumer.metrics[1:]  # without the warm-up's
    return out


async def drive(call: Any, total: int, concurrency: int) -> None:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def child_chat(base_url: str, calls: int, repeats: int) -> dict[str, Any]:
    """llmbridge `chat` and `call_llm`, each `calls` calls at CHAT_IN_FLIGHT, R times."""
    try:
        import llmbridge
    except ImportError as exc:
        msg = f"llmbridge: not importable ({exc})"
        return {"chat": {"status": "unavailable", "message": msg},
                "call_llm": {"status": "unavailable", "message": msg}}
    client = llmbridge.VLLMClient(base_url=base_url, model=MODEL, max_retries=0, timeout=30,
                                  max_connections=CHAT_IN_FLIGHT)
    chat_messages = [{"role": "user", "content": "u"}]

    async def chat() -> None:
        await client.chat(chat_messages)

    async def call_llm() -> None:
        attempt = await client.call_llm(prompts={"system": "s", "user": "u"}, json_schema=None,
                                        document_text="d")
        if not attempt.success or attempt.data != {"answer": 42}:
            raise RuntimeError(f"call_llm: {attempt.error or attempt.data!r}")

    out: dict[str, Any] = {}
    try:
        for name, call in (("chat", chat), ("call_llm", call_llm)):
            if not hasattr(client, name):
                out[name] = {"status": "unavailable",
                             "message": f"llmbridge: {name} not available yet"}
                continue
            await drive(call, max(200, 2 * CHAT_IN_FLIGHT), CHAT_IN_FLIGHT)
            runs = []
            for _ in range(repeats):
                gc.collect()
                cpu0, t0 = time.process_time(), time.perf_counter()
                await drive(call, calls, CHAT_IN_FLIGHT)
                t1, cpu1 = time.perf_counter(), time.process_time()
                runs.append({"wall_s": t1 - t0, "cpu_s": cpu1 - cpu0})
            out[name] = {"status": "ok", "runs": runs}
    finally:
        await client.close()
    return out


def child_main(args: argparse.Namespace) -> int:
    if args.child == "chat":
        result = asyncio.run(child_chat(args.url, args.calls, args.repeats))
    else:
        result = asyncio.run(child_stream(args.child, args.url, args.tokens, args.repeats))
    print(json.dumps(result))
    return 0


# ---- the parent: servers, subprocesses, wrk, report ----


def run_child(kind: str, url: str, args: argparse.Namespace,
              server: NginxServer) -> dict[str, Any]:
    """One child; adds its whole-process CPU (start-up and warm-up included, from
    RUSAGE_CHILDREN) and the cores other processes used meanwhile."""
    argv = [sys.executable, os.path.abspath(__file__), "--child", kind, "--url", url,
            "--tokens", str(args.tokens), "--repeats", str(args.repeats),
            "--calls", str(args.calls)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0, busy0, t0 = server.cpu_seconds(), machine_busy_seconds(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    t1, busy1, server1 = time.perf_counter(), machine_busy_seconds(), server.cpu_seconds()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{kind} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    # nginx is our child too but is not reaped yet: RUSAGE_CHILDREN grew by this child only.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["process"] = {
        "cpu_s": cpu, "wall_s": t1 - t0, "nginx_cpu_s": server1 - server0,
        "other_load": max(0.0, (busy1 - busy0) - cpu - (server1 - server0)) / (t1 - t0)}
    return result


def failed(name: str, exc: BaseException) -> dict[str, Any]:
    """A child that crashed: its last line for the table row, all of it in the JSON."""
    text = str(exc)
    last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "?")
    print(f"{name} failed:\n{text}", file=sys.stderr)
    return {"status": "failed", "message": f"{name}: failed: {last.strip()}", "detail": text}


def summarise_stream(result: dict[str, Any], tokens: int) -> None:
    if result.get("status") != "ok":
        return
    runs = result["runs"]
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    result["median"] = {
        "wall_s": wall, "cpu_s": cpu, "tokens_per_s": tokens / wall,
        "cpu_us_per_token": cpu / tokens * 1e6,
        "ttft_ms": statistics.median(r["ttft_s"] for r in runs) * 1e3}


def summarise_calls(result: dict[str, Any], calls: int) -> None:
    if result.get("status") != "ok":
        return
    wall = statistics.median(r["wall_s"] for r in result["runs"])
    cpu = statistics.median(r["cpu_s"] for r in result["runs"])
    result["median"] = {"wall_s": wall, "requests_per_s": calls / wall,
                        "cpu_us_per_call": cpu / calls * 1e6}


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(wrk: str, url: str, seconds: int) -> dict[str, Any]:
    """One connection, one request at a time: wrk's latency percentiles, in ms."""
    proc = subprocess.run([wrk, "-t1", "-c1", f"-d{seconds}s", "--latency", url],
                          capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    if proc.returncode != 0 or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{proc.stderr}")
    pct = {int(p): float(v) * _UNITS[u] for p, v, u in
           re.findall(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if 50 not in pct:
        raise RuntimeError(f"wrk: no 50% latency in its output:\n{out}")
    return {"status": "ok", "p50_ms": pct[50], "p90_ms": pct.get(90), "p99_ms": pct.get(99),
            "requests_per_s": float(rps.group(1)) if rps else None, "seconds": seconds}


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×"


def report(res: dict[str, Any], command: str) -> str:
    tokens = res["tokens"]
    lines = [f"Command: `{command}`", ""]
    lines += [f"- {k}: {v}" for k, v in res["machine"].items()]
    lines += [f"- stream: {tokens:,} token chunks, {res['body_bytes']:,} bytes; "
              f"{res['repeats']} timed runs per consumer after one warm-up, medians shown", ""]
    streams = res["streams"]
    lines += ["| consumer | tokens/s | CPU µs/token | time to first token (ms) "
              "| process CPU s (all) | other load |", "|---|--:|--:|--:|--:|--:|"]
    for name in STREAMERS:
        r = streams.get(name)
        if r is None:
            continue
        if r["status"] != "ok":
            lines.append(f"| {r['message']} | | | | | |")
            continue
        m, p = r["median"], r["process"]
        lines.append(f"| {name} | {m['tokens_per_s']:,.0f} | {m['cpu_us_per_token']:.2f} "
                     f"| {m['ttft_ms']:.2f} | {p['cpu_s']:.2f} | {p['other_load']:.2f} |")
    wrk = res.get("wrk")
    if wrk is not None and wrk["status"] == "ok":
        lines.append(f"| wrk, GET /ping, 1 connection (p50 latency) | | | {wrk['p50_ms']:.3f} "
                     "| | |")
    elif wrk is not None:
        lines.append(f"| wrk: {wrk['message']} | | | | | |")
    lines += ["", "Time to first token: from the call to the first non-empty content token, "
              "over a connection opened by the warm-up stream. \"process CPU s (all)\" is "
              "the consumer's subprocess from start to exit (imports, warm-up, all runs); "
              "\"other load\" the cores other processes used meanwhile.", ""]
    lb = streams.get("llmbridge", {})
    ok = {n: r["median"] for n, r in streams.items() if r.get("status") == "ok"}
    for peer in ("openai", "httpx"):
        if peer not in ok:
            continue
        if "llmbridge" in ok:
            a, b = ok["llmbridge"], ok[peer]
            lines.append(f"- llmbridge / {peer}: {ratio(a['tokens_per_s'], b['tokens_per_s'])} "
                         f"the tokens/s; {peer} spends "
                         f"{ratio(b['cpu_us_per_token'], a['cpu_us_per_token'])} llmbridge's "
                         f"CPU per token; time to first token "
                         f"{ratio(a['ttft_ms'], b['ttft_ms'])} {peer}'s")
        else:
            lines.append(f"- llmbridge / {peer}: not measured "
                         f"({lb.get('message', 'llmbridge not run')})")
    if wrk is not None and wrk["status"] == "ok":
        for name, m in ok.items():
            lines.append(f"- {name}: time to first token {m['ttft_ms'] / wrk['p50_ms']:.1f}× "
                         "wrk's p50 round trip")
    chat = res.get("chat")
    if chat is not None:
        lines += ["", f"llmbridge, non-streaming, {CHAT_IN_FLIGHT} in flight, "
                  f"{res['calls']:,} calls per run, {res['repeats']} runs, medians:", "",
                  "| call | requests/s | CPU µs/call |", "|---|--:|--:|"]
        for name in ("chat", "call_llm"):
            r = chat[name]
            if r["status"] != "ok":
                lines.append(f"| {r['message']} | | |")
            else:
                m = r["median"]
                lines.append(f"| {name} | {m['requests_per_s']:,.0f} "
                             f"| {m['cpu_us_per_call']:.1f} |")
        if all(chat[n]["status"] == "ok" for n in ("chat", "call_llm")):
            a, b = chat["chat"]["median"], chat["call_llm"]["median"]
            lines += ["", f"- chat / call_llm: {ratio(a['requests_per_s'], b['requests_per_s'])}"
                      " the requests/s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=20_000,
                   help="token chunks in the stream (default 20,000)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed runs per consumer, after one warm-up; medians (default 5)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help="comma-separated subset of: " + ", ".join(SECTIONS))
    p.add_argument("--calls", type=int, default=20_000,
                   help=f"chat: calls per run at {CHAT_IN_FLIGHT} in flight (default 20,000)")
    p.add_argument("--wrk-seconds", type=int, default=3, help="wrk duration (default 3)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to this long for other processes "
                        "to use < 0.25 cores (default 0: do not wait)")
    p.add_argument("--json", metavar="FILE",
                   help="where to write the results (default bench/results/stream-<date>.json)")
    p.add_argument("--child", choices=[*STREAMERS, "chat"], help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tokens < 1 or args.repeats < 1 or args.calls < 1:
        p.error("--tokens, --repeats and --calls must be positive")
    if args.child:
        return child_main(args)

    wanted = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in SECTIONS]
    if unknown:
        p.error(f"unknown --only item(s): {', '.join(unknown)}")
    if find_nginx() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2

    now = datetime.datetime.now(datetime.timezone.utc)
    body = sse_body(args.tokens)
    res: dict[str, Any] = {
        "date": now.isoformat(timespec="seconds"), "machine": dict(machine()),
        "tokens": args.tokens, "repeats": args.repeats, "calls": args.calls,
        "body_bytes": len(body), "streams": {}}

    def quiet() -> None:
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)

    streamers = [n for n in STREAMERS if n in wanted]
    if streamers or "wrk" in wanted:
        with NginxServer(body, template=STREAM_TEMPLATE,
                         files={"stream.sse": body, "ping.json": PING_BODY}) as server:
            print(f"stream nginx on {server.url}", file=sys.stderr)
            for name in streamers:
                quiet()
                try:
                    r = run_child(name, server.url, args, server)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    # One consumer failing (llmbridge's stream is new) keeps the others' rows.
                    r = failed(name, exc)
                summarise_stream(r, args.tokens)
                res["streams"][name] = r
                if r["status"] != "ok":
                    print(r["message"], file=sys.stderr)
                else:
                    m = r["median"]
                    print(f"  {name:9} {m['tokens_per_s']:10,.0f} tokens/s "
                          f"{m['cpu_us_per_token']:7.2f} µs CPU/token "
                          f"TTFT {m['ttft_ms']:.2f} ms", file=sys.stderr)
            if "wrk" in wanted:
                wrk = shutil.which("wrk")
                if wrk is None:
                    msg = ("not found on PATH; install it (apt-get install -y wrk) to compare "
                           "time to first token with one request's round trip; skipped")
                    print(f"wrk: {msg}", file=sys.stderr)
                    res["wrk"] = {"status": "unavailable", "message": msg}
                else:
                    quiet()
                    res["wrk"] = run_wrk(wrk, server.url + "/ping", args.wrk_seconds)
                    print(f"  wrk       p50 {res['wrk']['p50_ms']:.3f} ms", file=sys.stderr)
    if "chat" in wanted:
        with NginxServer(CHAT_RESPONSE) as server:
            print(f"chat nginx on {server.url}", file=sys.stderr)
            quiet()
            try:
                chat = run_child("chat", server.url, args, server)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                chat = {"chat": failed("llmbridge chat", exc),
                        "call_llm": failed("llmbridge call_llm", exc)}
            for name in ("chat", "call_llm"):
                summarise_calls(chat[name], args.calls)
                if chat[name]["status"] != "ok":
                    print(chat[name]["message"], file=sys.stderr)
            res["chat"] = chat

    command = " ".join(["python3", "bench/bench_stream.py", *argv])
    res["command"] = command
    print(report(res, command))
    out = args.json or str(HERE / "results" / f"stream-{now:%Y-%m-%d}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the `with NginxServer` blocks stop nginx.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; nginx stopped", file=sys.stderr)
        sys.exit(130)
