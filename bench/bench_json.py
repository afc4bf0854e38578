"""JSON text benchmark: llmbridge against the peers a user would pick, in one run.

    python3 bench/bench_json.py [--quick] [--out bench/results/json.md]
    python3 bench/bench_json.py --goals 15   # the goal ratios, medians of interleaved rounds

Peers: json-repair (pure Python), fast-json-repair (Rust + orjson), json.loads,
orjson. The corpus is deterministic (bench/corpus.py). Small documents report
microseconds per call (call overhead dominates at 1-5 KB); medium and large ones
report MB/s (1 MB = 10^6 bytes of UTF-8 input). Each figure is the best of several
passes over the whole class; ratios compare llmbridge with each peer on the same
documents in the same process.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

import llmbridge  # noqa: E402


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


json_repair = _optional("json_repair")
fast_json_repair = _optional("fast_json_repair")
orjson = _optional("orjson")


def best_pass(fn: Callable[[str], object], docs: list[str], passes: int, budget: float) -> float:
    """Seconds for the fastest pass of fn over all docs (stops early past `budget` s)."""
    times = []
    start = time.perf_counter()
    for _ in range(passes):
        t = time.perf_counter()
        for d in docs:
            fn(d)
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget:
            break
    return min(times)


def _safe(fn: Callable[[str], object]) -> Callable[[str], object]:
    def call(d: str) -> object:
        try:
            return fn(d)
        except Exception:  # a peer that throws on some input still pays the time
            return None

    return call


def repairers() -> dict[str, Callable[[str], object]]:
    out = {"llmbridge.repair_json": llmbridge.repair_json}
    if fast_json_repair:
        out["fast_json_repair.repair_json"] = _safe(fast_json_repair.repair_json)
    if json_repair:
        out["json_repair.repair_json"] = _safe(json_repair.repair_json)
    return out


def parsers(valid: bool) -> dict[str, Callable[[str], object]]:
    out = {"llmbridge.loads": llmbridge.loads}
    if valid:
        out["json.loads"] = json.loads
        if orjson:
            out["orjson.loads"] = orjson.loads
    if fast_json_repair:
        out["fast_json_repair.loads"] = _safe(fast_json_repair.loads)
    if json_repair:
        out["json_repair.loads"] = _safe(json_repair.loads)
    return out


def table(title: str, rows: list[tuple[str, float, str]], unit: str, ours: str) -> str:
    base = dict((name, v) for name, v, _ in rows)[ours]
    lines = [f"#### {title}", "", f"| function | {unit} | llmbridge is |", "|---|---:|---:|"]
    for name, v, _ in rows:
        if name == ours:
            ratio = "—"
        elif unit.startswith("µs"):
            ratio = f"{v / base:,.1f}× faster"
        else:
            ratio = f"{base / v:,.1f}× faster"
        lines.append(f"| {name} | {v:,.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


PLOT: list[tuple[str, list[tuple[str, float]]]] = []


def run(quick: bool) -> str:
    sizes = {"small": 60 if quick else 300, "medium": 5 if quick else 20, "large": 1 if quick else 3}
    passes = 3 if quick else 7
    out = []
    for kind, count in sizes.items():
        c = corpus.make(kind, count)
        for label, docs, nbytes in (("valid", c.valid, c.valid_bytes), ("broken", c.broken, c.broken_bytes)):
            for what, funcs in (("repair to JSON text", repairers()), ("parse to Python objects", parsers(label == "valid"))):
                rows = []
                for name, fn in funcs.items():
                    slow = name.startswith("json_repair")
                    gc.collect()
                    secs = best_pass(fn, docs, 1 if slow and kind != "small" else passes, 2.0 if slow else 10.0)
                    if kind == "small":
                        rows.append((name, secs / len(docs) * 1e6, ""))
                    else:
                        rows.append((name, nbytes / secs / 1e6, ""))
                unit = "µs per call" if kind == "small" else "MB/s"
                ours = "llmbridge.repair_json" if what.startswith("repair") else "llmbridge.loads"
                if kind == "large":  # MB/s: the plot's unit
                    PLOT.append((f"{kind} {label}: {what}", [(n, v) for n, v, _ in rows]))
                out.append(table(f"{kind} ({count} docs, {nbytes / 1e6:.2f} MB), {label} input: {what}", rows, unit, ours))
    out.append(pathological(quick))
    return "\n".join(out)


def pathological(quick: bool) -> str:
    """Linear time: doubling the input should double the time (ratio ~2, quadratic 4)."""
    lines = ["#### Pathological inputs: time as the input doubles", "",
             "| input | llmbridge 1 MB | llmbridge 2 MB | ratio | llmbridge MB/s | json_repair 20 KB | json_repair 40 KB | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in corpus.PATHOLOGICAL:
        a, b = corpus.pathological(kind, 1_000_000), corpus.pathological(kind, 2_000_000)
        ta = best_pass(llmbridge.repair_json, [a], 5, 5)
        tb = best_pass(llmbridge.repair_json, [b], 5, 5)
        cells = [kind, f"{ta * 1e3:.1f} ms", f"{tb * 1e3:.1f} ms", f"{tb / ta:.2f}", f"{len(b) / tb / 1e6:,.0f}"]
        if json_repair and not quick:
            sa, sb = corpus.pathological(kind, 20_000), corpus.pathological(kind, 40_000)
            ja = best_pass(_safe(json_repair.repair_json), [sa], 2, 10)
            jb = best_pass(_safe(json_repair.repair_json), [sb], 2, 20)
            cells += [f"{ja * 1e3:.0f} ms", f"{jb * 1e3:.0f} ms", f"{jb / ja:.2f}"]
        else:
            cells += ["—", "—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def one_pass(fn: Callable[[str], object], docs: list[str]) -> float:
    t = time.perf_counter()
    for d in docs:
        fn(d)
    return time.perf_counter() - t


def goals(rounds: int) -> str:
    """The goal ratios, robust to a noisy machine: in each round llmbridge and the peer
    make one pass each over the same documents (who goes first alternates), and the
    round's ratio is taken; the table gives the median ratio and its spread."""
    sizes = {"small": 300, "medium": 20, "large": 3}
    comparisons = []  # (label, docs, ours, peer name, peer fn)
    for kind, count in sizes.items():
        c = corpus.make(kind, count)
        for name, fn in (("orjson.loads", orjson.loads if orjson else None), ("json.loads", json.loads)):
            if fn is not None:
                comparisons.append((f"loads, {kind} valid", c.valid, llmbridge.loads, name, fn))
        if fast_json_repair:
            comparisons.append((f"repair_json, {kind} broken", c.broken, llmbridge.repair_json,
                                "fast_json_repair.repair_json", _safe(fast_json_repair.repair_json)))
        if json_repair and kind == "small":
            comparisons.append((f"repair_json, {kind} broken", c.broken, llmbridge.repair_json,
                                "json_repair.repair_json", _safe(json_repair.repair_json)))
    lines = ["#### Goal ratios: median over interleaved rounds", "",
             f"{rounds} rounds (json_repair: 2); in each, llmbridge and the peer make one pass over the "
             "same documents, taking turns to go first.", "",
             "| comparison | peer | llmbridge is (median) | min – max |", "|---|---|---:|---:|"]
    for label, docs, ours, peer_name, peer in comparisons:
        slow = peer_name.startswith("json_repair")
        ratios = []
        for i in range(2 if slow else rounds):
            gc.collect()
            if i % 2:  # alternate who goes first: neither gets the warmer caches every time
                b, a = one_pass(peer, docs), one_pass(ours, docs)
            else:
                a, b = one_pass(ours, docs), one_pass(peer, docs)
            ratios.append(b / a)
        lines.append(f"| {label} | {peer_name} | {statistics.median(ratios):,.2f}× | "
                     f"{min(ratios):,.2f} – {max(ratios):,.2f} |")
    return "\n".join(lines) + "\n"


def header() -> str:
    versions = [f"llmbridge {llmbridge.__version__}", f"Python {platform.python_version()}"]
    for mod, name in ((json_repair, "json-repair"), (fast_json_repair, "fast-json-repair"), (orjson, "orjson")):
        if mod is not None:
            from importlib.metadata import version

            versions.append(f"{name} {version(name)}")
    cpu = platform.processor() or platform.machine()
    return (f"Machine: {os.cpu_count()} cores, {cpu}; {', '.join(versions)}; "
            f"date {time.strftime('%Y-%m-%d')}.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer documents and passes")
    ap.add_argument("--out", help="also write the markdown tables to this file")
    ap.add_argument("--plot", help="also write an SVG bar chart of the 1 MB results to this file")
    ap.add_argument("--goals", type=int, metavar="ROUNDS",
                    help="only the goal ratios, as medians over ROUNDS interleaved rounds")
    args = ap.parse_args()
    text = header() + "\n" + (goals(args.goals) if args.goals else run(args.quick))
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    if args.plot:
        from plot import bar_chart_svg

        with open(args.plot, "w", encoding="utf-8") as f:
            f.write(bar_chart_svg("JSON text tools on ~1 MB documents (MB/s)", PLOT, "MB/s"))


if __name__ == "__main__":
    main()
