#!/usr/bin/env python3
"""Harvest the JSON-repair peers' own test expectations as data.

What it does: reads the test files shipped in the sdists of the two best-known Python
JSON-repair libraries (json-repair and fast-json-repair) with Python's ``ast`` module --
nothing of theirs is imported or run -- and extracts every (input text, expected value)
pair from plain asserts whose input and expected value are literals:

    assert repair_json(X) == Y                      (Y is JSON text; also Y == repair_json(X))
    assert repair_json(X, return_objects=True) == Y (Y is a Python value; also `is None`)
    assert loads(X) == Y
    assert json.loads(repair_json(X)) == Y
    assert repair_json(X) == json.dumps(Y)
    assert repair_json(X, logging=True) == (Y, [...])   (the value, not the repair log)
    result = repair_json(X); assert result == Y     (also through json.loads(result))
    value, log = repair_json(X, logging=True); assert value == Y
    for x, y in [(X, Y), ...]: ... repair_json(x) ... == y
    @pytest.mark.parametrize("x,y", [(X, Y), ...]) def test_..(x, y): ... (the same)

X and Y may be names bound to literals earlier in the test, and X may be built from
literals with + and * ('{"a":' * 100 + ...); json_str=X is X. Options that leave the
expected value alone are kept: the format-only ones (ensure_ascii, indent, sort_keys,
since the expectations are compared as values), skip_json_loads (it only skips the
peers' first json.loads attempt) and options at their default value (stream_stable=False,
strict=False); the call kind of a case names them. Skipped, each with its reason in the
data file's "skipped" list: options that change the semantics (stream_stable=True,
strict=True, schema, ...), calls expected to raise, calls on inputs that are not literals
(files, CLI, generated text), asserts on a part or property of a result (result["k"],
len(result), "x" in result), on the repair log, on two peer calls, and inputs nested
deeper than MAX_NESTING (a peer's nesting limit, not a repair). An expected empty result
("" -- the peers' answer for "no JSON here") is recorded with expected_kind "no_json".
Each case names its test file, function and line (for a table row, the row's line). The
result is the facts only, deduplicated by (input, expected), in a deterministic order:
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

# Options that leave the expected value alone: skip_json_loads only skips the peers' first
# json.loads attempt (a valid input parses to the same value either way).
NEUTRAL_OPTIONS = {"skip_json_loads"}
# Options given at their default value (json-repair's defaults) change nothing either.
DEFAULT_OPTIONS: dict[str, Any] = {"stream_stable": False, "strict": False, "logging": False}
# The longest input text we build from literals with + and * (deep-nesting tests).
MAX_FOLDED = 100_000
# Inputs nested deeper than this test a peer's nesting limit, not a repair (fast-json-repair
# answers null beyond 1000 levels), and Python's json cannot even read such a value back.
MAX_NESTING = 500


@dataclass
class Call:
    func: str  # repair_json | loads
    text: str
    return_objects: bool
    options: dict[str, Any]  # the format-only, neutral and default options, as written
    logging: bool = False  # logging=True: the answer is a (value, repair log) tuple


@dataclass
class Lit:
    value: Any


@dataclass
class Parsed:  # json.loads(<call>)
    call: Call


@dataclass
class Logged:  # the value (first item) of a logging=True call's (value, log) answer
    call: Call


@dataclass
class Skipped:  # a name whose asserts are skipped: reason says why (a skipped call, ...)
    reason: str


PART = Skipped("an assert on a part or property of a peer call's result")
REPAIR_LOG = Skipped("an assert on the repair log of logging=True")


RESULTS = (Call, Parsed, Logged)


class Skip(Exception):
    """An assert that involves a peer call but is not a harvestable fact."""


def _literal(node: ast.AST) -> Lit | None:
    try:
        return Lit(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _is_json_func(node: ast.AST, name: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "json"
    )


def _is_peer_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TARGETS
    )


def _shown(value: Any) -> str:
    """An option's value for a skip reason (containers, e.g. schemas, as ...)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    return "..."


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _forget(node: ast.AST, env: dict[str, Any]) -> set[str]:
    """Drops every name that node assigns to; a peer call's result that node mutates
    (x[k] = .., x.append(..)) is only a part of that result from then on."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            names.add(sub.id)
            env.pop(sub.id, None)
            env.pop(f"<node>{sub.id}", None)
            continue
        name = None
        if isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(
            sub.ctx, (ast.Store, ast.Del)
        ):
            name = _root_name(sub)
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
            name = _root_name(sub.func.value)
        if name is not None:
            names.add(name)
            value = env.pop(name, None)
            env.pop(f"<node>{name}", None)
            if isinstance(value, RESULTS):
                env[name] = PART
            elif isinstance(value, Skipped):
                env[name] = value
    return names


def _result_like(node: ast.AST, env: dict[str, Any]) -> Skipped | None:
    """For an expression that is not itself harvestable: why asserts on it are skipped."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(env.get(sub.id), Skipped):
            return env[sub.id]
    for sub in ast.walk(node):
        if _is_peer_call(sub) or (
            isinstance(sub, ast.Name) and isinstance(env.get(sub.id), RESULTS)
        ):
            return PART
    return None


def _settle(stmt: ast.AST, env: dict[str, Any], branches: list[dict[str, Any]]) -> None:
    """After an if or a loop: a name it assigns is unknown, or, when a branch bound it to a
    peer call's result (or a part of it), a part of a result (or skipped alike)."""
    for name in _forget(stmt, env):
        values = [b.get(name) for b in branches]
        skipped = [v for v in values if isinstance(v, Skipped)]
        if skipped:
            env[name] = skipped[0]
        elif any(isinstance(v, RESULTS) for v in values):
            env[name] = PART


def _expects_raise(stmt: ast.With) -> bool:
    for item in stmt.items:
        expr = item.context_expr
        if isinstance(expr, ast.Call):
            func = expr.func
            if (isinstance(func, ast.Attribute) and func.attr == "raises") or (
                isinstance(func, ast.Name) and func.id == "raises"
            ):
                return True
    return False


def _parametrize(func: ast.FunctionDef) -> list[tuple[dict[str, Any], int | None]]:
    """The (bindings, line) runs of a test: one per @pytest.mark.parametrize row.

    Only rows of literals bind their names; a row item that is not a literal leaves its
    name unknown (asserts on it are skipped). Several decorators combine as pytest does.
    """
    runs: list[tuple[dict[str, Any], int | None]] = [({}, None)]
    for deco in func.decorator_list:
        if not (
            isinstance(deco, ast.Call)
            and isinstance(deco.func, ast.Attribute)
            and deco.func.attr == "parametrize"
            and len(deco.args) >= 2
        ):
            continue
        names_node, rows_node = deco.args[0], deco.args[1]
        names = _literal(names_node)
        if names is None or not isinstance(rows_node, (ast.List, ast.Tuple)):
            return [({}, None)]  # unknown parameters: asserts on them are skipped
        if isinstance(names.value, str):
            argnames = [n.strip() for n in names.value.split(",") if n.strip()]
        else:
            argnames = list(names.value)
        rows = []
        for row in rows_node.elts:
            if (
                isinstance(row, ast.Call)
                and isinstance(row.func, ast.Attribute)
                and row.func.attr == "param"
            ):
                items = list(row.args)
            elif len(argnames) == 1:
                items = [row]
            else:
                items = list(getattr(row, "elts", []))
            if len(items) != len(argnames):
                continue
            binding = {}
            for name, item in zip(argnames, items):
                lit = _literal(item)
                if lit is not None:
                    binding[name] = lit
                    binding[f"<node>{name}"] = item
            rows.append((binding, row.lineno))
        runs = [({**env, **binding}, line) for env, _ in runs for binding, line in rows]
    return runs


class FunctionHarvester:
    def __init__(self, emit, skip, line: int | None = None) -> None:
        self.emit = emit  # emit(call_value, expected_value, lineno)
        self.skip = skip  # skip(reason, lineno)
        self.line_override = line  # the line of the parametrize / loop row being run

    # -- resolving expressions ------------------------------------------------------
    def resolve(self, node: ast.AST, env: dict[str, Any]) -> Any:
        """A Call, Parsed, Logged, Lit, Skipped, or None (unknown); raises Skip for bad
        peer calls."""
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if _is_peer_call(node):
            return self.resolve_call(node, env)  # type: ignore[arg-type]
        if _is_json_func(node, "loads") and len(node.args) == 1 and not node.keywords:
            inner = self.resolve(node.args[0], env)  # type: ignore[attr-defined]
            if isinstance(inner, Call) and not inner.logging:
                return Parsed(inner)
            return inner if isinstance(inner, Skipped) else None
        if _is_json_func(node, "dumps") and len(node.args) == 1:
            return self.resolve_dumps(node, env)  # type: ignore[arg-type]
        if isinstance(node, ast.BinOp):
            folded = self.fold(node, env)
            if folded is not None:
                return folded
        return _literal(node)

    def resolve_dumps(self, node: ast.Call, env: dict[str, Any]) -> Lit | None:
        """json.dumps(<literal>, <format-only options>) as an expected JSON text."""
        value = self.resolve(node.args[0], env)
        if not isinstance(value, Lit):
            return None
        options = {}
        for kw in node.keywords:
            option = self.resolve(kw.value, env) if kw.arg in FORMAT_ONLY else None
            if not isinstance(option, Lit):
                return None
            options[kw.arg] = option.value
        try:
            return Lit(json.dumps(value.value, **options))
        except (TypeError, ValueError):
            return None

    def fold(self, node: ast.BinOp, env: dict[str, Any]) -> Lit | None:
        """str + str and str * int of literals (e.g. '{"a":' * 100 + '1' + '}' * 100)."""
        if not isinstance(node.op, (ast.Add, ast.Mult)):
            return None
        left, right = self.resolve(node.left, env), self.resolve(node.right, env)
        if not (isinstance(left, Lit) and isinstance(right, Lit)):
            return None
        a, b = left.value, right.value
        if isinstance(node.op, ast.Add):
            if isinstance(a, str) and isinstance(b, str) and len(a) + len(b) <= MAX_FOLDED:
                return Lit(a + b)
            return None
        if isinstance(b, str):
            a, b = b, a
        if isinstance(a, str) and type(b) is int and 0 <= len(a) * b <= MAX_FOLDED:
            return Lit(a * b)
        return None

    def resolve_call(self, node: ast.Call, env: dict[str, Any]) -> Call:
        func = node.func.id  # type: ignore[attr-defined]
        keywords: dict[str, ast.AST] = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise Skip(f"{func} with **keyword arguments")
            keywords[kw.arg] = kw.value
        # options that change the answer, named first: the most telling reason
        for name, value_node in keywords.items():
            if name in FORMAT_ONLY or name in NEUTRAL_OPTIONS or name == "return_objects":
                continue
            if name == "json_str":  # the input, given by name
                continue
            try:
                value = self.resolve(value_node, env)
            except Skip:
                value = None
            shown = _shown(value.value) if isinstance(value, Lit) else "..."
            if name not in DEFAULT_OPTIONS or not isinstance(value, Lit):
                raise Skip(f"option {name}={shown} changes the semantics")
            allowed = (True, False) if name == "logging" else (DEFAULT_OPTIONS[name],)
            if not any(value.value is v for v in allowed):
                raise Skip(f"option {name}={shown} changes the semantics")
        args = list(node.args)
        if not args and "json_str" in keywords:
            args = [keywords.pop("json_str")]
        if len(args) != 1 or "json_str" in keywords:
            raise Skip(f"{func} with {len(node.args)} positional arguments")
        arg = self.resolve(args[0], env)
        if not isinstance(arg, Lit) or not isinstance(arg.value, str):
            raise Skip(f"{func} on a non-literal input")
        options: dict[str, Any] = {}
        for name, value_node in keywords.items():
            value = self.resolve(value_node, env)
            if not isinstance(value, Lit):
                raise Skip(f"{func} with a non-literal keyword argument ({name}=)")
            options[name] = value.value
        return_objects = bool(options.pop("return_objects", False)) or func == "loads"
        logging = options.pop("logging", False) is True
        return Call(func, arg.value, return_objects, options, logging)

    # -- statements -----------------------------------------------------------------
    def run(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            try:
                self.statement(stmt, env)
            except Skip as why:
                self.skip(str(why), stmt.lineno)

    def statement(self, stmt: ast.stmt, env: dict[str, Any]) -> None:
        if isinstance(stmt, ast.Assign):
            self.assign(stmt, env)
        elif isinstance(stmt, ast.Assert):
            self.assertion(stmt, env)
        elif isinstance(stmt, ast.For):
            self.loop(stmt, env)
        elif isinstance(stmt, ast.With) and _expects_raise(stmt):
            for sub in stmt.body:
                if any(_is_peer_call(n) for n in ast.walk(sub)):
                    self.skip("a peer call expected to raise (pytest.raises)", sub.lineno)
            _forget(stmt, env)
        elif isinstance(stmt, ast.If):
            # either branch may run: each sees the names as they were before the if
            branches = [dict(env), dict(env)]
            self.run(stmt.body, branches[0])
            self.run(stmt.orelse, branches[1])
            _settle(stmt, env, branches)
        elif isinstance(stmt, (ast.With, ast.Try)):
            for part in ("body", "orelse", "finalbody"):
                self.run(getattr(stmt, part, []) or [], env)
        else:
            involved = any(_is_peer_call(n) for n in ast.walk(stmt))
            _forget(stmt, env)
            if involved and isinstance(stmt, ast.Expr):
                raise Skip("a peer call outside an assert")

    def assign(self, stmt: ast.Assign, env: dict[str, Any]) -> None:
        try:
            value = self.resolve(stmt.value, env)
        except Skip as why:
            value = Skipped(f"an assert on a skipped call ({why})")
        if value is None:
            value = _result_like(stmt.value, env)  # e.g. x = result["key"]
        _forget(stmt, env)
        if len(stmt.targets) != 1 or value is None:
            return
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            env[target.id] = value
            if isinstance(value, Lit):
                env[f"<node>{target.id}"] = stmt.value
        elif isinstance(target, ast.Tuple) and all(isinstance(n, ast.Name) for n in target.elts):
            names = [n.id for n in target.elts]  # type: ignore[attr-defined]
            if isinstance(value, Call) and value.logging and len(names) == 2:
                env[names[0]] = Logged(value)  # value, log = repair_json(.., logging=True)
                env[names[1]] = REPAIR_LOG
            elif isinstance(value, Skipped):
                env.update(dict.fromkeys(names, value))
            elif isinstance(value, RESULTS):
                env.update(dict.fromkeys(names, PART))

    def loop(self, stmt: ast.For, env: dict[str, Any]) -> None:
        iterable = stmt.iter
        if isinstance(iterable, ast.Name) and f"<node>{iterable.id}" in env:
            iterable = env[f"<node>{iterable.id}"]
        names = (
            [stmt.target]
            if isinstance(stmt.target, ast.Name)
            else list(getattr(stmt.target, "elts", []))
        )
        outer = self.line_override
        branches = []
        if isinstance(iterable, (ast.List, ast.Tuple)) and all(
            isinstance(n, ast.Name) for n in names
        ):
            for element in iterable.elts:
                items = [element] if len(names) == 1 else list(getattr(element, "elts", []))
                if len(items) != len(names):
                    continue
                inner = dict(env)
                for name, item in zip(names, items):
                    lit = _literal(item)
                    inner.pop(name.id, None)  # type: ignore[attr-defined]
                    if lit is not None:
                        inner[name.id] = lit  # type: ignore[attr-defined]
                self.line_override = element.lineno
                self.run(stmt.body, inner)
                branches.append(inner)
        else:
            # not a literal table: one pass with the loop variables unknown, for the reasons
            inner = dict(env)
            _forget(stmt.target, inner)
            self.run(stmt.body, inner)
            branches.append(inner)
        self.line_override = outer
        _settle(stmt, env, branches)

    def assertion(self, stmt: ast.Assert, env: dict[str, Any]) -> None:
        test = stmt.test
        involved = any(
            _is_peer_call(n)
            or (isinstance(n, ast.Name) and isinstance(env.get(n.id), (*RESULTS, Skipped)))
            for n in ast.walk(test)
        )
        if not involved:
            return
        for n in ast.walk(test):
            if isinstance(n, ast.Name) and isinstance(env.get(n.id), Skipped):
                raise Skip(env[n.id].reason)
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            raise Skip("not a comparison")
        left, right = test.left, test.comparators[0]
        op = test.ops[0]
        if isinstance(op, ast.Is) and isinstance(right, ast.Constant):
            pair = [left, right]  # x is None / True / False / ""
        elif isinstance(op, ast.Is) and isinstance(left, ast.Constant):
            pair = [right, left]
        elif isinstance(op, ast.Eq):
            pair = [left, right]
        else:
            raise Skip("not an == comparison")
        sides = [self.resolve(node, env) for node in pair]
        calls = [s for s in sides if isinstance(s, RESULTS)]
        lits = [s for s in sides if isinstance(s, Lit)]
        if len(calls) == 2:
            raise Skip("a peer call compared with another peer call")
        if len(calls) != 1 or len(lits) != 1:
            for node, side in zip(pair, sides):
                why = _result_like(node, env) if side is None else None
                if why is not None:
                    raise Skip(why.reason)
            raise Skip("not a peer call compared with a literal")
        call, expected = calls[0], lits[0].value
        if isinstance(call, Call) and call.logging:
            if not (
                isinstance(expected, tuple) and len(expected) == 2 and isinstance(expected[1], list)
            ):
                raise Skip("a logging=True answer compared with something else than (value, log)")
            call, expected = Logged(call), expected[0]
        self.emit(call, expected, self.line_override or stmt.lineno)


def _json_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_value(v) for k, v in value.items())
    return False


def call_kind(call: Call | Parsed | Logged) -> str:
    """How the peer was called: repair_json, loads, json.loads(repair_json),
    repair_json(return_objects=True, skip_json_loads=True), repair_json(logging=True)[0]..."""
    if isinstance(call, Parsed):
        return f"json.loads({call_kind(call.call)})"
    if isinstance(call, Logged):
        return call_kind(call.call)
    shown = []
    if call.return_objects and call.func != "loads":
        shown.append("return_objects=True")
    shown += [f"{k}={v!r}" for k, v in sorted(call.options.items()) if k not in FORMAT_ONLY]
    if call.logging:
        shown.append("logging=True")
    kind = f"{call.func}({', '.join(shown)})" if shown else call.func
    return f"{kind}[0]" if call.logging else kind


def _nesting(text: str) -> int:
    """How deep [ and { nest in text, outside double-quoted strings (roughly)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return deepest


def normalise(call: Call | Parsed | Logged, expected: Any) -> tuple[str, str, str | None]:
    """(call kind, expected kind, expected as JSON text or None); raises Skip."""
    kind = call_kind(call)
    text = call.text if isinstance(call, Call) else call.call.text
    if _nesting(text) > MAX_NESTING:
        raise Skip(f"input nested deeper than {MAX_NESTING} levels (a peer's nesting limit)")
    if isinstance(call, Parsed):
        value = expected
    elif isinstance(call, Logged) or call.return_objects:
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
                text = call.text if isinstance(call, Call) else call.call.text
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

            for env, line in _parametrize(func):
                FunctionHarvester(emit, skip, line).run(func.body, env)
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
