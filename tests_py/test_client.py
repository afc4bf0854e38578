"""The drop-in clients (VLLMClient, OpenAICompatibleClient, OllamaClient) end to end.

Every test talks to a real `MockLLMServer` over real sockets: what the client sends is
read back from `server.requests`, and what it returns is the `ExtractionAttempt` a worker
would get. Retry delays are tiny so the whole file runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import llmbridge
import pytest
from llmbridge import (
    ConfigError,
    ExtractionAttempt,
    LLMBridgeError,
    OllamaClient,
    OllamaConfig,
    OpenAICompatibleClient,
    OpenAIConfig,
    VLLMClient,
    VLLMConfig,
)
from llmbridge.testing import MockLLMServer, Reply

OLLAMA_ONLY_FIELDS = ("options", "format", "keep_alive", "stream")
PROMPTS = {"system": "You extract names.", "user": "Document:\n{document_text}\nAnswer in JSON."}
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}
SECRET = "sk-test-0123456789-very-secret"

# Small, fast retry settings shared by most tests.
FAST = {
    "timeout": 5.0,
    "max_retries": 2,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "retry_backoff_multiplier": 2.0,
}


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        yield s


@contextlib.contextmanager
def make_client(
    server_or_url: MockLLMServer | str,
    cls: type = VLLMClient,
    **overrides: Any,
) -> Iterator[Any]:
    """A client on the mock with FAST settings; always closed on exit."""
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url + "/v1"
    if cls is OllamaClient and not isinstance(server_or_url, str):
        url = server_or_url.url
    fields: dict[str, Any] = {**FAST, "base_url": url, "model": "test-model"}
    max_connections = overrides.pop("max_connections", 64)
    fields.update(overrides)
    client = cls(max_connections=max_connections, **fields)
    try:
        yield client
    finally:
        client.close()


def call(client: Any, *args: Any, **kwargs: Any) -> ExtractionAttempt:
    """One async call on a fresh event loop."""

    async def main() -> ExtractionAttempt:
        return await client.call_llm(*args, **kwargs)

    return asyncio.run(main())


def generation_requests(server: MockLLMServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


def free_closed_port() -> int:
    """A port nothing listens on: bind to get a free one, then close it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


OPENAI_CLIENTS = [
    pytest.param(VLLMClient, "vllm", id="vllm"),
    pytest.param(OpenAICompatibleClient, "openai", id="openai"),
]


# --------------------------------------------------------------------------- payload


@pytest.mark.parametrize(("cls", "provider"), OPENAI_CLIENTS)
def test_openai_payload_with_schema(server: MockLLMServer, cls: type, provider: str) -> None:
    server.enqueue(Reply.json({"name": "Ada"}))
    with make_client(server, cls, max_tokens=321, temperature=0.25) as client:
        attempt = call(client, PROMPTS, SCHEMA, "Ada Lovelace wrote the first program.")
    assert attempt.success, attempt
    assert attempt.data == {"name": "Ada"}
    assert attempt.provider == provider

    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == "/v1/chat/completions"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers
    body = req.json
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {"role": "system", "content": "You extract names."},
        {
            "role": "user",
            "content": "Document:\nAda Lovelace wrote the first program.\nAnswer in JSON.",
        },
    ]
    assert body["max_tokens"] == 321
    assert body["temperature"] == 0.25
    rf = body["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["schema"] == SCHEMA  # an object, not a JSON string
    assert isinstance(rf["json_schema"]["name"], str) and rf["json_schema"]["name"]
    assert rf["json_schema"]["strict"] is True
    for field in OLLAMA_ONLY_FIELDS:
        assert field not in body


@pytest.mark.parametrize(("cls", "provider"), OPENAI_CLIENTS)
def test_openai_payload_without_schema_asks_for_json_object(
    server: MockLLMServer, cls: type, provider: str
) -> None:
    with make_client(server, cls) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert attempt.data == {"ok": True}
    (req,) = server.requests
    assert req.json["response_format"] == {"type": "json_object"}


def test_document_is_appended_after_a_blank_line_without_placeholder(
    server: MockLLMServer,
) -> None:
    with make_client(server) as client:
        call(client, {"system": "S", "user": "Extract the names."}, None, "Ada and Grace")
    messages = server.last_request.json["messages"]
    assert messages[-1] == {"role": "user", "content": "Extract the names.\n\nAda and Grace"}


def test_every_placeholder_occurrence_is_replaced(server: MockLLMServer) -> None:
    prompts = {"system": "S", "user": "A={document_text} B={document_text}"}
    with make_client(server) as client:
        call(client, prompts, None, 'x "y" \\ z')
    assert server.last_request.json["messages"][-1]["content"] == 'A=x "y" \\ z B=x "y" \\ z'


def test_unicode_and_escapes_survive_the_round_trip(server: MockLLMServer) -> None:
    system = 'Système: "quotes", back\\slash, tab\t, newline\n, emoji 🦀, nul-free'
    document = "Ünïcødé ✓ — 日本語 \u2028 end"
    with make_client(server) as client:
        call(client, {"system": system, "user": "{document_text}"}, {"title": "é"}, document)
    body = server.last_request.json
    assert body["messages"] == [
        {"role": "system", "content": system},
        {"role": "user", "content": document},
    ]
    assert body["response_format"]["json_schema"]["schema"] == {"title": "é"}


def test_messages_list_is_sent_as_is(server: MockLLMServer) -> None:
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "{}"},
        {"role": "user", "content": [{"type": "text", "text": "part"}]},
    ]
    server.enqueue(Reply.json({"name": "Ada"}))
    with make_client(server) as client:
        attempt = call(client, {"messages": messages}, SCHEMA, "ignored?")
    assert attempt.success, attempt
    assert server.last_request.json["messages"] == messages


def test_no_system_message_when_system_is_empty(server: MockLLMServer) -> None:
    with make_client(server) as client:
        call(client, {"user": "only user"})
    assert server.last_request.json["messages"] == [{"role": "user", "content": "only user"}]


def test_bearer_only_with_api_key_and_key_never_leaks(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"name": "Ada"}), Reply.error(401, message="bad key"))
    config = VLLMConfig(base_url=server.url + "/v1", model="m", api_key=SECRET, **FAST)
    client = VLLMClient(config)
    try:
        ok = call(client, PROMPTS, SCHEMA, "doc")
        refused = call(client, PROMPTS, SCHEMA, "doc")
        assert SECRET not in repr(config)
        assert SECRET not in str(config)
        assert SECRET not in repr(client)
    finally:
        client.close()
    assert ok.success
    assert refused.error == "http_401"
    for req in server.requests:
        assert req.headers["authorization"] == f"Bearer {SECRET}"
    for attempt in (ok, refused):
        assert SECRET not in repr(attempt)
        assert SECRET not in json.dumps(attempt.to_dict(), default=str)


def test_empty_api_key_sends_no_authorization(server: MockLLMServer) -> None:
    with make_client(server, api_key="") as client:
        call(client, PROMPTS)
    assert "authorization" not in server.last_request.headers


def test_request_id_is_sent_and_reported(server: MockLLMServer) -> None:
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    sent = server.last_request.headers["x-request-id"]
    assert sent
    assert attempt.request_id == sent


def test_request_id_is_the_same_across_retries(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(500), Reply.error(503), Reply.json({"a": 1}))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
        other = call(client, PROMPTS)
    assert attempt.success and attempt.attempts == 3
    reqs = server.requests
    ids = [r.headers["x-request-id"] for r in reqs[:3]]
    assert len(set(ids)) == 1
    assert attempt.request_id == ids[0]
    # A new logical call gets a new id.
    assert other.request_id == reqs[3].headers["x-request-id"] != ids[0]


def test_server_request_id_echo_wins(server: MockLLMServer) -> None:
    server.enqueue(Reply(headers={"x-request-id": "server-chosen-id"}))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.request_id == "server-chosen-id"


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "//"])
def test_base_url_forms_all_reach_chat_completions(server: MockLLMServer, suffix: str) -> None:
    with make_client(server.url + suffix) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert server.last_request.path == "/v1/chat/completions"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_ollama_base_url_forms(server: MockLLMServer, suffix: str) -> None:
    with make_client(server.url + suffix, OllamaClient) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert server.last_request.path == "/api/chat"


def test_ollama_payload_with_schema(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"name": "Ada"}, prompt_tokens=11, completion_tokens=4))
    with make_client(server, OllamaClient, max_tokens=77, temperature=0.5) as client:
        attempt = call(client, PROMPTS, SCHEMA, "Ada")
    assert attempt.success, attempt
    assert attempt.data == {"name": "Ada"}
    assert attempt.provider == "ollama"
    assert attempt.finish_reason == "stop"
    assert attempt.truncated is False
    assert (attempt.prompt_tokens, attempt.completion_tokens) == (11, 4)

    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == "/api/chat"
    assert req.headers["content-type"] == "application/json"
    body = req.json
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {"role": "system", "content": "You extract names."},
        {"role": "user", "content": "Document:\nAda\nAnswer in JSON."},
    ]
    assert body["stream"] is False
    assert body["format"] == SCHEMA
    assert body["options"]["temperature"] == 0.5
    assert body["options"]["num_predict"] == 77
    assert "response_format" not in body
    assert "max_tokens" not in body


def test_ollama_payload_without_schema_uses_format_json(server: MockLLMServer) -> None:
    with make_client(server, OllamaClient) as client:
        attempt = call(client, PROMPTS, None, "doc")
    assert attempt.success, attempt
    assert server.last_request.json["format"] == "json"


def test_ollama_done_reason_length_is_truncated(server: MockLLMServer) -> None:
    server.enqueue(Reply.truncated('{"name": "Ada", "tags": ["a", "b'))
    with make_client(server, OllamaClient) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert attempt.truncated is True
    assert attempt.finish_reason == "length"
    assert attempt.data["name"] == "Ada"
    assert attempt.data["tags"][0] == "a"


def test_ollama_errors_use_the_same_strings(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(503), Reply.error(503), Reply.error(503), Reply.error(404))
    with make_client(server, OllamaClient) as client:
        retried = call(client, PROMPTS)
        final = call(client, PROMPTS)
    assert (retried.error, retried.retryable, retried.attempts) == ("http_503", True, 3)
    assert (final.error, final.retryable, final.attempts) == ("http_404", False, 1)


# ----------------------------------------------------------------- content handling


def test_clean_json_is_not_marked_repaired(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"name": "Ada", "n": [1, 2.5, None, True]}))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success and attempt.ok
    assert attempt.error is None
    assert attempt.retryable is False
    assert attempt.repaired is False
    assert attempt.data == {"name": "Ada", "n": [1, 2.5, None, True]}
    assert attempt.raw_response == json.dumps({"name": "Ada", "n": [1, 2.5, None, True]})
    assert attempt.status_code == 200
    assert attempt.attempts == 1
    assert attempt.latency_ms > 0


def test_fenced_json_is_unwrapped(server: MockLLMServer) -> None:
    server.enqueue(Reply.fenced({"name": "Ada"}))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert attempt.data == {"name": "Ada"}
    assert attempt.repaired is True
    assert attempt.raw_response.startswith("```json")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("{'name': 'Ada', 'age': 36}", {"name": "Ada", "age": 36}, id="single-quotes"),
        pytest.param('{"a": [1, 2, 3,], "b": 2,}', {"a": [1, 2, 3], "b": 2}, id="trailing-commas"),
        pytest.param(
            '{"t": True, "f": False, "n": None}',
            {"t": True, "f": False, "n": None},
            id="python-literals",
        ),
        pytest.param(
            'Sure! Here is the JSON:\n```json\n{"name": "Ada",}\n```\nHope it helps.',
            {"name": "Ada"},
            id="prose-and-fence",
        ),
    ],
)
def test_broken_json_is_repaired(server: MockLLMServer, content: str, expected: Any) -> None:
    server.enqueue(Reply.text(content))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert attempt.repaired is True
    assert attempt.data == expected
    assert attempt.raw_response == content
    assert attempt.attempts == 1


def test_prose_only_is_invalid_json_and_retried(server: MockLLMServer) -> None:
    server.set_default(Reply.text("I cannot help with that."))
    with make_client(server, max_retries=1) as client:
        attempt = call(client, PROMPTS)
    assert not attempt.success
    assert attempt.error is not None and attempt.error.startswith("invalid_json: ")
    assert len(attempt.error) > len("invalid_json: ")
    assert attempt.retryable is True
    assert attempt.data is None
    assert attempt.raw_response == "I cannot help with that."
    assert attempt.attempts == 2
    assert len(generation_requests(server)) == 2


def test_invalid_json_then_valid_succeeds_on_retry(server: MockLLMServer) -> None:
    server.enqueue(Reply.text("no json here"), Reply.json({"ok": 1}))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success and attempt.data == {"ok": 1} and attempt.attempts == 2


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(empty_choices=True), id="no-choices"),
        pytest.param(Reply.text(""), id="empty-content"),
        pytest.param(Reply(content=None), id="null-content"),
        pytest.param(Reply.text("  \n "), id="blank-content"),
    ],
)
def test_empty_model_response_is_retried_then_returned(server: MockLLMServer, reply: Reply) -> None:
    server.set_default(reply)
    with make_client(server, max_retries=2) as client:
        attempt = call(client, PROMPTS)
    assert attempt.error == "empty_model_response"
    assert attempt.retryable is True
    assert attempt.success is False
    assert attempt.attempts == 3
    assert len(generation_requests(server)) == 3


def test_finish_reason_length_keeps_what_was_complete(server: MockLLMServer) -> None:
    server.enqueue(Reply.truncated('{"name": "Ada", "age": 36, "langs": ["en", "fr'))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert attempt.truncated is True
    assert attempt.finish_reason == "length"
    assert attempt.data["name"] == "Ada"
    assert attempt.data["age"] == 36
    assert attempt.data["langs"][0] == "en"


def test_usage_and_model_are_reported(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"a": 1}, prompt_tokens=123, completion_tokens=45, model="served"))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert (attempt.prompt_tokens, attempt.completion_tokens) == (123, 45)
    assert attempt.finish_reason == "stop"
    assert attempt.truncated is False
    assert attempt.model == "served"
    assert attempt.provider == "vllm"


def test_attempt_to_dict_has_every_contract_field(server: MockLLMServer) -> None:
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    d = attempt.to_dict()
    assert set(d) == {
        "success",
        "data",
        "raw_response",
        "error",
        "retryable",
        "status_code",
        "attempts",
        "latency_ms",
        "provider",
        "model",
        "finish_reason",
        "truncated",
        "repaired",
        "prompt_tokens",
        "completion_tokens",
        "request_id",
        "auth_refused",
        "schema_errors",
    }
    assert d["success"] is True and d["data"] == {"ok": True}
    json.dumps(d)  # JSON-serialisable when data is
    assert attempt.ok is attempt.success


# ----------------------------------------------------------------- errors and retries


def test_timeout(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=2.0))
    with make_client(server, timeout=0.2, max_retries=1) as client:
        started = time.monotonic()
        attempt = call(client, PROMPTS)
        elapsed = time.monotonic() - started
    assert attempt.error == "timeout"
    assert attempt.retryable is True
    assert attempt.success is False
    assert attempt.attempts == 2
    assert len(generation_requests(server)) == 2
    assert elapsed < 1.5


# The retry schedule itself (backoff, jitter, cap, Retry-After) is checked exactly, on the
# delays the client asks for, by tests_cpp/test_client_retry.cpp; these tests check the
# contract (which outcomes are retried, how often, what the attempt says) and measure no
# time.


def test_500_is_retried_exactly_max_retries_times(
    server: MockLLMServer,
) -> None:
    base, mult, retries = 0.05, 2.0, 3
    server.set_default(Reply.error(500))
    with make_client(
        server,
        max_retries=retries,
        retry_base_delay=base,
        retry_backoff_multiplier=mult,
        retry_max_delay=10.0,
    ) as client:
        attempt = call(client, PROMPTS)
    assert attempt.error == "http_500"
    assert attempt.retryable is True
    assert attempt.status_code == 500
    assert attempt.auth_refused is False
    assert attempt.attempts == retries + 1
    assert len(generation_requests(server)) == retries + 1


def test_a_large_multiplier_is_capped_by_retry_max_delay(server: MockLLMServer) -> None:
    server.set_default(Reply.error(502))
    with make_client(
        server,
        max_retries=3,
        retry_base_delay=0.04,
        retry_backoff_multiplier=10.0,
        retry_max_delay=0.06,
    ) as client:
        attempt = call(client, PROMPTS)
    # base*10**2 = 4 s uncapped: without the cap this call would take over 4 s (the
    # test suite's timeout would notice); the exact delays are checked in Catch2.
    assert attempt.attempts == 4
    assert len(generation_requests(server)) == 4


def test_max_retries_zero_means_one_try(server: MockLLMServer) -> None:
    server.set_default(Reply.error(503))
    with make_client(server, max_retries=0) as client:
        attempt = call(client, PROMPTS)
    assert (attempt.error, attempt.retryable, attempt.attempts) == ("http_503", True, 1)
    assert len(generation_requests(server)) == 1


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_non_retryable_4xx_is_not_retried(server: MockLLMServer, status: int) -> None:
    server.set_default(Reply.error(status, message="nope"))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.error == f"http_{status}"
    assert attempt.retryable is False
    assert attempt.auth_refused is False
    assert attempt.status_code == status
    assert attempt.attempts == 1
    assert len(generation_requests(server)) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refused_fails_fast(server: MockLLMServer, status: int) -> None:
    server.set_default(Reply(status=status, raw_body=b'{"error":"Unauthorized"}'))
    with make_client(server, api_key=SECRET, max_retries=3) as client:
        attempt = call(client, PROMPTS)
    assert attempt.error == f"http_{status}"
    assert attempt.auth_refused is True
    assert attempt.retryable is False
    assert attempt.attempts == 1
    assert len(generation_requests(server)) == 1
    assert SECRET not in json.dumps(attempt.to_dict(), default=str)


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_status_then_success(server: MockLLMServer, status: int) -> None:
    server.enqueue(Reply.error(status), Reply.json({"after": status}))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert attempt.data == {"after": status}
    assert attempt.attempts == 2
    assert attempt.error is None
    assert len(generation_requests(server)) == 2


def test_429_exhausts_retries(server: MockLLMServer) -> None:
    server.set_default(Reply.error(429))
    with make_client(server, max_retries=2) as client:
        attempt = call(client, PROMPTS)
    assert (attempt.error, attempt.retryable, attempt.attempts) == ("http_429", True, 3)
    assert len(generation_requests(server)) == 3


def test_retry_after_is_honoured(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(503, retry_after=0.3), Reply.json({"ok": 2}))
    with make_client(server, retry_base_delay=0.001, retry_max_delay=0.002) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success and attempt.data == {"ok": 2} and attempt.attempts == 2
    assert len(generation_requests(server)) == 2


def test_retry_after_on_429_is_honoured(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(429, retry_after="1"), Reply.json({"ok": 3}))
    with make_client(server, retry_base_delay=0.001, retry_max_delay=0.002) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success and attempt.attempts == 2
    assert len(generation_requests(server)) == 2


def test_refused_connection_is_connection_error() -> None:
    port = free_closed_port()
    with make_client(f"http://127.0.0.1:{port}/v1", max_retries=1) as client:
        attempt = call(client, PROMPTS)
    assert attempt.error is not None
    assert attempt.error.startswith("connection_error: "), attempt.error
    assert len(attempt.error) > len("connection_error: ")
    assert attempt.retryable is True
    assert attempt.success is False
    assert attempt.status_code is None
    assert attempt.attempts == 2


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(reset=True), id="reset"),
        pytest.param(Reply(truncate_body=True), id="cut"),
    ],
)
def test_reset_and_truncated_body_are_connection_errors(
    server: MockLLMServer, reply: Reply
) -> None:
    server.set_default(reply)
    with make_client(server, max_retries=1) as client:
        attempt = call(client, PROMPTS)
    assert attempt.error is not None and attempt.error.startswith("connection_error: "), attempt
    assert attempt.retryable is True
    assert attempt.attempts == 2
    assert len(generation_requests(server)) == 2


def test_reset_then_success_recovers(server: MockLLMServer) -> None:
    server.enqueue(Reply(reset=True), Reply.json({"after": "reset"}))
    with make_client(server) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success and attempt.data == {"after": "reset"} and attempt.attempts == 2


def test_malformed_body_is_invalid_json(server: MockLLMServer) -> None:
    server.set_default(Reply(malformed=True))
    with make_client(server, max_retries=1) as client:
        attempt = call(client, PROMPTS)
    assert attempt.error is not None and attempt.error.startswith("invalid_json: "), attempt
    assert attempt.retryable is True
    assert attempt.attempts == 2


def test_response_larger_than_max_response_bytes(server: MockLLMServer) -> None:
    server.enqueue(Reply.json({"blob": "x" * 10_000}))
    with make_client(server, max_response_bytes=1000) as client:
        attempt = call(client, PROMPTS)
    assert attempt.success is False
    assert attempt.error is not None and attempt.error.startswith("connection_error: ")
    assert "1000" in attempt.error


# ------------------------------------------------------------------ concurrency


MARKER_SCHEMA = {"type": "object", "properties": {"marker": {"type": "string"}}, "required": ["marker"]}


def test_500_concurrent_calls_each_get_their_own_answer(server: MockLLMServer) -> None:
    def responder(request: Any) -> Reply:
        marker = request.prompt.rsplit("MARKER=", 1)[1].split()[0]
        return Reply.json({"marker": marker})

    server.responder = responder
    n, max_connections = 500, 16

    async def main(client: Any) -> list[ExtractionAttempt]:
        return await asyncio.gather(
            *(client.call_llm(PROMPTS, MARKER_SCHEMA, f"MARKER={i} end") for i in range(n))
        )

    with make_client(server, max_connections=max_connections) as client:
        attempts = asyncio.run(main(client))
    assert [a.data for a in attempts] == [{"marker": str(i)} for i in range(n)]
    assert all(a.success and a.attempts == 1 for a in attempts)
    assert len({a.request_id for a in attempts}) == n
    assert len(generation_requests(server)) == n
    assert 1 <= server.connections_accepted <= max_connections


def test_sequential_calls_reuse_one_connection(server: MockLLMServer) -> None:
    async def main(client: Any) -> None:
        for _ in range(10):
            assert (await client.call_llm(PROMPTS)).success

    with make_client(server) as client:
        asyncio.run(main(client))
    assert server.connections_accepted == 1


def test_cancel_mid_flight_then_client_keeps_working(server: MockLLMServer) -> None:
    server.enqueue(Reply(delay=5.0), Reply.json({"next": True}))

    async def main(client: Any) -> tuple[float, ExtractionAttempt]:
        task = asyncio.ensure_future(client.call_llm(PROMPTS))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - started
        return took, await client.call_llm(PROMPTS)

    with make_client(server) as client:
        started = time.monotonic()
        took, after = asyncio.run(main(client))
        total = time.monotonic() - started
    assert took < 1.0
    assert total < 2.0
    assert after.success and after.data == {"next": True}
    assert len(generation_requests(server)) == 2
    # The transfer was really aborted: the server saw the hang-up.
    deadline = time.monotonic() + 2.0
    while server.requests_abandoned < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.requests_abandoned == 1


def test_cancel_during_backoff_stops_retrying(server: MockLLMServer) -> None:
    server.set_default(Reply.error(503, retry_after=2))

    async def main(client: Any) -> None:
        task = asyncio.ensure_future(client.call_llm(PROMPTS))
        await asyncio.sleep(0.3)  # first 503 is back, the retry waits 2 s
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with make_client(server) as client:
        started = time.monotonic()
        asyncio.run(main(client))
        assert time.monotonic() - started < 1.0
        time.sleep(0.1)
    assert len(generation_requests(server)) == 1


def test_close_mid_flight_completes_every_call_with_cancelled(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=5.0))
    n = 20

    async def main(client: Any) -> tuple[float, list[ExtractionAttempt]]:
        tasks = [asyncio.ensure_future(client.call_llm(PROMPTS)) for _ in range(n)]
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, server.wait_for_requests, n, 3.0)
        started = time.monotonic()
        client.close()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 2.0)
        return time.monotonic() - started, results

    with make_client(server) as client:
        took, results = asyncio.run(main(client))
        assert client.closed
    assert took < 1.0
    for attempt in results:
        assert isinstance(attempt, ExtractionAttempt)
        assert attempt.error == "cancelled"
        assert attempt.retryable is False
        assert attempt.success is False
        assert attempt.provider == "vllm"
        assert attempt.attempts == 1  # each had its one request on the wire
        assert attempt.request_id
    assert len({a.request_id for a in results}) == n
    assert len(generation_requests(server)) == n


def test_await_close_with_calls_in_flight(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=5.0))

    async def main() -> list[ExtractionAttempt]:
        client = VLLMClient(base_url=server.url, model="m", **FAST)
        tasks = [asyncio.ensure_future(client.call_llm(PROMPTS)) for _ in range(3)]
        await asyncio.sleep(0.2)
        await client.close()
        await client.close()  # twice is fine
        client.close()
        return await asyncio.wait_for(asyncio.gather(*tasks), 2.0)

    results = asyncio.run(main())
    assert [a.error for a in results] == ["cancelled"] * 3


def test_close_forms_and_use_after_close(server: MockLLMServer) -> None:
    async def main() -> None:
        client = VLLMClient(base_url=server.url, model="m", **FAST)
        assert not client.closed
        assert (await client.call_llm(PROMPTS)).success
        await client.close()
        assert client.closed
        with pytest.raises(LLMBridgeError):
            await client.call_llm(PROMPTS)
        client.close()  # not awaited, already closed: harmless

        async with VLLMClient(base_url=server.url, model="m", **FAST) as c2:
            assert (await c2.call_llm(PROMPTS)).success
        assert c2.closed
        with pytest.raises(LLMBridgeError):
            await c2.call_llm(PROMPTS)

    asyncio.run(main())

    with VLLMClient(base_url=server.url, model="m", **FAST) as c3:
        assert c3.call_llm_sync(PROMPTS).success
    assert c3.closed
    with pytest.raises(LLMBridgeError):
        c3.call_llm_sync(PROMPTS)

    c4 = OllamaClient(base_url=server.url, model="m", **FAST)
    c4.close()  # plain, never awaited: must not warn "coroutine was never awaited"
    c4.close()
    assert c4.closed


def test_close_releases_connections(server: MockLLMServer) -> None:
    with make_client(server) as client:
        assert client.call_llm_sync(PROMPTS).success
        assert server.open_connections == 1
    deadline = time.monotonic() + 2.0
    while server.open_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.open_connections == 0


def test_one_client_across_event_loops(server: MockLLMServer) -> None:
    with make_client(server) as client:
        assert call(client, PROMPTS).success
        assert call(client, PROMPTS).success


def test_one_client_shared_by_event_loops_in_threads(server: MockLLMServer) -> None:
    server.responder = lambda r: Reply.json({"m": r.prompt.rsplit("M=", 1)[1]}, delay=0.01)
    results: dict[int, list[ExtractionAttempt]] = {}

    def worker(client: Any, k: int) -> None:
        async def main() -> list[ExtractionAttempt]:
            return await asyncio.gather(
                *(client.call_llm({"user": f"M={k}-{i}"}) for i in range(50))
            )

        results[k] = asyncio.run(main())

    with make_client(server) as client:
        threads = [threading.Thread(target=worker, args=(client, k)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert sorted(results) == [0, 1, 2, 3]
    for k, attempts in results.items():
        assert [a.data for a in attempts] == [{"m": f"{k}-{i}"} for i in range(50)]


# ------------------------------------------------------------------------ sync twin


def test_call_llm_sync(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(503), Reply.json({"name": "Ada"}))
    with make_client(server) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, "doc")
    assert attempt.success and attempt.data == {"name": "Ada"} and attempt.attempts == 2
    assert server.last_request.json["response_format"]["type"] == "json_schema"


def test_call_llm_sync_releases_the_gil(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=0.3))
    with make_client(server) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: client.call_llm_sync(PROMPTS), range(8)))
        elapsed = time.monotonic() - started
    assert all(r.success for r in results)
    assert elapsed < 8 * 0.3 / 2, elapsed


def test_python_thread_runs_while_sync_call_waits(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=0.4))
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.01)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        with make_client(server) as client:
            assert client.call_llm_sync(PROMPTS).success
    finally:
        stop.set()
        thread.join()
    assert ticks >= 10


def test_async_call_does_not_block_the_event_loop(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=0.3))

    async def main(client: Any) -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        try:
            assert (await client.call_llm(PROMPTS)).success
        finally:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        return ticks

    with make_client(server) as client:
        assert asyncio.run(main(client)) >= 10


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("prompts", ["system: x", None, ["system", "user"], 42])
def test_prompts_must_be_a_mapping(server: MockLLMServer, prompts: Any) -> None:
    with make_client(server) as client:
        with pytest.raises(TypeError, match="prompts"):
            call(client, prompts)
        with pytest.raises(TypeError, match="prompts"):
            client.call_llm_sync(prompts)
    assert server.requests == []


@pytest.mark.parametrize("schema", ['{"type": "object"}', ["type", "object"], 3])
def test_json_schema_must_be_a_dict(server: MockLLMServer, schema: Any) -> None:
    with make_client(server) as client:
        with pytest.raises(TypeError, match="json_schema"):
            call(client, PROMPTS, schema)
        with pytest.raises(TypeError, match="json_schema"):
            client.call_llm_sync(PROMPTS, schema)
    assert server.requests == []


def test_document_text_must_be_str(server: MockLLMServer) -> None:
    with make_client(server) as client:
        with pytest.raises(TypeError, match="document_text"):
            call(client, PROMPTS, None, b"bytes")
    assert server.requests == []


def test_non_str_prompt_text_is_a_type_error(server: MockLLMServer) -> None:
    with make_client(server) as client:
        with pytest.raises(TypeError):
            call(client, {"system": 1, "user": "u"})
    assert server.requests == []


@pytest.mark.parametrize("config_cls", [VLLMConfig, OpenAIConfig, OllamaConfig])
def test_config_negative_timeout_names_the_field(config_cls: type) -> None:
    with pytest.raises(ConfigError, match="timeout") as info:
        config_cls(base_url="http://localhost:8000", model="m", timeout=-1)
    assert "-1" in str(info.value)
    assert isinstance(info.value, LLMBridgeError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("base_url", ["localhost:8000", "127.0.0.1:8000/v1", "ftp://host", ""])
def test_config_base_url_without_scheme_names_the_field(base_url: str) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        VLLMConfig(base_url=base_url, model="m")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", -1),
        ("retry_base_delay", -0.5),
        ("retry_backoff_multiplier", 0.5),
        ("max_tokens", 0),
        ("temperature", 3.0),
        ("timeout", float("nan")),
        ("connect_timeout", 0),
    ],
)
def test_config_invalid_values_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        VLLMConfig(base_url="http://localhost:8000", **{field: value})


def test_client_keyword_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        VLLMClient(base_url="http://localhost:8000", model="m", timeout=-1)
    with pytest.raises(ConfigError, match="base_url"):
        OllamaClient(base_url="localhost:11434", model="m")


def test_client_takes_a_config_object(server: MockLLMServer) -> None:
    config = OpenAIConfig(base_url=server.url + "/v1", model="gpt-x", **FAST)
    client = OpenAICompatibleClient(config)
    try:
        assert client.model == "gpt-x"
        assert client.call_llm_sync(PROMPTS).success
    finally:
        client.close()
    assert server.last_request.json["model"] == "gpt-x"
    with pytest.raises(TypeError):
        VLLMClient("http://localhost:8000")  # type: ignore[arg-type]


def test_api_key_with_line_break_is_rejected_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="api_key") as info:
        VLLMConfig(base_url="http://localhost:8000", api_key="sk-abc\r\nX-Evil: 1")
    assert "sk-abc" not in str(info.value)


def test_package_exports() -> None:
    for name in ("VLLMClient", "OllamaClient", "OpenAICompatibleClient", "ExtractionAttempt"):
        assert name in llmbridge.__all__


# ------------------------------------------------------------- more provider details


def test_vllm_empty_model_picks_the_first_served_model(server: MockLLMServer) -> None:
    with make_client(server, model="") as client:
        attempt = call(client, PROMPTS)
        assert client.model == "mock-model"
    assert attempt.success, attempt
    assert server.last_request.json["model"] == "mock-model"
    assert attempt.model == "mock-model"


def test_vllm_empty_model_without_auto_pick_lets_the_server_choose(server: MockLLMServer) -> None:
    with make_client(server, model="") as client:
        client.auto_pick_model = False
        attempt = call(client, PROMPTS)
    assert attempt.success, attempt
    assert "model" not in server.last_request.json
    assert attempt.model == "mock-model"  # what the server answered


@pytest.mark.parametrize(
    ("keep_alive", "sent"),
    [("5m", "5m"), ("300", 300), ("-1", -1), ("1.5", 1.5), ("", None)],
)
def test_ollama_keep_alive_and_num_ctx(server: MockLLMServer, keep_alive: str, sent: Any) -> None:
    with make_client(server, OllamaClient, keep_alive=keep_alive, num_ctx=8192) as client:
        assert client.call_llm_sync(PROMPTS).success
    body = server.last_request.json
    assert body.get("keep_alive") == sent
    assert ("keep_alive" in body) is (sent is not None)
    assert body["options"]["num_ctx"] == 8192


def test_ollama_messages_and_empty_content(server: MockLLMServer) -> None:
    messages = [{"role": "user", "content": "hi"}]
    server.enqueue(Reply(empty_choices=True), Reply.text(""), Reply.text(""))
    with make_client(server, OllamaClient) as client:
        attempt = client.call_llm_sync({"messages": messages})
    assert (attempt.error, attempt.retryable, attempt.attempts) == ("empty_model_response", True, 3)
    assert all(r.json["messages"] == messages for r in server.requests)


def test_keyword_overrides_on_a_config_object(server: MockLLMServer) -> None:
    config = VLLMConfig(base_url=server.url, model="m", max_retries=3)
    server.set_default(Reply.error(503))
    with VLLMClient(config, max_retries=0, retry_base_delay=0.0) as client:
        assert client.config.max_retries == 0
        assert client.call_llm_sync(PROMPTS).attempts == 1
    assert config.max_retries == 3  # the caller's config is not mutated
    with pytest.raises(ConfigError, match="timeout"):
        VLLMClient(config, timeout=-5)


def test_retry_after_ms_is_honoured(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(503, headers={"retry-after-ms": "300"}), Reply.json({"ok": 4}))
    with make_client(server, retry_base_delay=0.001, retry_max_delay=0.002) as client:
        attempt = client.call_llm_sync(PROMPTS)
    assert attempt.success and attempt.attempts == 2
    first, second = generation_requests(server)
    assert 0.28 <= second.received_at - first.received_at < 1.0


def test_max_connections_one_serialises_on_one_connection(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=0.02))

    async def main(client: Any) -> list[ExtractionAttempt]:
        return await asyncio.gather(*(client.call_llm(PROMPTS) for _ in range(10)))

    with make_client(server, max_connections=1) as client:
        results = asyncio.run(main(client))
    assert all(r.success for r in results)
    assert server.connections_accepted == 1


def test_waiting_for_a_connection_does_not_use_up_the_timeout(server: MockLLMServer) -> None:
    # Five 0.3 s answers through one connection take ~1.5 s; each HTTP try gets its own
    # 1 s timeout from the moment it has the connection (protocols.md §5.1).
    server.set_default(Reply(delay=0.3))

    async def main(client: Any) -> list[ExtractionAttempt]:
        return await asyncio.gather(*(client.call_llm(PROMPTS) for _ in range(5)))

    with make_client(server, max_connections=1, timeout=1.0, max_retries=0) as client:
        results = asyncio.run(main(client))
    assert [r.error for r in results] == [None] * 5
    assert server.connections_accepted == 1


def test_async_calls_really_run_concurrently(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=0.3))

    async def main(client: Any) -> list[ExtractionAttempt]:
        return await asyncio.gather(*(client.call_llm(PROMPTS) for _ in range(16)))

    with make_client(server, max_connections=16) as client:
        started = time.monotonic()
        results = asyncio.run(main(client))
        elapsed = time.monotonic() - started
    assert all(r.success for r in results)
    assert elapsed < 1.5, elapsed  # serial would be 4.8 s


# -------------------------------------------------------------------- known bugs

def test_schema_with_big_integer_is_sent(server: MockLLMServer) -> None:
    schema = {"type": "integer", "maximum": 2**64}
    server.enqueue(Reply.matching_schema())
    with make_client(server) as client:
        attempt = client.call_llm_sync(PROMPTS, schema)
    assert attempt.success
    assert server.last_request.json["response_format"]["json_schema"]["schema"] == schema

def test_valid_json_with_big_number_is_not_repaired(server: MockLLMServer) -> None:
    content = '{"big": 123456789012345678901234567890}'
    server.enqueue(Reply.text(content))
    with make_client(server) as client:
        attempt = client.call_llm_sync(PROMPTS)
    assert attempt.success
    assert attempt.data == {"big": 123456789012345678901234567890}
    assert attempt.repaired is False

def test_close_during_backoff_counts_only_sent_tries(server: MockLLMServer) -> None:
    server.set_default(Reply.error(503, retry_after=3))

    async def main(client: Any) -> ExtractionAttempt:
        task = asyncio.ensure_future(client.call_llm(PROMPTS))
        await asyncio.sleep(0.3)  # the first 503 is back; the retry waits 3 s
        client.close()
        return await asyncio.wait_for(task, 2.0)

    with make_client(server) as client:
        attempt = asyncio.run(main(client))
    assert attempt.error == "cancelled"
    assert len(generation_requests(server)) == 1
    assert attempt.attempts == 1


def test_stale_pooled_connection_is_replaced_transparently() -> None:
    # The server restarts between calls, so the pooled keep-alive connection is dead;
    # the next call must open a new one without reporting an error or spending a retry.
    first = MockLLMServer().start()
    port = first.port
    client = VLLMClient(base_url=first.url, model="m", max_retries=0, timeout=5.0)
    try:
        assert client.call_llm_sync(PROMPTS).success
        first.stop()
        with MockLLMServer(port=port) as second:
            attempt = client.call_llm_sync(PROMPTS)
            assert attempt.success, attempt
            assert attempt.attempts == 1
            assert second.connections_accepted == 1
    finally:
        client.close()
        first.stop()


def test_ollama_timeout(server: MockLLMServer) -> None:
    server.set_default(Reply(delay=1.0))
    with make_client(server, OllamaClient, timeout=0.2, max_retries=0) as client:
        attempt = client.call_llm_sync(PROMPTS)
    assert (attempt.error, attempt.retryable, attempt.attempts) == ("timeout", True, 1)


def test_schema_mutated_in_place_is_sent_anew(server: MockLLMServer) -> None:
    # The serialised schema is cached per dict object; a dict changed in place between
    # calls must still be sent as it is now.
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
    with make_client(server) as client:
        call(client, PROMPTS, schema, "doc")
        first = server.last_request.json["response_format"]["json_schema"]["schema"]
        schema["properties"]["b"] = {"type": "integer"}
        call(client, PROMPTS, schema, "doc")
        second = server.last_request.json["response_format"]["json_schema"]["schema"]
        call(client, PROMPTS, schema, "doc")
        third = server.last_request.json["response_format"]["json_schema"]["schema"]
    assert first == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert second == schema and third == schema


# ---- max_tokens fitted to the model's context (protocols.md §5 item 10) ----


def test_max_tokens_fitted_to_the_listed_context(
    server: MockLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    # vLLM refuses a request whose prompt plus max_tokens exceeds max_model_len. Once the
    # client has seen the model list (health check or model auto-pick), it asks for at
    # most what the prompt leaves.
    server.max_model_len = 2048
    document = "d" * 3000  # ~1000 tokens by the client's estimate (a token per 3 bytes)
    with VLLMClient(base_url=server.url, model="mock-model", max_tokens=4096, **FAST) as client:
        assert client.call_llm_sync(PROMPTS, None, document).success
        with caplog.at_level("INFO", logger="llmbridge"):
            report = client.health_sync(force=True)
            client.health_sync(force=True)
        assert report.max_model_len == 2048
        assert client.call_llm_sync(PROMPTS, None, document).success
        assert client.call_llm_sync(PROMPTS, None, "short").success
    before, fitted, short = (r.json["max_tokens"] for r in server.requests
                             if r.path == "/v1/chat/completions")
    assert before == 4096  # the context was not known yet
    assert 1 <= fitted <= 2048 - 3000 // 3
    assert fitted < short <= 2048
    logged = [r.getMessage() for r in caplog.records if "context of 2048 tokens" in r.getMessage()]
    assert len(logged) == 1, logged


def test_max_tokens_fitted_after_model_auto_pick(server: MockLLMServer) -> None:
    server.max_model_len = 1024
    with VLLMClient(base_url=server.url, model="", max_tokens=4096, **FAST) as client:
        assert client.call_llm_sync(PROMPTS, None, "doc").success
    (request,) = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert request.json["model"] == "mock-model"
    assert request.json["max_tokens"] <= 1024
