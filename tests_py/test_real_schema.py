"""The schema check against real servers: what vLLM 0.32 and llama-server really do with
schemas they cannot (or do not) enforce, and that llmbridge reports it.

Seen on these servers (tiny random-weight models, temperature 0):

- vLLM accepts a schema with a remote ``$ref`` (200; a warning in its own log only) and
  decodes ``"a"`` without constraint: the tiny model writes ``{"a":9090...`` until
  ``max_tokens``, with no ``"b"`` although the schema requires it. The old client called
  that a success.
- llama-server refuses a remote ``$ref`` (400) but ignores ``response_format`` on
  ``/v1/completions`` and the flat ``response_format.schema`` form on chat: the answers
  there do not follow the schema.
- Both enforce a plain schema (an enum) on chat: the check passes.

That the re-ask is really sent is read from the server's own count of prompt tokens: the
second try's prompt holds the answer and the list of errors, so it is longer than the
first try's; with ``schema_retry=False`` it is the same request, the same count.
"""

from __future__ import annotations

from typing import Any

import pytest
from llmbridge import VLLMClient

pytestmark = pytest.mark.real_server

PROMPTS = {"system": "Answer with JSON only.", "user": "Classify:\n{document_text}"}
ENUM_SCHEMA = {
    "type": "object",
    "properties": {"c": {"enum": ["x", "y"]}},
    "required": ["c"],
    "additionalProperties": False,
}
REMOTE_REF_SCHEMA = {
    "type": "object",
    "properties": {"a": {"$ref": "https://example.com/x.json"}},
    "required": ["a", "b"],
}
# Small answers keep the servers quick; the tiny models fill max_tokens when unconstrained.
CALL = {"timeout": 120.0, "max_tokens": 64}


def client_for(server: Any, **overrides: Any) -> VLLMClient:
    return VLLMClient(base_url=server.base_url, model=server.model, **{**CALL, **overrides})


def check_mismatch(result: Any) -> None:
    assert not result.success
    assert result.error.startswith("schema_mismatch: "), result.error
    assert result.retryable is True
    assert result.schema_errors, result.error
    pointer, message = result.schema_errors[0]
    shown = "(root)" if pointer == "" else pointer
    assert result.error == f"schema_mismatch: {shown}: {message}"
    assert result.raw_response  # the answer stays there to look at


# ---- vLLM --------------------------------------------------------------------------


def test_vllm_remote_ref_is_not_reported_as_success(vllm_server: Any) -> None:
    with client_for(vllm_server, max_retries=0, validate_schema=False) as client:
        unchecked = client.call_llm_sync(PROMPTS, REMOTE_REF_SCHEMA, "a sky")
    # What the old client reported: vLLM answered 200 with JSON that lacks "b".
    assert unchecked.success, unchecked.error
    assert unchecked.status_code == 200
    assert isinstance(unchecked.data, dict) and "b" not in unchecked.data

    with client_for(vllm_server, max_retries=0) as client:
        attempt = client.call_llm_sync(PROMPTS, REMOTE_REF_SCHEMA, "a sky")
        assert client.stats().errors == {"schema_mismatch": 1}
    check_mismatch(attempt)
    assert attempt.status_code == 200 and attempt.attempts == 1
    assert attempt.schema_errors[0][0] == ""  # the whole answer: "b" is missing
    assert attempt.raw_response.startswith('{"a":')


def test_vllm_mismatch_is_re_asked(vllm_server: Any) -> None:
    with client_for(vllm_server, max_retries=0) as client:
        one = client.call_llm_sync(PROMPTS, REMOTE_REF_SCHEMA, "a sky")
    with client_for(vllm_server, max_retries=1) as client:
        reasked = client.call_llm_sync(PROMPTS, REMOTE_REF_SCHEMA, "a sky")
    with client_for(vllm_server, max_retries=1, schema_retry=False) as client:
        repeated = client.call_llm_sync(PROMPTS, REMOTE_REF_SCHEMA, "a sky")
    check_mismatch(reasked)
    check_mismatch(repeated)
    assert reasked.attempts == repeated.attempts == 2
    # The last try's prompt: the answer and the errors were added; or the same request.
    assert one.prompt_tokens and reasked.prompt_tokens and repeated.prompt_tokens
    assert reasked.prompt_tokens > one.prompt_tokens + 20
    assert repeated.prompt_tokens == one.prompt_tokens


def test_vllm_enforced_schema_passes_the_check(vllm_server: Any) -> None:
    with client_for(vllm_server, max_retries=0) as client:
        attempt = client.call_llm_sync(PROMPTS, ENUM_SCHEMA, "a sky")
        result = client.chat_sync([{"role": "user", "content": "Pick one."}],
                                  json_schema=ENUM_SCHEMA)
    for r in (attempt, result):
        assert r.success, r.error
        assert r.schema_errors == []
        assert r.data in ({"c": "x"}, {"c": "y"})


# ---- llama-server ------------------------------------------------------------------


def test_llama_enforced_schema_passes_the_check(llama_server: Any) -> None:
    with client_for(llama_server, max_retries=0) as client:
        attempt = client.call_llm_sync(PROMPTS, ENUM_SCHEMA, "a sky")
        result = client.generate_sync("Pick one.", json_schema=ENUM_SCHEMA)
    for r in (attempt, result):
        assert r.success, r.error
        assert r.schema_errors == []
        assert r.data in ({"c": "x"}, {"c": "y"})


def test_llama_completions_ignore_the_schema_and_are_re_asked(llama_server: Any) -> None:
    # /v1/completions takes response_format without enforcing it.
    with client_for(llama_server, max_retries=0) as client:
        one = client.complete_sync("Give JSON.", json_schema=ENUM_SCHEMA)
    with client_for(llama_server, max_retries=1) as client:
        reasked = client.complete_sync("Give JSON.", json_schema=ENUM_SCHEMA)
    with client_for(llama_server, max_retries=1, schema_retry=False) as client:
        repeated = client.complete_sync("Give JSON.", json_schema=ENUM_SCHEMA)
    for r in (one, reasked, repeated):
        check_mismatch(r)
    assert (one.attempts, reasked.attempts, repeated.attempts) == (1, 2, 2)
    assert reasked.prompt_tokens > one.prompt_tokens + 20  # the re-ask text was appended
    assert repeated.prompt_tokens == one.prompt_tokens


def test_llama_chat_with_an_ignored_schema_is_re_asked(llama_server: Any) -> None:
    # The flat form (response_format.schema) is silently ignored by llama-server: sent
    # through extra_body, it replaces the nested form the client builds from json_schema,
    # so the server is not given the schema the client checks against.
    flat = {"response_format": {"type": "json_schema", "schema": ENUM_SCHEMA}}
    messages = [{"role": "user", "content": "Give JSON."}]
    with client_for(llama_server, max_retries=0) as client:
        one = client.chat_sync(messages, json_schema=ENUM_SCHEMA, extra_body=flat)
    with client_for(llama_server, max_retries=1) as client:
        reasked = client.chat_sync(messages, json_schema=ENUM_SCHEMA, extra_body=flat)
        assert client.stats().errors == {"schema_mismatch": 1}
    check_mismatch(one)
    check_mismatch(reasked)
    assert reasked.attempts == 2
    assert reasked.prompt_tokens > one.prompt_tokens + 20
