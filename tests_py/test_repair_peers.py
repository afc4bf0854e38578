"""llmbridge against the peers' own test expectations (json-repair, fast-json-repair).

tests_py/data/peer_repair_expectations.json holds (input, expected value) pairs harvested
from the test suites shipped in the peers' sdists by
scripts/harvest_repair_expectations.py (facts, not code). For each case llmbridge's answer
is ``json.loads(llmbridge.repair_json(input))``, or "raises" when it raises
JSONRepairError; the peers' "no JSON here" answer ("") agrees with "raises". Values are
compared strictly (1 != 1.0, True != 1), key order aside.

Every disagreement is either an intended difference (llmbridge's documented policy,
docs/json-repair.md) or a known defect (listed with what goes wrong). An unexplained
disagreement fails, and so does an entry that no longer disagrees: remove it when a fix
makes llmbridge agree. Run with -s to see the agreement table.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import llmbridge

DATA = Path(__file__).resolve().parent / "data" / "peer_repair_expectations.json"

# Raw agreement: 142/213 = 66.7 % before issue 12's fixes; 200/226 = 88.5 % after them.
AGREEMENT_FLOOR = 0.88
# Agreement where llmbridge's documented policy does not deliberately differ (the cases
# left after INTENDED_DIFFERENCES): 200/205 = 97.6 % after issue 12. Issue 12 asks >= 90 %.
POLICY_AGREEMENT_FLOOR = 0.90

RAISES = "raises"

# ---------------------------------------------------------------------------------------
# Intended differences: llmbridge's documented policy (docs/json-repair.md, "Policy" and
# "Catalogue") deliberately answers otherwise. The category names the policy row.

SEVERAL_VALUES = "several values -> a list of all of them (policy: several JSON values)"
FIRST_FENCE = "several fenced blocks -> the first JSON block (policy: several fenced blocks)"
MISSING_VALUE_NULL = 'missing value -> null, not "" (policy: missing value)'
TRUNCATED_KEY_DROPPED = "cut off after a key -> the key is dropped (policy: cut off after a key)"
TRUNCATED_TEXT_KEPT = "cut off inside a string -> the text written so far is kept (policy)"
TOP_LEVEL_VALUE = (
    "a lone literal or string is a JSON value, not 'no JSON' (catalogue: literal_mapped; "
    "valid JSON passes unchanged)"
)
INVALID_ESCAPE_KEPT = "an invalid escape keeps its backslash (policy: invalid escape \\p)"
INNER_QUOTE = "an inner quote stays content when what follows cannot end a string (policy)"
MISMATCHED_CLOSER = "a mismatched closer closes the open container (policy: mismatched closer)"
TEXT_VERBATIM = "string content is kept as written, never reinterpreted (catalogue: string_escaped)"

INTENDED_DIFFERENCES: dict[str, str] = {
    # json-repair keeps only the last of several non-empty values
    '[{"key":"value"}][{"key":"value_after"}]': SEVERAL_VALUES,
    'lorem ```json {"key":"value"} ``` ipsum ```json [1,2,3,True] ``` 42': FIRST_FENCE,
    # json-repair fills a missing value with ""
    '{"key": , "key2": "value2"}': MISSING_VALUE_NULL,
    '{"key": true, "key2": false, "key3": }': MISSING_VALUE_NULL,
    '{"key": "value"}, "key2": }': MISSING_VALUE_NULL,
    '{ "key": ["arrayvalue"], "key3": "value3", ["arrayvalue1"] }': MISSING_VALUE_NULL,
    # truncation: json-repair keeps a dangling key as ["key"]
    '[{"key": "value", "key': TRUNCATED_KEY_DROPPED,
    # json-repair keeps half an escape as a backslash, drops a final escaped newline and
    # reads `key2:value2` out of the cut-off text
    '{"key": "val\\': TRUNCATED_TEXT_KEPT,
    '{"key": "val\\n': TRUNCATED_TEXT_KEPT,
    '{"key": "val\\n123,`key2:value2': TRUNCATED_TEXT_KEPT,
    # json-repair never returns a top-level literal or string ("" instead)
    "True": TOP_LEVEL_VALUE,
    "False": TOP_LEVEL_VALUE,
    "Null": TOP_LEVEL_VALUE,
    '""': TOP_LEVEL_VALUE,  # valid JSON: passes through unchanged
    "'\"'": TOP_LEVEL_VALUE,
    # fast-json-repair drops the backslash of \x; llmbridge keeps C:\Users-style text
    '{"text": "\\x41"}': INVALID_ESCAPE_KEPT,
    # json-repair keeps the final quote as content ("v\"alue\""); llmbridge ends there
    '{"key": "v"alue"}': INNER_QUOTE,
    # a quote followed by ':' cannot end a value; llmbridge keeps '{ b": {} }' (no text lost)
    '{ "a" : "{ b": {} }" }': INNER_QUOTE,
    # json-repair drops the {} that the ] closes; llmbridge keeps the object the model opened
    "[{]": MISMATCHED_CLOSER,
    # json-repair strips the newline from the key and parses JSON out of a string value
    '{"key_1\n": "value"}': TEXT_VERBATIM,
    '{"key": "```json {"key": [{"key1": 1},{"key2": 2}]}```"}': TEXT_VERBATIM,
}

# ---------------------------------------------------------------------------------------
# Known defects: damage llmbridge still reads otherwise than the model meant and the
# peer's answer is better. Remove an entry when llmbridge agrees (test_no_stale_entries
# says which). Issue 12's seven classes are fixed; these remain.

OTHER_MISSING_OPENER = "an inner array lost its [ (elements after it read as the outer array's)"
OTHER_NESTED_INNER_QUOTES = "several inner quotes and a stray quote-comma in one element"
OTHER_COMMA_FOR_COLON = 'a comma where the colon belongs ("key", 105) makes values keys'
OTHER_QUADRUPLE_QUOTE = 'a stray """" between members (json-repair splits the object in two)'
OTHER_OVERESCAPED = 'over-escaped quotes (\\\\") in a nested JSON string'

KNOWN_DEFECTS: dict[str, str] = {
    '{"headers": ["A", "B", "C"], "rows": [["r1a", "r1b", "r1c"], ["r2a", "r2b", "r2c"], '
    '"r3a", "r3b", "r3c"], ["r4a", "r4b", "r4c"], ["r5a", "r5b", "r5c"]]}': OTHER_MISSING_OPENER,
    '{"key": ["lorem "ipsum" dolor "sit" amet, "consectetur" ", "lorem "ipsum" dolor", "lorem"]}': (
        OTHER_NESTED_INNER_QUOTES
    ),
    '{"key", 105,12,': OTHER_COMMA_FOR_COLON,  # json-repair: {"key": "105,12"}
    '[{"lorem": {"ipsum": "sic"}, """" "lorem": {"ipsum": "sic"}]': OTHER_QUADRUPLE_QUOTE,
    '{"key": "{\\\\"key\\\\\\":[\\"value\\\\\\"],\\"key2\\":"value2"}"}': OTHER_OVERESCAPED,
}


# ---------------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    """A type-aware canonical form: 1 != 1.0 != True; key order does not matter."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def llmbridge_answer(text: str) -> str:
    try:
        return canonical(json.loads(llmbridge.repair_json(text)))
    except llmbridge.JSONRepairError:
        return RAISES


def peer_answer(case: dict[str, Any]) -> str:
    if case["expected_kind"] == "no_json":
        return RAISES
    return canonical(json.loads(case["expected"]))


@lru_cache(maxsize=1)
def results() -> tuple[dict[str, Any], ...]:
    cases = json.loads(DATA.read_text(encoding="utf-8"))["cases"]
    out = []
    for case in cases:
        expected, got = peer_answer(case), llmbridge_answer(case["input"])
        packages = sorted({case["package"], *(ref["package"] for ref in case["also_in"])})
        out.append({**case, "packages": packages, "want": expected, "got": got})
    return tuple(out)


def verdict(r: dict[str, Any]) -> str:
    if r["want"] == r["got"]:
        return "agree"
    if r["input"] in INTENDED_DIFFERENCES:
        return "intended"
    if r["input"] in KNOWN_DEFECTS:
        return "defect"
    return "unexplained"


def where(r: dict[str, Any]) -> str:
    return f"{r['package']} {r['version']} {r['file']}:{r['line']} {r['function']}"


def table() -> str:
    rows = results()
    sources = sorted({p for r in rows for p in r["packages"]})
    head = f"{'source':<18}{'cases':>6}{'agree':>6}{'intended':>9}{'defects':>8}"
    head += f"{'unexpl.':>8}{'agree %':>9}"
    lines = ["", "llmbridge vs the peers' own test expectations", head]
    for name, subset in [(s, [r for r in rows if s in r["packages"]]) for s in sources] + [
        ("all (unique)", list(rows))
    ]:
        n = Counter(verdict(r) for r in subset)
        lines.append(
            f"{name:<18}{len(subset):>6}{n['agree']:>6}{n['intended']:>9}{n['defect']:>8}"
            f"{n['unexplained']:>8}{100 * n['agree'] / len(subset):>8.1f}%"
        )
    for title, table_ in (("intended", INTENDED_DIFFERENCES), ("defect", KNOWN_DEFECTS)):
        by = Counter(table_[r["input"]] for r in rows if verdict(r) == title)
        lines.append(f"{title} differences by category:")
        lines += [f"  {count:>3}  {category}" for category, count in sorted(by.items())]
    return "\n".join(lines)


def test_data_file_is_there() -> None:
    rows = results()
    assert len(rows) >= 150
    assert {p for r in rows for p in r["packages"]} == {"fast-json-repair", "json-repair"}


def test_entries_name_harvested_inputs() -> None:
    inputs = {r["input"] for r in results()}
    unknown = sorted((set(INTENDED_DIFFERENCES) | set(KNOWN_DEFECTS)) - inputs)
    assert not unknown, f"entries for inputs not in {DATA.name}: {unknown}"
    both = sorted(set(INTENDED_DIFFERENCES) & set(KNOWN_DEFECTS))
    assert not both, f"inputs both intended and known defects: {both}"


def test_no_unexplained_differences() -> None:
    bad = [r for r in results() if verdict(r) == "unexplained"]
    report = "\n".join(
        f"{where(r)}\n  input:    {r['input']!r}\n  expected: {r['want']}\n  got:      {r['got']}"
        for r in bad
    )
    assert not bad, (
        f"{len(bad)} disagreements are neither in INTENDED_DIFFERENCES nor in KNOWN_DEFECTS "
        f"(classify each):\n{report}"
    )


def test_no_stale_entries() -> None:
    stale = [r for r in results() if r["want"] == r["got"]]
    stale_intended = [r["input"] for r in stale if r["input"] in INTENDED_DIFFERENCES]
    stale_defects = [r["input"] for r in stale if r["input"] in KNOWN_DEFECTS]
    assert not stale_intended, (
        f"llmbridge now agrees with the peers: remove from INTENDED_DIFFERENCES: {stale_intended}"
    )
    assert not stale_defects, (
        f"llmbridge now agrees with the peers (fixed!): remove from KNOWN_DEFECTS: {stale_defects}"
    )


def test_agreement_floor() -> None:
    rows = results()
    agree = sum(r["want"] == r["got"] for r in rows)
    print(table())
    ratio = agree / len(rows)
    assert ratio >= AGREEMENT_FLOOR, (
        f"agreement {agree}/{len(rows)} = {ratio:.3f} fell below AGREEMENT_FLOOR {AGREEMENT_FLOOR}"
    )
    comparable = [r for r in rows if verdict(r) != "intended"]
    policy_ratio = agree / len(comparable)
    print(f"agreement outside the documented policy differences: {agree}/{len(comparable)} "
          f"= {100 * policy_ratio:.1f}%")  # fmt: skip
    assert policy_ratio >= POLICY_AGREEMENT_FLOOR
