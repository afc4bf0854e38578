"""Property tests of the stream contract over generated answers, against a real
MockLLMServer: whatever the tokens (unicode, empty, whitespace, newlines, quotes,
backslashes, text that looks like SSE framing), every stream gives exactly one
StreamStarted first, one StreamEnd last, Token texts that join to the answer, and
metrics that match it; SSE and NDJSON, sync and async.

Each example is one real HTTP stream, so the example counts stay modest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from generation_helpers import (
    DIALECTS,
    MESSAGES,
    MODES,
    TOOLS,
    base_url,
    check_event_order,
    invoke,
    is_ollama,
    token_text,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbridge import OllamaClient, StreamEnd, Token, ToolCallDelta, VLLMClient
from llmbridge.testing import MockLLMServer, Reply

EXAMPLES = settings(max_examples=30, deadline=None)

# Pieces that stress the framing: SSE and NDJSON delimiters, JSON escapes, markers.
TRICKY = [
    "",
    " ",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    "\t",
    '"',
    "\\",
    "\\n",
    "data: [DONE]\n\n",
    "[DONE]",
    ": keep-alive\n",
    '{"done": true}',
    "}\n{",
    "\u2028\u2029",
    "\x00",
    "\x7f",
    "é",
    "日本語",
    "😀",
    "👩‍👩‍👧",
    "\ufeff",
]
text_piece = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
token_lists = st.lists(st.one_of(st.sampled_from(TRICKY), text_piece), min_size=1, max_size=25)
counts = st.integers(min_value=0, max_value=100_000)


@pytest.fixture(scope="module")
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        yield s


@pytest.fixture(scope="module")
def clients(server: MockLLMServer) -> Iterator[dict[type, Any]]:
    made = {
        cls: cls(base_url=base_url(server, cls), model="m1", timeout=5.0, max_retries=0)
        for cls in (VLLMClient, OllamaClient)
    }
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", DIALECTS)
@EXAMPLES
@given(
    tokens=token_lists,
    method=st.sampled_from(["chat_stream", "complete_stream"]),
    prompt_tokens=counts,
    completion_tokens=counts,
)
def test_stream_contract_holds_for_any_tokens(
    server: MockLLMServer,
    clients: dict[type, Any],
    cls: type,
    mode: str,
    tokens: list[str],
    method: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    server.reset()
    server.enqueue(
        Reply(tokens=tokens, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    )
    args = (MESSAGES,) if method == "chat_stream" else ("p",)
    events = invoke(clients[cls], mode, method, *args)

    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamEnd, end
    assert token_text(events) == "".join(tokens)
    token_events = [e for e in events if type(e) is Token]
    assert all(e.text for e in token_events)  # no empty Token events
    m = end.metrics
    assert m.tokens == len(token_events)
    assert m.prompt_tokens == prompt_tokens
    assert m.completion_tokens == completion_tokens
    if any(tokens):
        assert m.ttft_ms is not None and 0 <= m.ttft_ms <= m.total_ms
    else:
        assert m.ttft_ms is None
    assert end.finish_reason == "stop"
    assert server.streams_completed == 1


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
arguments = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


@pytest.mark.parametrize("cls", DIALECTS)
@EXAMPLES
@given(calls=st.lists(arguments, min_size=1, max_size=3))
def test_tool_call_arguments_survive_streaming(
    server: MockLLMServer, clients: dict[type, Any], cls: type, calls: list[dict[str, Any]]
) -> None:
    """Arguments cut into fragments (8 characters on SSE, anywhere in a multi-byte
    character or an escape) come back whole, in the deltas and in StreamEnd."""
    server.reset()
    server.enqueue(
        Reply(
            tool_calls=[
                {"name": f"tool_{i}", "arguments": args, "id": f"id_{i}"}
                for i, args in enumerate(calls)
            ]
        )
    )
    events = invoke(clients[cls], "sync", "chat_stream", MESSAGES, tools=TOOLS)

    check_event_order(events)
    end = events[-1]
    assert type(end) is StreamEnd, end
    deltas = [e for e in events if type(e) is ToolCallDelta]
    for i, args in enumerate(calls):
        joined = "".join(d.arguments for d in deltas if d.index == i)
        assert json.loads(joined) == args
    assert [(t.id, t.name, t.arguments) for t in end.tool_calls] == [
        (f"id_{i}", f"tool_{i}", args) for i, args in enumerate(calls)
    ]
    assert all(t.repaired is False for t in end.tool_calls)
    if not is_ollama(cls):
        assert end.finish_reason == "tool_calls"


@pytest.mark.parametrize("cls", DIALECTS)
@EXAMPLES
@given(
    tokens=token_lists.filter(lambda t: "".join(t).strip() and "<think>" not in "".join(t)),
    method=st.sampled_from(["chat", "complete"]),
)
def test_non_streamed_text_is_the_answer(
    server: MockLLMServer, clients: dict[type, Any], cls: type, tokens: list[str], method: str
) -> None:
    server.reset()
    server.enqueue(Reply(tokens=tokens))
    args = (MESSAGES,) if method == "chat" else ("p",)
    result = invoke(clients[cls], "sync", method, *args)
    assert result.success, result
    assert result.text == "".join(tokens)
