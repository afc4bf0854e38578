"""Structured answers checked against their JSON schema, against the bundled mock server:
a mismatch fails the try with ``schema_mismatch: ...`` and is retried as a re-ask (the
answer and its errors added to the conversation), for call_llm on every provider and
for chat / generate / complete with ``json_schema``; the off switches; the stats; what
an error may quote; the warnings about schemas; streams are not checked."""

from __future__ import annotations

import json
import logging
from typing import Any

import llmbridge
import pytest
from generation_helpers import MODES, PROVIDERS, invoke, is_ollama, make_client, path_of, posts
from llmbridge import OllamaClient, VLLMClient
from llmbridge.testing import MockLLMServer, Reply

PROMPTS = {"system": "You extract people.", "user": "Document:\n{document_text}"}
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
KEY = "sk-secret-key-1234567890"
REASK_START = "Your answer did not match the JSON schema:"
REASK_END = "Reply again with only JSON that matches the schema."


@pytest.fixture
def server() -> Any:
    with MockLLMServer(models=["m1"]) as s:
        yield s


def messages_of(request: Any) -> list[dict[str, Any]]:
    return request.json["messages"]


def check_reask(first: Any, second: Any, answer: str, pointer: str) -> None:
    """The second request is the first one's conversation, then the model's answer as an
    assistant message and a user message listing the errors (naming `pointer`)."""
    before, after = messages_of(first), messages_of(second)
    assert after[:-2] == before
    assert after[-2] == {"role": "assistant", "content": answer}
    reask = after[-1]
    assert reask["role"] == "user"
    assert reask["content"].startswith(REASK_START)
    assert reask["content"].endswith(REASK_END)
    assert f"\n{pointer}: " in reask["content"]
    # Nothing else changed: the schema is still asked for.
    rest = {k: v for k, v in second.json.items() if k != "messages"}
    assert rest == {k: v for k, v in first.json.items() if k != "messages"}


# ---- call_llm ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_call_llm_mismatch_then_pass(server: MockLLMServer, cls: type, mode: str) -> None:
    bad = '{"name": "Ada", "age": "36"}'
    server.enqueue(Reply.text(bad), Reply.matching_schema())
    with make_client(server, cls) as client:
        attempt = invoke(client, mode, "call_llm", PROMPTS, SCHEMA, "Ada Lovelace, 36")
    assert attempt.success, attempt.error
    assert attempt.attempts == 2
    assert attempt.schema_errors == []
    assert attempt.data == {"name": "xxxx", "age": 0}
    first, second = posts(server)
    assert first.path == second.path == ("/api/chat" if is_ollama(cls) else "/v1/chat/completions")
    # The document was rendered into the user message; the re-ask keeps it.
    assert messages_of(first)[-1]["content"] == "Document:\nAda Lovelace, 36"
    check_reask(first, second, bad, "/age")
    assert attempt.to_dict()["schema_errors"] == []


@pytest.mark.parametrize("cls", PROVIDERS)
def test_call_llm_with_messages_appends_to_them(server: MockLLMServer, cls: type) -> None:
    server.enqueue(Reply.json({"name": 1, "age": 2}), Reply.matching_schema())
    prompts = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}
    with make_client(server, cls) as client:
        attempt = client.call_llm_sync(prompts, SCHEMA)
    assert attempt.success and attempt.attempts == 2
    first, second = posts(server)
    assert messages_of(first) == prompts["messages"]
    check_reask(first, second, '{"name": 1, "age": 2}', "/name")


@pytest.mark.parametrize("cls", PROVIDERS)
def test_every_try_bad_is_schema_mismatch_with_errors(server: MockLLMServer, cls: type) -> None:
    server.set_default(Reply.json({"name": "Ada", "age": -1, "extra": True}))
    with make_client(server, cls, max_retries=2) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, "doc")
        stats = client.stats()
    assert not attempt.success
    assert attempt.retryable is True
    assert attempt.attempts == 3
    assert attempt.error is not None and attempt.error.startswith("schema_mismatch: ")
    pointers = [p for p, _ in attempt.schema_errors]
    assert "/age" in pointers  # below its minimum ("/extra" is not allowed either)
    assert all(isinstance(p, str) and isinstance(m, str) and m for p, m in attempt.schema_errors)
    assert attempt.error == f"schema_mismatch: {pointers[0]}: {attempt.schema_errors[0][1]}"
    # The answer stays inspectable.
    assert attempt.data == {"name": "Ada", "age": -1, "extra": True}
    assert json.loads(attempt.raw_response) == attempt.data
    assert attempt.to_dict()["schema_errors"] == attempt.schema_errors
    assert stats.errors == {"schema_mismatch": 1}
    assert stats.retries == 2
    # Each re-ask is the first conversation plus the latest answer: it does not grow.
    requests = posts(server)
    assert len(requests) == 3
    assert len(messages_of(requests[2])) == len(messages_of(requests[0])) + 2


def test_schema_retry_off_repeats_the_identical_request(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"name": "Ada"}), Reply.matching_schema())
    with make_client(server, VLLMClient, schema_retry=False) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, "doc")
    assert attempt.success and attempt.attempts == 2
    first, second = posts(server)
    assert first.body == second.body


def test_validate_schema_off_is_the_old_behaviour(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"name": 5}))
    with make_client(server, VLLMClient, validate_schema=False) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, "doc")
        assert client.stats().errors == {}
    assert attempt.success
    assert attempt.attempts == 1
    assert attempt.data == {"name": 5}
    assert attempt.schema_errors == []


def test_no_schema_no_check(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"anything": [1, 2]}))
    with make_client(server) as client:
        attempt = client.call_llm_sync(PROMPTS, None, "doc")
    assert attempt.success and attempt.attempts == 1 and attempt.schema_errors == []


def test_env_switches_reach_the_client(server: MockLLMServer) -> None:
    app = llmbridge.load_config({"VLLM_BASE_URL": server.url, "VLLM_MODEL": "m1",
                                 "VLLM_VALIDATE_SCHEMA": "false", "VLLM_MAX_RETRIES": "0"})
    server.enqueue(Reply.json({"name": 5}))
    with llmbridge.build_llm_client("vllm", app) as client:
        assert client.call_llm_sync(PROMPTS, SCHEMA, "doc").success


# ---- chat / generate / complete ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
@pytest.mark.parametrize("method", ["chat", "generate", "complete"])
def test_generation_with_json_schema(server: MockLLMServer, cls: type, mode: str,
                                     method: str) -> None:
    bad = '{"name": "Ada"}'
    server.enqueue(Reply.text(bad), Reply.matching_schema())
    args: tuple[Any, ...] = (
        ([{"role": "user", "content": "Who?"}],) if method == "chat" else ("Who?",))
    with make_client(server, cls) as client:
        result = invoke(client, mode, method, *args, json_schema=SCHEMA)
    assert result.success, result.error
    assert result.attempts == 2
    assert result.schema_errors == []
    assert result.data == {"name": "xxxx", "age": 0}
    first, second = posts(server)
    assert first.path == second.path == path_of(cls, method)
    if method == "complete":
        assert second.json["prompt"].startswith("Who?\n\n" + REASK_START)
        assert "\n(root): " in second.json["prompt"]
        assert second.json["prompt"].endswith(REASK_END)
    else:
        check_reask(first, second, bad, "(root)")


def test_generation_all_tries_bad(server: MockLLMServer) -> None:
    server.set_default(Reply.json({"name": "Ada", "age": 1.5}))
    with make_client(server, OllamaClient, max_retries=1) as client:
        result = client.chat_sync([{"role": "user", "content": "Who?"}], json_schema=SCHEMA)
    assert not result.success and result.retryable
    assert result.error.startswith("schema_mismatch: /age: ")
    assert [p for p, _ in result.schema_errors] == ["/age"]
    assert result.data == {"name": "Ada", "age": 1.5}
    assert result.to_dict()["schema_errors"] == [("/age", result.schema_errors[0][1])]
    with pytest.raises(llmbridge.LLMCallError, match="schema_mismatch: /age: ") as info:
        result.raise_for_error()
    assert info.value.retryable
    assert "does not match the JSON schema" in result.description


def test_response_format_alone_is_not_checked(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"x": 1}))
    with make_client(server) as client:
        result = client.chat_sync([{"role": "user", "content": "hi"}],
                                  response_format={"type": "json_object"})
    assert result.success and result.attempts == 1 and result.data == {"x": 1}


@pytest.mark.parametrize("cls", [VLLMClient, OllamaClient])
def test_streams_are_not_checked(server: MockLLMServer, cls: type) -> None:
    server.enqueue(Reply.json({"name": 5}))
    with make_client(server, cls) as client:
        events = invoke(client, "sync", "chat_stream", [{"role": "user", "content": "hi"}],
                        json_schema=SCHEMA)
    assert type(events[-1]) is llmbridge.StreamEnd
    assert len(posts(server)) == 1


# ---- what errors, results and logs may hold ------------------------------------------


def test_errors_quote_the_answer_only_briefly_and_never_the_key(server: MockLLMServer,
                                                                caplog: Any) -> None:
    long_value = "Z" * 5000
    server.set_default(Reply.json({"name": ["a"], "age": long_value}))
    with caplog.at_level(logging.DEBUG, logger="llmbridge"), \
            make_client(server, VLLMClient, api_key=KEY, max_retries=1) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, "doc")
    assert attempt.error.startswith("schema_mismatch: ")
    assert len(attempt.error) < 200
    for _pointer, message in attempt.schema_errors:
        assert len(message) < 200
        assert long_value[:100] not in message
    shown = [attempt.error, repr(attempt), str(attempt.to_dict()), caplog.text]
    assert not any(KEY in s for s in shown)
    # The key went to the server, never into the re-ask.
    second = posts(server)[1]
    assert second.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in second.body.decode()


def test_unsupported_keywords_are_logged_once_per_schema(server: MockLLMServer,
                                                         caplog: Any) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "https://example.com/x.json"}},
              "required": ["a", "b"]}
    server.set_default(Reply.json({"a": 1}))
    with caplog.at_level(logging.WARNING, logger="llmbridge"), \
            make_client(server, VLLMClient, max_retries=0) as client:
        first = client.call_llm_sync(PROMPTS, schema, "doc")
        client.call_llm_sync(PROMPTS, dict(schema), "doc")
        client.chat_sync([{"role": "user", "content": "x"}], json_schema=schema)
    # What can be checked still is: "b" is missing.
    assert first.error.startswith("schema_mismatch: (root): ")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "llmbridge.vllm"
    assert "/properties/a" in warnings[0].getMessage()


def test_a_schema_that_does_not_compile_is_sent_unchecked_and_logged_once(
    server: MockLLMServer, caplog: Any
) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}
    server.set_default(Reply.json({"a": "anything"}))
    with caplog.at_level(logging.WARNING, logger="llmbridge"), make_client(server) as client:
        results = [client.call_llm_sync(PROMPTS, schema, "doc") for _ in range(3)]

        async def one() -> Any:
            return await client.call_llm(PROMPTS, schema, "doc")

        import asyncio

        results.append(asyncio.run(one()))
    assert all(r.success and r.attempts == 1 for r in results)
    assert posts(server)[0].json["response_format"]["json_schema"]["schema"] == schema
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "cannot be compiled" in warnings[0]


def test_extraction_attempt_default_has_no_schema_errors() -> None:
    attempt = llmbridge.ExtractionAttempt()
    assert attempt.schema_errors == []
    assert "schema_errors" in attempt.to_dict()
    again = llmbridge.ExtractionAttempt(schema_errors=[("/a", "expected integer, got string")])
    assert again.schema_errors == [("/a", "expected integer, got string")]
