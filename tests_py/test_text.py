"""Example tests for the JSON text core: fences, repair policy, reports, loads, errors.

Each repair case pins the parsed value (not the exact text: the repairer re-emits
compact JSON), the repair kinds that must be reported, and the truncation verdict.
Every case also checks the invariants that hold for any input: the output parses
with json.loads and with the library's own validator, repairing is idempotent,
repair_report agrees with repair_json, and every reported position lies in the input.

Bugs these tests found are fixed; their tests stay (test_regression_*) so they stay
fixed.
"""

from __future__ import annotations

import json
import math
from typing import Any, Union

import pytest

import llmbridge
from llmbridge import JSONRepairError, LLMBridgeError

Text = Union[str, bytes, bytearray, memoryview]

ALL_KINDS = {
    "fence_stripped", "prose_skipped", "trailing_text_dropped", "values_concatenated",
    "comment_removed", "quote_normalised", "key_quoted", "string_quoted", "comma_inserted",
    "comma_removed", "colon_inserted", "value_defaulted", "literal_mapped", "nonfinite_nulled",
    "number_normalised", "string_escaped", "escape_fixed", "string_closed", "container_closed",
    "bracket_fixed", "garbage_skipped", "literal_completed", "key_dropped", "call_unwrapped",
    "ellipsis_removed", "invalid_utf8_replaced",
}  # fmt: skip


def utf8_len(text: Text) -> int:
    if isinstance(text, str):
        return len(text.encode("utf-8", "surrogatepass"))
    return len(bytes(text))


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also tells int from float and bool from int, recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b


def has_big_int(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif type(v) is int and not -(2**63) <= v < 2**64:
            return True
    return False


def check_invariants(text: Text) -> llmbridge.RepairReport:
    """What must hold for every input that repairs: returns the report."""
    out = llmbridge.repair_json(text)
    assert isinstance(out, str)
    json.loads(out)  # always valid JSON
    # The library's own validator (simdjson) must accept the output; the one known
    # gap is integers beyond 64 bits (see test_bug_valid_json_beyond_simdjson_*).
    assert llmbridge.is_valid_json(out) or has_big_int(json.loads(out)), out
    assert llmbridge.repair_json(out) == out  # idempotent
    report = llmbridge.repair_report(text)
    assert report.json == out
    assert set(report.kinds) <= ALL_KINDS
    n = utf8_len(text)
    for r in report.repairs:
        assert 0 <= r.position <= n, (r, n)
    if not report.changed:
        assert report.repairs == ()
        assert not report.truncated
    return report


# --------------------------------------------------------------------------------------
# Repair catalogue: (input, expected value, kinds that must be reported, truncated)
# --------------------------------------------------------------------------------------

CASES: list[tuple[str, Any, set[str], bool]] = [
    # fences and prose
    ('```json\n{"a": 1}\n```', {"a": 1}, {"fence_stripped"}, False),
    ('```JSON\n{"a": 1}\n```', {"a": 1}, {"fence_stripped"}, False),
    ('~~~json\n[1, 2]\n~~~', [1, 2], {"fence_stripped"}, False),
    ('Sure! Here it is:\n```json\n{"a": 1,}\n```\nLet me know.', {"a": 1},
     {"fence_stripped", "comma_removed"}, False),
    ('Here is the result: {"a": 1} Hope this helps!', {"a": 1},
     {"prose_skipped", "trailing_text_dropped"}, False),
    ('Result: {"a": [1, 2]}', {"a": [1, 2]}, {"prose_skipped"}, False),
    ('As shown in [1], the answer is {"a": 1}', {"a": 1}, {"prose_skipped"}, False),
    ("<think>Maybe {x} or [1, 2]? Let me see.</think>\n{\"a\": 1}", {"a": 1},
     {"prose_skipped"}, False),
    ('Run:\n```bash\nls\n```\nThen:\n```json\n{"ok": true}\n```\n```json\n{"no": 1}\n```',
     {"ok": True}, {"fence_stripped"}, False),
    ('```json\n{"a": [1, 2', {"a": [1, 2]}, {"fence_stripped", "container_closed"}, True),
    ('{"a": 1}```', {"a": 1}, {"fence_stripped"}, False),
    # quotes
    ("{'a': 'b'}", {"a": "b"}, {"quote_normalised"}, False),
    ("{'a': 'it's ok'}", {"a": "it's ok"}, {"quote_normalised"}, False),
    ("{'a': 'say \"hi\"'}", {"a": 'say "hi"'}, {"quote_normalised"}, False),
    ("{\u201ca\u201d: \u201cb\u201d}", {"a": "b"}, {"quote_normalised"}, False),
    ("{\u2018a\u2019: \u2018b\u2019}", {"a": "b"}, {"quote_normalised"}, False),
    ("'just a string'", "just a string", {"quote_normalised"}, False),
    # keys
    ("{a: 1, b_c: 2, $d: 3}", {"a": 1, "b_c": 2, "$d": 3}, {"key_quoted"}, False),
    ("{a:1,b:2}", {"a": 1, "b": 2}, {"key_quoted"}, False),
    ("{1: 'x'}", {"1": "x"}, {"key_quoted"}, False),
    # commas
    ("[1, 2,]", [1, 2], {"comma_removed"}, False),
    ('{"a": 1,}', {"a": 1}, {"comma_removed"}, False),
    ("[,1]", [1], {"comma_removed"}, False),
    ('{,"a": 1}', {"a": 1}, {"comma_removed"}, False),
    ("[1,,2]", [1, 2], {"comma_removed"}, False),
    ('{"a": 1,, "b": 2}', {"a": 1, "b": 2}, {"comma_removed"}, False),
    ("[1 2 3]", [1, 2, 3], {"comma_inserted"}, False),
    ('{"a": 1 "b": 2}', {"a": 1, "b": 2}, {"comma_inserted"}, False),
    ('{"a": 1\n"b": 2}', {"a": 1, "b": 2}, {"comma_inserted"}, False),
    ('[{"a": 1} {"b": 2}]', [{"a": 1}, {"b": 2}], {"comma_inserted"}, False),
    ('{"a": "x" "b": 1}', {"a": "x", "b": 1}, {"comma_inserted"}, False),
    ("[[1,],[2,],]", [[1], [2]], {"comma_removed"}, False),
    # colons
    ('{"a" 1}', {"a": 1}, {"colon_inserted"}, False),
    ('{"a" "b"}', {"a": "b"}, {"colon_inserted"}, False),
    ('{"a" [1]}', {"a": [1]}, {"colon_inserted"}, False),
    # comments
    ('{"a": 1 // note\n}', {"a": 1}, {"comment_removed"}, False),
    ('{"a": /* c */ 1}', {"a": 1}, {"comment_removed"}, False),
    ('{"a": 1, # note\n"b": 2}', {"a": 1, "b": 2}, {"comment_removed"}, False),
    ("[1, // ] is not a closer\n 2]", [1, 2], {"comment_removed"}, False),
    # leading comments are skipped like prose (reported as prose_skipped)
    ("// header\n/* block */\n# hash\n[1, 2]", [1, 2], set(), False),
    # literals
    ('{"a": True, "b": False, "c": None}', {"a": True, "b": False, "c": None},
     {"literal_mapped"}, False),
    ('{"a": undefined}', {"a": None}, {"literal_mapped"}, False),
    ("[True, False, None, undefined]", [True, False, None, None], {"literal_mapped"}, False),
    ('{"a": NaN, "b": Infinity, "c": -Infinity}', {"a": None, "b": None, "c": None},
     {"nonfinite_nulled"}, False),
    ("[NaN, -Infinity, Infinity]", [None, None, None], {"nonfinite_nulled"}, False),
    # numbers
    ("[.5, 1., +1, 007, 1_000]", [0.5, 1.0, 1, 7, 1000], {"number_normalised"}, False),
    ('{"a": -.5, "b": 00, "c": 1_000_000}', {"a": -0.5, "b": 0, "c": 1000000},
     {"number_normalised"}, False),
    ('{"a": 1/3, "b": 2024-01-01, "c": 0x1F, "d": 1.2.3}',
     {"a": "1/3", "b": "2024-01-01", "c": "0x1F", "d": "1.2.3"}, {"string_quoted"}, False),
    ("[123456789012345678901234567890,]", [123456789012345678901234567890], {"comma_removed"},
     False),
    ("[-98765432109876543210987654321, 1.5,]", [-98765432109876543210987654321, 1.5],
     {"comma_removed"}, False),
    # strings
    ('{"p": "C:\\path"}', {"p": "C:\\path"}, {"escape_fixed"}, False),
    ('{"a": "\\x41"}', {"a": "\\x41"}, {"escape_fixed"}, False),
    ('{"a": "line1\nline2"}', {"a": "line1\nline2"}, {"string_escaped"}, False),
    ('{"a": "tab\there"}', {"a": "tab\there"}, {"string_escaped"}, False),
    ('{"a": "ctl\x01\x1f"}', {"a": "ctl\x01\x1f"}, {"string_escaped"}, False),
    ('{"a": "nul\x00"}', {"a": "nul\x00"}, {"string_escaped"}, False),
    ('{"a": "He said "hi" to me"}', {"a": 'He said "hi" to me'}, {"string_escaped"}, False),
    ('{"tv": "a 24" screen"}', {"tv": 'a 24" screen'}, {"string_escaped"}, False),
    ('{"a": "He said "hi", then left", "b": 1}', {"a": 'He said "hi", then left', "b": 1},
     {"string_escaped"}, False),
    ('{"a": "x\n"b": 1}', {"a": "x", "b": 1}, {"string_closed"}, False),
    ('{"a": "x\n}', {"a": "x"}, {"string_closed"}, False),
    ("{a: hello world}", {"a": "hello world"}, {"string_quoted", "key_quoted"}, False),
    # brackets
    ('{"a": [1, 2, "b": 3}', {"a": [1, 2], "b": 3}, {"bracket_fixed"}, False),
    ('{"a": [1, 2}', {"a": [1, 2]}, {"bracket_fixed"}, False),
    ('[{"a": 1]', [{"a": 1}], {"bracket_fixed"}, False),
    ("[1, 2]]", [1, 2], {"bracket_fixed"}, False),
    ('{"a": 1}}', {"a": 1}, {"bracket_fixed"}, False),
    ('{"a": 1}]', {"a": 1}, {"bracket_fixed"}, False),
    # truncation
    ('{"a": "hel', {"a": "hel"}, {"string_closed", "container_closed"}, True),
    ('{"a": 1, "b"', {"a": 1}, {"key_dropped"}, True),
    ('{"a": 1, "b":', {"a": 1}, {"key_dropped"}, True),
    ('{"a": 1, "b": ', {"a": 1}, {"key_dropped"}, True),
    ('{"a": 1, "b', {"a": 1}, {"key_dropped"}, True),
    ('{"a": 1,', {"a": 1}, {"container_closed"}, True),
    ('{"a": tru', {"a": True}, {"literal_completed"}, True),
    ('[true, fal', [True, False], {"literal_completed"}, True),
    ("[nu", [None], {"literal_completed"}, True),
    ("[1, 2.", [1, 2.0], {"container_closed"}, True),
    ("[1, 2", [1, 2], {"container_closed"}, True),
    ("[1, 2, -", [1, 2], {"container_closed"}, True),
    ('{"a": {"b": [1, {"c": "d', {"a": {"b": [1, {"c": "d"}]}}, {"container_closed"}, True),
    ('"abc', "abc", {"string_closed"}, True),
    ('{"a": "x\\', {"a": "x"}, {"container_closed"}, True),
    ('{"a": "x\\u00', {"a": "x"}, {"container_closed"}, True),
    ("[[[", [[[]]], {"container_closed"}, True),
    # missing values
    ('{"a": , "b": 2}', {"a": None, "b": 2}, {"value_defaulted"}, False),
    ('{"a": }', {"a": None}, {"value_defaulted"}, False),
    # several values, trailing text
    ('{"a": 1}{"b": 2}', [{"a": 1}, {"b": 2}], {"values_concatenated"}, False),
    ('{"a": 1}\n{"b": 2}\n{"c": 3}\n', [{"a": 1}, {"b": 2}, {"c": 3}],
     {"values_concatenated"}, False),
    ("[1][2]", [[1], [2]], {"values_concatenated"}, False),
    ('{"a": 1} trailing words', {"a": 1}, {"trailing_text_dropped"}, False),
    ('{"a": 1}\nThat is all.', {"a": 1}, {"trailing_text_dropped"}, False),
    # MongoDB shell, ellipsis, tuples
    ('{"_id": ObjectId("5f1e"), "n": NumberLong(2), "d": ISODate("2024-01-01")}',
     {"_id": "5f1e", "n": 2, "d": "2024-01-01"}, {"call_unwrapped"}, False),
    ("[1, 2, ...]", [1, 2], {"ellipsis_removed"}, False),
    ("[1, 2, \u2026]", [1, 2], {"ellipsis_removed"}, False),
    ('{"a": 1, ...}', {"a": 1}, {"ellipsis_removed"}, False),
    ("(1, 2)", [1, 2], {"bracket_fixed"}, False),
    ('{"a": (1, 2)}', {"a": [1, 2]}, set(), False),
    ("[(1, 2), (3, 4)]", [[1, 2], [3, 4]], set(), False),
    # strings in arrays followed by Python literals, comments, missing commas
    ("['a', None]", ["a", None], {"literal_mapped"}, False),
    ("['', None]", ["", None], {"literal_mapped"}, False),
    ('["a", True, "b", False]', ["a", True, "b", False], {"literal_mapped"}, False),
    ('{"a": ["x", True, "y", None]}', {"a": ["x", True, "y", None]}, {"literal_mapped"}, False),
    ("('a', None)", ["a", None], {"literal_mapped"}, False),
    ('["a", undefined]', ["a", None], {"literal_mapped"}, False),
    ('["a",\nTrue]', ["a", True], {"literal_mapped"}, False),
    ('["a", -Infinity]', ["a", None], {"nonfinite_nulled"}, False),
    ('["x" "y"]', ["x", "y"], {"comma_inserted"}, False),
    ('["x"\n  1]', ["x", 1], {"comma_inserted"}, False),
    ('["x"\n  null]', ["x", None], {"comma_inserted"}, False),
    ('[\n  "x"\n  {"a": 1}\n]', ["x", {"a": 1}], {"comma_inserted"}, False),
    ('["x", // c\n "y"]', ["x", "y"], {"comment_removed"}, False),
    ('["x", /* c */ "y"]', ["x", "y"], {"comment_removed"}, False),
    ('["x" // c\n, "y"]', ["x", "y"], {"comment_removed"}, False),
    ('{"a": "x", // c\n "b": 1}', {"a": "x", "b": 1}, {"comment_removed"}, False),
    ('{"a": "x", /* c */ "b": 1}', {"a": "x", "b": 1}, {"comment_removed"}, False),
    ('{"a": "x"\n b: 1}', {"a": "x", "b": 1}, {"comma_inserted", "key_quoted"}, False),
    ('["x",]', ["x"], {"comma_removed"}, False),
    ('{"a": "x", }', {"a": "x"}, {"comma_removed"}, False),
    # white space marks
    ('\ufeff{"a": 1,}', {"a": 1}, {"comma_removed"}, False),
    ('{"a":\u00a01,\u200b}', {"a": 1}, {"comma_removed"}, False),
    ('\x00{"a": 1}\x00', {"a": 1}, set(), False),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected", "kinds", "truncated"), CASES)
def test_repair_case(text: str, expected: Any, kinds: set[str], truncated: bool) -> None:
    report = check_invariants(text)
    assert report.changed
    assert strict_equal(json.loads(report.json), expected), report.json
    assert kinds <= report.kinds, report.repairs
    assert report.truncated is truncated
    assert strict_equal(llmbridge.loads(text), expected)
    assert strict_equal(report.loads(), expected)
    if not report.truncated:
        assert not report.kinds & {"key_dropped", "literal_completed"}


def test_non_ascii_is_kept_as_is() -> None:
    out = llmbridge.repair_json("{'name': 'Zo\u00eb', 'city': '\u6771\u4eac', 'e': '\U0001f600'}")
    assert out == '{"name":"Zo\u00eb","city":"\u6771\u4eac","e":"\U0001f600"}'
    assert "\\u" not in out


def test_big_ints_stay_exact() -> None:
    big = 2**200 + 1
    assert llmbridge.loads(f"[{big},]") == [big]
    assert llmbridge.loads(f'{{"a": {big}}}') == {"a": big}
    assert llmbridge.loads(f"{{a: -{big}}}") == {"a": -big}
    assert llmbridge.repair_json(f"[{big},]") == f"[{big}]"


def test_repair_kinds_of_a_mixed_answer() -> None:
    text = (
        "Sure! Here's the data:\n```json\n{\n  // the user\n  name: 'Ann',\n  \"age\": 007,\n"
        '  "tags": ["a" , "b",],\n  "ok": True,\n  "score": NaN,\n  "note": "line\nbreak"\n'
    )
    report = check_invariants(text)
    assert llmbridge.loads(text) == {
        "name": "Ann", "age": 7, "tags": ["a", "b"], "ok": True, "score": None,
        "note": "line\nbreak",
    }  # fmt: skip
    assert report.truncated
    assert {
        "fence_stripped", "comment_removed", "key_quoted", "quote_normalised",
        "number_normalised", "comma_removed", "literal_mapped", "nonfinite_nulled",
        "string_escaped", "container_closed",
    } <= report.kinds  # fmt: skip


def test_repair_positions_point_at_the_repair() -> None:
    text = '{"a": 1,, "b": True, c: 2}'
    report = llmbridge.repair_report(text)
    where = {r.kind: r.position for r in report.repairs}
    assert text[where["comma_removed"]] == ","
    assert text[where["literal_mapped"] :].startswith("True")
    assert text[where["key_quoted"]] == "c"


# --------------------------------------------------------------------------------------
# Valid JSON: fast path, no change, no repairs
# --------------------------------------------------------------------------------------

VALID = [
    "{}", "[]", "0", "-0", "1.5e-3", '"x"', "true", "false", "null",
    '{"a": [1, 2.5, "x", true, null, {"b": {}}]}',
    '  {"a": 1}  \n', '\n\t[1]\r\n',
    '{"a": "\u201cquoted\u201d and \'single\'"}',
    '{"\u00e9": "\u65e5\u672c", "emoji": "\U0001f600"}',
    '"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"',
    '{"a": 1, "a": 2}',
    "[9223372036854775807, -9223372036854775808, 18446744073709551615]",
    '{"a": "```json\\n{}\\n```"}',
]  # fmt: skip


@pytest.mark.parametrize("text", VALID)
def test_valid_json_is_unchanged(text: str) -> None:
    assert llmbridge.is_valid_json(text)
    assert llmbridge.repair_json(text) is text  # the same object
    report = llmbridge.repair_report(text)
    assert report.json == text
    assert report.changed is False
    assert report.truncated is False
    assert report.repairs == ()
    assert report.kinds == set()
    assert strict_equal(llmbridge.loads(text), json.loads(text))
    assert strict_equal(llmbridge.loads(text, repair=False), json.loads(text))


@pytest.mark.parametrize("text", VALID)
def test_valid_json_as_bytes(text: str) -> None:
    raw = text.encode()
    for obj in (raw, bytearray(raw), memoryview(raw)):
        assert llmbridge.repair_json(obj) == text
        assert strict_equal(llmbridge.loads(obj), json.loads(text))
        assert llmbridge.is_valid_json(obj)


def test_is_valid_json_rejects_broken_text() -> None:
    for text in ["", " ", "{", "[1,]", "{'a': 1}", "{a: 1}", "[1] [2]", "NaN", '"a\nb"', "01"]:
        assert not llmbridge.is_valid_json(text), text


def test_loads_strict_mode_refuses_broken_text() -> None:
    with pytest.raises(JSONRepairError):
        llmbridge.loads("[1, 2,]", repair=False)
    with pytest.raises(JSONRepairError):
        llmbridge.loads('```json\n{"a": 1}\n```', repair=False)
    assert llmbridge.loads("[1, 2,]") == [1, 2]


# --------------------------------------------------------------------------------------
# Inputs with no JSON: a clean error with a position and a reason
# --------------------------------------------------------------------------------------

NO_JSON = [
    "", " ", "\n\t \r\n", "\u00a0\ufeff", "hello", "I cannot help with that.",
    "The answer is yes.", "```json\n\n```", "```\n   \n```", "<think>hmm</think>",
]  # fmt: skip


@pytest.mark.parametrize("text", NO_JSON)
def test_no_json_raises(text: str) -> None:
    for fn in (llmbridge.repair_json, llmbridge.loads, llmbridge.repair_report):
        with pytest.raises(JSONRepairError) as info:
            fn(text)
        err = info.value
        assert isinstance(err, ValueError)
        assert isinstance(err, LLMBridgeError)
        assert isinstance(err.position, int)
        assert 0 <= err.position <= utf8_len(text)
        assert isinstance(err.reason, str) and err.reason
        assert str(err)


def test_error_hierarchy() -> None:
    assert issubclass(JSONRepairError, ValueError)
    assert issubclass(JSONRepairError, LLMBridgeError)
    assert llmbridge.JSONRepairError is JSONRepairError


@pytest.mark.parametrize("bad", [1, 1.5, None, ["{}"], {"a": 1}, object()])
def test_wrong_input_types_raise_type_error(bad: Any) -> None:
    for fn in (
        llmbridge.repair_json, llmbridge.loads, llmbridge.repair_report,
        llmbridge.strip_markdown_fences, llmbridge.is_valid_json,
    ):  # fmt: skip
        with pytest.raises(TypeError):
            fn(bad)


def test_all_input_types_repair() -> None:
    text = "{'a': [1, 2,], b: None}"
    for obj in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        assert llmbridge.repair_json(obj) == '{"a":[1,2],"b":null}'
        assert llmbridge.loads(obj) == {"a": [1, 2], "b": None}
        assert llmbridge.repair_report(obj).json == '{"a":[1,2],"b":null}'


# --------------------------------------------------------------------------------------
# Robustness: bytes, NUL, invalid UTF-8, huge and deep inputs
# --------------------------------------------------------------------------------------


def test_invalid_utf8_becomes_replacement_character() -> None:
    report = llmbridge.repair_report(b'{"a": "x\xffy"}')
    assert json.loads(report.json) == {"a": "x\ufffdy"}
    assert "invalid_utf8_replaced" in report.kinds
    assert llmbridge.loads(b'{"a": "\xc3"}') == {"a": "\ufffd"}
    assert llmbridge.loads(b'["\xed\xa0\x80"]')[0] == "\ufffd" * 3  # an encoded surrogate


def test_lone_surrogate_in_str_input() -> None:
    out = llmbridge.repair_json('["\ud800"]')
    assert json.loads(out) == ["\ufffd" * 3]


def test_random_bytes_never_crash() -> None:
    import random

    rng = random.Random(1234)
    for _ in range(3000):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        try:
            out = llmbridge.repair_json(blob)
        except JSONRepairError:
            continue
        json.loads(out)
        assert llmbridge.repair_json(out) == out


def test_nul_bytes_everywhere() -> None:
    assert llmbridge.loads('\x00{"a":\x00 [1,\x00 2]\x00}\x00') == {"a": [1, 2]}
    assert llmbridge.loads('["\x00"]') == ["\x00"]
    for text in ("\x00" * 1000 + "[", "[\x00" * 100, '{"\x00": \x00\x00'):
        try:
            json.loads(llmbridge.repair_json(text))
        except JSONRepairError:
            pass
    with pytest.raises(JSONRepairError):
        llmbridge.repair_json("\x00\x00\x00")


def test_huge_string_value() -> None:
    body = "x" * 5_000_000
    assert llmbridge.loads('{"a": "' + body + '"}')["a"] == body
    assert llmbridge.loads("{'a': '" + body)["a"] == body  # truncated, single quotes
    big_list = "[" + "1," * 1_000_000 + "]"
    assert len(llmbridge.loads(big_list)) == 1_000_000


def nesting_depth(value: Any) -> int:
    """Depth of a chain of single-element containers, without recursion."""
    depth = 0
    while isinstance(value, (list, dict)):
        depth += 1
        if not value:
            break
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
    return depth


@pytest.mark.parametrize("depth", [1000, 9999, 10000])
def test_deep_nesting_up_to_the_limit(depth: int) -> None:
    valid = "[" * depth + "]" * depth
    assert nesting_depth(llmbridge.loads(valid)) == depth
    assert llmbridge.repair_json(valid) is valid
    broken = "[" * depth  # every closer missing
    report = llmbridge.repair_report(broken)
    assert report.truncated
    assert report.json == valid
    assert nesting_depth(llmbridge.loads(broken)) == depth
    objects = '{"a":' * depth + "1" + "}" * depth
    assert nesting_depth(llmbridge.loads(objects)) == depth
    assert nesting_depth(llmbridge.loads('{"a":' * depth + "1")) == depth


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10001 + "]" * 10000,
        "[" * 100_000,
        '{"a":' * 10001 + "1" + "}" * 10001,
        '{"a":' * 100_000,
        "[{'a': " * 60_000,
        "(" + "[" * 10001,
    ],
)
def test_too_deep_nesting_is_a_clean_error(text: str) -> None:
    for fn in (llmbridge.repair_json, llmbridge.loads, llmbridge.repair_report):
        with pytest.raises(JSONRepairError, match="nesting|deep") as info:
            fn(text)
        assert 0 <= info.value.position <= len(text)


# --------------------------------------------------------------------------------------
# Fences
# --------------------------------------------------------------------------------------

FENCE_BODIES = [
    "", "{}", '{"a": 1}', "```", "a\n```\nb", "```json\n{}\n```", "\n", "\r", "x```", "~~~",
    '{"code": "```py\\nprint(1)\\n```"}', "\n\n```\n", "  indented", "trailing  ", "`",
    "``", "```json", "\n```", "```\n", "~~~\n~~~", "line1\r\nline2",
]  # fmt: skip


@pytest.mark.parametrize("body", FENCE_BODIES)
@pytest.mark.parametrize(
    ("opener", "closer"),
    [
        ("```json\n", "\n```"), ("```JSON\n", "\n```"), ("```jsonc\n", "\n```"),
        ("```\n", "\n```"), ("~~~json\n", "\n~~~"), ("~~~\n", "\n~~~"),
    ],
)  # fmt: skip
def test_fence_law(body: str, opener: str, closer: str) -> None:
    assert llmbridge.strip_markdown_fences(opener + body + closer) == body


def test_fence_prose_and_block_choice() -> None:
    strip = llmbridge.strip_markdown_fences
    assert strip('Sure!\n```json\n{"a": 1}\n```\nLet me know.') == '{"a": 1}'
    assert strip("Text\n```\n[1, 2]\n```\nmore") == "[1, 2]"
    assert strip("a\n```py\nprint(1)\n```\nb\n```json\n[1]\n```") == "[1]"
    assert strip("a\n```py\nprint(1)\n```\nb") == "print(1)"
    assert strip('Two:\n```json\n{"a": 1}\n```\nand\n```json\n{"b": 2}\n```') == '{"a": 1}'
    # Rule 1 (the fence law) wins when the text starts and ends with a fence.
    assert strip('```json\n{"a": 1}\n```\n```json\n{"b": 2}\n```') == (
        '{"a": 1}\n```\n```json\n{"b": 2}'
    )
    assert strip('```json\n{"a": [1, 2') == '{"a": [1, 2'
    assert strip('Answer:\n```json\n{"a": [1,\n  2') == '{"a": [1,\n  2'


@pytest.mark.parametrize(
    "text", ["", "plain prose", '{"a": 1}', "two `ticks` only", "``not a fence``", "a ~~ b"]
)
def test_unfenced_text_is_unchanged(text: str) -> None:
    assert llmbridge.strip_markdown_fences(text) == text
    assert llmbridge.strip_markdown_fences(text.encode()) == text


# --------------------------------------------------------------------------------------
# Regressions: bugs these tests found, fixed; the tests keep them fixed
# --------------------------------------------------------------------------------------

ARRAY_STRING_LOOKAHEAD = [
    # a string element followed by a non-JSON literal or number spelling
    ('["a", NaN]', ["a", None]),
    ('["a", Infinity]', ["a", None]),
    ('["a", .5]', ["a", 0.5]),
    ('["a", +1]', ["a", 1]),
    ('["a", ObjectId("x")]', ["a", "x"]),
    ('["a", ("b")]', ["a", ["b"]]),
    ('{"a": ["x", ("y")]}', {"a": ["x", ["y"]]}),
    # ellipsis after a string element
    ('["x", ...]', ["x"]),
    ('["x", \u2026]', ["x"]),
    # missing comma after a string element, same line, before a number
    ('["x" 1]', ["x", 1]),
]

@pytest.mark.parametrize(("text", "expected"), ARRAY_STRING_LOOKAHEAD)
def test_regression_string_element_swallows_following_elements(text: str, expected: Any) -> None:
    assert json.loads(llmbridge.repair_json(text)) == expected


OBJECT_COMMENT_AFTER_STRING = [
    ('{"a": "x" # c\n}', {"a": "x"}),
    ('{"a": "x", # c\n "b": 1}', {"a": "x", "b": 1}),
]

@pytest.mark.parametrize(("text", "expected"), OBJECT_COMMENT_AFTER_STRING)
def test_regression_comment_after_string_value(text: str, expected: Any) -> None:
    assert json.loads(llmbridge.repair_json(text)) == expected

@pytest.mark.parametrize("fn", ["repair_json", "loads", "repair_report"])
def test_regression_10001_nested_arrays_are_accepted(fn: str) -> None:
    text = "[" * 10001 + "]" * 10001
    with pytest.raises(JSONRepairError, match="nesting|deep"):
        getattr(llmbridge, fn)(text)

@pytest.mark.parametrize(
    ("blob", "kind", "where"),
    [
        (b"\xff{a: 1}", "key_quoted", 2),
        (b'{"a": "\xff\xfe", b: 1}', "key_quoted", 12),
        (b'\xc3{"x": 1,}', "comma_removed", 9),
    ],
)
def test_regression_positions_after_invalid_utf8(blob: bytes, kind: str, where: int) -> None:
    report = llmbridge.repair_report(blob)
    positions = [r.position for r in report.repairs if r.kind == kind]
    assert positions == [where]
    assert all(r.position <= len(blob) for r in report.repairs)

@pytest.mark.parametrize(
    "text", ["[123456789012345678901234567890]", '{"a": -99999999999999999999}', '"\\ud800"']
)
def test_regression_valid_json_beyond_simdjson_reported_changed(text: str) -> None:
    json.loads(text)  # valid JSON
    assert llmbridge.is_valid_json(text)
    report = llmbridge.repair_report(text)
    assert report.changed is False
    assert llmbridge.repair_json(text) is text

@pytest.mark.parametrize("text", ['{"a": 1e999,}', "[-1e400, 1,]", "[1e1_000,]"])
def test_regression_overflowing_number(text: str) -> None:
    # A number beyond the double range keeps its spelling (it is valid JSON); loads reads
    # it as json.loads does: an infinite float.
    out = llmbridge.repair_json(text)
    assert llmbridge.is_valid_json(out), out
    assert llmbridge.loads(text) == json.loads(out)
    assert any(math.isinf(v) for v in _numbers(llmbridge.loads(text)))


@pytest.mark.parametrize("text", ["[1e400]", '{"a": -1E+999}', "1e400"])
def test_valid_json_with_a_huge_exponent_passes_unchanged(text: str) -> None:
    # Regression: repair_json("[1e400]") gave "[null]", although valid JSON passes
    # unchanged and loads matches json.loads.
    assert llmbridge.repair_json(text) is text
    assert llmbridge.repair_report(text).changed is False
    assert llmbridge.loads(text) == json.loads(text)


def _numbers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, float) else []

@pytest.mark.parametrize("text", ['{"a": 2]', "[1, 2}", '{"a": [1, 2]]', '["a", "b"}', '{"a": "x")'])
def test_regression_mismatched_closer_reported_truncated(text: str) -> None:
    report = llmbridge.repair_report(text)
    json.loads(report.json)
    assert report.truncated is False
    assert "container_closed" not in report.kinds

@pytest.mark.parametrize(
    ("text", "expected"),
    [('Result: ```json\n{"a": 1}\n```', {"a": 1}), ("Result: ```json\n[1]\n```", [1])],
)
def test_regression_prose_on_fence_line(text: str, expected: Any) -> None:
    assert llmbridge.loads(text) == expected

def test_regression_nested_root_tuple() -> None:
    assert llmbridge.loads("((1, 2), (3, 4))") == [[1, 2], [3, 4]]

@pytest.mark.parametrize("text", ["1,", "[1, 2)", '{"a": "it\\\'s"}', '{"a":\x001}'])
def test_regression_changed_without_repairs(text: str) -> None:
    report = llmbridge.repair_report(text)
    assert report.changed
    assert report.repairs != ()

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x\n```json\n[1]\n```\n", "[1]"),
        ('Sure:\n```json\n{"a": 1}\n```\n', '{"a": 1}'),
        ("a\n```py\nprint(1)\n```\n", "print(1)"),
    ],
)
def test_regression_fence_followed_by_final_newline(text: str, expected: str) -> None:
    assert llmbridge.strip_markdown_fences(text) == expected
