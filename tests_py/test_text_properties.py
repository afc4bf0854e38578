"""Property tests (hypothesis) for the JSON text core.

- loads agrees with json.loads on every valid JSON text (types included);
- repair on valid JSON keeps the value; on any text or bytes it either raises
  JSONRepairError or returns JSON that json.loads accepts, and is idempotent;
- lossless breakages (Python repr, trailing commas, missing commas, comments,
  prose and fences around the answer, NDJSON) repair back to the original value;
- every proper prefix of a container document is reported truncated;
- the fence law holds for every string.

Runs under the "ci" profile (conftest.py): no deadline, bounded examples.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import llmbridge
from llmbridge import JSONRepairError

# ---- strategies -----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # any size, beyond 64 bits too
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8"))  # incl. non-BMP: surrogate pairs
    | st.sampled_from(['"', "\\", "\n", "\t", "\x00", "\u2028", "/", "\u00e9", "\U0001f600"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
small_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
simd_scalars = (
    st.none() | st.booleans() | small_ints | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)  # fmt: skip
simd_values = st.recursive(
    simd_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)  # values whose JSON simdjson accepts (no integers beyond 64 bits)
containers = json_values.filter(lambda v: isinstance(v, (list, dict)))
dump_options = st.fixed_dictionaries(
    {"ensure_ascii": st.booleans(), "indent": st.sampled_from([None, 2])}
)


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also tells int from float and bool from int, recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a == 0.0:
        return str(a) == str(b)  # keep -0.0 apart from 0.0
    return a == b


def repaired_or_error(text: Any) -> str | None:
    """Repair `text`; check the invariants; None when it holds no JSON."""
    try:
        out = llmbridge.repair_json(text)
    except JSONRepairError as err:
        assert isinstance(err.position, int) and err.position >= 0
        assert err.reason
        return None
    json.loads(out)
    assert llmbridge.repair_json(out) == out  # idempotent
    report = llmbridge.repair_report(text)
    assert report.json == out
    if not report.changed:
        assert report.repairs == ()
    return out


# ---- valid JSON -----------------------------------------------------------------------


@given(json_values, dump_options)
def test_loads_agrees_with_json_loads(value: Any, opts: dict[str, Any]) -> None:
    text = json.dumps(value, **opts)
    expected = json.loads(text)
    assert strict_equal(llmbridge.loads(text), expected)
    assert strict_equal(llmbridge.loads(text, repair=False), expected)
    assert strict_equal(llmbridge.loads(text.encode()), expected)
    assert strict_equal(json.loads(llmbridge.repair_json(text)), expected)


@given(simd_values, dump_options)
def test_valid_json_is_unchanged(value: Any, opts: dict[str, Any]) -> None:
    text = json.dumps(value, **opts)
    assert llmbridge.is_valid_json(text)
    assert llmbridge.repair_json(text) is text
    report = llmbridge.repair_report(text)
    assert not report.changed and not report.truncated and report.repairs == ()


# ---- arbitrary input ------------------------------------------------------------------


@given(st.text())
def test_any_text_repairs_or_raises(text: str) -> None:
    repaired_or_error(text)


@given(st.binary())
def test_any_bytes_repair_or_raise(blob: bytes) -> None:
    out = repaired_or_error(blob)
    if out is not None:
        assert llmbridge.is_valid_json(out) or "e" in out.lower()  # 1e999: see test_text


json_ish = st.lists(
    st.sampled_from(
        ["{", "}", "[", "]", "(", ")", ",", ":", '"', "'", "a", "key", "1", "-", ".", "e", "+",
         "0", "_", "/", "*", "//", "/*", "*/", "#", "\\", "\\u", "\\n", " ", "\n", "\t", "True",
         "None", "NaN", "-Infinity", "tru", "nul", "...", "\u2026", "\u201c", "\u201d",
         "\u2018", "\u2019", "`", "```", "```json\n", "~~~", "<think>", "</think>",
         "NumberLong(", "ObjectId(", "\x00", "\u00e9", "\U0001f600", "=", ";", "1e", "1.",
         ".5", "007", "1_0", "0x1F", "undefined", "\r", "\u00a0", "\ufeff"]
    ),
    max_size=30,
).map("".join)  # fmt: skip


@settings(max_examples=1500)
@given(json_ish)
def test_json_like_soup_repairs_or_raises(text: str) -> None:
    out = repaired_or_error(text)
    if out is not None:
        report = llmbridge.repair_report(text)
        n = len(text.encode("utf-8", "surrogatepass"))
        assert all(0 <= r.position <= n for r in report.repairs)
        assert strict_equal(llmbridge.loads(text), json.loads(out)) or out != out


# ---- lossless breakages repair back to the value ----------------------------------------

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PY_WORDS = {"True", "False", "None", "true", "false", "null", "NaN", "Infinity", "undefined"}


def single_quoted(s: str) -> str:
    out = ["'"]
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append("'")
    return "".join(out)


def python_repr(v: Any) -> str:
    """A Python-ish spelling: True/False/None, single quotes, bare keys, trailing commas."""
    if v is None:
        return "None"
    if v is True:
        return "True"
    if v is False:
        return "False"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return single_quoted(v)
    if isinstance(v, list):
        return "[" + "".join(python_repr(x) + ", " for x in v) + "]"
    return (
        "{"
        + "".join(
            (k if IDENT.match(k) and k not in PY_WORDS else single_quoted(k))
            + ": "
            + python_repr(x)
            + ", "
            for k, x in v.items()
        )
        + "}"
    )


@given(json_values)
def test_python_repr_repairs_to_the_value(value: Any) -> None:
    text = python_repr(value)
    assert strict_equal(llmbridge.loads(text), value), (text, llmbridge.repair_json(text))


@given(json_values)
def test_trailing_commas_repair_to_the_value(value: Any) -> None:
    text = re.sub(r"\n(\s*)([}\]])", r",\n\1\2", json.dumps(value, indent=2))
    assert strict_equal(llmbridge.loads(text), value)


@given(json_values)
def test_missing_commas_repair_to_the_value(value: Any) -> None:
    text = json.dumps(value, indent=2).replace(",\n", "\n")
    assert strict_equal(llmbridge.loads(text), value), (text, llmbridge.repair_json(text))


@given(json_values, st.sampled_from([" // note ] }", " /* c ] */", " /* a\n b */"]))
def test_comments_repair_to_the_value(value: Any, comment: str) -> None:
    text = json.dumps(value, indent=2).replace("\n", comment + "\n")
    assert strict_equal(llmbridge.loads(text), value), (text, llmbridge.repair_json(text))


@given(
    containers,
    st.sampled_from(["", "Sure! Here is the JSON:\n", "<think>{x} or [1, 2]?</think>\n"]),
    st.sampled_from(["", "\nHope this helps!", "\n\nLet me know [1]."]),
    st.booleans(),
    st.booleans(),
)
def test_prose_and_fences_around_the_value(
    value: Any, before: str, after: str, fenced: bool, ascii_only: bool
) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=ascii_only)
    if fenced:
        text = "```json\n" + text + "\n```"
    text = before + text + after
    assert strict_equal(llmbridge.loads(text), value), (text, llmbridge.repair_json(text))


@given(
    st.lists(st.dictionaries(st.text(max_size=5), json_values, min_size=1, max_size=3), min_size=2)
)
def test_ndjson_becomes_a_list(docs: list[dict[str, Any]]) -> None:
    text = "\n".join(json.dumps(d) for d in docs) + "\n"
    report = llmbridge.repair_report(text)
    assert strict_equal(json.loads(report.json), docs)
    assert "values_concatenated" in report.kinds
    assert strict_equal(llmbridge.loads("".join(json.dumps(d) for d in docs)), docs)


# ---- truncation -----------------------------------------------------------------------


@given(containers, st.data())
def test_every_prefix_of_a_container_is_truncated(value: Any, data: st.DataObject) -> None:
    text = json.dumps(value)
    cut = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    report = llmbridge.repair_report(text[:cut])
    json.loads(report.json)
    assert report.truncated, (text[:cut], report)
    assert llmbridge.repair_json(report.json) == report.json


@given(containers)
def test_complete_documents_are_not_truncated(value: Any) -> None:
    text = "Answer:\n" + json.dumps(value, indent=2) + "\nDone."
    assert not llmbridge.repair_report(text).truncated


@given(json_values.filter(lambda v: isinstance(v, dict) and v), st.data())
def test_truncation_keeps_complete_members(value: dict[str, Any], data: st.DataObject) -> None:
    """Cutting after member k keeps members 0..k exactly."""
    items = list(value.items())
    k = data.draw(st.integers(min_value=1, max_value=len(items)))
    head = json.dumps(dict(items[:k]))[:-1]  # drop the closing brace
    tail = data.draw(st.sampled_from(["", ",", ", ", ', "nex', ', "next"', ', "next": ']))
    assert strict_equal(llmbridge.loads(head + tail), dict(items[:k]))


# ---- fences ---------------------------------------------------------------------------


@given(
    st.text(),
    st.sampled_from(
        [("```json\n", "\n```"), ("```JSON\n", "\n```"), ("```jsonc\n", "\n```"),
         ("```\n", "\n```"), ("~~~json\n", "\n~~~"), ("~~~\n", "\n~~~")]
    ),
)  # fmt: skip
def test_fence_law(body: str, fence: tuple[str, str]) -> None:
    opener, closer = fence
    assert llmbridge.strip_markdown_fences(opener + body + closer) == body


@given(st.text(alphabet=st.characters(blacklist_characters="`~")))
def test_unfenced_text_is_unchanged(text: str) -> None:
    assert llmbridge.strip_markdown_fences(text) == text


# ---- damage that shifts a boundary (issue 12): whole families, not one string ----------
#
# Each breakage below moves where a string, a value or a container seems to end. The
# members must survive: the repair gives back the original value exactly.

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1,
                max_size=8)  # fmt: skip
keys = words.filter(lambda k: k not in PY_WORDS)
# Plain text values: words separated by single spaces (no quote, comma or colon), so a
# lost quote leaves nothing the repairer could read in two ways.
phrases = st.lists(words, min_size=1, max_size=4).map(" ".join)
# An unquoted value must not start with a word the repairer reads as a literal
# (TRUE, Null, nil, NaN, inf ...): it would be that literal, as documented.
LITERAL_WORDS = {"true", "false", "null", "none", "undefined", "nil", "nan", "inf", "infinity"}
unquotable = phrases.filter(lambda v: v.split()[0].lower() not in LITERAL_WORDS)
members = st.dictionaries(keys, phrases, min_size=2, max_size=5)


def member_texts(d: dict[str, Any]) -> list[str]:
    return [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()]


@given(members, st.data())
def test_a_value_that_lost_its_closing_quote(d: dict[str, str], data: st.DataObject) -> None:
    """`{"city": "Paris, "zip": "75001"}`: the next member is not string content."""
    parts = member_texts(d)
    i = data.draw(st.integers(min_value=0, max_value=len(parts) - 2))
    parts[i] = parts[i][:-1]  # drop the closing quote of member i's value
    text = "{" + ", ".join(parts) + "}"
    assert strict_equal(llmbridge.loads(text), d), (text, llmbridge.repair_json(text))


@given(members, st.data(), st.sampled_from(["opener", "closer"]))
def test_a_doubled_quote(d: dict[str, str], data: st.DataObject, which: str) -> None:
    """`{"note": "fine""next": 1}` and `{"a": ""x"}`: a doubled quote is one quote."""
    parts = member_texts(d)
    i = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    key, _, value = parts[i].partition(": ")
    value = '"' + value if which == "opener" else value + '"'
    parts[i] = key + ": " + value
    sep = data.draw(st.sampled_from([", ", ",", " "]))
    text = "{" + sep.join(parts) + "}"
    assert strict_equal(llmbridge.loads(text), d), (text, llmbridge.repair_json(text))


@given(st.dictionaries(keys, unquotable, min_size=2, max_size=5), st.data())
def test_an_unquoted_multi_word_value(d: dict[str, str], data: st.DataObject) -> None:
    """`{"t": two words, "u": "v"}` and without the comma: the value stops at the member."""
    parts = member_texts(d)
    i = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    key, _, value = parts[i].partition(": ")
    parts[i] = key + ": " + json.loads(value)
    sep = data.draw(st.sampled_from([", ", " "])) if i < len(parts) - 1 else ", "
    text = "{" + ", ".join(parts[:i]) + (", " if i else "") + parts[i]
    if i < len(parts) - 1:
        text += sep + ", ".join(parts[i + 1 :])
    text += "}"
    assert strict_equal(llmbridge.loads(text), d), (text, llmbridge.repair_json(text))


@given(members, st.data())
def test_a_key_that_lost_its_closing_quote(d: dict[str, str], data: st.DataObject) -> None:
    """`{"key:"value"}`: the key ends at its colon."""
    parts = member_texts(d)
    i = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    key, _, value = parts[i].partition(": ")
    parts[i] = key[:-1] + ":" + value
    text = "{" + ", ".join(parts) + "}"
    assert strict_equal(llmbridge.loads(text), d), (text, llmbridge.repair_json(text))


@given(st.dictionaries(keys, json_values, min_size=2, max_size=5), st.data())
def test_a_stray_closer_after_the_first_member(d: dict[str, Any], data: st.DataObject) -> None:
    """`{"a": 1}, "b": 2}`: the rest of the members are still members."""
    parts = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()]
    i = data.draw(st.integers(min_value=0, max_value=len(parts) - 2))
    text = "{" + ", ".join(parts[: i + 1]) + "}, " + ", ".join(parts[i + 1 :]) + "}"
    assert strict_equal(llmbridge.loads(text), d), (text, llmbridge.repair_json(text))


@given(st.lists(st.dictionaries(keys, json_values, min_size=1, max_size=3), min_size=2,
                max_size=5), st.data())  # fmt: skip
def test_a_stray_closer_between_elements(items: list[Any], data: st.DataObject) -> None:
    """`[{"k": 1}}, {"k": 2}]`: one `}` too many does not end the array."""
    parts = [json.dumps(x) for x in items]
    i = data.draw(st.integers(min_value=0, max_value=len(parts) - 2))
    parts[i] += data.draw(st.sampled_from(["}", "}}"]))  # `]` would close the array
    text = "[" + ", ".join(parts) + "]"
    assert strict_equal(llmbridge.loads(text), items), (text, llmbridge.repair_json(text))


@given(st.text(alphabet=st.characters(codec="utf-8")), st.data())
def test_a_cut_inside_an_escape_keeps_whole_characters(text: str, data: st.DataObject) -> None:
    """A string cut anywhere (inside \\uXXXX, between the halves of a surrogate pair)
    gives a prefix of the original text that is valid Unicode: never half a pair."""
    doc = json.dumps({"a": text})  # ensure_ascii: non-BMP text is \\ud83d\\ude00
    cut = data.draw(st.integers(min_value=len('{"a": "'), max_value=len(doc) - 2))
    report = llmbridge.repair_report(doc[:cut])
    assert report.truncated
    got = json.loads(report.json).get("a", "")
    got.encode("utf-8")  # raises on a lone surrogate
    assert text.startswith(got), (doc[:cut], report.json)


@given(containers.filter(lambda v: v not in ([], {})), st.data())
def test_empty_values_beside_an_answer_are_dropped(value: Any, data: st.DataObject) -> None:
    """`[]{"a": 1}` and `{"a": 1}\n{}`: an empty placeholder beside the answer carries nothing."""
    empties = data.draw(st.lists(st.sampled_from(["[]", "{}"]), min_size=1, max_size=3))
    k = data.draw(st.integers(min_value=0, max_value=len(empties)))
    text = "\n".join(empties[:k] + [json.dumps(value)] + empties[k:])
    assert strict_equal(llmbridge.loads(text), value), (text, llmbridge.repair_json(text))
