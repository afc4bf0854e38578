"""Shared helpers of the generation-surface tests (test_generate.py, test_stream.py,
test_stream_properties.py): clients on a MockLLMServer, and one way to run any method
sync or async so that one test body covers both twins."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import llmbridge
import pytest
from llmbridge import OllamaClient, OpenAICompatibleClient, VLLMClient
from llmbridge.testing import MockLLMServer

MODEL = "m1"
MESSAGES = [{"role": "user", "content": "hi"}]
SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "integer"}}},
    "required": ["a"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]

# Tiny retry delays: a retried call costs milliseconds.
FAST = {
    "timeout": 5.0,
    "max_retries": 2,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "retry_backoff_multiplier": 2.0,
}

PROVIDERS = [
    pytest.param(VLLMClient, id="vllm"),
    pytest.param(OpenAICompatibleClient, id="openai"),
    pytest.param(OllamaClient, id="ollama"),
]
# One OpenAI-dialect client (SSE) and Ollama (NDJSON): the two wire formats.
DIALECTS = [
    pytest.param(VLLMClient, id="sse"),
    pytest.param(OllamaClient, id="ndjson"),
]
MODES = ["sync", "async"]
STREAM_METHODS = ("chat_stream", "complete_stream")

LAST_EVENTS = (llmbridge.StreamEnd, llmbridge.StreamError)


def is_ollama(cls: type) -> bool:
    return cls is OllamaClient


def base_url(server: MockLLMServer, cls: type) -> str:
    return server.url if is_ollama(cls) else server.url + "/v1"


def path_of(cls: type, method: str) -> str:
    """The path the mock sees for a method."""
    chat = method in ("chat", "generate", "chat_stream")
    if is_ollama(cls):
        return "/api/chat" if chat else "/api/generate"
    return "/v1/chat/completions" if chat else "/v1/completions"


@contextlib.contextmanager
def make_client(
    server: MockLLMServer | str, cls: type = VLLMClient, **overrides: Any
) -> Iterator[Any]:
    """A client on the mock (or on a URL) with FAST settings and model "m1"; closed on exit."""
    url = server if isinstance(server, str) else base_url(server, cls)
    fields: dict[str, Any] = {**FAST, "base_url": url, "model": MODEL}
    fields.update(overrides)
    client = cls(**fields)
    try:
        yield client
    finally:
        client.close()


def invoke(client: Any, mode: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """client.<method>(*args, **kwargs) in `mode`: "sync" uses the *_sync twin, "async"
    awaits the coroutine on a fresh event loop. Streams are read to the end and returned
    as the list of their events."""
    if method in STREAM_METHODS:
        if mode == "sync":
            with getattr(client, method + "_sync")(*args, **kwargs) as stream:
                return list(stream)

        async def read_stream() -> list[Any]:
            async with getattr(client, method)(*args, **kwargs) as stream:
                return [event async for event in stream]

        return asyncio.run(read_stream())
    if mode == "sync":
        return getattr(client, method + "_sync")(*args, **kwargs)

    async def call() -> Any:
        return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(call())


def posts(server: MockLLMServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


def token_text(events: list[Any]) -> str:
    return "".join(e.text for e in events if type(e) is llmbridge.Token)


def check_event_order(events: list[Any]) -> None:
    """Exactly one StreamStarted first, exactly one StreamEnd/StreamError last, Token
    indexes 0, 1, 2, ..."""
    assert events, "a stream gave no event at all"
    assert type(events[0]) is llmbridge.StreamStarted, events[:3]
    assert sum(type(e) is llmbridge.StreamStarted for e in events) == 1, events
    assert isinstance(events[-1], LAST_EVENTS), events[-3:]
    assert sum(isinstance(e, LAST_EVENTS) for e in events) == 1, events
    indexes = [e.index for e in events if type(e) is llmbridge.Token]
    assert indexes == list(range(len(indexes)))


def free_closed_port() -> int:
    """A port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def wait_until(predicate: Callable[[], bool], timeout: float = 1.0) -> bool:
    """Poll `predicate` (collecting garbage meanwhile) until true or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        gc.collect()
        time.sleep(0.01)


async def async_wait_until(predicate: Callable[[], bool], timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        gc.collect()
        await asyncio.sleep(0.01)
