"""The shipped type stub matches the compiled module; py.typed ships.

_native.pyi is hand-written. These tests hold it to what the compiled module says about
itself: every public name, and for every function, method and property its signature as
pybind11 records it (the first lines of ``__doc__``: ``name(arg: type = default, ...) ->
ret``; one line per overload) or, for the methods the Python layer installs on the native
classes, ``inspect.signature``. Parameter names, order, kinds, which have defaults (and
the default itself where the stub spells one out), parameter and return types, and
whether a property can be set must agree. Types are compared after normalising both
spellings (see ``normalise``): ``typing.Optional[X]``, ``X | None`` and ``Union[None, X]``
are one type, pybind11's ``typing.SupportsInt | typing.SupportsIndex`` is ``int``,
``llmbridge._native.X`` is ``X``, the stub's private aliases (``_Text``) are expanded, and
``Any`` is ``object``.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import llmbridge
import pytest
from llmbridge import _native

PKG = Path(llmbridge.__file__).resolve().parent
STUB = PKG / "_native.pyi"

# Dunders compared when the compiled class defines them itself (pybind11 or the Python
# layer); the rest (__repr__, __eq__, ...) come from object or are not in the stub.
_COMPARED_DUNDERS = {"__init__", "__len__"}

# ---- type normalisation ----

# How pybind11 (2.x and 3.x) and the stub may spell the same type.
_PREFIXES = ("typing.", "typing_extensions.", "collections.abc.", "llmbridge._native.",
             "builtins.")
_RENAMES = {"List": "list", "Dict": "dict", "Tuple": "tuple", "Set": "set", "Type": "type",
            "FrozenSet": "frozenset", "Any": "object", "NoneType": "None"}
# pybind11 3 accepts anything int()/float() takes for a C++ int/double parameter.
_NUMERIC_PROTOCOLS = {
    frozenset({"SupportsInt", "SupportsIndex"}): "int",
    frozenset({"SupportsFloat", "SupportsIndex"}): "float",
}


def _stub_aliases(tree: ast.Module) -> dict[str, ast.expr]:
    """The stub's private type aliases (``_Text = Union[...]``), expanded where used."""
    return {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name) and node.targets[0].id.startswith("_")
    }


def normalise(expr: Optional[ast.expr], aliases: dict[str, ast.expr]) -> str:
    """A canonical spelling of a type expression; unions are sorted sets of members."""
    if expr is None:
        return "<missing>"
    members = sorted(set(_union_members(expr, aliases)))
    kinds = frozenset(members)
    for protocols, name in _NUMERIC_PROTOCOLS.items():
        if protocols <= kinds:
            kinds = (kinds - protocols) | {name}
    members = sorted(kinds)
    if "object" in members:
        return "object"
    # None last, as people write it
    members.sort(key=lambda m: (m == "None", m))
    return " | ".join(members)


def _name(expr: ast.expr) -> str:
    text = ast.unparse(expr)
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
    return _RENAMES.get(text, text)


def _union_members(expr: ast.expr, aliases: dict[str, ast.expr]) -> list[str]:
    if isinstance(expr, ast.Constant) and expr.value is None:
        return ["None"]
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):  # a quoted annotation
        return _union_members(ast.parse(expr.value, mode="eval").body, aliases)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _union_members(expr.left, aliases) + _union_members(expr.right, aliases)
    if isinstance(expr, ast.Name) and expr.id in aliases:
        return _union_members(aliases[expr.id], aliases)
    if isinstance(expr, ast.Subscript):
        head = _name(expr.value)
        args = list(expr.slice.elts) if isinstance(expr.slice, ast.Tuple) else [expr.slice]
        if head == "Optional":
            return _union_members(args[0], aliases) + ["None"]
        if head == "Union":
            return [m for a in args for m in _union_members(a, aliases)]
        inner = ", ".join(_argument(a, aliases) for a in args)
        return [f"{head}[{inner}]"]
    return [_name(expr)]


def _argument(expr: ast.expr, aliases: dict[str, ast.expr]) -> str:
    if isinstance(expr, ast.List):  # Callable[[A, B], R]
        return "[" + ", ".join(normalise(e, aliases) for e in expr.elts) + "]"
    if isinstance(expr, ast.Constant) and expr.value is Ellipsis:
        return "..."
    return normalise(expr, aliases)


# ---- signatures ----


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "positional", "positional-only", "keyword-only", "*args", "**kwargs"
    type: str
    default: Optional[str]  # None: no default; "...": a default the stub does not spell

    def show(self) -> str:
        text = f"{self.name}: {self.type}"
        if self.default is not None:
            text += f" = {self.default}"
        marks = {"positional-only": " (positional-only)", "keyword-only": " (keyword-only)"}
        return text + marks.get(self.kind, "")


@dataclass(frozen=True)
class Signature:
    params: tuple[Param, ...]
    returns: str

    def show(self) -> str:
        return "(" + ", ".join(p.show() for p in self.params) + ") -> " + self.returns


def _default(expr: Optional[ast.expr]) -> Optional[str]:
    if expr is None:
        return None
    if isinstance(expr, ast.Constant) and expr.value is Ellipsis:
        return "..."
    try:
        return repr(ast.literal_eval(expr))
    except ValueError:
        return ast.unparse(expr)


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef, aliases: dict[str, ast.expr],
               *, method: bool) -> Signature:
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults: list[Optional[ast.expr]] = [None] * (len(positional) - len(a.defaults))
    defaults += list(a.defaults)
    params: list[Param] = []
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        if method and i == 0:
            continue  # self
        kind = "positional-only" if i < len(a.posonlyargs) or arg.arg.startswith("__") \
            else "positional"
        params.append(Param(arg.arg.lstrip("_") if arg.arg.startswith("__") else arg.arg,
                            kind, normalise(arg.annotation, aliases), _default(default)))
    if a.vararg is not None:
        params.append(Param(a.vararg.arg, "*args", normalise(a.vararg.annotation, aliases),
                            None))
    for arg, kw_default in zip(a.kwonlyargs, a.kw_defaults):
        params.append(Param(arg.arg, "keyword-only", normalise(arg.annotation, aliases),
                            _default(kw_default)))
    if a.kwarg is not None:
        params.append(Param(a.kwarg.arg, "**kwargs", normalise(a.kwarg.annotation, aliases),
                            None))
    return Signature(tuple(params), normalise(fn.returns, aliases))


class UnreadableSignature(Exception):
    """A compiled signature that does not parse as Python."""


# pybind11 writes an object default it cannot spell as its repr: <... object at 0x...>.
_OPAQUE_DEFAULT = re.compile(r"<[^<>]*>")


def _pybind_signatures(obj: Any, name: str, *, method: bool) -> list[Signature]:
    """The signatures pybind11 put at the top of ``obj.__doc__`` (one per overload)."""
    doc = obj.__doc__ or ""
    lines = doc.splitlines()
    if len(lines) > 1 and lines[1].strip() == "Overloaded function.":
        heads = [ln.split(". ", 1)[1] for ln in lines[2:] if re.match(r"^\d+\. ", ln)]
    else:
        heads = lines[:1]
    out = []
    for head in heads:
        if not head.startswith("("):
            if not head.startswith(name + "("):
                raise AssertionError(f"{name}: no pybind11 signature in __doc__: {head!r}")
            head = head[len(name):]
        source = f"def f{_OPAQUE_DEFAULT.sub('...', head)}: ..."
        try:
            fn = ast.parse(source).body[0]
        except SyntaxError:
            # e.g. a C++ type name (ns::Type) where a class was bound after its first use
            raise UnreadableSignature(f"{name or 'property'}: pybind11's signature is not "
                                      f"Python: {head!r}") from None
        assert isinstance(fn, ast.FunctionDef)
        out.append(_signature(fn, {}, method=method))
    return out


def _python_signature(fn: Any) -> Signature:
    """A method the Python layer installs on a native class, from its source annotations."""
    source = inspect.getsource(fn)
    tree = ast.parse(inspect.cleandoc("\n" + source) if source[:1].isspace() else source)
    node = tree.body[0]
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    return _signature(node, {}, method=True)


def _compiled_signatures(obj: Any, name: str, *, method: bool) -> list[Signature]:
    if inspect.isfunction(obj):
        return [_python_signature(obj)]
    return _pybind_signatures(obj, name, method=method)


def _stub_functions(body: list[ast.stmt]) -> dict[str, list[ast.FunctionDef]]:
    """Functions by name; several when overloaded (``@overload``), in order."""
    out: dict[str, list[ast.FunctionDef]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef) and not _decorators(node) & {"property", "setter"}:
            out.setdefault(node.name, []).append(node)
    return out


def _decorators(fn: ast.FunctionDef) -> set[str]:
    names = set()
    for d in fn.decorator_list:
        if isinstance(d, ast.Name):
            names.add(d.id)
        elif isinstance(d, ast.Attribute):
            names.add(d.attr)
    return names


def _stub_properties(
    cls: ast.ClassDef, aliases: dict[str, ast.expr]
) -> dict[str, tuple[str, bool]]:
    """name -> (type, writable) for @property (+ @x.setter) and annotated attributes."""
    props: dict[str, tuple[str, bool]] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            props[node.target.id] = (normalise(node.annotation, aliases), True)
        elif isinstance(node, ast.FunctionDef) and "property" in _decorators(node):
            props[node.name] = (normalise(node.returns, aliases), False)
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and "setter" in _decorators(node):
            kind, _ = props[node.name]
            props[node.name] = (kind, True)
    return props


# ---- the comparison ----


def _compare_functions(where: str, stub: list[ast.FunctionDef], compiled: Any,
                       aliases: dict[str, ast.expr], *, method: bool) -> list[str]:
    want = [_signature(fn, aliases, method=method) for fn in stub]
    name = where.rsplit(".", 1)[-1]
    try:
        got = _compiled_signatures(compiled, name, method=method)
    except UnreadableSignature as e:
        return [f"{where}: {e}"]
    if len(want) != len(got):
        return [f"{where}: the stub has {len(want)} signature(s), the module {len(got)}:\n"
                + "".join(f"    stub:     {s.show()}\n" for s in want)
                + "".join(f"    compiled: {s.show()}\n" for s in got)]
    problems = []
    for stub_sig, runtime_sig in zip(want, got):
        diff = _signature_diff(stub_sig, runtime_sig)
        if diff:
            problems.append(f"{where}:\n" + "".join(f"    {line}\n" for line in diff))
    return problems


def _signature_diff(stub: Signature, compiled: Signature) -> list[str]:
    lines = []
    for i in range(max(len(stub.params), len(compiled.params))):
        s = stub.params[i] if i < len(stub.params) else None
        c = compiled.params[i] if i < len(compiled.params) else None
        if s is not None and c is not None and _same_param(s, c):
            continue
        label = f"parameter {i + 1}"
        lines.append(f"{label} stub:     {s.show() if s else '(none)'}")
        lines.append(f"{' ' * len(label)} compiled: {c.show() if c else '(none)'}")
    if stub.returns != compiled.returns:
        lines.append(f"returns stub:     {stub.returns}")
        lines.append(f"        compiled: {compiled.returns}")
    return lines


def _same_param(s: Param, c: Param) -> bool:
    if (s.name, s.kind, s.type) != (c.name, c.kind, c.type):
        return False
    if (s.default is None) != (c.default is None):
        return False
    return s.default in (None, "...") or c.default == "..." or s.default == c.default


def _stub_tree(path: Path = STUB) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def stub_names() -> set[str]:
    names = set()
    for node in _stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def signature_problems(path: Path = STUB) -> list[str]:
    """Every difference between the stub at `path` and the compiled module, described."""
    tree = _stub_tree(path)
    aliases = _stub_aliases(tree)
    problems: list[str] = []
    for name, fns in _stub_functions(tree.body).items():
        problems += _compare_functions(name, fns, getattr(_native, name), aliases, method=False)
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            value = getattr(_native, node.target.id)
            want = normalise(node.annotation, aliases)
            got = normalise(ast.Name(type(value).__name__), {})
            if want != got:
                problems.append(f"{node.target.id}: stub says {want}, the module holds a {got}")
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(_native, node.name)
        for attr, fns in _stub_functions(node.body).items():
            where = f"{node.name}.{attr}"
            if attr.startswith("__") and attr not in _COMPARED_DUNDERS:
                continue
            member = cls.__dict__.get(attr)
            if member is None:
                problems.append(f"{where}: in the stub, not defined by the compiled class")
                continue
            problems += _compare_functions(where, fns, member, aliases, method=True)
        stub_props = _stub_properties(node, aliases)
        runtime_props = {k: v for k, v in vars(cls).items() if isinstance(v, property)}
        for attr in sorted(set(stub_props) | set(runtime_props)):
            where = f"{node.name}.{attr}"
            if attr not in runtime_props:
                problems.append(f"{where}: a property in the stub, not in the compiled class")
                continue
            if attr not in stub_props:
                problems.append(f"{where}: a property of the compiled class, not in the stub")
                continue
            prop = runtime_props[attr]
            try:
                (getter,) = _pybind_signatures(prop.fget, "", method=True)
            except UnreadableSignature as e:
                problems.append(f"{where}: {e}")
                continue
            want_type, want_writable = stub_props[attr]
            writable = prop.fset is not None
            if want_type != getter.returns:
                problems.append(f"{where}: stub type {want_type}, compiled {getter.returns}")
            if want_writable != writable:
                state = {True: "read-write", False: "read-only"}
                problems.append(f"{where}: {state[want_writable]} in the stub, "
                                f"{state[writable]} in the compiled class")
        for attr, member in vars(cls).items():
            if (not attr.startswith("_") and not isinstance(member, property)
                    and callable(member) and attr not in _stub_functions(node.body)):
                problems.append(f"{node.name}.{attr}: a method of the compiled class, "
                                "not in the stub")
    return problems


# ---- tests ----


def test_stub_matches_module() -> None:
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert stub_names() == public


def test_stub_signatures_match_module() -> None:
    problems = signature_problems()
    if problems:
        pytest.fail(f"python/llmbridge/_native.pyi disagrees with the compiled module in "
                    f"{len(problems)} place(s):\n" + "\n".join(problems), pytrace=False)


@pytest.mark.parametrize(
    ("stub", "pybind"),
    [
        ("Optional[int]", "int | None"),
        ("Union[str, None]", "typing.Optional[str]"),
        ("int", "typing.SupportsInt | typing.SupportsIndex"),
        ("float", "typing.SupportsFloat | typing.SupportsIndex"),
        ("list[ReplicaStats]", "list[llmbridge._native.ReplicaStats]"),
        ("Sequence[str]", "collections.abc.Sequence[str]"),
        ("Callable[[int, Optional[ChatResult]], None]",
         "collections.abc.Callable[[typing.SupportsInt | typing.SupportsIndex, "
         "llmbridge._native.ChatResult | None], None]"),
        ("Any", "object"),
        ("Dict[str, int]", "dict[str, int]"),
    ],
)
def test_normalise_treats_spellings_alike(stub: str, pybind: str) -> None:
    def norm(text: str) -> str:
        return normalise(ast.parse(text, mode="eval").body, {})

    assert norm(stub) == norm(pybind)


@pytest.mark.parametrize(
    ("a", "b"),
    [("int", "float"), ("list[str]", "list[int]"), ("str", "str | None"),
     ("list[str]", "Sequence[str]"), ("object", "str")],
)
def test_normalise_keeps_different_types_apart(a: str, b: str) -> None:
    def norm(text: str) -> str:
        return normalise(ast.parse(text, mode="eval").body, {})

    assert norm(a) != norm(b)


def test_a_changed_stub_fails_with_a_diff(tmp_path: Path) -> None:
    """A wrong parameter name, default, return type or writability in a copy of the stub
    is found, and the report says where and shows both sides."""
    text = STUB.read_text(encoding="utf-8")
    changes = [
        ("def http_error(status: int) -> str", "def http_error(code: int) -> str"),
        ("def is_valid_base_url(url: str) -> bool", "def is_valid_base_url(url: str) -> int"),
        ("repair: bool = True", "repair: bool = False"),
        ("    seed: Optional[int]\n", "    @property\n    def seed(self) -> Optional[int]: ...\n"),
    ]
    broken = text
    for old, new in changes:
        assert old in broken, old
        broken = broken.replace(old, new, 1)
    stub = tmp_path / "_native.pyi"
    stub.write_text(broken, encoding="utf-8")
    problems = signature_problems(stub)
    report = "\n".join(problems)
    assert len(problems) == 4, report
    assert "http_error:" in report and "code: int" in report and "status: int" in report
    assert "is_valid_base_url:" in report and "returns stub:     int" in report
    assert "loads:" in report and "repair: bool = False" in report
    assert "GenerateOptions.seed: read-only in the stub, read-write" in report


def test_stub_class_members_exist() -> None:
    for node in _stub_tree().body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(_native, node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    assert hasattr(cls, item.name), f"{node.name}.{item.name}"


def test_py_typed_ships() -> None:
    assert (PKG / "py.typed").exists()


def test_all_exports_resolve() -> None:
    for name in llmbridge.__all__:
        assert hasattr(llmbridge, name), name

