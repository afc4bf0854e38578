"""`llmbridge demo`: repair sample answers, then run extractions against the mock server."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, TextIO

from . import repair_report
from ._client import ExtractionAttempt
from ._samples import SAMPLES
from .testing import MockLLMServer, RecordedRequest, Reply

SCHEMA = {
    "type": "object",
    "properties": {"doc_id": {"type": "integer"}, "total": {"type": "number"},
                   "vendor": {"type": "string"}},
    "required": ["doc_id", "total"],
}

# What the scenario injects, per document (weights add up to 100).
KINDS = (("clean", 52), ("fenced", 15), ("broken", 10), ("truncated", 5), ("overloaded", 6),
         ("slow", 5), ("unparseable", 4), ("bad_request", 3))


@dataclass
class Scenario:
    """Decides, per document id, what the mock server does; counts what it did."""

    seed: int
    plan: dict[int, str] = field(default_factory=dict[int, str])
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: Counter[int] = field(default_factory=Counter[int])

    def kind(self, doc_id: int) -> str:
        if doc_id not in self.plan:
            rng = random.Random(self.seed * 1_000_003 + doc_id)
            names, weights = zip(*KINDS)
            self.plan[doc_id] = rng.choices(names, weights)[0]
        return self.plan[doc_id]

    def reply(self, request: RecordedRequest) -> Optional[Reply]:
        text = request.prompt or ""
        marker = text.rsplit("doc-", 1)
        if len(marker) != 2 or not marker[1].split()[0].isdigit():
            return None
        doc_id = int(marker[1].split()[0])
        with self.lock:
            self.seen[doc_id] += 1
            attempt = self.seen[doc_id]
        kind = self.kind(doc_id)
        obj = {"doc_id": doc_id, "total": round(doc_id * 1.25, 2), "vendor": "ACME Corp"}
        if kind == "fenced":
            return Reply.fenced(obj)
        if kind == "broken":
            return Reply(content=f"{{'doc_id': {doc_id}, 'total': {obj['total']}, 'vendor': 'ACME Corp',}}")
        if kind == "truncated":
            return Reply.truncated(json.dumps(obj)[:-12])
        if kind == "overloaded" and attempt == 1:
            return Reply.error(503, message="server busy", retry_after=0.05)
        if kind == "slow":
            return Reply(content=json.dumps(obj), delay=0.15)
        if kind == "unparseable":
            return Reply(content="I am sorry, I cannot extract data from this document.")
        if kind == "bad_request":
            return Reply.error(400, message="This model's maximum context length is 8192 tokens.")
        return Reply.json(obj)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def _repair_samples(out: TextIO) -> None:
    print("== 1. JSON repair on real-looking model answers ==", file=sys.stderr)
    for title, text in SAMPLES:
        report = repair_report(text)
        kinds = ", ".join(sorted(report.kinds)) or "none (valid JSON)"
        cut = " [truncated]" if report.truncated else ""
        print(f"- {title}{cut}\n    in:  {text!r}\n    out: {report.json}\n    repairs: {kinds}",
              file=sys.stderr)
    print(file=sys.stderr)


class _Progress:
    """A progress bar on stderr: rich's when installed, else a plain one."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        try:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
            from rich.console import Console
        except ImportError:
            self._rich = None
            return
        self._rich = Progress("extracting", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                              console=Console(stderr=True), transient=False)
        self._task = self._rich.add_task("extract", total=total)

    def __enter__(self) -> _Progress:
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def advance(self) -> None:
        self.done += 1
        if self._rich is not None:
            self._rich.update(self._task, advance=1)
        elif self.done % max(1, self.total // 20) == 0 or self.done == self.total:
            bar = "#" * (30 * self.done // self.total)
            print(f"\r  [{bar:<30}] {self.done}/{self.total}", end="", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.__exit__(None, None, None)
        else:
            print(file=sys.stderr)


def summarize(results: list[ExtractionAttempt], elapsed: float) -> list[tuple[str, object]]:
    """The demo's summary rows, from the attempts alone."""
    ok = [a for a in results if a.success]
    errors = Counter((a.error or "").split(":")[0] for a in results if not a.success)
    lat = [a.latency_ms for a in results]
    return [
        ("calls", len(results)),
        ("successes", len(ok)),
        ("repaired", sum(a.repaired for a in ok)),
        ("truncated", sum(a.truncated for a in ok)),
        ("retries", sum(a.attempts - 1 for a in results)),
        *((f"errors: {k}", v) for k, v in sorted(errors.items())),
        ("latency p50 ms", f"{_percentile(lat, 50):.1f}"),
        ("latency p95 ms", f"{_percentile(lat, 95):.1f}"),
        ("latency p99 ms", f"{_percentile(lat, 99):.1f}"),
        ("calls/s", f"{len(results) / elapsed:.0f}" if elapsed > 0 else "-"),
    ]


async def _extractions(calls: int, concurrency: int, seed: int, out: TextIO) -> int:
    from . import build_llm_client, load_config
    from ._cli import _table

    scenario = Scenario(seed)
    results: list[ExtractionAttempt] = []
    print(f"== 2. {calls} extractions against the bundled mock LLM server ==", file=sys.stderr)
    async with MockLLMServer() as server:
        server.responder = scenario.reply
        # The worker's path: configuration, then the factory. The environment is not
        # read: the demo always talks to its own mock server.
        app = load_config({})
        app = app.replace(llm_provider="vllm", vllm=app.vllm.replace(
            base_url=server.url, model="mock-model", max_retries=2, retry_base_delay=0.02,
            retry_max_delay=0.2, timeout=5.0))
        client = build_llm_client("vllm", app)
        async with client:
            sem = asyncio.Semaphore(concurrency)
            start = time.perf_counter()
            with _Progress(calls) as progress:

                async def one(i: int) -> None:
                    async with sem:
                        a = await client.call_llm(
                            {"system": "Extract the invoice fields as JSON.",
                             "user": "Document:\n{document_text}"},
                            SCHEMA, f"Invoice text for doc-{i} ...")
                    results.append(a)
                    progress.advance()

                await asyncio.gather(*(one(i) for i in range(calls)))
            elapsed = time.perf_counter() - start
    injected = Counter(scenario.kind(i) for i in range(calls))
    _table("Summary", summarize(results, elapsed))
    _table("Injected by the scenario", [(k, injected[k]) for k, _ in KINDS])
    json.dump({"summary": dict(summarize(results, elapsed)), "injected": dict(injected)}, out)
    out.write("\n")
    return 0


def run_demo(calls: int = 300, concurrency: int = 32, seed: int = 7,
             out: Optional[TextIO] = None) -> int:
    sink = out or sys.stdout
    if calls < 1 or concurrency < 1:
        print("llmbridge demo: --calls and --concurrency must be >= 1", file=sys.stderr)
        return 2
    _repair_samples(sink)
    return asyncio.run(_extractions(calls, concurrency, seed, sink))
