"""Several replicas behind one client: llmbridge's routing against what users run today.

    python3 bench/bench_replicas.py [--calls 2000] [--in-flight 16] [--delay 0.02]
                                    [--out bench/results/replicas.md]

Three mock replicas (llmbridge.testing.MockLLMServer, each in its own process) answer
every call after a fixed delay; one of them is slow (10x the delay). The same extraction
calls (call_llm, in-flight bounded) go to:

- llmbridge with the three URLs and routing="least_outstanding" (the default);
- llmbridge with routing="prefix" (all calls share one prompt prefix: the worst case
  for a slow replica, and what keeps vLLM's prefix cache hot);
- a round-robin proxy in front of the three (nginx's upstream, what a Kubernetes Service
  does), given to llmbridge as one URL;
- one fast replica alone (a single URL).

Reported: calls/s, p50 and p99 latency per call, and the share of calls the slow
replica served. Then the client's CPU per call at 128 in flight against three fast
replicas (three URLs) and one (one URL). The mock replicas share the machine's cores
with the client, so that difference is mostly noise; the routing itself is measured
directly by the Catch2 case `llmbridge_tests "[perf][replicas]"`. Everything runs on
127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llmbridge  # noqa: E402
from nginx_server import NginxServer, free_port  # noqa: E402

PROXY_TEMPLATE = Path(__file__).with_name("nginx_proxy.conf.template")
PROMPTS = {"system": "Extract the fields as JSON.", "user": "Document:\n{document_text}"}
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}

REPLICA_SCRIPT = """
import signal, sys, threading
from llmbridge.testing import MockLLMServer, Reply
port, delay = int(sys.argv[1]), float(sys.argv[2])
with MockLLMServer(port=port) as server:
    server.responder = lambda request: Reply(content='{"label": "ok"}', delay=delay)
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
"""


class Replica:
    """One mock replica in a child process (the GIL of one server must not slow the
    others or the client)."""

    def __init__(self, delay: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", REPLICA_SCRIPT, str(self.port), str(delay)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a mock replica did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def round_robin_proxy(urls: list[str]) -> NginxServer:
    """nginx's default upstream balancing (round-robin) in front of the replicas."""
    servers = "\n".join(f"        server {u.removeprefix('http://')};" for u in urls)
    return NginxServer(b"", template=PROXY_TEMPLATE, fill={"@UPSTREAMS@": servers})


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_calls(client: Any, calls: int, in_flight: int) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    sem = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        nonlocal failures
        async with sem:
            t = time.perf_counter()
            attempt = await client.call_llm(PROMPTS, SCHEMA, f"document {i}")
            latencies.append(time.perf_counter() - t)
            failures += not attempt.success

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    latencies.sort()
    return {
        "calls_per_s": calls / wall,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1e3,
        "cpu_us_per_call": cpu / calls * 1e6,
        "failures": failures,
    }


def client_for(base_url: str | list[str], **options: Any) -> Any:
    return llmbridge.VLLMClient(
        base_url=base_url,
        model="mock-model",
        max_retries=1,
        timeout=30.0,
        max_connections=256,
        **options,
    )


def slow_share(client: Any, slow_url: str) -> str:
    try:
        stats = client.replicas()
    except AttributeError:
        return "—"
    total = sum(r.requests for r in stats)
    slow = sum(r.requests for r in stats if r.url.rstrip("/") == slow_url)
    return f"{100 * slow / total:.1f} %" if total else "—"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--delay", type=float, default=0.02, help="fast replicas' answer delay (s)")
    ap.add_argument("--out", help="also write the markdown to this file")
    args = ap.parse_args()

    fast = [Replica(args.delay), Replica(args.delay)]
    slow = Replica(args.delay * 10)
    replicas = [*fast, slow]
    proxy = round_robin_proxy([r.url for r in replicas])
    urls = [r.url for r in replicas]
    rows = []
    try:
        proxy.start()
        setups = [
            ("llmbridge, 3 URLs, least_outstanding", urls, {"routing": "least_outstanding"}),
            ("llmbridge, 3 URLs, prefix", urls, {"routing": "prefix"}),
            ("round-robin proxy (nginx upstream), 1 URL", proxy.url, {}),
            ("one fast replica, 1 URL", fast[0].url, {}),
        ]
        for name, base, opts in setups:
            with client_for(base, **opts) as client:
                asyncio.run(run_calls(client, min(200, args.calls), args.in_flight))  # warm up
                r = asyncio.run(run_calls(client, args.calls, args.in_flight))
                share = (
                    slow_share(client, slow.url)
                    if isinstance(base, list)
                    else ("33 % (by construction)" if base == proxy.url else "0 %")
                )
            rows.append((name, r, share))

        # The cost of routing: three fast replicas against one, at 128 in flight.
        slow.stop()
        cost = {}
        third = Replica(args.delay)
        replicas.append(third)
        for label, base in (
            ("3 URLs", [fast[0].url, fast[1].url, third.url]),
            ("1 URL", fast[0].url),
        ):
            with client_for(base) as client:
                asyncio.run(run_calls(client, 500, 128))
                cost[label] = min(
                    asyncio.run(run_calls(client, args.calls, 128))["cpu_us_per_call"]
                    for _ in range(3)
                )
    finally:
        proxy.stop()
        for r in replicas:
            if r.proc.poll() is None:
                r.stop()

    lines = [
        f"Machine: {os.cpu_count()} cores; llmbridge {llmbridge.__version__}; {args.calls} calls "
        f"at {args.in_flight} in flight; fast replicas answer after {args.delay * 1e3:.0f} ms, "
        f"the slow one after {args.delay * 1e4:.0f} ms; date {time.strftime('%Y-%m-%d')}.",
        "",
        "| setup | calls/s | p50 ms | p99 ms | slow replica's share | failures |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r, share in rows:
        lines.append(
            f"| {name} | {r['calls_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{share} | {r['failures']:.0f} |"
        )
    lines += [
        "",
        "Cost of routing at 128 in flight (client CPU per call, best of three runs):",
        "",
        "| URLs | CPU µs per call |",
        "|---|---:|",
        *(f"| {k} | {v:.1f} |" for k, v in cost.items()),
        f"| difference | {cost['3 URLs'] - cost['1 URL']:+.1f} |",
        "",
        "The routing itself (ReplicaSet acquire + release, key hashing included) is measured",
        'directly by the Catch2 case llmbridge_tests "[perf][replicas]".',
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
