"""Property tests (hypothesis): llmbridge.validate agrees with jsonschema.

For generated schemas built from the supported keywords and generated instances, the
verdict (valid or not) equals jsonschema.Draft202012Validator's, and every error pointer
resolves inside the instance. The generators stay where the two are meant to agree:

- multipleOf is an integer and floats stay below 1e15 in magnitude (llmbridge divides
  the numbers' decimal text exactly; jsonschema divides binary floats, so 0.3 and 0.1
  or a huge float's unprinted digits can make them differ: docs/schema-validation.md);
- patterns use the part of the syntax where ECMA-262 and Python's re agree, and strings
  hold no newline (Python's $ also matches before a final newline, ECMA-262's does not)
  and no non-ASCII digit (\\d is ASCII in ECMA-262).

Runs under the "ci" profile (conftest.py): no deadline, bounded examples.
"""

from __future__ import annotations

import json
from typing import Any

import llmbridge
import pytest
from hypothesis import given
from hypothesis import strategies as st

jsonschema = pytest.importorskip("jsonschema")

NAMES = ["a", "b", "c", "x-1"]
PATTERNS = ["^a", "b$", "^[a-c]+$", "\\d", "^.{2}$", "a|é", "^(ab)*$", "[^a]", "^x-"]
TYPES = ["null", "boolean", "object", "array", "number", "integer", "string"]

# ---- instances ------------------------------------------------------------------------

numbers = (
    st.integers(-6, 6)
    | st.sampled_from([2**64, -(2**63) - 1, 10**20])
    | st.floats(-1e15, 1e15, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 2))
    | st.sampled_from([0.5, 1.0, -2.0, 2.5, 1e3])
)
strings = st.text(alphabet="abcx-é1 ", max_size=5)
scalars = st.none() | st.booleans() | numbers | strings
instances = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=4)
    ),
    max_leaves=12,
)

# ---- schemas --------------------------------------------------------------------------

small = st.integers(0, 4)
bound = st.integers(-5, 5) | st.sampled_from([0.5, -1.5, 2.5])


def keyword_schemas(sub: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects of one to three keywords, subschemas drawn from `sub`."""
    keywords: dict[str, st.SearchStrategy[Any]] = {
        "type": st.sampled_from(TYPES)
        | st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
        "enum": st.lists(scalars, min_size=1, max_size=4),
        "const": scalars,
        "minimum": bound,
        "maximum": bound,
        "exclusiveMinimum": bound,
        "exclusiveMaximum": bound,
        "multipleOf": st.integers(1, 4),
        "minLength": small,
        "maxLength": small,
        "pattern": st.sampled_from(PATTERNS),
        "minItems": small,
        "maxItems": small,
        "uniqueItems": st.booleans(),
        "minProperties": small,
        "maxProperties": small,
        "required": st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
        "properties": st.dictionaries(st.sampled_from(NAMES), sub, max_size=3),
        "patternProperties": st.dictionaries(st.sampled_from(PATTERNS), sub, max_size=2),
        "additionalProperties": sub,
        "propertyNames": st.sampled_from(
            [{"maxLength": 1}, {"pattern": "^[ab]"}, {"enum": ["a", "c"]}]
        ),
        "dependentRequired": st.dictionaries(
            st.sampled_from(NAMES),
            st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
            max_size=2,
        ),
        "dependentSchemas": st.dictionaries(st.sampled_from(NAMES), sub, max_size=2),
        "items": sub,
        "prefixItems": st.lists(sub, min_size=1, max_size=3),
        "contains": sub,
        "minContains": small,
        "maxContains": small,
        "allOf": st.lists(sub, min_size=1, max_size=3),
        "anyOf": st.lists(sub, min_size=1, max_size=3),
        "oneOf": st.lists(sub, min_size=1, max_size=3),
        "not": sub,
        "if": sub,
        "then": sub,
        "else": sub,
    }
    names = st.lists(st.sampled_from(sorted(keywords)), min_size=1, max_size=3, unique=True)
    return names.flatmap(lambda ks: st.fixed_dictionaries({k: keywords[k] for k in ks}))


REF = {"$ref": "#/$defs/d"}
leaves = st.booleans() | st.just({}) | keyword_schemas(st.booleans() | st.just({}))
schemas = st.recursive(leaves | st.just(REF), keyword_schemas, max_leaves=8)
definitions = st.recursive(leaves, keyword_schemas, max_leaves=4)  # no $ref: no loop
# A root object always carries the definition its $refs point at.
roots = st.tuples(schemas, definitions).map(
    lambda pair: {**pair[0], "$defs": {"d": pair[1]}} if isinstance(pair[0], dict) else pair[0]
)


def resolve(instance: Any, pointer: str) -> Any:
    """The value at an RFC 6901 pointer; raises when it does not resolve."""
    if pointer == "":
        return instance
    assert pointer.startswith("/"), pointer
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(instance, list):
            instance = instance[int(token)]
        else:
            instance = instance[token]
    return instance


@given(roots, instances)
def test_verdict_agrees_with_jsonschema(schema: Any, instance: Any) -> None:
    theirs = jsonschema.Draft202012Validator(schema).is_valid(instance)
    errors = llmbridge.validate(instance, schema)
    assert (not errors) == theirs, (json.dumps(schema), json.dumps(instance), errors)
    for pointer, message in errors:
        resolve(instance, pointer)
        assert message


@given(roots)
def test_every_generated_schema_compiles_and_is_fully_supported(schema: Any) -> None:
    assert llmbridge.check_schema(schema) == []
