"""llmbridge.validate and llmbridge.check_schema: results, errors, caching, logging."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any

import llmbridge
import pytest

PERSON = {
    "type": "object",
    "required": ["name", "age"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": ["string", "null"], "pattern": "^[^@]+@[^@]+$"},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
    },
}


def test_valid_instance_gives_no_errors() -> None:
    assert (
        llmbridge.validate({"name": "Ada", "age": 36, "email": None, "tags": ["a"]}, PERSON) == []
    )


def test_errors_are_pointer_message_pairs_in_document_order() -> None:
    errors = llmbridge.validate({"age": -1, "email": "x", "tags": ["a", "c", "a"]}, PERSON)
    assert errors == [
        ("", 'missing required property "name"'),
        ("/age", "-1 is less than the minimum 0"),
        ("/email", '"x" does not match pattern "^[^@]+@[^@]+$"'),
        ("/tags", "items 0 and 2 are equal (uniqueItems)"),
        ("/tags/1", '"c" is not one of "a", "b"'),
    ]
    assert all(isinstance(p, str) and isinstance(m, str) for p, m in errors)


def test_max_errors_bounds_the_list() -> None:
    schema = {"items": {"type": "integer"}}
    assert len(llmbridge.validate(["x"] * 50, schema)) == 10
    assert llmbridge.validate(["x"] * 50, schema, max_errors=2) == [
        ("/0", "expected integer, got string"),
        ("/1", "expected integer, got string"),
    ]
    with pytest.raises(ValueError, match="max_errors must be at least 1"):
        llmbridge.validate(1, schema, max_errors=0)
    with pytest.raises(ValueError, match="max_errors must be at least 1"):
        llmbridge.validate(1, schema, max_errors=-5)


def test_python_values_map_to_json_types() -> None:
    assert llmbridge.validate("42", {"type": "string"}) == []  # a str is a JSON string, not parsed
    assert llmbridge.validate(1.0, {"type": "integer"}) == []
    assert llmbridge.validate(True, {"type": "integer"}) == [("", "expected integer, got boolean")]
    assert llmbridge.validate((1, 2), {"type": "array", "maxItems": 2}) == []
    assert llmbridge.validate(OrderedDict(a=1), {"required": ["a"]}) == []
    assert llmbridge.validate(2**80, {"type": "integer", "maximum": 2**80}) == []
    assert llmbridge.validate(2**80 + 1, {"maximum": 2**80}) == [
        ("", "1208925819614629174706177 is greater than the maximum 1208925819614629174706176")
    ]
    assert llmbridge.validate(-(2**70), {"minimum": -(2**70)}) == []
    assert llmbridge.validate({"a": 1}, {"const": {"a": 1.0}}) == []
    assert llmbridge.validate(0.3, {"multipleOf": 0.1}) == []


def test_schema_may_be_a_bool() -> None:
    assert llmbridge.validate({"anything": [1]}, True) == []
    assert llmbridge.validate(None, False) == [("", "no value is allowed here (false schema)")]


def test_pointers_escape_tilde_and_slash() -> None:
    errors = llmbridge.validate({"a/b": 1, "c~d": 2}, {"additionalProperties": {"type": "string"}})
    assert [p for p, _ in errors] == ["/a~1b", "/c~0d"]


def test_messages_quote_instance_data_only_as_short_excerpts() -> None:
    secret = "é" * 500
    ((pointer, message),) = llmbridge.validate(
        {"k": secret}, {"properties": {"k": {"enum": ["x"]}}}
    )
    assert pointer == "/k"
    assert len(message.split(" is not one of")[0].encode()) <= 60
    ((_, key_message),) = llmbridge.validate({secret: 1}, {"additionalProperties": False})
    assert len(key_message.encode()) < 120


def test_anyof_reports_one_summary() -> None:
    schema = {
        "properties": {"v": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 5}]}}
    }
    assert llmbridge.validate({"v": 1}, schema) == [
        ("/v", "matches none of the 2 anyOf alternatives; anyOf/1: 1 is less than the minimum 5")
    ]
    assert llmbridge.validate({"v": None}, schema) == [
        ("/v", "matches none of the 2 anyOf alternatives")
    ]


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "text"}, "/type"),
        ({"properties": {"a": {"minimum": "3"}}}, "/properties/a/minimum"),
        ({"items": 3}, "/items"),
        ({"$ref": "#/$defs/nope"}, "/$ref"),
        ({"pattern": "(unclosed"}, "/pattern"),
        ({"patternProperties": {"a{2,1}": {}}}, "/patternProperties/a{2,1}"),
    ],
)
def test_bad_schema_is_a_value_error_naming_the_location(
    schema: dict[str, Any], where: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid schema at {where}:")):
        llmbridge.validate(1, schema)
    with pytest.raises(ValueError, match=re.escape(f"invalid schema at {where}:")):
        llmbridge.check_schema(schema)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="schema must be a dict or a bool, got str"):
        llmbridge.validate(1, '{"type": "string"}')  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="instance is not JSON: a value of type set"):
        llmbridge.validate({1, 2}, {})
    with pytest.raises(TypeError, match="dict key of type int"):
        llmbridge.validate({1: "a"}, {})
    with pytest.raises(ValueError, match="NaN or infinity"):
        llmbridge.validate([float("nan")], {})
    with pytest.raises(ValueError, match="lone surrogate"):
        llmbridge.validate("\ud800", {})
    with pytest.raises(ValueError, match="schema is not JSON: it holds NaN"):
        llmbridge.validate(1, {"maximum": float("inf")})


def test_circular_and_deep_values_raise_instead_of_crashing() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nests deeper than 10000 levels"):
        llmbridge.validate(loop, {})
    deep: Any = 1
    for _ in range(3000):
        deep = [deep]
    errors = llmbridge.validate(deep, {"anyOf": [{"type": "integer"}, {"items": {"$ref": "#"}}]})
    assert len(errors) == 1  # a bounded evaluation depth, reported as an error


def test_pathological_pattern_finishes() -> None:
    errors = llmbridge.validate("a" * 50_000 + "!", {"pattern": "^(a+)+$"})
    assert errors and errors[0][1].endswith('does not match pattern "^(a+)+$"')


def test_unsupported_keywords_warn_once_per_schema(caplog: pytest.LogCaptureFixture) -> None:
    schema = {
        "properties": {"x": {"$ref": "https://example.com/x.json"}},
        "unevaluatedProperties": False,
    }
    assert llmbridge.check_schema(schema) == [
        "$ref to a remote document at /properties/x",
        "unevaluatedProperties at (root)",
    ]
    with caplog.at_level(logging.WARNING, logger="llmbridge"):
        for _ in range(3):
            assert llmbridge.validate({"x": 1, "y": 2}, schema) == []  # not checked
        assert llmbridge.validate({"x": 1}, dict(schema)) == []  # an equal schema: the same text
    warnings = [r for r in caplog.records if r.name == "llmbridge"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "unevaluatedProperties at (root)" in warnings[0].getMessage()
    assert llmbridge.check_schema({"type": "string"}) == []


def test_schema_mutated_in_place_is_compiled_again() -> None:
    schema: dict[str, Any] = {"type": "object", "required": ["a"]}
    assert llmbridge.validate({}, schema) == [("", 'missing required property "a"')]
    schema["required"] = ["b"]
    assert llmbridge.validate({"a": 1}, schema) == [("", 'missing required property "b"')]
    schema["required"].append("c")
    assert len(llmbridge.validate({"a": 1}, schema)) == 2


def test_compiled_schema_and_text_path_agree_with_validate() -> None:
    compiled = llmbridge.compile_schema(PERSON)
    assert isinstance(compiled, llmbridge.CompiledSchema)
    assert compiled.unsupported == []
    value = {"name": "", "age": 1.5, "extra": True}
    doc = '{"name": "", "age": 1.5, "extra": true}'
    assert compiled.validate(value) == llmbridge.validate(value, PERSON)
    assert compiled.validate_json(doc) == compiled.validate(value)
    assert len(compiled.validate_json(doc, max_errors=1)) == 1
    assert compiled.validate_json(doc.encode()) == compiled.validate_json(doc)
    with pytest.raises(ValueError, match="instance is not valid JSON"):
        compiled.validate_json('{"name": ')
    with pytest.raises(ValueError, match="invalid schema at /minLength"):
        llmbridge.compile_schema({"minLength": "1"})


def test_threads_validate_concurrently() -> None:
    results: list[bool] = []

    def work(i: int) -> None:
        ok = True
        for k in range(300):
            doc = {"name": "n", "age": (i + k) % 5 - 1}
            ok &= (llmbridge.validate(doc, PERSON) == []) == (doc["age"] >= 0)
        results.append(ok)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_a_schema_mapping_that_is_not_a_dict() -> None:
    import types

    schema = types.MappingProxyType({"type": "string", "maxLength": 2})
    assert llmbridge.validate("ab", schema) == []
    assert [p for p, _ in llmbridge.validate("abc", schema)] == [""]
