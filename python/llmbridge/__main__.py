"""The llmbridge command line: ``llmbridge demo`` and ``python -m llmbridge demo``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(calls=args.calls, concurrency=args.concurrency, seed=args.seed)


def _repair(args: argparse.Namespace) -> int:
    import json

    from . import JSONRepairError, repair_report

    text = sys.stdin.read()
    try:
        report = repair_report(text)
    except JSONRepairError as exc:
        print(f"llmbridge repair: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(report.json + "\n")
    if args.report:
        info = {"changed": report.changed, "truncated": report.truncated,
                "repairs": [{"kind": r.kind, "position": r.position} for r in report.repairs]}
        print(json.dumps(info), file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="llmbridge", description="Native LLM client tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="repair sample answers and run extractions against the bundled mock server")
    demo.add_argument("--calls", type=int, default=300, help="extractions to run (default 300)")
    demo.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    demo.add_argument("--seed", type=int, default=7, help="scenario seed")
    demo.set_defaults(func=_demo)
    rep = sub.add_parser("repair", help="stdin -> repaired JSON on stdout")
    rep.add_argument("--report", action="store_true", help="print what was repaired (JSON, on stderr)")
    rep.set_defaults(func=_repair)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
