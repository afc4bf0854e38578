"""The examples in docs/ are what the code does."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import llmbridge

DOCS = Path(__file__).resolve().parent.parent / "docs"
ROW = re.compile(r"^\| (?P<kind>[^|]+) \| `` (?P<input>.+?) `` \| `` (?P<output>.+?) `` \|$")


def catalogue() -> list[tuple[str, str, str]]:
    rows = []
    for line in (DOCS / "json-repair.md").read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m["kind"].strip(), ast.literal_eval(m["input"]), m["output"]))
    return rows


def test_catalogue_is_not_empty() -> None:
    assert len(catalogue()) >= 30


@pytest.mark.parametrize("kind,text,expected", catalogue())
def test_catalogue_row(kind: str, text: str, expected: str) -> None:
    report = llmbridge.repair_report(text)
    assert report.json == expected
    for name in re.findall(r"[a-z_]+(?= |,|$)", kind.split("(")[0]):
        assert name in report.kinds
    assert report.truncated == ("(truncated)" in kind)


def test_report_example() -> None:
    r = llmbridge.repair_report('```json\n{"total": 12.5, "items": [1, 2,\n```')
    assert (r.json, r.changed, r.truncated) == ('{"total":12.5,"items":[1,2]}', True, True)
    assert sorted(r.kinds) == ["comma_removed", "container_closed", "fence_stripped"]
    assert r.repairs[0] == llmbridge.Repair("fence_stripped", 8)
