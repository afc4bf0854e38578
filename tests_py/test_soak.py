"""A small fault soak (bench/soak.py) in the test suite.

2,000 calls, 10 % of them hit by a server fault, 64 in flight, through the same code as
`python3 bench/soak.py`: a MockLLMServer in a child process answers each call as its
seeded plan says, and the soak checks every call's outcome, the server's request count
per call, and the process's fds / threads / RSS after close(). No wall-clock assertions:
the latency bound is reported by the soak, not asserted here.

bench/ is not a package and is not on sys.path; the module is loaded from its file.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH_SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


def _load_soak() -> ModuleType:
    name = "llmbridge_bench_soak"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, BENCH_SOAK)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return module


soak = _load_soak()

KINDS = soak.ALL_KINDS
LATENCY = "max latency"  # reported by the soak, not asserted: no wall-clock checks here


def failed_invariants(result: Any) -> list[str]:
    return [f"{name}: {figures}" for name, holds, figures in result.invariants()
            if not holds and not name.startswith(LATENCY)]


def test_soak_2000_calls_10_percent_faults() -> None:
    cfg = soak.SoakConfig(calls=2000, faults=0.10, concurrency=64, kinds=KINDS, seed=7,
                          timeout=1.0, max_retries=2, rss_limit_mb=50.0)
    result = soak.run_soak(cfg)
    report = soak.format_text(result)

    assert failed_invariants(result) == [], report
    # the invariants, spelled out
    assert result.started == result.returned == 2000, report
    assert result.raised == result.stranded == result.loop_errors == 0, report
    assert result.mismatches == 0, report
    assert result.server_count_mismatches == 0, report
    assert result.after_close.fds == result.before.fds, report
    assert result.after_close.threads == result.before.threads, report
    assert result.after_close.rss_mib - result.before.rss_mib < 50.0, report
    assert result.server_open_after_close == 0, report
    # the run exercised every kind (and both modes of the retryable ones)
    planned = {key.split("/")[0] for key, (calls, _) in result.outcomes.items() if calls}
    assert planned == {"none", *KINDS}, report
    for kind in soak.RETRYABLE_KINDS & set(KINDS):
        for mode in ("persistent", "transient"):
            assert result.outcomes.get(f"{kind}/{mode}", [0])[0] > 0, (kind, mode, report)
    assert sum(result.attempts_hist.values()) == 2000


def test_plan_is_seeded_and_matches_the_fraction() -> None:
    kinds = soak.parse_kinds("all,-gzip")
    assert "gzip" not in kinds and "bad_utf8" in kinds
    a = soak.make_plan(20_000, 0.10, kinds, seed=3)
    assert a == soak.make_plan(20_000, 0.10, kinds, seed=3)
    assert a != soak.make_plan(20_000, 0.10, kinds, seed=4)
    faulted = sum(1 for k in a[0] if k)
    assert 1800 < faulted < 2200
    with pytest.raises(ValueError, match="unknown fault kind"):
        soak.parse_kinds("all,-nonsense")


def test_soak_reset_is_not_resent_behind_the_retry_count() -> None:
    # Regression: libcurl re-sent a POST on its own when a reused keep-alive connection
    # died after the server read it, so the server got more requests than
    # attempt.attempts (up to 12 for max_retries=2), and a single reset came back as a
    # success with attempts == 1.
    cfg = soak.SoakConfig(calls=400, faults=0.5, concurrency=16, kinds=("reset",), seed=1,
                          timeout=1.0, max_retries=2)
    result = soak.run_soak(cfg)
    assert failed_invariants(result) == [], soak.format_text(result)


def test_soak_invalid_utf8_bodies_complete() -> None:
    # Regression: invalid UTF-8 in a body raised UnicodeDecodeError in the completion
    # queue's drain, and the call, with every call drained beside it, never completed.
    cfg = soak.SoakConfig(calls=60, faults=0.5, concurrency=60, kinds=("bad_utf8", "gzip"),
                          seed=1, timeout=0.5, max_retries=1, deadline=3.0)
    result = soak.run_soak(cfg)
    assert failed_invariants(result) == [], soak.format_text(result)
