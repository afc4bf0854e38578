"""JSON text tools: fence stripping, repair, and parsing into Python objects."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from . import _native

__all__ = [
    "CompiledSchema",
    "Repair",
    "RepairReport",
    "check_schema",
    "compile_schema",
    "is_valid_json",
    "loads",
    "repair_json",
    "repair_report",
    "strip_markdown_fences",
    "validate",
]

Text = Union[str, bytes, bytearray, memoryview]


def strip_markdown_fences(text: Text) -> str:
    """Return the content of the markdown code fence around an LLM answer.

    A text that is one fenced block (```` ```json ```` ... ```` ``` ````) gives back
    its middle verbatim; otherwise the first fenced block holding JSON is chosen
    (prose around it is ignored); unfenced text comes back unchanged.
    """
    return _native.strip_markdown_fences(text)


def repair_json(text: Text) -> str:
    """Return valid JSON text for what an LLM emitted.

    Valid JSON comes back as it is (the same object for a ``str``). Broken JSON is
    repaired in linear time (see docs/json-repair.md for the catalogue and policy).
    Raises :class:`llmbridge.JSONRepairError` when the text holds no JSON at all.
    """
    return _native.repair_json(text)


def loads(text: Text, *, repair: bool = True) -> Any:
    """Parse JSON text into Python objects, repairing it first when needed.

    Fences and surrounding prose are stripped and broken JSON repaired, then the
    objects are built straight from simdjson's parse. With ``repair=False`` only
    strictly valid JSON is accepted. Raises :class:`llmbridge.JSONRepairError`.
    """
    return _native.loads(text, repair)


def is_valid_json(text: Text) -> bool:
    """True when ``text`` is exactly one strictly valid JSON document."""
    return _native.is_valid_json(text)


@dataclass(frozen=True)
class Repair:
    """One repair applied: its kind (e.g. ``"comma_removed"``) and input byte offset."""

    kind: str
    position: int


@dataclass(frozen=True)
class RepairReport:
    """What :func:`repair_report` found.

    ``json`` is the repaired text, ``changed`` whether it differs from the input,
    ``truncated`` whether the input was cut off (an answer stopped by max_tokens:
    open strings and containers were closed), ``repairs`` the list of repairs.
    """

    json: str
    changed: bool
    truncated: bool
    repairs: tuple[Repair, ...]

    @property
    def kinds(self) -> set[str]:
        """The distinct kinds of repair applied."""
        return {r.kind for r in self.repairs}

    def loads(self) -> Any:
        """The repaired JSON as Python objects."""
        return _native.loads(self.json, False)


def repair_report(text: Text) -> RepairReport:
    """Repair ``text`` and say what was repaired and whether it was truncated."""
    json, changed, truncated, repairs = _native.repair_report(text)
    return RepairReport(json, changed, truncated, tuple(Repair(k, p) for k, p in repairs))



Schema = Union[Mapping[str, Any], bool]

_log = logging.getLogger("llmbridge")

# Callers validate against the same schema object again and again. Its compiled form is
# cached by the object and reused while the object still equals the copy taken when it
# was compiled (a schema mutated in place compiles again): comparing costs a fraction of
# turning the schema into JSON text. Behind this, the core caches by the schema's text.
_SCHEMA_CACHE_SIZE = 64
_compiled: dict[int, tuple[Any, Any, _native.Schema]] = {}


def _compile(schema: Schema) -> _native.Schema:
    if isinstance(schema, Mapping) and not isinstance(schema, dict):
        # The core reads a dict: another Mapping is copied into one (and cached by the
        # core's schema-text cache only).
        schema = dict(schema)
    hit = _compiled.get(id(schema))
    if hit is not None and hit[0] is schema and hit[1] == schema:
        return hit[2]
    # Anything but a dict or a bool reaches the core, which refuses it naming its type.
    compiled = _native.compile_schema(schema)
    _warn_unsupported(compiled)
    if len(_compiled) >= _SCHEMA_CACHE_SIZE:
        _compiled.clear()
    # The entry holds the schema itself, so its id cannot be reused while cached.
    _compiled[id(schema)] = (schema, copy.deepcopy(schema), compiled)
    return compiled


def _warn_unsupported(compiled: _native.Schema) -> None:
    # Once per compiled schema, and the core compiles each distinct schema text once.
    if compiled.unsupported and compiled.claim_unsupported_report():
        _log.warning(
            "JSON Schema keywords llmbridge does not check (ignored): %s",
            "; ".join(compiled.unsupported),
        )


def validate(instance: Any, schema: Schema, *, max_errors: int = 10) -> list[tuple[str, str]]:
    """Check a JSON value against a JSON Schema (draft 2020-12); return its errors.

    ``instance`` is a Python JSON value (dict, list, tuple, str, int, float, bool,
    None): a ``str`` is a JSON string, never parsed. ``schema`` is a dict or a bool.
    The result is at most ``max_errors`` ``(pointer, message)`` pairs in document order,
    where ``pointer`` is the RFC 6901 JSON Pointer of the offending value ("" for the
    root); an empty list means valid. The schema is compiled once and cached (see
    :func:`compile_schema` to hold the compiled form yourself). Keywords the validator
    cannot check (``unevaluatedProperties``, ``$dynamicRef``, a remote ``$ref``, a
    regex with a backreference, ...) are logged once per schema as a WARNING on the
    ``llmbridge`` logger and not checked.

    Raises ``ValueError`` for an invalid schema (naming where it is wrong), a value that
    is not JSON (NaN, a lone surrogate) or ``max_errors`` below 1; ``TypeError`` for a
    type JSON does not have. See docs/schema-validation.md.
    """
    return _compile(schema).validate(instance, max_errors)


def check_schema(schema: Schema) -> list[str]:
    """Compile a JSON Schema; return the keywords :func:`validate` would not check.

    Raises ``ValueError`` naming what is wrong when the schema is invalid. Each entry
    reads ``"<keyword> at <schema pointer>"``, e.g. ``"unevaluatedProperties at (root)"``.
    """
    return list(_compile(schema).unsupported)


class CompiledSchema:
    """A JSON Schema compiled once, to validate many values (see :func:`compile_schema`)."""

    __slots__ = ("_compiled",)

    def __init__(self, schema: Schema) -> None:
        self._compiled = _compile(schema)

    @property
    def unsupported(self) -> list[str]:
        """The keywords present but not checked, as ``"<keyword> at <schema pointer>"``."""
        return list(self._compiled.unsupported)

    def validate(self, instance: Any, *, max_errors: int = 10) -> list[tuple[str, str]]:
        """Like :func:`validate` with this schema."""
        return self._compiled.validate(instance, max_errors)

    def validate_json(self, text: Text, *, max_errors: int = 10) -> list[tuple[str, str]]:
        """Validate JSON text (``str`` or ``bytes``), parsed in C++ without building
        Python objects: what a client does with a model's answer. Raises ``ValueError``
        when the text is not JSON."""
        return self._compiled.validate_json(text, max_errors)

    def __repr__(self) -> str:
        return f"<CompiledSchema unsupported={len(self._compiled.unsupported)}>"


def compile_schema(schema: Schema) -> CompiledSchema:
    """Compile a JSON Schema once; the result validates without the cache lookup that
    :func:`validate` does per call (a dict comparison with the cached copy).

    Raises like :func:`validate`; logs unsupported keywords like :func:`validate`.
    """
    return CompiledSchema(schema)
