"""The generation surface against the mock, a real vLLM (CPU) and llama-server.

chat / generate / complete, chat_stream / complete_stream (async and sync twins),
the options the servers honour (max_tokens, stop, seed, temperature, json_schema),
tools, list_models, and the stream failure paths (401, wrong model, breaking out of a
stream), once per target like tests_py/test_real_conformance.py: llmbridge's
MockLLMServer (`strict=True`, with a responder that answers as the tiny models do), a
real vLLM 0.32 and llama.cpp's llama-server, both on tiny random-weight models.

The tiny models emit noise (vLLM's greedy answer is "9090...", llama-server's a row of
'"'), and neither ends an unconstrained answer by itself: answers run to max_tokens.
So the tests assert structure (events, counts, finish reasons, usage, determinism), not
content. Where the servers differ the test says so and asserts each real behaviour; the
differences are listed in docs/testing.md ("Where the servers differ").

Skipped as a whole with LLMBRIDGE_SKIP_REAL_SERVERS=1; CI never sets it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llmbridge
import pytest
from llmbridge import VLLMClient
from llmbridge.testing import MockLLMServer, Reply
from real_common import skip_real_servers

pytestmark = pytest.mark.real_server

TARGETS = ["mock", "vllm", "llama"]
MOCK_KEY = "sk-mock-test"
CALL = {"timeout": 60.0, "max_retries": 0, "max_tokens": 16}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
PROMPT = "Once upon a time"
# Enum and boolean only: a free integer lets vLLM's tiny model loop on digits until
# max_tokens ("n": 909090...), enums and booleans end in a few tokens on both servers.
SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["red", "green", "blue"]},
        "ok": {"type": "boolean"},
    },
    "required": ["label", "ok"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


# ---- the mock, answering as the tiny models do -------------------------------------

_WORDS = ["90", "ab", "cd", "ef", "gh", "ij", "kl", "mn"]


def tiny_model(request: Any) -> Reply | None:
    """A MockLLMServer responder that answers like the tiny real models: noise that runs
    to `max_tokens`, deterministic at temperature 0 and for a given seed, cut before a
    `stop` string (finish "stop"), and a tool call when `tool_choice` forces one.
    Schema requests fall through to the strict mock's schema instance."""
    body = request.json if isinstance(request.json, dict) else {}
    if request.path not in ("/v1/chat/completions", "/v1/completions"):
        return None
    if body.get("response_format"):
        return None  # strict=True answers with an instance of the schema
    choice = body.get("tool_choice")
    if body.get("tools") and request.path == "/v1/chat/completions" and (
            choice == "required" or isinstance(choice, dict)):
        return Reply.tool_call("get_weather", {"city": "Paris"})
    budget = int(body.get("max_tokens") or 16)
    temperature = float(body.get("temperature", 1.0) or 0.0)
    salt = "greedy" if temperature == 0 else str(body.get("seed", time.monotonic_ns()))
    digest = hashlib.sha256(f"{request.prompt}|{salt}".encode()).digest()
    tokens = [_WORDS[digest[i % len(digest)] % len(_WORDS)] for i in range(budget)]
    text = "".join(tokens)
    stops = body.get("stop") or []
    stops = [stops] if isinstance(stops, str) else list(stops)
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    if cut >= 0:
        kept, used = [], 0
        for token in tokens:  # whole tokens up to the stop, then the partial one
            if used + len(token) > cut:
                if cut > used:
                    kept.append(token[: cut - used])
                break
            kept.append(token)
            used += len(token)
        return Reply(tokens=kept, finish_reason="stop",
                     completion_tokens=min(len(kept) + 1, budget))
    # A long answer streams slowly enough for a client to break out in the middle.
    return Reply(tokens=tokens, finish_reason="length", completion_tokens=budget,
                 chunk_delay=0.01 if budget > 100 else 0.0)


# ---- targets -------------------------------------------------------------------------


@dataclass
class Target:
    kind: str  # "mock", "vllm" or "llama"
    base_url: str
    model: str
    max_model_len: int
    auth_url: str
    api_key: str
    mock: MockLLMServer | None = None
    auth_mock: MockLLMServer | None = None
    auth_log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, **overrides: Any) -> VLLMClient:
        return VLLMClient(**{"base_url": self.base_url, "model": self.model, **CALL,
                             **overrides})


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if skip_real_servers() and request.param != "mock":
        pytest.skip("real servers skipped (LLMBRIDGE_SKIP_REAL_SERVERS is set)")
    if request.param == "mock":
        with MockLLMServer(models=["tiny"], max_model_len=8192, strict=True) as plain, \
                MockLLMServer(models=["tiny"], max_model_len=8192, strict=True,
                              api_key=MOCK_KEY) as auth:
            plain.responder = auth.responder = tiny_model
            yield Target("mock", plain.url, "tiny", 8192, auth.url, MOCK_KEY, mock=plain,
                         auth_mock=auth)
        return
    plain = request.getfixturevalue(f"{request.param}_server")
    auth = request.getfixturevalue(f"{request.param}_server_auth")
    yield Target(request.param, plain.base_url, plain.model, plain.max_model_len,
                 auth.base_url, auth.api_key, auth_log=auth.log_path, extra=plain.extra)


def conforms(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == {"label", "ok"}
            and value["label"] in ("red", "green", "blue") and isinstance(value["ok"], bool))


def check_result(r: Any, target: Target, *, max_tokens: int) -> None:
    """What every successful unconstrained answer of a tiny model looks like."""
    assert r.success, (r.error, r.raw_response[:300])
    assert r.error is None and r.status_code == 200 and r.attempts == 1
    assert r.provider == "vllm" and r.model == target.model
    assert r.request_id
    assert isinstance(r.text, str)
    assert r.latency_ms > 0
    assert r.prompt_tokens and r.prompt_tokens > 0
    assert r.completion_tokens is not None and 0 < r.completion_tokens <= max_tokens
    # No tiny model ends an unconstrained answer by itself: it runs to max_tokens.
    assert r.finish_reason == "length"
    assert r.completion_tokens == max_tokens
    assert r.truncated
    assert r.tool_calls == [] and r.data is None
    d = r.to_dict()
    assert d["success"] and d["text"] == r.text and d["finish_reason"] == "length"
    r.raise_for_error()  # a success does not raise


def check_stream(events: list[Any], *, max_tokens: int) -> str:
    """Started first, one End last, Tokens between with indices 0..n-1; the joined text."""
    assert events, "no events"
    assert type(events[0]) is llmbridge.StreamStarted, events[:3]
    assert events[0].request_id and events[0].model
    end = events[-1]
    assert type(end) is llmbridge.StreamEnd, end
    middle = events[1:-1]
    assert not any(type(e) in (llmbridge.StreamStarted, llmbridge.StreamEnd,
                               llmbridge.StreamError) for e in middle), middle
    tokens = [e for e in middle if type(e) is llmbridge.Token]
    assert tokens == middle  # no reasoning or tool-call events from these models
    assert [t.index for t in tokens] == list(range(len(tokens)))
    text = "".join(t.text for t in tokens)
    assert text, "the tiny models emit some text"
    m = end.metrics
    assert m.tokens == len(tokens)
    assert m.ttft_ms is not None and 0 <= m.ttft_ms <= m.total_ms
    assert m.tokens_per_s >= 0
    # Every server sends usage when asked (stream_options.include_usage).
    assert m.prompt_tokens and m.prompt_tokens > 0
    assert m.completion_tokens == max_tokens
    assert end.finish_reason == "length"
    assert end.tool_calls == []
    return text


# ---- chat, generate, complete --------------------------------------------------------


def test_chat_sync_and_async(target: Target) -> None:
    with target.client() as client:
        sync = client.chat_sync(MESSAGES, max_tokens=8)

        async def run() -> Any:
            return await client.chat(MESSAGES, max_tokens=8)

        async_ = asyncio.run(run())
    for r in (sync, async_):
        check_result(r, target, max_tokens=8)
    # Temperature 0 (the config's default) is greedy: the twins agree.
    assert sync.text == async_.text
    assert sync.request_id != async_.request_id


def test_generate_is_a_system_and_user_chat(target: Target) -> None:
    with target.client() as client:
        r = client.generate_sync("Say hello.", system="Be brief.", max_tokens=8)
        chat = client.chat_sync(MESSAGES, max_tokens=8)

        async def run() -> Any:
            return await client.generate("Say hello.", system="Be brief.", max_tokens=8)

        async_ = asyncio.run(run())
    check_result(r, target, max_tokens=8)
    check_result(async_, target, max_tokens=8)
    assert r.text == chat.text == async_.text
    assert r.prompt_tokens == chat.prompt_tokens
    if target.mock is not None:
        (last,) = [q for q in target.mock.requests if q.path == "/v1/chat/completions"][-1:]
        assert last.json["messages"] == MESSAGES


def test_complete_uses_v1_completions(target: Target) -> None:
    with target.client() as client:
        r = client.complete_sync(PROMPT, max_tokens=6)

        async def run() -> Any:
            return await client.complete(PROMPT, max_tokens=6)

        async_ = asyncio.run(run())
    check_result(r, target, max_tokens=6)
    check_result(async_, target, max_tokens=6)
    assert r.text == async_.text
    if target.mock is not None:
        last = target.mock.last_request
        assert last.path == "/v1/completions" and last.json["prompt"] == PROMPT


# ---- options -------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["chat", "complete"])
def test_max_tokens(target: Target, op: str) -> None:
    with target.client(max_tokens=200) as client:
        r = (client.chat_sync(MESSAGES, max_tokens=5) if op == "chat"
             else client.complete_sync(PROMPT, max_tokens=5))
    assert r.success, r.error
    assert r.completion_tokens is not None and r.completion_tokens <= 5
    assert r.finish_reason == "length" and r.truncated




def _stop_after_the_first_character(text: str) -> str | None:
    """A character of `text` whose first occurrence is not at the start, so that the
    answer cut before it is not empty; None when every character is the first one."""
    return next((c for c in text[1:] if c != text[0]), None)


@pytest.mark.parametrize("op", ["chat", "complete"])
def test_stop(target: Target, op: str, request: pytest.FixtureRequest) -> None:
    """llama-server's tiny model answers only '"', so every stop string taken from its
    answer cuts it to "", which is still a successful (empty) answer."""
    def call(client: VLLMClient, **options: Any) -> Any:
        if op == "chat":
            return client.chat_sync(MESSAGES, max_tokens=12, temperature=0, **options)
        return client.complete_sync(PROMPT, max_tokens=12, temperature=0, **options)

    with target.client() as client:
        reference = call(client)
        assert reference.success and len(reference.text) >= 4, reference
        stop = _stop_after_the_first_character(reference.text)
        if stop is None:
            stop = reference.text[0]  # cuts the answer to "": still a success
        expected = reference.text[: reference.text.index(stop)]
        one = call(client, stop=stop)
        listed = call(client, stop=["<never-emitted>", stop])
    for r in (one, listed):
        assert r.success, (r.error, r.raw_response[:300])
        assert r.finish_reason == "stop" and not r.truncated
        # The servers cut before the stop string and leave it out.
        assert r.text == expected, (r.text, reference.text, stop)
        assert r.completion_tokens is not None and r.completion_tokens < 12


@pytest.mark.parametrize("op", ["chat", "complete"])
def test_stop_at_the_first_token_is_an_empty_answer(target: Target, op: str) -> None:
    with target.client(max_retries=2, retry_base_delay=0.05) as client:
        if op == "chat":
            first = client.chat_sync(MESSAGES, max_tokens=12).text[0]
            r = client.chat_sync(MESSAGES, max_tokens=12, stop=first)
        else:
            first = client.complete_sync(PROMPT, max_tokens=12).text[0]
            r = client.complete_sync(PROMPT, max_tokens=12, stop=first)
    assert r.status_code == 200 and r.finish_reason == "stop"
    assert r.attempts == 1, f"a deterministic answer re-sent {r.attempts - 1} times"
    assert r.success, (r.error, r.retryable, r.raw_response[:300])
    assert r.text == ""


def test_stream_stop_at_the_first_token_ends_normally(target: Target) -> None:
    """The streamed twin of the empty answer: no Token, a normal StreamEnd."""
    with target.client() as client:
        first = client.chat_sync(MESSAGES, max_tokens=12).text[0]
        events = list(client.chat_stream_sync(MESSAGES, max_tokens=12, stop=first))
    assert [type(e) for e in events] == [llmbridge.StreamStarted, llmbridge.StreamEnd]
    end = events[-1]
    assert end.finish_reason == "stop"
    assert end.metrics.tokens == 0 and end.metrics.ttft_ms is None
    assert end.metrics.completion_tokens is not None and end.metrics.completion_tokens <= 1


def test_seed_and_temperature(target: Target) -> None:
    with target.client() as client:
        greedy = [client.chat_sync(MESSAGES, max_tokens=10, temperature=0, seed=s).text
                  for s in (1, 2)]
        seeded = [client.chat_sync(MESSAGES, max_tokens=10, temperature=1.0, seed=7).text
                  for _ in range(2)]
    # Temperature 0 ignores the seed; a seed makes sampling repeatable (both servers
    # seed per request).
    assert greedy[0] == greedy[1] and greedy[0]
    assert seeded[0] == seeded[1] and seeded[0]


def test_json_schema_chat(target: Target) -> None:
    with target.client(max_tokens=128) as client:
        r = client.chat_sync(MESSAGES, json_schema=SCHEMA)

        async def run() -> Any:
            return await client.generate("Classify: a red apple", json_schema=SCHEMA)

        async_ = asyncio.run(run())
    for a in (r, async_):
        assert a.success, (a.error, a.raw_response[:300])
        assert conforms(a.data), a.text
        assert a.finish_reason == "stop" and not a.truncated
        assert not a.repaired


def test_json_schema_complete(target: Target) -> None:
    """vLLM and the mock constrain /v1/completions by `response_format` like chat.
    llama-server ignores `response_format` on /v1/completions (it enforces it only on
    chat): the answer is the model's unconstrained noise, run to max_tokens, which the
    client's schema check reports as `schema_mismatch` (it used to be a success)."""
    with target.client(max_tokens=64) as client:
        r = client.complete_sync("JSON: ", json_schema=SCHEMA)
    if target.kind == "llama":
        assert not r.success and r.error.startswith("schema_mismatch: "), r.error
        assert r.retryable and r.schema_errors
        assert not conforms(r.data), r.text
        assert r.finish_reason == "length"
    else:
        assert r.success, (r.error, r.raw_response[:300])
        assert r.schema_errors == []
        assert conforms(r.data), r.text
        assert r.finish_reason == "stop"


# ---- tools ---------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["auto", "required", "named"])
def test_tools(target: Target, choice: str) -> None:
    """What each server does with `tools` (a forced choice is "required" or a named
    function; the tiny models never choose a tool by themselves, so "auto" is text):

    - mock: a forced choice is answered with a tool call, finish_reason "tool_calls".
    - vLLM 0.32 with `--enable-auto-tool-choice --tool-call-parser pythonic` (the plain
      fixture server): a forced choice is grammar-constrained into a real tool call;
      finish_reason "tool_calls" for "required" but "stop" for a named function. The
      stream has ToolCallDelta events only (no Token). Without a parser (the auth
      fixture server, vLLM's default) every tool_choice but "none" is 400
      BadRequestError ("... requires --tool-call-parser to be set").
    - llama-server: accepts tools (200) but the tiny model's ChatML template has no tool
      syntax, so its chat format is "Content-only": the tools are ignored, no tool call is
      ever parsed and "required" is not enforced; a named tool_choice (an object) draws
      a log warning ("Wrong type supplied for parameter 'tool_choice'") and the default.
    """
    tool_choice: Any = (choice if choice != "named"
                        else {"type": "function", "function": {"name": "get_weather"}})
    messages = [{"role": "user", "content": "The weather in Paris?"}]
    options = {"tools": [WEATHER_TOOL], "tool_choice": tool_choice, "max_tokens": 48}
    with target.client() as client:
        r = client.chat_sync(messages, **options)

        async def run() -> list[Any]:
            return [e async for e in client.chat_stream(messages, **options)]

        events = asyncio.run(run())
    assert r.success, (r.error, r.raw_response[:300])
    end = events[-1]
    assert type(events[0]) is llmbridge.StreamStarted and type(end) is llmbridge.StreamEnd
    forced = choice != "auto" and target.kind != "llama"
    if forced:
        (call,) = r.tool_calls
        assert call.name == "get_weather" and call.arguments == {"city": "Paris"}, call
        assert json.loads(call.arguments_text) == call.arguments
        assert call.id
        assert r.text == "" and not r.truncated
        finish = "stop" if (target.kind == "vllm" and choice == "named") else "tool_calls"
        assert r.finish_reason == finish
        deltas = [e for e in events[1:-1] if type(e) is llmbridge.ToolCallDelta]
        assert deltas == events[1:-1]
        assert deltas[0].name == "get_weather" and deltas[0].id
        assert all(d.index == 0 for d in deltas)
        assert json.loads("".join(d.arguments for d in deltas)) == {"city": "Paris"}
        assert end.finish_reason == finish
        assert [(t.name, t.arguments) for t in end.tool_calls] == [("get_weather",
                                                                     {"city": "Paris"})]
    else:
        assert r.tool_calls == [] and r.finish_reason == "length" and r.text
        assert end.tool_calls == [] and end.finish_reason == "length"
        assert not any(type(e) is llmbridge.ToolCallDelta for e in events)
    if target.kind == "vllm":
        # The auth server runs without a tool-call parser: vLLM refuses.
        with target.client(base_url=target.auth_url, api_key=target.api_key) as client:
            refused = client.chat_sync(messages, **options)
            stream = list(client.chat_stream_sync(messages, **options))
        assert refused.error == "http_400" and refused.status_code == 400
        assert not refused.retryable and refused.attempts == 1
        assert "tool-call-parser" in refused.raw_response
        assert [type(e) for e in stream] == [llmbridge.StreamStarted, llmbridge.StreamError]
        assert stream[-1].error == "http_400" and stream[-1].status_code == 400


# ---- streams -------------------------------------------------------------------------


def test_chat_stream_async(target: Target) -> None:
    async def run() -> tuple[list[Any], list[Any], Any]:
        with target.client() as client:
            events = [e async for e in client.chat_stream(MESSAGES, max_tokens=8)]
            async with client.chat_stream(MESSAGES, max_tokens=8) as stream:
                again = [e async for e in stream]
            whole = await client.chat(MESSAGES, max_tokens=8)
            return events, again, whole

    events, again, whole = asyncio.run(run())
    text = check_stream(events, max_tokens=8)
    assert check_stream(again, max_tokens=8) == text
    # Greedy: the stream's tokens join to the non-streamed answer.
    assert text == whole.text
    assert events[-1].metrics.prompt_tokens == whole.prompt_tokens


def test_chat_stream_sync(target: Target) -> None:
    with target.client() as client:
        events = list(client.chat_stream_sync(MESSAGES, max_tokens=8))
        with client.chat_stream_sync(MESSAGES, max_tokens=8) as stream:
            text2, last = stream.collect()
        whole = client.chat_sync(MESSAGES, max_tokens=8)
    text = check_stream(events, max_tokens=8)
    assert text2 == text == whole.text
    assert type(last) is llmbridge.StreamEnd


def test_complete_stream_async_and_sync(target: Target) -> None:
    """llama-server sends the usage of a /v1/completions stream in its finish chunk (no
    separate `"choices": []` chunk, as on chat and on vLLM); the metrics are the same."""
    async def run() -> list[Any]:
        with target.client() as client:
            return [e async for e in client.complete_stream(PROMPT, max_tokens=6)]

    events = asyncio.run(run())
    with target.client() as client:
        sync_events = list(client.complete_stream_sync(PROMPT, max_tokens=6))
        whole = client.complete_sync(PROMPT, max_tokens=6)
    text = check_stream(events, max_tokens=6)
    assert check_stream(sync_events, max_tokens=6) == text == whole.text
    if target.mock is not None:
        assert target.mock.last_request.path == "/v1/completions"


def test_stream_stop_and_max_tokens(target: Target) -> None:
    with target.client() as client:
        reference = client.chat_sync(MESSAGES, max_tokens=12)
        stop = _stop_after_the_first_character(reference.text) or reference.text[0]
        events = list(client.chat_stream_sync(MESSAGES, max_tokens=12, stop=[stop]))
        short = list(client.chat_stream_sync(MESSAGES, max_tokens=3))
    end = events[-1]
    assert type(end) is llmbridge.StreamEnd, end
    assert end.finish_reason == "stop"
    text = "".join(e.text for e in events if type(e) is llmbridge.Token)
    assert text == reference.text[: reference.text.index(stop)]
    assert end.metrics.completion_tokens is not None and end.metrics.completion_tokens < 12
    check_stream(short, max_tokens=3)


# ---- models --------------------------------------------------------------------------


def test_list_models(target: Target) -> None:
    """vLLM (and the mock) list `max_model_len`; llama-server does not (its entry has a
    `meta` object with the training context instead), so it is None there."""
    with target.client() as client:
        models = client.list_models_sync()

        async def run() -> list[Any]:
            return await client.list_models()

        async_models = asyncio.run(run())
    by_id = {m.id: m for m in models}
    assert target.model in by_id, [m.id for m in models]
    assert [m.id for m in async_models] == [m.id for m in models]
    info = by_id[target.model]
    if target.kind == "llama":
        assert info.owned_by == "llamacpp"
        assert info.max_model_len is None
    else:
        assert info.owned_by == "vllm"
        assert info.max_model_len == 8192


def test_list_models_with_a_wrong_key_raises(target: Target) -> None:
    with target.client(base_url=target.auth_url, api_key="sk-wrong") as client, \
            pytest.raises(llmbridge.LLMCallError) as caught:
        client.list_models_sync()
    assert caught.value.error == "http_401"
    assert "sk-wrong" not in str(caught.value)


# ---- stream failures -----------------------------------------------------------------


def _auth_log_count(target: Target, status: int) -> int | None:
    """POSTs answered with `status` by the auth server, where it can tell: the mock
    counts requests, vLLM writes an access log, llama-server logs none."""
    if target.auth_mock is not None:
        return target.auth_mock.request_count
    if target.kind == "vllm" and target.auth_log is not None:
        text = target.auth_log.read_text(errors="replace")
        return text.count(f'"POST /v1/chat/completions HTTP/1.1" {status}')
    return None


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_stream_with_a_wrong_key_is_a_401_not_retried(target: Target, twin: str) -> None:
    # With retries allowed and a long back-off, a retried 401 would take seconds.
    overrides = {"base_url": target.auth_url, "api_key": "sk-wrong", "max_retries": 3,
                 "retry_base_delay": 2.0}
    before = _auth_log_count(target, 401)
    started = time.monotonic()
    with target.client(**overrides) as client:
        if twin == "sync":
            events = list(client.chat_stream_sync(MESSAGES, max_tokens=4))
        else:
            async def run() -> list[Any]:
                return [e async for e in client.chat_stream(MESSAGES, max_tokens=4)]

            events = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert [type(e) for e in events] == [llmbridge.StreamStarted, llmbridge.StreamError], events
    err = events[-1]
    assert err.error == "http_401" and err.status_code == 401
    assert not err.retryable
    assert "sk-wrong" not in repr(err) and "sk-wrong" not in (err.message or "")
    assert elapsed < 1.9, f"took {elapsed:.1f} s: retried?"
    if before is not None:
        time.sleep(0.2)  # vLLM writes its access log line after answering
        assert _auth_log_count(target, 401) == before + 1


def test_stream_with_the_right_key(target: Target) -> None:
    with target.client(base_url=target.auth_url, api_key=target.api_key) as client:
        events = list(client.chat_stream_sync(MESSAGES, max_tokens=4))
    check_stream(events, max_tokens=4)


def test_stream_to_a_wrong_model(target: Target) -> None:
    """vLLM and the strict mock: 404 before the first byte → StreamStarted, StreamError.
    llama-server ignores the model name and streams."""
    with target.client(model="no-such-model") as client:
        events = list(client.chat_stream_sync(MESSAGES, max_tokens=4))
    if target.kind == "llama":
        check_stream(events, max_tokens=4)
    else:
        assert [type(e) for e in events] == [llmbridge.StreamStarted, llmbridge.StreamError]
        assert events[-1].error == "http_404" and not events[-1].retryable


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_break_out_of_a_stream_then_call_again(target: Target, twin: str) -> None:
    if target.mock is not None:
        target.mock.reset()
        target.mock.responder = tiny_model
    with target.client(max_connections=1) as client:
        if twin == "sync":
            seen: list[Any] = []
            for event in client.chat_stream_sync(MESSAGES, max_tokens=400):
                seen.append(event)
                if sum(type(e) is llmbridge.Token for e in seen) == 2:
                    break
            after = client.chat_sync(MESSAGES, max_tokens=4)
            again = list(client.chat_stream_sync(MESSAGES, max_tokens=4))
        else:
            async def run() -> tuple[list[Any], Any, list[Any]]:
                got: list[Any] = []
                async for event in client.chat_stream(MESSAGES, max_tokens=400):
                    got.append(event)
                    if sum(type(e) is llmbridge.Token for e in got) == 2:
                        break
                return (got, await client.chat(MESSAGES, max_tokens=4),
                        [e async for e in client.chat_stream(MESSAGES, max_tokens=4)])

            seen, after, again = asyncio.run(run())
    assert type(seen[0]) is llmbridge.StreamStarted
    assert [type(e) for e in seen[1:]] == [llmbridge.Token, llmbridge.Token]
    check_result(after, target, max_tokens=4)
    check_stream(again, max_tokens=4)
    if target.mock is not None:
        # The abandoned stream was not completed; the second one was.
        assert target.mock.streams_started == 2
        assert target.mock.streams_completed == 1
