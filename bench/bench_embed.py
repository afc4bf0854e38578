"""Embeddings benchmark: llmbridge's embed against the openai SDK and httpx + json.loads.

    PYTHONPATH=<site> python3 bench/bench_embed.py [--texts 10000] [--dims 1024]
        [--batch 64] [--repeats 3] [--only openai,httpx,llmbridge] [--formats base64,float]

A local nginx (bench/nginx_embed.conf.template, as the current user on a free port)
answers every POST /v1/embeddings with one canned response of B embeddings (B = the batch
size, indexes 0..B-1), the shape vLLM sends (docs: protocols §1.3), in two variants run
one after the other: "base64" (each embedding a base64 string of little-endian float32)
and "float" (each embedding a JSON list of numbers written like -0.0123456789). The body
is a static file: nginx sends it as fast as the client reads, so this measures the
client, not a model. The number of texts is rounded up to a whole number of batches (every
request gets B vectors back, so every request must send B texts).

Each consumer runs in a fresh subprocess (its imports and its loop alone), 16 requests in
flight on the default asyncio loop:
  - llmbridge: VLLMClient(embedding_batch_size=B, max_connections=16); one
    `await client.embed(texts)` for all texts (it batches and sends concurrently itself;
    it asks for base64 and accepts floats), then `numpy.asarray(result)` (no copy);
  - openai: AsyncOpenAI().embeddings.create(model, input=batch) per batch under a
    semaphore of 16 (it asks for base64 and decodes with numpy), keeping
    `[d.embedding for d in resp.data]`, lists of Python floats, as users get them;
  - httpx: AsyncClient(max_connections=16) POST per batch under a semaphore of 16, json.loads,
    numpy.frombuffer(base64.b64decode(s), "<f4") per item when base64, else the lists.
Each opens its client, embeds one batch (connection, imports), then measures the memory
of the result in two untimed runs (RSS delta, then tracemalloc), checks every vector
against the canned ones, and times R runs: wall clock (time.perf_counter) and CPU of the
whole process (time.process_time: llmbridge's I/O thread counts). Medians over R of
vectors/s and CPU ms per 1,000 vectors; memory as a ratio to the raw float32 size
(texts x dims x 4 bytes). For llmbridge, the cost of `result.vectors` (lists of floats
built on read) is timed separately, after each run.

llmbridge is imported only in the subprocesses that use it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_client import machine, machine_busy_seconds, wait_quiet  # noqa: E402
from nginx_server import INSTALL_HINT, NginxServer, find_nginx  # noqa: E402

HERE = Path(__file__).resolve().parent
EMBED_TEMPLATE = HERE / "nginx_embed.conf.template"
MODEL = "m"
IN_FLIGHT = 16
CONSUMERS_ORDER = ("openai", "httpx", "llmbridge")
FORMATS = ("base64", "float")
SEED = 20261126

# ---- the canned response ----


def canned_vectors(batch: int, dims: int) -> Any:
    """B unit vectors, float32, the same for every run (seeded)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    v = rng.standard_normal((batch, dims))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype("<f4")


def float_texts(vectors: Any) -> list[list[str]]:
    # Ten decimals: -0.0123456789; a unit vector of 1,024 dims has |x| of about 0.03.
    return [[f"{x:.10f}" for x in row.astype(float)] for row in vectors]


def embed_body(batch: int, dims: int, fmt: str) -> bytes:
    vectors = canned_vectors(batch, dims)
    if fmt == "base64":
        items = ['"' + base64.b64encode(row.tobytes()).decode() + '"' for row in vectors]
    else:
        items = ["[" + ",".join(row) + "]" for row in float_texts(vectors)]
    data = ",".join(f'{{"index":{i},"object":"embedding","embedding":{e}}}'
                    for i, e in enumerate(items))
    return (f'{{"id":"embd-x","object":"list","created":1,"model":"{MODEL}","data":[{data}],'
            f'"usage":{{"prompt_tokens":{batch},"total_tokens":{batch},'
            f'"completion_tokens":0}}}}').encode()


def expected_vectors(batch: int, dims: int, fmt: str) -> Any:
    """What a correct client holds for one batch: float32 (for "float" the nearest
    float32 to each decimal text)."""
    import numpy as np

    vectors = canned_vectors(batch, dims)
    if fmt == "base64":
        return vectors
    return np.array(float_texts(vectors), dtype=np.float64).astype(np.float32)


def texts_for(n: int) -> list[str]:
    return [f"text number {i}" for i in range(n)]


# ---- the consumers (run in a child process) ----


class Unavailable(Exception):
    """This consumer cannot run here; the message is printed as its row."""


class Consumer:
    name = ""

    async def open(self, base_url: str, batch: int, fmt: str) -> None:
        raise NotImplementedError

    async def embed(self, texts: list[str]) -> Any:
        """Embed all texts; return what the user keeps (and nothing else)."""
        raise NotImplementedError

    def rows(self, kept: Any) -> int:
        return len(kept)

    def as_array(self, kept: Any) -> Any:
        import numpy as np

        return np.asarray(kept, dtype=np.float32)

    async def close(self) -> None:
        raise NotImplementedError


async def in_batches(call: Any, texts: list[str], batch: int) -> list[Any]:
    """call(batch_texts) for each batch, IN_FLIGHT at a time; the rows in input order."""
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def one(start: int) -> list[Any]:
        async with sem:
            return await call(texts[start:start + batch])

    parts = await asyncio.gather(*(one(s) for s in range(0, len(texts), batch)))
    return [row for part in parts for row in part]


class OpenAIConsumer(Consumer):
    name = "openai"

    async def open(self, base_url: str, batch: int, fmt: str) -> None:
        try:
            import openai
        except ImportError as exc:
            raise Unavailable(f"openai: not installed ({exc}); pip install openai") from exc
        self.batch = batch
        self.client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0,
                                         timeout=120)

    async def embed(self, texts: list[str]) -> Any:
        async def call(chunk: list[str]) -> list[list[float]]:
            resp = await self.client.embeddings.create(model=MODEL, input=chunk)
            return [d.embedding for d in resp.data]

        return await in_batches(call, texts, self.batch)

    async def close(self) -> None:
        await self.client.close()


class HttpxConsumer(Consumer):
    name = "httpx"

    async def open(self, base_url: str, batch: int, fmt: str) -> None:
        try:
            import httpx
            import numpy
        except ImportError as exc:
            raise Unavailable(f"httpx: not installed ({exc}); pip install httpx numpy") from exc
        self.np = numpy
        self.batch, self.fmt = batch, fmt
        self.url = base_url + "/v1/embeddings"
        self.client = httpx.AsyncClient(timeout=120, limits=httpx.Limits(
            max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT))

    async def embed(self, texts: list[str]) -> Any:
        frombuffer, b64decode = self.np.frombuffer, base64.b64decode

        async def call(chunk: list[str]) -> list[Any]:
            body = {"model": MODEL, "input": chunk, "encoding_format": self.fmt}
            r = await self.client.post(self.url, json=body)
            if r.status_code != 200:
                raise RuntimeError(f"httpx: http_{r.status_code}")
            data = json.loads(r.content)["data"]
            out: list[Any] = [None] * len(data)
            for d in data:
                e = d["embedding"]
                out[d["index"]] = frombuffer(b64decode(e), "<f4") if isinstance(e, str) else e
            return out

        return await in_batches(call, texts, self.batch)

    async def close(self) -> None:
        await self.client.aclose()


class LLMBridgeConsumer(Consumer):
    name = "llmbridge"

    async def open(self, base_url: str, batch: int, fmt: str) -> None:
        try:
            import llmbridge
            import numpy
        except ImportError as exc:
            raise Unavailable(f"llmbridge: not importable ({exc}); build it: "
                              "pip install --no-deps --no-build-isolation --target DIR .") from exc
        self.np = numpy
        self.client = llmbridge.VLLMClient(base_url=base_url, model=MODEL,
                                           embedding_batch_size=batch,
                                           max_connections=IN_FLIGHT, max_retries=0)
        if not hasattr(self.client, "embed"):
            await self.close()
            raise Unavailable("llmbridge: embed not available yet")
        self.result: Any = None

    async def embed(self, texts: list[str]) -> Any:
        result = await self.client.embed(texts)
        if not result.success:
            raise RuntimeError(f"llmbridge: {result.error!r}")
        self.result = result  # for .vectors, timed apart; the array keeps it alive anyway
        return self.np.asarray(result)

    async def close(self) -> None:
        self.result = None
        await self.client.close()


CONSUMERS: dict[str, type[Consumer]] = {
    c.name: c for c in (OpenAIConsumer, HttpxConsumer, LLMBridgeConsumer)}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def check(consumer: Consumer, kept: Any, n: int, expected: Any) -> None:
    import numpy as np

    if consumer.rows(kept) != n:
        raise RuntimeError(f"{consumer.name}: {consumer.rows(kept)} vectors, expected {n}")
    arr = consumer.as_array(kept)
    want = np.tile(expected, (n // len(expected), 1))
    if arr.shape != want.shape or not np.allclose(arr, want, rtol=1e-6, atol=1e-9):
        raise RuntimeError(f"{consumer.name}: the vectors differ from the canned ones "
                           f"(shape {arr.shape}, expected {want.shape})")


async def child_embed(name: str, base_url: str, n: int, dims: int, batch: int, fmt: str,
                      repeats: int) -> dict[str, Any]:
    consumer = CONSUMERS[name]()
    try:
        await consumer.open(base_url, batch, fmt)
    except Unavailable as exc:
        return {"status": "unavailable", "message": str(exc)}
    texts = texts_for(n)
    expected = expected_vectors(batch, dims, fmt)
    out: dict[str, Any] = {"status": "ok"}
    runs = []
    try:
        # Warm-up: one batch (connection, imports, caches), small enough not to grow the
        # heap before the memory is measured.
        check(consumer, await consumer.embed(texts[:batch]), batch, expected)
        if isinstance(consumer, LLMBridgeConsumer):
            consumer.result = None

        # Memory 1: RSS growth while holding the result (first full run in this process).
        gc.collect()
        rss0 = rss_bytes()
        kept = await consumer.embed(texts)
        gc.collect()
        rss1 = rss_bytes()
        mem: dict[str, Any] = {"rss_delta_bytes": rss1 - rss0}
        check(consumer, kept, n, expected)
        del kept
        if isinstance(consumer, LLMBridgeConsumer):
            consumer.result = None
        # Memory 2: what tracemalloc sees allocated and still held (the Python heap;
        # not native buffers such as llmbridge's).
        gc.collect()
        tracemalloc.start()
        t0 = tracemalloc.get_traced_memory()[0]
        kept = await consumer.embed(texts)
        gc.collect()
        mem["traced_bytes"] = tracemalloc.get_traced_memory()[0] - t0
        if isinstance(consumer, LLMBridgeConsumer):
            mem["buffer_bytes"] = memoryview(consumer.result).nbytes
            t1 = tracemalloc.get_traced_memory()[0]
            vectors = consumer.result.vectors
            gc.collect()
            mem["vectors_traced_bytes"] = tracemalloc.get_traced_memory()[0] - t1
            del vectors
        tracemalloc.stop()
        del kept
        if isinstance(consumer, LLMBridgeConsumer):
            consumer.result = None
        out["memory"] = mem

        for _ in range(repeats):
            gc.collect()
            cpu0, t0 = time.process_time(), time.perf_counter()
            kept = await consumer.embed(texts)
            t1, cpu1 = time.perf_counter(), time.process_time()
            if consumer.rows(kept) != n:
                raise RuntimeError(f"{name}: {consumer.rows(kept)} vectors, expected {n}")
            run = {"wall_s": t1 - t0, "cpu_s": cpu1 - cpu0}
            if isinstance(consumer, LLMBridgeConsumer):
                cpu0, t0 = time.process_time(), time.perf_counter()
                vectors = consumer.result.vectors
                t1, cpu1 = time.perf_counter(), time.process_time()
                if len(vectors) != n or len(vectors[-1]) != dims:
                    raise RuntimeError(f"llmbridge: .vectors has {len(vectors)} rows")
                run["vectors_wall_s"], run["vectors_cpu_s"] = t1 - t0, cpu1 - cpu0
                del vectors
                consumer.result = None
            del kept
            runs.append(run)
    finally:
        await consumer.close()
    out["runs"] = runs
    return out


def child_main(args: argparse.Namespace) -> int:
    result = asyncio.run(child_embed(args.child, args.url, args.rows, args.dims, args.batch,
                                     args.format, args.repeats))
    print(json.dumps(result))
    return 0


# ---- the parent: servers, subprocesses, report ----


def run_child(kind: str, fmt: str, rows: int, url: str, args: argparse.Namespace,
              server: NginxServer) -> dict[str, Any]:
    """One child; adds its whole-process CPU (start-up included, from RUSAGE_CHILDREN) and
    the cores other processes used meanwhile."""
    argv = [sys.executable, os.path.abspath(__file__), "--child", kind, "--url", url,
            "--format", fmt, "--rows", str(rows), "--dims", str(args.dims),
            "--batch", str(args.batch), "--repeats", str(args.repeats)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0, busy0, t0 = server.cpu_seconds(), machine_busy_seconds(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    t1, busy1, server1 = time.perf_counter(), machine_busy_seconds(), server.cpu_seconds()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{kind} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
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


def summarise(result: dict[str, Any], rows: int, raw: int) -> None:
    if result.get("status") != "ok":
        return
    runs = result["runs"]
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    mem = result["memory"]
    # The result's memory: what RSS grew by while it is held, or what tracemalloc saw held
    # (Python objects), whichever is larger; llmbridge's buffer is native, so only RSS sees it.
    held = max(mem["rss_delta_bytes"], mem["traced_bytes"])
    m: dict[str, Any] = {
        "wall_s": wall, "cpu_s": cpu, "vectors_per_s": rows / wall,
        "cpu_ms_per_1k": cpu / rows * 1e6, "held_bytes": held, "memory_ratio": held / raw,
        "rss_ratio": mem["rss_delta_bytes"] / raw, "traced_ratio": mem["traced_bytes"] / raw}
    if "vectors_wall_s" in runs[0]:
        m["vectors_ms"] = statistics.median(r["vectors_wall_s"] for r in runs) * 1e3
        m["vectors_cpu_ms_per_1k"] = (statistics.median(r["vectors_cpu_s"] for r in runs)
                                      / rows * 1e6)
        m["vectors_memory_ratio"] = mem["vectors_traced_bytes"] / raw
        m["buffer_ratio"] = mem["buffer_bytes"] / raw
    result["median"] = m


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if a / b >= 10 else f"{a / b:.2f}×"


LABELS = {"openai": "openai `embeddings.create` → lists",
          "httpx": "httpx + `json.loads` (+ `numpy.frombuffer`)",
          "llmbridge": "**llmbridge `embed`** → `numpy.asarray`"}


def report(res: dict[str, Any], command: str) -> str:
    rows, dims, batch, raw = res["rows"], res["dims"], res["batch"], res["raw_bytes"]
    lines = [f"Command: `{command}`", ""]
    lines += [f"- {k}: {v}" for k, v in res["machine"].items() if k != "wrk"]
    lines += [f"- {rows:,} texts × {dims:,} dimensions, {rows // batch:,} requests of {batch} "
              f"texts, {IN_FLIGHT} in flight; raw float32 {raw / 2**20:.1f} MiB; "
              f"{res['repeats']} timed runs per consumer, medians shown",
              f"- response body per request: base64 {res['body_bytes']['base64']:,} bytes, "
              f"float {res['body_bytes']['float']:,} bytes" if len(res["body_bytes"]) == 2 else
              "- response body per request: " + ", ".join(
                  f"{k} {v:,} bytes" for k, v in res["body_bytes"].items()), ""]
    lines += ["| response | consumer | vectors/s | CPU ms / 1k vectors | result memory "
              "(× raw float32) | RSS Δ / traced (×) | process CPU s (all) | other load |",
              "|---|---|--:|--:|--:|--:|--:|--:|"]
    for fmt in FORMATS:
        for name in CONSUMERS_ORDER:
            r = res["results"].get(fmt, {}).get(name)
            if r is None:
                continue
            if r["status"] != "ok":
                lines.append(f"| {fmt} | {r['message']} | | | | | | |")
                continue
            m, p = r["median"], r["process"]
            lines.append(f"| {fmt} | {LABELS[name]} | {m['vectors_per_s']:,.0f} "
                         f"| {m['cpu_ms_per_1k']:.1f} | {m['memory_ratio']:.2f} "
                         f"| {m['rss_ratio']:.2f} / {m['traced_ratio']:.2f} "
                         f"| {p['cpu_s']:.2f} | {p['other_load']:.2f} |")
    lines += ["", "Result memory: what the consumer keeps, measured in an untimed run: the "
              "larger of the RSS growth while the result is held (after gc.collect(), "
              "first full run in the process) and the bytes tracemalloc sees allocated and "
              "held (Python objects only; llmbridge's buffer is native, so for it only RSS "
              "counts), over texts × dims × 4 bytes. \"process CPU s (all)\" is the "
              "consumer's subprocess from start to exit (imports, warm-up, memory runs, all "
              "timed runs).", ""]
    lb_vec = []
    for fmt in FORMATS:
        r = res["results"].get(fmt, {}).get("llmbridge")
        if r and r["status"] == "ok":
            m = r["median"]
            lb_vec.append(f"| {fmt} | {m['vectors_ms']:.1f} | {m['vectors_cpu_ms_per_1k']:.1f} "
                          f"| {m['vectors_memory_ratio']:.2f} | {m['buffer_ratio']:.2f} |")
    if lb_vec:
        lines += ["llmbridge `result.vectors` (lists of Python floats built on read), timed "
                  "apart after each run:", "",
                  "| response | `.vectors` ms | CPU ms / 1k vectors | lists' memory (× raw, "
                  "tracemalloc) | buffer (× raw) |", "|---|--:|--:|--:|--:|", *lb_vec, ""]
    for fmt in FORMATS:
        ok = {n: r["median"] for n, r in res["results"].get(fmt, {}).items()
              if r.get("status") == "ok"}
        if "llmbridge" not in ok:
            continue
        a = ok["llmbridge"]
        for peer in ("openai", "httpx"):
            if peer in ok:
                b = ok[peer]
                lines.append(f"- {fmt}: llmbridge / {peer}: "
                             f"{ratio(a['vectors_per_s'], b['vectors_per_s'])} the vectors/s; "
                             f"{peer} spends {ratio(b['cpu_ms_per_1k'], a['cpu_ms_per_1k'])} "
                             f"llmbridge's CPU per vector and holds "
                             f"{ratio(b['memory_ratio'], a['memory_ratio'])} its memory")
    goals = res.get("goals")
    if goals:
        lines += ["", "Goals:"] + [f"- {g}" for g in goals]
    return "\n".join(lines)


def goals(res: dict[str, Any]) -> list[str]:
    out = []
    for fmt in FORMATS:
        ok = {n: r["median"] for n, r in res["results"].get(fmt, {}).items()
              if r.get("status") == "ok"}
        if "llmbridge" not in ok:
            continue
        a = ok["llmbridge"]
        if "openai" in ok:
            x = a["vectors_per_s"] / ok["openai"]["vectors_per_s"]
            out.append(f"{fmt}: llmbridge ≥ 5× openai-python in vectors/s: "
                       f"{'met' if x >= 5 else 'missed'} ({x:.1f}×)")
        out.append(f"{fmt}: llmbridge result memory ≤ 1.1× raw float32: "
                   f"{'met' if a['memory_ratio'] <= 1.1 else 'missed'} "
                   f"({a['memory_ratio']:.2f}×)")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=10_000,
                   help="texts to embed, rounded up to whole batches (default 10,000)")
    p.add_argument("--dims", type=int, default=1024, help="dimensions (default 1,024)")
    p.add_argument("--batch", type=int, default=64, help="texts per request (default 64)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs per consumer, after the warm-up and memory runs; "
                        "medians (default 3)")
    p.add_argument("--only", default=",".join(CONSUMERS_ORDER),
                   help="comma-separated subset of: " + ", ".join(CONSUMERS_ORDER))
    p.add_argument("--formats", default=",".join(FORMATS),
                   help="comma-separated subset of: " + ", ".join(FORMATS))
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to this long for other processes "
                        "to use < 0.25 cores (default 0: do not wait)")
    p.add_argument("--json", metavar="FILE",
                   help="where to write the results (default bench/results/embed-<date>.json)")
    p.add_argument("--child", choices=CONSUMERS_ORDER, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.texts, args.dims, args.batch, args.repeats) < 1:
        p.error("--texts, --dims, --batch and --repeats must be positive")
    if args.child:
        return child_main(args)

    wanted = [x.strip() for x in args.only.split(",") if x.strip()]
    formats = [x.strip() for x in args.formats.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in CONSUMERS_ORDER] + [
        x for x in formats if x not in FORMATS]
    if unknown:
        p.error(f"unknown --only/--formats item(s): {', '.join(unknown)}")
    if find_nginx() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2

    rows = -(-args.texts // args.batch) * args.batch
    now = datetime.datetime.now(datetime.timezone.utc)
    res: dict[str, Any] = {
        "date": now.isoformat(timespec="seconds"), "machine": dict(machine()),
        "texts": args.texts, "rows": rows, "dims": args.dims, "batch": args.batch,
        "in_flight": IN_FLIGHT, "repeats": args.repeats, "raw_bytes": rows * args.dims * 4,
        "body_bytes": {}, "results": {}}

    for fmt in formats:
        body = embed_body(args.batch, args.dims, fmt)
        res["body_bytes"][fmt] = len(body)
        res["results"][fmt] = {}
        with NginxServer(body, template=EMBED_TEMPLATE,
                         files={"embeddings.json": body}) as server:
            print(f"{fmt}: nginx on {server.url}, {len(body):,} bytes per response",
                  file=sys.stderr)
            for name in (n for n in CONSUMERS_ORDER if n in wanted):
                if args.wait_quiet:
                    wait_quiet(args.wait_quiet)
                try:
                    r = run_child(name, fmt, rows, server.url, args, server)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    r = failed(f"{name} ({fmt})", exc)
                summarise(r, rows, res["raw_bytes"])
                res["results"][fmt][name] = r
                if r["status"] != "ok":
                    print(r["message"], file=sys.stderr)
                else:
                    m = r["median"]
                    print(f"  {name:9} {m['vectors_per_s']:10,.0f} vectors/s "
                          f"{m['cpu_ms_per_1k']:8.1f} CPU ms/1k vectors "
                          f"memory {m['memory_ratio']:.2f}× raw", file=sys.stderr)

    res["goals"] = goals(res)
    command = " ".join(["python3", "bench/bench_embed.py", *argv])
    res["command"] = command
    print(report(res, command))
    out = args.json or str(HERE / "results" / f"embed-{now:%Y-%m-%d}.json")
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
