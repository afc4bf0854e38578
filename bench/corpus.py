"""Deterministic corpus of LLM-style JSON answers, valid and broken.

Every document is built from a seeded PRNG, so two runs of the benchmark measure the
same bytes. Broken twins carry the damage LLMs really do: single quotes, unquoted
keys, trailing and missing commas, Python literals, comments, raw newlines in
strings, truncation (max_tokens), markdown fences and prose around the answer.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

WORDS = (
    "invoice total amount customer address street city Zürich café naïve 東京 "
    "データ emoji 🙂 payment due date order item quantity price discount vendor "
    "contract party clause term renewal notice shipping tax rate net gross "
    "description summary status approved pending rejected reference number"
).split()

KEYS = (
    "id name title description amount currency date status items quantity price "
    "vendor customer address city country notes tags total tax reference confidence "
    "line_items page section parties effective_date"
).split()


def _text(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.15:
        words.insert(rng.randint(0, len(words)), "\n")
    return " ".join(words)


def _value(rng: random.Random, depth: int) -> object:
    r = rng.random()
    if depth < 3 and r < 0.18:
        return {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randint(2, 6))}
    if depth < 3 and r < 0.30:
        return [_value(rng, depth + 1) for _ in range(rng.randint(1, 5))]
    if r < 0.60:
        return _text(rng, 1, 12)
    if r < 0.72:
        return rng.randint(-10_000, 10_000_000)
    if r < 0.84:
        return round(rng.uniform(-1000, 1000), rng.randint(1, 6))
    if r < 0.93:
        return rng.random() < 0.5
    return None


def document(rng: random.Random, target: int) -> str:
    """One valid JSON answer of about `target` bytes."""
    items = []
    size = 0
    while size < target:
        item = {k: _value(rng, 1) for k in rng.sample(KEYS, rng.randint(4, 9))}
        items.append(item)
        size += len(json.dumps(item, ensure_ascii=False)) + 2
    doc = {"document_type": "invoice", "confidence": 0.93, "items": items}
    indent = 2 if rng.random() < 0.5 else None
    return json.dumps(doc, ensure_ascii=False, indent=indent)


_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _outside_strings(text: str, fn) -> str:
    """Apply fn to the stretches of text outside JSON strings."""
    out, last = [], 0
    for m in _STRING.finditer(text):
        out.append(fn(text[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(fn(text[last:]))
    return "".join(out)


def single_quotes(t: str, rng: random.Random) -> str:
    return _STRING.sub(lambda m: "'" + m.group(1).replace("'", "\\'") + "'", t)


def unquoted_keys(t: str, rng: random.Random) -> str:
    return re.sub(r'"([A-Za-z_]\w*)"(\s*):', r"\1\2:", t)


def trailing_commas(t: str, rng: random.Random) -> str:
    return _outside_strings(t, lambda s: re.sub(r"(\s*)([}\]])", r",\1\2", s))


def python_literals(t: str, rng: random.Random) -> str:
    table = {"true": "True", "false": "False", "null": "None"}
    return _outside_strings(t, lambda s: re.sub(r"\b(true|false|null)\b", lambda m: table[m.group(1)], s))


def missing_commas(t: str, rng: random.Random) -> str:
    if ",\n" in t:
        return _outside_strings(t, lambda s: s.replace(",\n", "\n"))
    return _outside_strings(t, lambda s: s.replace("},{", "}{").replace(', "', ' "'))


def comments(t: str, rng: random.Random) -> str:
    if "\n" in t:
        return _outside_strings(t, lambda s: s.replace(",\n", ", // note\n", 3))
    return _outside_strings(t, lambda s: s.replace(",", ", /* c */", 5))


def raw_newlines(t: str, rng: random.Random) -> str:
    return t.replace("\\n", "\n")


MUTATIONS = (single_quotes, unquoted_keys, trailing_commas, python_literals,
             missing_commas, comments, raw_newlines)


def break_document(valid: str, rng: random.Random) -> tuple[str, list[str]]:
    """A broken twin of `valid` and the names of the damage done."""
    text, done = valid, []
    for fn in rng.sample(MUTATIONS, rng.randint(1, 3)):
        text = fn(text, rng)
        done.append(fn.__name__)
    if rng.random() < 0.2:
        text = text[: int(len(text) * rng.uniform(0.7, 0.99))]
        done.append("truncated")
    if rng.random() < 0.3:
        text = "```json\n" + text + "\n```"
        done.append("fence")
    elif rng.random() < 0.15:
        text = "Sure! Here is the extracted data:\n" + text + "\nLet me know if you need more."
        done.append("prose")
    return text, done


@dataclass
class Corpus:
    valid: list[str]
    broken: list[str]

    @property
    def valid_bytes(self) -> int:
        return sum(len(d.encode()) for d in self.valid)

    @property
    def broken_bytes(self) -> int:
        return sum(len(d.encode()) for d in self.broken)


def make(kind: str, count: int, seed: int = 20261122) -> Corpus:
    """`kind` is small (1-5 KB), medium (~40 KB) or large (~1 MB)."""
    rng = random.Random(f"{seed}-{kind}")
    valid, broken = [], []
    for _ in range(count):
        target = {"small": rng.randint(1000, 5000), "medium": 40_000, "large": 1_000_000}[kind]
        v = document(rng, target)
        valid.append(v)
        broken.append(break_document(v, rng)[0])
    return Corpus(valid, broken)


def pathological(kind: str, size: int) -> str:
    """Inputs on which some repairers go quadratic."""
    if kind == "trailing_commas":
        unit = '{"a": [1, 2,], "b": {"c": 3,},},\n'
        return "[" + unit * (size // len(unit)) + "]"
    if kind == "unclosed_string_fragments":
        return '{"a": "x' + ', fragment "y"' * (size // 14)
    if kind == "missing_commas":
        return "[" + '{"a": 1 "b": 2}\n' * (size // 17) + "]"
    if kind == "deep_unclosed":
        n = min(size // 2, 9000)
        return "[" * n + "1," * ((size - n) // 2)
    if kind == "inner_quotes":
        unit = '"he said "hi" to me", '
        return "[" + unit * (size // len(unit)) + "]"
    raise ValueError(kind)


PATHOLOGICAL = ("trailing_commas", "unclosed_string_fragments", "missing_commas",
                "deep_unclosed", "inner_quotes")
