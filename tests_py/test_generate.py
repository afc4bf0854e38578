"""The generation surface without streaming details: chat, generate, complete and
list_models on every client, sync and async, against a real MockLLMServer.

What the client sends is read back from the mock's recorded requests; what it returns is
the typed ChatResult / ModelInfo. Stream events are covered by test_stream.py; the
request bodies of the stream methods are checked here with the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import llmbridge
import pytest
from generation_helpers import (
    MESSAGES,
    MODEL,
    MODES,
    PROVIDERS,
    SCHEMA,
    STREAM_METHODS,
    TOOLS,
    free_closed_port,
    invoke,
    is_ollama,
    make_client,
    path_of,
    posts,
)
from llmbridge import LLMBridgeError, LLMCallError, OllamaClient, VLLMClient
from llmbridge.testing import MockLLMServer, Reply

ALL_METHODS = ["chat", "generate", "complete", "chat_stream", "complete_stream"]
CHAT_METHODS = ("chat", "generate", "chat_stream")


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        yield s


def args_of(method: str) -> tuple[Any, ...]:
    """Positional arguments for a method: messages for chats, a prompt otherwise."""
    if method in ("chat", "chat_stream"):
        return (MESSAGES,)
    return ("the prompt",)


def succeeded(method: str, outcome: Any) -> bool:
    if method in STREAM_METHODS:
        return type(outcome[-1]) is llmbridge.StreamEnd
    return bool(outcome.success)


# --------------------------------------------------------------------------- request bodies


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_every_option_reaches_the_request_body(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    """model, max_tokens, temperature, top_p, stop (list and str), seed, tools,
    tool_choice and extra_body land in the provider's fields, on the right path, with
    stream flags only on the stream methods."""
    chat = method in CHAT_METHODS
    options: dict[str, Any] = {
        "model": "m2",
        "max_tokens": 7,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["a", "b"],
        "seed": 42,
        "extra_body": {"custom_field": {"k": [1, 2]}},
    }
    if chat:
        options["tools"] = TOOLS
        if not is_ollama(cls):
            options["tool_choice"] = "auto"
    with make_client(server, cls) as client:
        outcome = invoke(client, mode, method, *args_of(method), **options)
        assert succeeded(method, outcome), outcome
        # stop as a single string
        outcome = invoke(client, mode, method, *args_of(method), stop="END")
        assert succeeded(method, outcome), outcome

    first, second = posts(server)
    assert first.path == second.path == path_of(cls, method)
    body = first.json
    assert body["model"] == "m2"
    assert body["custom_field"] == {"k": [1, 2]}
    if is_ollama(cls):
        opts = body["options"]
        assert opts["num_predict"] == 7
        assert opts["temperature"] == pytest.approx(0.3)
        assert opts["top_p"] == pytest.approx(0.9)
        assert opts["stop"] == ["a", "b"]
        assert opts["seed"] == 42
        assert second.json["options"]["stop"] == ["END"]
        for field in ("max_tokens", "temperature", "top_p", "seed", "stop", "tool_choice"):
            assert field not in body, field
        assert body["stream"] is (method in STREAM_METHODS)
        assert "stream_options" not in body
    else:
        assert body["max_tokens"] == 7
        assert body["temperature"] == pytest.approx(0.3)
        assert body["top_p"] == pytest.approx(0.9)
        assert body["stop"] == ["a", "b"]
        assert body["seed"] == 42
        assert second.json["stop"] in ("END", ["END"])
        assert "options" not in body
        if method in STREAM_METHODS:
            assert body["stream"] is True
            assert body["stream_options"] == {"include_usage": True}
        else:
            assert body.get("stream") in (None, False)
            assert "stream_options" not in body
        if chat:
            assert body["tool_choice"] == "auto"
    if chat:
        assert body["tools"] == TOOLS
    else:
        assert "tools" not in body
    if method == "generate":
        assert body["messages"] == [{"role": "user", "content": "the prompt"}]
    elif method in ("chat", "chat_stream"):
        assert body["messages"] == MESSAGES
    else:
        assert body["prompt"] == "the prompt"
        assert "messages" not in body


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_generate_builds_system_and_user_messages(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    with make_client(server, cls) as client:
        assert invoke(client, mode, "generate", "Tell me", system="You are terse.").success
        assert invoke(client, mode, "generate", "Only user").success
    with_system, without = posts(server)
    assert with_system.path == without.path == path_of(cls, "chat")
    assert with_system.json["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Tell me"},
    ]
    assert without.json["messages"] == [{"role": "user", "content": "Only user"}]


@pytest.mark.parametrize("method", ["chat", "complete", "chat_stream", "complete_stream"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_structured_output_fields(server: MockLLMServer, cls: type, mode: str, method: str) -> None:
    """json_schema -> OpenAI response_format json_schema / Ollama format = the schema;
    response_format is sent raw (Ollama: json_object -> "json", json_schema -> the schema)."""
    server.set_default(Reply.json({"a": 1}))
    raw_schema_format = {"type": "json_schema", "json_schema": {"name": "thing", "schema": SCHEMA}}
    with make_client(server, cls) as client:
        for options in (
            {"json_schema": SCHEMA},
            {"response_format": {"type": "json_object"}},
            {"response_format": raw_schema_format},
        ):
            outcome = invoke(client, mode, method, *args_of(method), **options)
            assert succeeded(method, outcome), (options, outcome)
    with_schema, json_object, raw_schema = (r.json for r in posts(server))
    if is_ollama(cls):
        assert with_schema["format"] == SCHEMA
        assert json_object["format"] == "json"
        assert raw_schema["format"] == SCHEMA
        for body in (with_schema, json_object, raw_schema):
            assert "response_format" not in body
    else:
        rf = with_schema["response_format"]
        assert rf["type"] == "json_schema"
        assert rf["json_schema"]["schema"] == SCHEMA
        assert isinstance(rf["json_schema"].get("name"), str)
        assert json_object["response_format"] == {"type": "json_object"}
        assert raw_schema["response_format"] == raw_schema_format
        for body in (with_schema, json_object, raw_schema):
            assert "format" not in body


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_extra_body_is_merged_last_and_overrides(
    server: MockLLMServer, cls: type, method: str
) -> None:
    with make_client(server, cls) as client:
        outcome = invoke(
            client,
            "sync",
            method,
            *args_of(method),
            model="m2",
            extra_body={"model": "override", "x_flag": True},
        )
        assert succeeded(method, outcome), outcome
    (request,) = posts(server)
    assert request.json["model"] == "override"
    assert request.json["x_flag"] is True


def test_tool_choice_object_is_sent_as_given(server: MockLLMServer) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    with make_client(server, VLLMClient) as client:
        assert client.chat_sync(MESSAGES, tools=TOOLS, tool_choice=choice).success
    assert server.last_request.json["tool_choice"] == choice


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_timeout_option_bounds_the_call(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    """The per-call timeout wins over the config's (5 s): a reply delayed 1 s fails with
    "timeout" (the call would succeed if the option were ignored)."""
    server.set_default(Reply(delay=1.0))
    with make_client(server, cls, max_retries=0) as client:
        outcome = invoke(client, mode, method, *args_of(method), timeout=0.1)
    if method in STREAM_METHODS:
        assert type(outcome[-1]) is llmbridge.StreamError, outcome
        assert outcome[-1].error == "timeout"
    else:
        assert not outcome.success
        assert outcome.error == "timeout"
        assert outcome.retryable is True


# --------------------------------------------------------------------------- caller mistakes


def assert_nothing_sent(server: MockLLMServer) -> None:
    assert server.request_count == 0, [(r.method, r.path) for r in server.requests]


@pytest.mark.parametrize("method", ["chat", "generate", "chat_stream"])
@pytest.mark.parametrize("mode", MODES)
def test_ollama_refuses_tool_choice_before_sending(
    server: MockLLMServer, mode: str, method: str
) -> None:
    with make_client(server, OllamaClient) as client:
        with pytest.raises(ValueError, match="tool_choice"):
            invoke(client, mode, method, *args_of(method), tools=TOOLS, tool_choice="auto")
    assert_nothing_sent(server)


@pytest.mark.parametrize("method", ["complete", "complete_stream"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_complete_refuses_tools_before_sending(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    with make_client(server, cls) as client:
        with pytest.raises(ValueError, match="tools"):
            invoke(client, mode, method, "p", tools=TOOLS)
    assert_nothing_sent(server)


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_json_schema_and_response_format_together_is_a_value_error(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    with make_client(server, cls) as client:
        with pytest.raises(ValueError):
            invoke(
                client,
                mode,
                method,
                *args_of(method),
                json_schema=SCHEMA,
                response_format={"type": "json_object"},
            )
    assert_nothing_sent(server)


BAD_TYPES = [
    pytest.param({"model": 5}, id="model-int"),
    pytest.param({"max_tokens": 1.5}, id="max_tokens-float"),
    pytest.param({"max_tokens": True}, id="max_tokens-bool"),
    pytest.param({"max_tokens": "7"}, id="max_tokens-str"),
    pytest.param({"top_p": [1]}, id="top_p-list"),
    pytest.param({"stop": [5]}, id="stop-list-of-int"),
    pytest.param({"stop": 5}, id="stop-int"),
    pytest.param({"seed": "1"}, id="seed-str"),
    pytest.param({"json_schema": '{"type": "object"}'}, id="json_schema-str"),
    pytest.param({"response_format": "json"}, id="response_format-str"),
    pytest.param({"tools": {"type": "function"}}, id="tools-dict"),
    pytest.param({"tools": "get_weather"}, id="tools-str"),
    pytest.param({"tool_choice": 1}, id="tool_choice-int"),
    pytest.param({"extra_body": [("a", 1)]}, id="extra_body-list"),
    pytest.param({"extra_body": {"a": object()}}, id="extra_body-not-json"),
    pytest.param({"timeout": "5"}, id="timeout-str"),
    pytest.param({"temprature": 0.1}, id="misspelt-option"),
]


@pytest.mark.parametrize("options", BAD_TYPES)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_bad_option_types_are_type_errors(
    server: MockLLMServer, method: str, options: dict[str, Any]
) -> None:
    with make_client(server, VLLMClient) as client:
        with pytest.raises(TypeError):
            invoke(client, "sync", method, *args_of(method), **options)
        with pytest.raises(TypeError):
            invoke(client, "async", method, *args_of(method), **options)
    assert_nothing_sent(server)


@pytest.mark.parametrize(
    ("method", "bad"),
    [
        ("chat", "hello"),
        ("chat", [("user", "hi")]),
        ("chat_stream", {"role": "user", "content": "hi"}),
        ("complete", 5),
        ("complete_stream", b"bytes"),
        ("generate", None),
    ],
)
def test_bad_input_types_are_type_errors(server: MockLLMServer, method: str, bad: Any) -> None:
    with make_client(server, VLLMClient) as client:
        with pytest.raises(TypeError):
            invoke(client, "sync", method, bad)
        with pytest.raises(TypeError):
            invoke(client, "async", method, bad)
    assert_nothing_sent(server)


@pytest.mark.parametrize(
    "options", [{"temperature": "0.5"}, {"top_p": "0.9"}, {"temperature": "hot"}]
)
def test_str_temperature_is_a_type_error(server: MockLLMServer, options: dict[str, Any]) -> None:
    with make_client(server, VLLMClient) as client:
        with pytest.raises(TypeError):
            client.chat_sync(MESSAGES, **options)
    assert_nothing_sent(server)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("complete", {"tools": TOOLS}),
        ("chat", {"json_schema": SCHEMA, "response_format": {"type": "json_object"}}),
    ],
)
def test_unsupported_option_sends_nothing_without_a_configured_model(
    server: MockLLMServer, mode: str, method: str, options: dict[str, Any]
) -> None:
    with make_client(server, VLLMClient, model="") as client:
        with pytest.raises(ValueError):
            invoke(client, mode, method, *args_of(method), **options)
    assert_nothing_sent(server)


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("mode", MODES)
def test_closed_client_refuses_calls(server: MockLLMServer, mode: str, method: str) -> None:
    with make_client(server, VLLMClient) as client:
        client.close()
        with pytest.raises(LLMBridgeError):
            invoke(client, mode, method, *args_of(method))
    assert_nothing_sent(server)


# --------------------------------------------------------------------------- ChatResult


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_chat_result_fields(server: MockLLMServer, cls: type, mode: str) -> None:
    server.enqueue(Reply("Hello there", prompt_tokens=11, completion_tokens=3))
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", MESSAGES)
    assert r.success and r.ok
    assert r.text == "Hello there"
    assert r.data is None  # no json_schema asked
    assert r.error is None and r.status_code == 200 and r.retryable is False
    assert r.finish_reason == "stop"
    assert r.prompt_tokens == 11 and r.completion_tokens == 3
    assert r.attempts == 1
    assert r.model == MODEL
    assert r.provider == {VLLMClient: "vllm", OllamaClient: "ollama"}.get(cls, "openai")
    assert r.tool_calls == []
    assert r.reasoning is None
    assert r.latency_ms > 0
    assert r.request_id and r.request_id == server.last_request.headers["x-request-id"]
    r.raise_for_error()  # success: no exception


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_complete_result(server: MockLLMServer, cls: type, mode: str) -> None:
    server.enqueue(Reply.truncated("once upon a", completion_tokens=3))
    with make_client(server, cls) as client:
        r = invoke(client, mode, "complete", "Story:")
    assert r.success, r
    assert r.text == "once upon a"
    assert r.finish_reason == "length"
    assert r.completion_tokens == 3


@pytest.mark.parametrize("method", ["chat", "complete"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_json_schema_answers_are_parsed_repaired_and_flagged(
    server: MockLLMServer, cls: type, mode: str, method: str
) -> None:
    server.enqueue(
        Reply.json({"a": 1, "b": [2]}),
        Reply.fenced({"a": 2}),
        Reply.truncated('{"a": 3, "b": [1, 2'),
    )
    with make_client(server, cls) as client:
        plain, fenced, cut = (
            invoke(client, mode, method, *args_of(method), json_schema=SCHEMA) for _ in range(3)
        )
    assert plain.success and plain.data == {"a": 1, "b": [2]}
    assert plain.repaired is False and plain.truncated is False
    assert fenced.success and fenced.data == {"a": 2}
    assert fenced.repaired is True and fenced.truncated is False
    assert "```" in fenced.text  # text is the answer as sent
    assert cut.success and cut.data == {"a": 3, "b": [1, 2]}
    assert cut.truncated is True and cut.repaired is True
    assert cut.finish_reason == "length"


@pytest.mark.parametrize("cls", PROVIDERS)
def test_response_format_json_object_fills_data(server: MockLLMServer, cls: type) -> None:
    server.enqueue(Reply.json({"k": "v"}))
    with make_client(server, cls) as client:
        r = client.chat_sync(MESSAGES, response_format={"type": "json_object"})
    assert r.success and r.data == {"k": "v"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_answer_without_json_is_invalid_json_and_retried(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    server.set_default(Reply("there is no JSON in here"))
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", MESSAGES, json_schema=SCHEMA)
    assert not r.success
    assert r.error.startswith("invalid_json: "), r.error
    assert r.retryable is True
    assert r.attempts == 3 and server.request_count == 3
    assert r.text == "there is no JSON in here"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_http_500_is_retried_then_an_error(server: MockLLMServer, cls: type, mode: str) -> None:
    server.set_default(Reply.error(500, "engine died"))
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", MESSAGES)
    assert not r.success
    assert r.error == "http_500" and r.status_code == 500 and r.retryable is True
    assert r.attempts == 3 and server.request_count == 3
    assert r.text == "" and r.data is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_http_500_then_success(server: MockLLMServer, cls: type, mode: str) -> None:
    server.enqueue(Reply.error(500), Reply("fine"))
    with make_client(server, cls) as client:
        r = invoke(client, mode, "complete", "p")
    assert r.success and r.text == "fine" and r.attempts == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_http_400_is_not_retried(server: MockLLMServer, cls: type, mode: str) -> None:
    server.set_default(Reply.error(400, "bad request body"))
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", MESSAGES)
    assert not r.success
    assert r.error == "http_400" and r.status_code == 400 and r.retryable is False
    assert r.attempts == 1 and server.request_count == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_timeout_is_retried_then_timeout(server: MockLLMServer, cls: type, mode: str) -> None:
    server.set_default(Reply(delay=1.0))
    with make_client(server, cls, timeout=0.1, max_retries=1) as client:
        r = invoke(client, mode, "chat", MESSAGES)
    assert not r.success
    assert r.error == "timeout" and r.retryable is True and r.status_code is None
    assert r.attempts == 2


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused_is_a_connection_error(mode: str) -> None:
    url = f"http://127.0.0.1:{free_closed_port()}/v1"
    with make_client(url, VLLMClient, max_retries=1) as client:
        r = invoke(client, mode, "chat", MESSAGES)
    assert not r.success
    assert r.error.startswith("connection_error: "), r.error
    assert r.retryable is True and r.attempts == 2


def test_to_dict_and_raise_for_error(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(503, "overloaded"), Reply.error(503), Reply.error(503))
    server.enqueue(Reply.tool_call("get_weather", {"city": "Paris"}, id="call_9"))
    with make_client(server, VLLMClient) as client:
        failed = client.chat_sync(MESSAGES)
        called = client.chat_sync(MESSAGES, tools=TOOLS)

    d = failed.to_dict()
    assert d["success"] is False and d["error"] == "http_503" and d["status_code"] == 503
    assert d["attempts"] == 3 and d["retryable"] is True and d["provider"] == "vllm"
    for key in (
        "text",
        "data",
        "finish_reason",
        "tool_calls",
        "reasoning",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "model",
        "request_id",
        "truncated",
        "repaired",
    ):
        assert key in d, key
    json.dumps(d)  # plain values only

    with pytest.raises(LLMCallError) as info:
        failed.raise_for_error()
    err = info.value
    assert isinstance(err, LLMBridgeError)
    assert err.error == "http_503" and err.status_code == 503 and err.retryable is True
    assert err.request_id == failed.request_id
    assert "http_503" in str(err)

    d = called.to_dict()
    assert d["tool_calls"] == [
        {
            "id": "call_9",
            "name": "get_weather",
            "arguments": {"city": "Paris"},
            "arguments_text": '{"city": "Paris"}',
        }
    ]
    json.dumps(d)
    called.raise_for_error()


# --------------------------------------------------------------------------- tool calls, reasoning


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_tool_calls_are_parsed(server: MockLLMServer, cls: type, mode: str) -> None:
    server.enqueue(
        Reply(
            tool_calls=[
                {
                    "name": "get_weather",
                    "arguments": {"city": "Paris", "days": [1, 2]},
                    "id": "call_1",
                },
                {"name": "noop", "arguments": {}, "id": "call_2"},
            ]
        )
    )
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", MESSAGES, tools=TOOLS)
    assert r.success, r
    assert r.text == ""
    assert [(t.id, t.name, t.arguments) for t in r.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris", "days": [1, 2]}),
        ("call_2", "noop", {}),
    ]
    assert json.loads(r.tool_calls[0].arguments_text) == {"city": "Paris", "days": [1, 2]}
    assert r.tool_calls[0].repaired is False
    if not is_ollama(cls):
        assert r.finish_reason == "tool_calls"


def test_ollama_tool_call_without_id(server: MockLLMServer) -> None:
    server.enqueue(Reply.tool_call("get_weather", {"city": "Oslo"}))
    with make_client(server, OllamaClient) as client:
        r = client.chat_sync(MESSAGES, tools=TOOLS)
    (call,) = r.tool_calls
    assert call.id is None
    assert call.name == "get_weather" and call.arguments == {"city": "Oslo"}


def test_openai_tool_call_id_defaults_to_the_server_s(server: MockLLMServer) -> None:
    server.enqueue(Reply.tool_call("get_weather", {"city": "Oslo"}))
    with make_client(server, VLLMClient) as client:
        r = client.chat_sync(MESSAGES, tools=TOOLS)
    (call,) = r.tool_calls
    assert call.id.startswith("chatcmpl-tool-")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ('{"city": "Par', {"city": "Par"}),
        ("{'city': 'Paris',}", {"city": "Paris"}),
        ('```json\n{"city": "Rome"}\n```', {"city": "Rome"}),
    ],
)
def test_broken_tool_arguments_are_repaired(
    server: MockLLMServer, mode: str, broken: str, expected: Any
) -> None:
    server.enqueue(Reply.tool_call("get_weather", broken, id="c1"))
    with make_client(server, VLLMClient) as client:
        r = invoke(client, mode, "chat", MESSAGES, tools=TOOLS)
    assert r.success, r
    (call,) = r.tool_calls
    assert call.arguments == expected
    assert call.arguments_text == broken
    assert call.repaired is True


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_reasoning_is_read(server: MockLLMServer, cls: type, mode: str) -> None:
    """OpenAI message.reasoning, Ollama message.thinking."""
    server.enqueue(Reply("The answer.", reasoning="First, think hard."))
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", MESSAGES)
    assert r.success
    assert r.reasoning == "First, think hard."
    assert r.text == "The answer."


def test_ollama_generate_thinking_is_read(server: MockLLMServer) -> None:
    server.enqueue(Reply("Done.", reasoning="hmm"))
    with make_client(server, OllamaClient) as client:
        r = client.complete_sync("p")
    assert r.reasoning == "hmm" and r.text == "Done."


def test_vllm_reasoning_content_is_read(server: MockLLMServer) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "42", "reasoning_content": "count"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    server.enqueue(Reply(raw_body=json.dumps(body).encode()))
    with make_client(server, VLLMClient) as client:
        r = client.chat_sync(MESSAGES)
    assert r.success and r.text == "42" and r.reasoning == "count"


# --------------------------------------------------------------------------- list_models


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_list_models(cls: type, mode: str) -> None:
    with MockLLMServer(models=["alpha", "beta"], max_model_len=4096) as server:
        with make_client(server, cls) as client:
            models = invoke(client, mode, "list_models")
        (request,) = server.requests
    assert [m.id for m in models] == ["alpha", "beta"]
    assert all(isinstance(m, llmbridge.ModelInfo) for m in models)
    if is_ollama(cls):
        assert request.path == "/api/tags"
        assert all(m.max_model_len is None for m in models)
    else:
        assert request.path == "/v1/models"
        assert [m.owned_by for m in models] == ["vllm", "vllm"]
        assert [m.max_model_len for m in models] == [4096, 4096]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_list_models_connection_refused_raises(cls: type, mode: str) -> None:
    port = free_closed_port()
    url = f"http://127.0.0.1:{port}" + ("" if is_ollama(cls) else "/v1")
    with make_client(url, cls) as client:
        with pytest.raises(LLMCallError) as info:
            invoke(client, mode, "list_models")
    assert info.value.error.startswith("connection_error: "), info.value.error
    assert info.value.status_code is None


def test_list_models_http_error_raises(server: MockLLMServer) -> None:
    with make_client(server.url + "/nothing-here", VLLMClient) as client:
        with pytest.raises(LLMCallError) as info:
            client.list_models_sync()
    assert info.value.error == "http_404" and info.value.status_code == 404
