"""The shipped type stub matches the compiled module; py.typed ships."""

from __future__ import annotations

import ast
from pathlib import Path

import llmbridge
from llmbridge import _native

PKG = Path(llmbridge.__file__).resolve().parent


def stub_names() -> set[str]:
    tree = ast.parse((PKG / "_native.pyi").read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_stub_matches_module() -> None:
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert stub_names() == public


def test_stub_class_members_exist() -> None:
    tree = ast.parse((PKG / "_native.pyi").read_text(encoding="utf-8"))
    for node in tree.body:
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
