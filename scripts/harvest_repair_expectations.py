#!/usr/bin/env python3
"""Harvest the JSON-repair peers' own test expectations as data.

What it does: reads the test files shipped in the sdists of the two best-known Python
JSON-repair libraries (json-repair and fast-json-repair) with Python's ``ast`` module --
nothing of theirs is imported or run -- and extracts every (input text, expected value)
pair from plain asserts with literal arguments:

    assert repair_json(X) == Y                      (Y is JSON text)
    assert repair_json(X, return_objects=True) == Y (Y is a Python value)
    assert loads(X) == Y
    assert json.loads(repair_json(X)) == Y
    result = repair_json(X); assert result == Y     (also through json.loads(result))
    for x, y in [(X, Y), ...]: ... repair_json(x) ... == y

Calls with options that change the semantics (strict, stream_stable, skip_json_loads,
logging, schema, ...), file-based and CLI tests, and asserts on a part of the result
are skipped; format-only options (ensure_ascii, indent, sort_keys) are kept, since the
expectations are compared as values. An expected empty result ("" -- the peers' answer
for "no JSON here") is recorded with expected_kind "no_json". The result is the facts
only, deduplicated by (input, expected), in a deterministic order:
tests_py/data/peer_repair_expectations.json, checked by tests_py/test_repair_peers.py.

Rerun (downloads the sdists with pip into a temporary directory):

    python3 scripts/harvest_repair_expectations.py

or with sdists (or unpacked sdist directories) already at hand:

    python3 scripts/harvest_repair_expectations.py /tmp/peers/json_repair-0.58.3.tar.gz \\
        /tmp/peers/fast_json_repair-0.2.3.tar.gz

json-repair 0.58.3 is pinned on purpose: it is the last json-repair sdist that ships its
tests (from 0.58.4 on the sdist prunes tests/). fast-json-repair is taken at its latest
version; building its metadata needs Rust crates from the network, so when pip cannot
prepare it, the sdist that pip already unpacked (kept with --no-clean) is used instead.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests_py" / "data" / "peer_repair_expectations.json"
DEFAULT_SPECS = ["json-repair==0.58.3", "fast-json-repair"]

# Keyword arguments that only change the formatting of the answer: kept (values compared).
FORMAT_ONLY = {"ensure_ascii", "indent", "sort_keys"}
# The peers' entry points whose answers we harvest (called by their bare name in the tests).
TARGETS = {"repair_json", "loads"}


# ----------------------------------------------------------------------------- sdists


@dataclass
class TestFile:
    path: str  # path inside the sdist, e.g. tests/test_parse_object.py
    source: str


@dataclass
class Sdist:
    package: str
    version: str
    origin: str  # the sdist's file name
    test_files: list[TestFile] = field(default_factory=list)


def _is_test_file(rel: str) -> bool:
    parts = rel.split("/")
    return "tests" in parts[:-1] and parts[-1].startswith("test_") and parts[-1].endswith(".py")


def read_sdist(path: Path) -> Sdist:
    """Reads PKG-INFO and the tests/**/test_*.py files of a .tar.gz sdist or a directory."""
    files: dict[str, str] = {}
    pkg_info = ""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            rel = p.relative_to(path).as_posix()
            if rel == "PKG-INFO":
                pkg_info = p.read_text(encoding="utf-8")
            elif p.is_file() and _is_test_file(rel):
                files[rel] = p.read_text(encoding="utf-8")
    else:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                rel = member.name.split("/", 1)[1] if "/" in member.name else member.name
                data = tar.extractfile(member)
                if data is None:
                    continue
                if rel == "PKG-INFO":
                    pkg_info = data.read().decode("utf-8")
                elif _is_test_file(rel):
                    files[rel] = data.read().decode("utf-8")
    meta = Parser().parsestr(pkg_info)
    if not meta.get("Name"):
        raise SystemExit(f"{path}: no PKG-INFO with a Name (not an sdist?)")
    name = re.sub(r"[-_.]+", "-", meta["Name"]).lower()
    # the sdist's canonical file name, also when pip left us its unpacked directory
    origin = f"{re.sub(r'[-_.]+', '_', name)}-{meta['Version']}.tar.gz"
    sdist = Sdist(name, meta["Version"], origin)
    sdist.test_files = [TestFile(rel, files[rel]) for rel in sorted(files)]
    if not sdist.test_files:
        print(f"warning: {path.name} ships no tests/test_*.py", file=sys.stderr)
    return sdist


def download(specs: list[str], dest: Path) -> list[Path]:
    """pip-downloads each sdist; falls back to the unpacked sdist when metadata fails."""
    found = []
    for spec in specs:
        name = re.split(r"[=<>!~ \[]", spec, maxsplit=1)[0]
        stem = re.sub(r"[-_.]+", "_", name).lower()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name]
        run = subprocess.run([*cmd, "-d", str(dest), spec], capture_output=True, text=True)
        got = sorted(dest.glob(f"{stem}-*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if run.returncode == 0 and got:
            found.append(got[-1])
            continue
        # pip downloads and unpacks the sdist, then fails to prepare its metadata (e.g. a
        # maturin build that needs crates offline). Keep pip's unpacked copy and read that.
        work = dest / f"pip-tmp-{stem}"
        work.mkdir()
        env = dict(os.environ, TMPDIR=str(work))
        subprocess.run(
            [*cmd, "--no-clean", "-d", str(dest), spec], capture_output=True, text=True, env=env
        )
        dirs = sorted(glob.glob(str(work / "pip-download-*" / "*" / "PKG-INFO")))
        if not dirs:
            sys.stderr.write(run.stdout + run.stderr)
            raise SystemExit(f"pip could not download {spec}")
        found.append(Path(dirs[0]).parent)
    return found


# ----------------------------------------------------------------------------- harvest


@dataclass
class Call:
    func: str  # repair_json | loads
    text: str
    return_objects: bool
    options: dict[str, Any]


@dataclass
class Lit:
    value: Any


@dataclass
class Parsed:  # json.loads(<call>)
    call: Call


class Skip(Exception):
    """An assert that involves a peer call but is not a harvestable fact."""


def _literal(node: ast.AST) -> Lit | None:
    try:
        return Lit(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _is_json_loads(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "loads"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "json"
    )


class FunctionHarvester:
    def __init__(self, emit, skip) -> None:
        self.emit = emit  # emit(call_value, expected_value, lineno)
        self.skip = skip  # skip(reason, lineno)

    # -- resolving expressions ------------------------------------------------------
    def resolve(self, node: ast.AST, env: dict[str, Any]) -> Any:
        """Returns a Call, Parsed, Lit, or None (unknown); raises Skip for bad peer calls."""
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in TARGETS:
                return self.resolve_call(node, env)
            return None
        if _is_json_loads(node) and len(node.args) == 1 and not node.keywords:
            inner = self.resolve(node.args[0], env)
            if isinstance(inner, Call):
                return Parsed(inner)
            return None
        if isinstance(node, ast.Name):
            return None
        return _literal(node)

    def resolve_call(self, node: ast.Call, env: dict[str, Any]) -> Call:
        func = node.func.id  # type: ignore[attr-defined]
        if len(node.args) != 1:
            raise Skip(f"{func} with {len(node.args)} positional arguments")
        arg = self.resolve(node.args[0], env)
        if not isinstance(arg, Lit) or not isinstance(arg.value, str):
            raise Skip(f"{func} on a non-literal input")
        options: dict[str, Any] = {}
        for kw in node.keywords:
            value = _literal(kw.value) if kw.arg else None
            if kw.arg is None or value is None:
                raise Skip(f"{func} with a non-literal keyword argument")
            options[kw.arg] = value.value
        return_objects = bool(options.pop("return_objects", False))
        if func == "loads":
            return_objects = True
        for name, value in options.items():
            if name not in FORMAT_ONLY:
                raise Skip(f"option {name}={value!r} changes the semantics")
        return Call(func, arg.value, return_objects, options)

    # -- statements -----------------------------------------------------------------
    def run(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            try:
                self.statement(stmt, env)
            except Skip as why:
                self.skip(str(why), stmt.lineno)

    def statement(self, stmt: ast.stmt, env: dict[str, Any]) -> None:
        if isinstance(stmt, ast.Assign):
            names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
            for target in stmt.targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        env.pop(sub.id, None)
            if len(names) == 1 and len(stmt.targets) == 1:
                try:
                    value = self.resolve(stmt.value, env)
                except Skip:
                    value = None  # a skipped call: any assert on it is skipped below
                    env[names[0]] = Skip
                    return
                if value is not None:
                    env[names[0]] = value
                    if isinstance(value, Lit):
                        env[f"<node>{names[0]}"] = stmt.value
        elif isinstance(stmt, ast.Assert):
            self.assertion(stmt, env)
        elif isinstance(stmt, ast.For):
            self.loop(stmt, env)
        elif isinstance(stmt, (ast.With, ast.If, ast.Try)):
            for part in ("body", "orelse", "finalbody"):
                self.run(getattr(stmt, part, []) or [], env)
        elif isinstance(stmt, ast.Expr):
            if any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in TARGETS
                for n in ast.walk(stmt)
            ):
                raise Skip("a peer call outside an assert")

    def loop(self, stmt: ast.For, env: dict[str, Any]) -> None:
        iterable = stmt.iter
        if isinstance(iterable, ast.Name) and f"<node>{iterable.id}" in env:
            iterable = env[f"<node>{iterable.id}"]
        if not isinstance(iterable, (ast.List, ast.Tuple)):
            return
        names = (
            [stmt.target]
            if isinstance(stmt.target, ast.Name)
            else list(getattr(stmt.target, "elts", []))
        )
        if not all(isinstance(n, ast.Name) for n in names):
            return
        for element in iterable.elts:
            items = [element] if len(names) == 1 else list(getattr(element, "elts", []))
            if len(items) != len(names):
                continue
            inner = dict(env)
            for name, item in zip(names, items):
                lit = _literal(item)
                if lit is None:
                    inner.pop(name.id, None)
                else:
                    inner[name.id] = lit
            self.line_override = element.lineno
            self.run(stmt.body, inner)
        self.line_override = None

    line_override: int | None = None

    def assertion(self, stmt: ast.Assert, env: dict[str, Any]) -> None:
        test = stmt.test
        involved = any(
            (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in TARGETS)
            or (isinstance(n, ast.Name) and isinstance(env.get(n.id), (Call, Parsed)))
            or (isinstance(n, ast.Name) and env.get(n.id) is Skip)
            for n in ast.walk(test)
        )
        if not involved:
            return
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            raise Skip("not a comparison")
        left, right = test.left, test.comparators[0]
        op = test.ops[0]
        if isinstance(op, ast.Is) and isinstance(right, ast.Constant) and right.value is None:
            sides = [self.resolve(left, env), Lit(None)]
        elif isinstance(op, ast.Eq):
            sides = [self.resolve(left, env), self.resolve(right, env)]
        else:
            raise Skip("not an == comparison")
        if any(s is Skip for s in sides):
            raise Skip("an assert on a skipped call")
        calls = [s for s in sides if isinstance(s, (Call, Parsed))]
        lits = [s for s in sides if isinstance(s, Lit)]
        if len(calls) != 1 or len(lits) != 1:
            raise Skip("not a peer call compared with a literal")
        self.emit(calls[0], lits[0].value, self.line_override or stmt.lineno)


def _json_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_value(v) for k, v in value.items())
    return False


def normalise(call: Call | Parsed, expected: Any) -> tuple[str, str, str | None]:
    """(call kind, expected kind, expected as JSON text or None); raises Skip."""
    if isinstance(call, Parsed):
        kind = f"json.loads({call.call.func})"
        value = expected
    else:
        kind = (
            call.func
            if call.func == "loads" or not call.return_objects
            else ("repair_json(return_objects=True)")
        )
        if call.return_objects:
            if expected == "":
                return kind, "no_json", None
            value = expected
        else:
            if not isinstance(expected, str):
                raise Skip("repair_json text compared with a non-string")
            if expected.strip() == "":
                return kind, "no_json", None
            try:
                value = json.loads(expected)
            except ValueError as err:
                raise Skip(f"expected text is not JSON ({err})") from None
    if not _json_value(value):
        raise Skip(f"expected value of type {type(value).__name__} is not a JSON value")
    return kind, "value", json.dumps(value, ensure_ascii=False)


def harvest(sdist: Sdist) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cases: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for tf in sdist.test_files:
        tree = ast.parse(tf.source, filename=tf.path)
        for func in ast.walk(tree):
            if not (isinstance(func, ast.FunctionDef) and func.name.startswith("test_")):
                continue
            where = {
                "package": sdist.package,
                "version": sdist.version,
                "file": tf.path,
                "function": func.name,
            }

            def emit(call, expected, line, where=where):
                text = call.call.text if isinstance(call, Parsed) else call.text
                try:
                    kind, expected_kind, expected_json = normalise(call, expected)
                except Skip as why:
                    skip(str(why), line)
                    return
                cases.append(
                    {
                        **where,
                        "line": line,
                        "call": kind,
                        "input": text,
                        "expected_kind": expected_kind,
                        "expected": expected_json,
                    }
                )

            def skip(reason, line, where=where):
                skipped.append({**where, "line": line, "reason": reason})

            FunctionHarvester(emit, skip).run(func.body, {})
    return cases, skipped


def dedupe(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One case per (input, expected); later sightings go to the first one's also_in."""
    out: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for case in cases:
        key = (case["input"], case["expected_kind"], case["expected"])
        if key in out:
            first = out[key]
            ref = {k: case[k] for k in ("package", "version", "file", "function", "line")}
            if (ref["package"], ref["file"], ref["line"]) != (
                first["package"],
                first["file"],
                first["line"],
            ) and ref not in first["also_in"]:
                first["also_in"].append(ref)
            continue
        out[key] = {**case, "also_in": []}
    return list(out.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sdists", nargs="*", type=Path, help=".tar.gz sdists or unpacked dirs")
    ap.add_argument("--spec", action="append", help=f"pip specs to download ({DEFAULT_SPECS})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="peer-sdists-") as tmp:
        paths = args.sdists or download(args.spec or DEFAULT_SPECS, Path(tmp))
        sdists = sorted((read_sdist(p) for p in paths), key=lambda s: s.package)
        all_cases: list[dict[str, Any]] = []
        all_skipped: list[dict[str, Any]] = []
        for sdist in sdists:
            cases, skipped = harvest(sdist)
            all_cases += cases
            all_skipped += skipped
            print(
                f"{sdist.package} {sdist.version}: {len(sdist.test_files)} test files, "
                f"{len(cases)} asserts harvested, {len(skipped)} skipped",
                file=sys.stderr,
            )

    all_cases.sort(key=lambda c: (c["package"], c["file"], c["line"]))
    cases = dedupe(all_cases)
    document = {
        "about": (
            "Input/expected pairs harvested from the test suites shipped in the sdists "
            "below (facts, not code) by scripts/harvest_repair_expectations.py; "
            "expected is JSON text of the expected value, null when expected_kind is "
            "'no_json' (the peer answers '' for 'no JSON here')."
        ),
        "sources": [
            {
                "package": s.package,
                "version": s.version,
                "sdist": s.origin,
                "test_files": [t.path for t in s.test_files],
            }
            for s in sdists
        ],
        "cases": cases,
        "skipped": sorted(all_skipped, key=lambda s: (s["package"], s["file"], s["line"])),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"{len(cases)} cases (deduplicated) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
