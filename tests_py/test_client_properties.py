"""Property tests for the clients: status classification and request payloads.

One MockLLMServer (and one client per provider) serves the whole module; each example
calls `reset()` so it sees only its own requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmbridge import OllamaClient, VLLMClient, _native
from llmbridge.testing import MockLLMServer, Reply

settings.register_profile(
    "llmbridge-client",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = settings.get_profile("llmbridge-client")

RETRYABLE_4XX = {408, 409, 425, 429}
OLLAMA_ONLY_FIELDS = ("options", "format", "keep_alive", "stream")
OPENAI_ONLY_FIELDS = ("response_format", "max_tokens", "temperature")
PLACEHOLDER = "{document_text}"
MAX_RETRIES = 1
MAX_TOKENS = 513
TEMPERATURE = 0.7


def expected_retryable(status: int) -> bool:
    return status in RETRYABLE_4XX or status >= 500


def render_user(user: str, document: str) -> str:
    """The contract: the document replaces every placeholder, else follows a blank line."""
    if PLACEHOLDER in user:
        return user.replace(PLACEHOLDER, document)
    if not document:
        return user
    return f"{user}\n\n{document}"


@pytest.fixture(scope="module")
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        yield s


def _client(cls: type, url: str) -> Any:
    return cls(
        base_url=url,
        model="prop-model",
        timeout=5.0,
        max_retries=MAX_RETRIES,
        retry_base_delay=0.001,
        retry_max_delay=0.002,
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
    )


@pytest.fixture(scope="module")
def vllm(server: MockLLMServer) -> Iterator[Any]:
    client = _client(VLLMClient, server.url + "/v1")
    yield client
    client.close()


@pytest.fixture(scope="module")
def ollama(server: MockLLMServer) -> Iterator[Any]:
    client = _client(OllamaClient, server.url)
    yield client
    client.close()


# ------------------------------------------------------------- status classification


def test_status_classification_is_exhaustively_the_contract() -> None:
    for status in range(100, 600):
        assert _native.is_retryable_status(status) is expected_retryable(status), status
        assert _native.http_error(status) == f"http_{status}"


ERROR_STATUSES = sorted(
    {
        400,
        401,
        402,
        403,
        404,
        405,
        406,
        407,
        408,
        409,
        410,
        411,
        412,
        413,
        415,
        418,
        421,
        422,
        423,
        424,
        425,
        426,
        428,
        429,
        431,
        451,
        499,
        500,
        501,
        502,
        503,
        504,
        505,
        507,
        508,
        511,
        520,
        529,
        599,
    }
)


@settings(PROFILE, max_examples=30)
@given(status=st.sampled_from(ERROR_STATUSES))
def test_client_reports_every_error_status(server: MockLLMServer, vllm: Any, status: int) -> None:
    server.reset()
    server.set_default(Reply.error(status))
    attempt = vllm.call_llm_sync({"system": "s", "user": "u"})
    retryable = expected_retryable(status)
    assert attempt.success is False
    assert attempt.error == f"http_{status}"
    assert attempt.status_code == status
    assert attempt.retryable is retryable
    assert attempt.auth_refused is (status in (401, 403))
    assert attempt.attempts == (MAX_RETRIES + 1 if retryable else 1)
    assert len(server.requests) == attempt.attempts


# ------------------------------------------------------------------ payload building

# Text with the characters that break naive escaping or templating.
_tricky = st.sampled_from(
    [
        '"',
        "'",
        "\\",
        "\n",
        "\r\n",
        "\t",
        "\x00",
        "\x1f",
        "\u2028",
        "é",
        "日本",
        "🦀",
        PLACEHOLDER,
        "{",
        "}",
        "{document}",
        "%s",
        "</think>",
    ]
)
_chunk = st.one_of(st.text(max_size=12), _tricky)
text = st.lists(_chunk, max_size=6).map("".join)

_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_value = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
schemas = st.one_of(st.none(), st.dictionaries(st.text(max_size=8), json_value, max_size=4))


@st.composite
def prompt_dicts(draw: st.DrawFn) -> dict[str, Any]:
    prompts: dict[str, Any] = {"user": draw(text)}
    system = draw(st.one_of(st.none(), text))
    if system is not None:
        prompts["system"] = system
    return prompts


def expected_messages(prompts: dict[str, Any], document: str) -> list[dict[str, str]]:
    messages = []
    if prompts.get("system"):
        messages.append({"role": "system", "content": prompts["system"]})
    messages.append({"role": "user", "content": render_user(prompts["user"], document)})
    return messages


@PROFILE
@given(prompts=prompt_dicts(), schema=schemas, document=text)
def test_vllm_payload(
    server: MockLLMServer, vllm: Any, prompts: dict[str, Any], schema: Any, document: str
) -> None:
    server.reset()
    attempt = vllm.call_llm_sync(prompts, schema, document)
    assert attempt.success, attempt
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    body = request.json
    assert body is not None, request.body[:200]
    assert body["model"] == "prop-model"
    assert body["max_tokens"] == MAX_TOKENS
    assert body["temperature"] == TEMPERATURE
    assert body["messages"] == expected_messages(prompts, document)
    if schema is None:
        assert body["response_format"] == {"type": "json_object"}
    else:
        rf = body["response_format"]
        assert rf["type"] == "json_schema"
        assert rf["json_schema"]["schema"] == schema
        assert rf["json_schema"]["strict"] is True
        assert rf["json_schema"]["name"]
    for field in OLLAMA_ONLY_FIELDS:
        assert field not in body
    assert request.headers["x-request-id"] == attempt.request_id


@settings(PROFILE, max_examples=40)
@given(prompts=prompt_dicts(), schema=schemas, document=text)
def test_ollama_payload(
    server: MockLLMServer, ollama: Any, prompts: dict[str, Any], schema: Any, document: str
) -> None:
    server.reset()
    attempt = ollama.call_llm_sync(prompts, schema, document)
    assert attempt.success, attempt
    (request,) = server.requests
    assert request.path == "/api/chat"
    body = request.json
    assert body is not None, request.body[:200]
    assert body["model"] == "prop-model"
    assert body["stream"] is False
    assert body["messages"] == expected_messages(prompts, document)
    assert body["format"] == ("json" if schema is None else schema)
    assert body["options"]["temperature"] == TEMPERATURE
    assert body["options"]["num_predict"] == MAX_TOKENS
    for field in OPENAI_ONLY_FIELDS:
        assert field not in body


_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": text}
)


@settings(PROFILE, max_examples=30)
@given(messages=st.lists(_message, min_size=1, max_size=4), document=text)
def test_messages_are_sent_verbatim(
    server: MockLLMServer, vllm: Any, messages: list[dict[str, str]], document: str
) -> None:
    server.reset()
    attempt = vllm.call_llm_sync({"messages": messages}, None, document)
    assert attempt.success, attempt
    assert server.last_request.json["messages"] == messages


@settings(PROFILE, max_examples=40)
@given(value=json_value.filter(lambda v: v is not None))
def test_content_round_trips_into_data(server: MockLLMServer, vllm: Any, value: Any) -> None:
    # Whatever JSON the model answers comes back as the same Python value.
    server.reset()
    server.set_default(Reply.text(json.dumps({"v": value}, ensure_ascii=False)))
    attempt = vllm.call_llm_sync({"system": "s", "user": "u"})
    assert attempt.success, attempt
    assert attempt.data == {"v": value}
    assert attempt.repaired is False
