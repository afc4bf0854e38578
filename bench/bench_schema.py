"""JSON Schema validation benchmark: llmbridge.validate against jsonschema and fastjsonschema.

    python3 bench/bench_schema.py [--rounds 15] [--out bench/results/schema.md]

The workload is what an extraction worker checks per answer: a 20-property extraction
schema (strings with lengths and patterns, numbers with bounds, enums, a nested object,
an array of objects, required, additionalProperties: false) and 200 deterministic
answers of 1-5 KB each, already parsed into Python objects. Every validator is built once
(jsonschema's Draft202012Validator, fastjsonschema.compile; llmbridge caches the compiled
schema by its text); a round runs each validator over all answers, the rounds interleave
the validators, and each figure is the median over rounds of the time per answer.

What each call does: llmbridge.validate(answer, schema) looks the compiled schema up in
its cache (a dict comparison with the cached copy) and returns the list of errors;
llmbridge.compile_schema(schema).validate(answer) skips the lookup, like the peers'
compiled validators. jsonschema's is_valid() and fastjsonschema's validate() stop at the
first error; on valid answers (the first rows) every validator walks everything.
".validate_json (text)" checks the answer's JSON text (parsed by simdjson in C++, no
Python objects): what a call costs when the validator runs inside the client.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from typing import Any, Callable

import llmbridge

try:
    import jsonschema
except ImportError:  # pragma: no cover - the bench extra installs it
    jsonschema = None
try:
    import fastjsonschema
except ImportError:  # pragma: no cover
    fastjsonschema = None

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "document_id",
        "document_type",
        "title",
        "issue_date",
        "currency",
        "total_amount",
        "vendor",
        "line_items",
        "language",
        "confidence",
    ],
    "properties": {
        "document_id": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4,8}$"},
        "document_type": {"enum": ["invoice", "receipt", "contract", "letter", "report"]},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "summary": {"type": "string", "maxLength": 4000},
        "issue_date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "due_date": {"type": ["string", "null"], "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "total_amount": {"type": "number", "minimum": 0},
        "tax_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "page_count": {"type": "integer", "minimum": 1, "maximum": 10000},
        "language": {"type": "string", "enum": ["en", "de", "fr", "es", "it", "nl"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "is_signed": {"type": "boolean"},
        "vendor": {
            "type": "object",
            "required": ["name", "country"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "vat_id": {"type": ["string", "null"], "pattern": "^[A-Z]{2}[0-9A-Z]{8,12}$"},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                "email": {"type": ["string", "null"], "pattern": "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$"},
                "address": {
                    "type": "object",
                    "properties": {
                        "street": {"type": "string"},
                        "city": {"type": "string"},
                        "postcode": {"type": "string", "maxLength": 12},
                    },
                },
            },
        },
        "customer": {
            "type": ["object", "null"],
            "properties": {"name": {"type": "string"}, "id": {"type": "string"}},
        },
        "line_items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 200,
            "items": {
                "type": "object",
                "required": ["description", "quantity", "unit_price"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string", "minLength": 1, "maxLength": 500},
                    "quantity": {"type": "number", "exclusiveMinimum": 0},
                    "unit_price": {"type": "number"},
                    "sku": {"type": ["string", "null"], "pattern": "^[A-Z0-9-]{3,20}$"},
                    "category": {"enum": ["goods", "services", "shipping", "other"]},
                },
            },
        },
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 20},
        "payment_terms": {"type": "string"},
        "notes": {"type": ["string", "null"]},
        "references": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"kind": {"type": "string"}, "value": {"type": "string"}},
            },
        },
    },
}

WORDS = (
    "alpha beta gamma delta office supply consulting hours travel freight service "
    "maintenance license annual support widget module panel cable adapter"
).split()


def answer(rng: random.Random, target_bytes: int) -> dict[str, Any]:
    """One valid answer of roughly target_bytes of JSON."""
    doc: dict[str, Any] = {
        "document_id": f"{rng.choice(['IN', 'RC', 'CT'])}-{rng.randint(1000, 99999999)}",
        "document_type": rng.choice(["invoice", "receipt", "contract"]),
        "title": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))).title(),
        "summary": " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40))),
        "issue_date": f"20{rng.randint(10, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "due_date": rng.choice([None, "2026-01-31"]),
        "currency": rng.choice(["EUR", "USD", "GBP"]),
        "total_amount": round(rng.uniform(10, 100000), 2),
        "tax_rate": rng.choice([0.0, 0.07, 0.19, 0.2]),
        "page_count": rng.randint(1, 30),
        "language": rng.choice(["en", "de", "fr"]),
        "confidence": round(rng.random(), 3),
        "is_signed": rng.random() < 0.5,
        "vendor": {
            "name": "Vendor " + rng.choice(WORDS).title(),
            "vat_id": rng.choice([None, "DE123456789"]),
            "country": rng.choice(["DE", "FR", "US"]),
            "email": "billing@example.com",
            "address": {"street": "Main Street 1", "city": "Berlin", "postcode": "10115"},
        },
        "customer": {"name": "ACME GmbH", "id": "C-42"},
        "line_items": [],
        "tags": sorted({rng.choice(WORDS) for _ in range(5)}),
        "payment_terms": "30 days net",
        "notes": None,
        "references": [{"kind": "po", "value": str(rng.randint(1, 10**6))}],
    }
    while len(json.dumps(doc)) < target_bytes:
        doc["line_items"].append(
            {
                "description": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 10))),
                "quantity": rng.randint(1, 50),
                "unit_price": round(rng.uniform(1, 2000), 2),
                "sku": f"SKU-{rng.randint(100, 99999)}",
                "category": rng.choice(["goods", "services", "shipping"]),
            }
        )
    return doc


def break_answer(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    """A copy with one typical model mistake deep inside."""
    bad = json.loads(json.dumps(doc))
    item = bad["line_items"][-1]
    mistake = rng.randrange(4)
    if mistake == 0:
        item["quantity"] = "three"
    elif mistake == 1:
        del item["unit_price"]
    elif mistake == 2:
        bad["currency"] = "euro"
    else:
        item["colour"] = "red"
    return bad


def corpus(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    valid = [answer(rng, rng.randint(1000, 5000)) for _ in range(n)]
    invalid = [break_answer(rng, d) for d in valid]
    return valid, invalid


def per_answer_us(fn: Callable[[Any], Any], docs: list[Any]) -> float:
    start = time.perf_counter()
    for d in docs:
        fn(d)
    return (time.perf_counter() - start) / len(docs) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--out", help="write the markdown table to this file too")
    args = parser.parse_args()
    if jsonschema is None or fastjsonschema is None:
        print("needs the bench extra: pip install jsonschema fastjsonschema", file=sys.stderr)
        return 2

    valid, invalid = corpus(args.answers)
    texts = [json.dumps(d) for d in valid]
    bad_texts = [json.dumps(d) for d in invalid]
    sizes = [len(t) for t in texts]
    js = jsonschema.Draft202012Validator(SCHEMA)
    fjs = fastjsonschema.compile(SCHEMA)

    def fjs_ok(d: Any) -> bool:
        try:
            fjs(d)
            return True
        except fastjsonschema.JsonSchemaException:
            return False

    # Compiled once, like the peers; and what a client holds: the answer as JSON text.
    compiled = llmbridge.compile_schema(SCHEMA)
    native = compiled
    native_json = compiled.validate_json

    # Every validator agrees with every other on every answer before anything is timed.
    for d, t in zip(valid, texts):
        assert llmbridge.validate(d, SCHEMA) == [] and js.is_valid(d) and fjs_ok(d)
        assert native.validate_json(t) == []
    for d, t in zip(invalid, bad_texts):
        assert llmbridge.validate(d, SCHEMA) and not js.is_valid(d) and not fjs_ok(d)
        assert native.validate_json(t)

    cases: list[tuple[str, str, Callable[[Any], Any], list[Any]]] = [
        ("valid", "llmbridge.validate", lambda d: llmbridge.validate(d, SCHEMA), valid),
        ("valid", "llmbridge.compile_schema(...).validate", compiled.validate, valid),
        ("valid", "llmbridge ... .validate_json (text)", native_json, texts),
        ("valid", "jsonschema is_valid", js.is_valid, valid),
        ("valid", "fastjsonschema", fjs_ok, valid),
        ("invalid", "llmbridge.validate", lambda d: llmbridge.validate(d, SCHEMA), invalid),
        ("invalid", "llmbridge.compile_schema(...).validate", compiled.validate, invalid),
        ("invalid", "llmbridge ... .validate_json (text)", native_json, bad_texts),
        ("invalid", "jsonschema is_valid", js.is_valid, invalid),
        ("invalid", "fastjsonschema", fjs_ok, invalid),
    ]
    samples: dict[tuple[str, str], list[float]] = {(k, n): [] for k, n, _, _ in cases}
    for _ in range(args.rounds):  # interleaved: every validator once per round
        for kind, name, fn, docs in cases:
            samples[(kind, name)].append(per_answer_us(fn, docs))
    med = {k: statistics.median(v) for k, v in samples.items()}

    lines = [
        f"Answers: {len(valid)} valid + {len(invalid)} invalid, {min(sizes)}-{max(sizes)} bytes "
        f"(median {int(statistics.median(sizes))}); 20-property extraction schema; "
        f"median of {args.rounds} interleaved rounds.",
        "",
        "| answers | validator | us / answer | llmbridge.validate is |",
        "|---|---|---:|---:|",
    ]
    for kind, name, _, _ in cases:
        mine = med[(kind, "llmbridge.validate")]
        ratio = "" if name.startswith("llmbridge") else f"{med[(kind, name)] / mine:.1f}x faster"
        lines.append(f"| {kind} | {name} | {med[(kind, name)]:.1f} | {ratio} |")
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, "
        f"jsonschema {importlib.metadata.version('jsonschema')}, "
        f"fastjsonschema {fastjsonschema.VERSION}; {datetime.date.today().isoformat()}.",
        "Command: `python3 bench/bench_schema.py`",
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("# JSON Schema validation (bench/bench_schema.py)\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
