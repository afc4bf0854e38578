"""The official JSON-Schema-Test-Suite (draft 2020-12) against llmbridge.validate.

The data is harvested by scripts/harvest_schema_suite.py (see
tests_py/data/json_schema_suite/README.md). Every case runs; a case whose schema holds a
keyword the validator does not check (llmbridge.check_schema() lists it: a remote $ref,
unevaluatedProperties, $dynamicRef, a custom meta-schema, a \\p{...} regex) counts as
"unsupported", never as a pass. The per-file table prints with ``pytest -s`` and is
copied into docs/schema-validation.md.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import llmbridge
import pytest

SUITE = Path(__file__).parent / "data" / "json_schema_suite"

# Files about keywords the validator does not implement: their cases are expected to be
# unsupported (reported, not checked) and are left out of the pass-rate assertion.
UNSUPPORTED_FILES = {
    "dynamicRef.json",
    "refRemote.json",
    "unevaluatedItems.json",
    "unevaluatedProperties.json",
    "vocabulary.json",
    "optional/cross-draft.json",
}

# Cases of supported files where llmbridge's verdict differs from the suite's, each with
# its reason: (file, group description, test description) -> reason. A failure not listed
# here fails the test, and so does a listed case that passes (the list stays exact).
KNOWN_EXCEPTIONS: dict[tuple[str, str, str], str] = {}

MIN_PASS_RATE = 0.99


def suite_files() -> list[Path]:
    return sorted(SUITE.glob("*.json")) + sorted((SUITE / "optional").glob("*.json"))


def run_case(schema: Any, data: Any) -> bool:
    """llmbridge's verdict: True when valid. The Python-value path and the JSON-text
    path (what a client runs on an answer) must agree on every case."""
    by_value = not llmbridge.validate(data, schema)
    by_text = not llmbridge.compile_schema(schema).validate_json(json.dumps(data))
    assert by_value == by_text, (schema, data)
    return by_value


def run_suite() -> tuple[dict[str, dict[str, int]], dict[tuple[str, str, str], str]]:
    """Per-file counts and the failing cases (key -> what llmbridge said)."""
    table: dict[str, dict[str, int]] = {}
    failures: dict[tuple[str, str, str], str] = {}
    for path in suite_files():
        name = str(path.relative_to(SUITE))
        counts = {"passed": 0, "failed": 0, "unsupported": 0}
        for group in json.loads(path.read_text(encoding="utf-8")):
            schema = group["schema"]
            unsupported = llmbridge.check_schema(schema)
            for case in group["tests"]:
                # Unsupported cases run too: they must not raise or crash.
                verdict = run_case(schema, case["data"])
                if unsupported:
                    counts["unsupported"] += 1
                elif verdict == case["valid"]:
                    counts["passed"] += 1
                else:
                    counts["failed"] += 1
                    said = llmbridge.validate(case["data"], schema)[:1] or "valid"
                    failures[(name, group["description"], case["description"])] = repr(said)
        table[name] = counts
    return table, failures


def rate(counts: dict[str, int]) -> float:
    checked = counts["passed"] + counts["failed"]
    return counts["passed"] / checked if checked else 1.0


def markdown_table(table: dict[str, dict[str, int]]) -> str:
    lines = [
        "| file | cases | passed | failed | unsupported | pass rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    totals = {"passed": 0, "failed": 0, "unsupported": 0}
    for name, c in table.items():
        total = sum(c.values())
        checked = c["passed"] + c["failed"]
        shown = f"{100 * rate(c):.1f} %" if checked else "-"
        lines.append(
            f"| {name} | {total} | {c['passed']} | {c['failed']} | {c['unsupported']} | {shown} |"
        )
        for k in totals:
            totals[k] += c[k]
    lines.append(
        f"| **all** | {sum(totals.values())} | {totals['passed']} | {totals['failed']} | "
        f"{totals['unsupported']} | {100 * rate(totals):.1f} % |"
    )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def suite() -> tuple[dict[str, dict[str, int]], dict[Any, str]]:
    # Unsupported keywords are logged once per schema: keep the run's output readable.
    log = logging.getLogger("llmbridge")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return run_suite()
    finally:
        log.setLevel(level)


def test_suite_is_harvested() -> None:
    files = [str(p.relative_to(SUITE)) for p in suite_files()]
    assert len(files) >= 50, files
    assert "type.json" in files and "optional/bignum.json" in files
    assert (SUITE / "LICENSE").exists() and (SUITE / "README.md").exists()


def test_pass_rate_per_file(suite: tuple[dict[str, dict[str, int]], dict[Any, str]]) -> None:
    table, _ = suite
    print("\n" + markdown_table(table))
    low = {
        name: f"{100 * rate(c):.1f} %"
        for name, c in table.items()
        if name not in UNSUPPORTED_FILES and rate(c) < MIN_PASS_RATE
    }
    assert not low, f"files below {MIN_PASS_RATE:.0%}: {low}"
    supported_cases = sum(
        c["passed"] + c["failed"] for n, c in table.items() if n not in UNSUPPORTED_FILES
    )
    assert supported_cases >= 1000


def test_failures_are_exactly_the_known_exceptions(
    suite: tuple[dict[str, dict[str, int]], dict[Any, str]],
) -> None:
    _, failures = suite
    new = {k: v for k, v in failures.items() if k not in KNOWN_EXCEPTIONS}
    assert not new, f"new failures (fix them or list them with a reason): {new}"
    fixed = [k for k in KNOWN_EXCEPTIONS if k not in failures]
    assert not fixed, f"listed exceptions that now pass (remove them): {fixed}"


def test_unsupported_files_are_reported_not_passed(
    suite: tuple[dict[str, dict[str, int]], dict[Any, str]],
) -> None:
    table, _ = suite
    for name in UNSUPPORTED_FILES:
        counts = table[name]
        # Most of such a file is unsupported; the few cases without the keyword may pass.
        assert counts["unsupported"] > counts["passed"], (name, counts)
