"""The mock against what real servers sent: recorded wire samples, field by field.

tests_py/wire_samples/vllm/ and tests_py/wire_samples/llama/ hold what a real vLLM 0.32
(CPU) and llama-server answered (recorded by tests_py/record_vllm_samples.py and
tests_py/record_wire_samples.py). Each request is replayed against MockLLMServer in the
mode that imitates vLLM (`strict=True`, with `api_key` for the 401 samples), and:

- vLLM: every field the mock sends exists in vLLM's answer with the same JSON type, at
  every level (the mock invents nothing and types nothing differently), and the status
  is the same;
- both servers and the mock: every field llmbridge reads is there with the type it
  expects, so a client tested on the mock reads real answers the same way.

Values (ids, timestamps, the random model's words) are not compared.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmbridge.testing import MockLLMServer

SAMPLES = Path(__file__).parent / "wire_samples"
VLLM_KEY = "sk-vllm-test"
# The vLLM samples the mock imitates (streaming is not spoken by the mock yet).
MOCKED = [
    "models.json", "health.json", "version.json", "chat_plain.json", "chat_json_schema.json",
    "chat_json_object.json", "error_404_wrong_model.json", "error_400_prompt_over_context.json",
    "error_400_max_tokens_over_context.json", "error_401_no_key.json",
    "error_401_wrong_key_models.json", "ok_with_key_models.json", "error_404_unknown_route.json",
    "error_405_get_chat.json",
]
# What llmbridge reads (cpp/src/llm/provider.cpp, health.cpp, errors.cpp), as paths to types.
READ_CHAT = {("choices", 0, "message", "content"): str, ("choices", 0, "finish_reason"): str,
             ("usage", "prompt_tokens"): int, ("usage", "completion_tokens"): int,
             ("model",): str}
READ_MODELS = {("data", 0, "id"): str}
READ_ERROR = {("error", "message"): str}
READ_DETAIL = {("detail",): str}  # FastAPI's own 404 / 405
ELIDED = re.compile(r"^(.*)\.\.\. \((\d+) characters\)$", re.S)


def load(server: str, name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / server / name).read_text(encoding="utf-8"))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def invented(mock: Any, real: Any, path: str = "$") -> list[str]:
    """Where the mock's value has a field the real one lacks, or another JSON type.
    null on either side matches anything (an optional field absent in this answer)."""
    if mock is None or real is None:
        return []
    if json_type(mock) != json_type(real):
        return [f"{path}: mock {json_type(mock)}, real {json_type(real)}"]
    problems: list[str] = []
    if isinstance(mock, dict):
        for key, value in mock.items():
            if key not in real:
                problems.append(f"{path}.{key}: only in the mock")
            else:
                problems += invented(value, real[key], f"{path}.{key}")
    elif isinstance(mock, list) and mock and real:
        problems += invented(mock[0], real[0], f"{path}[0]")
    return problems


def get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def missing_reads(body: Any, reads: dict[tuple[Any, ...], type]) -> list[str]:
    problems = []
    for path, kind in reads.items():
        try:
            value = get(body, path)
        except (KeyError, IndexError, TypeError):
            problems.append(f"{path}: missing")
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{path}: {type(value).__name__}, expected {kind.__name__}")
    return problems


@pytest.fixture(scope="module")
def mocks() -> Iterator[tuple[MockLLMServer, MockLLMServer]]:
    with MockLLMServer(models=["tiny"], max_model_len=8192, strict=True) as plain, \
            MockLLMServer(models=["tiny"], max_model_len=8192, strict=True,
                          api_key=VLLM_KEY) as auth:
        yield plain, auth


def expand(request: dict[str, Any]) -> dict[str, Any]:
    """The recorders shorten long message contents to "<first 40>... (N characters)";
    rebuild a content of that length from its start, so the replay is as long."""
    body = request.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return request
    messages = []
    for message in body["messages"]:
        m = ELIDED.match(message.get("content") or "") if isinstance(message, dict) else None
        if m:
            unit, size = m[1], int(m[2])
            message = {**message, "content": (unit * (size // len(unit) + 1))[:size]}
        messages.append(message)
    return {**request, "body": {**body, "messages": messages}}


def replay(server: MockLLMServer, request: dict[str, Any]) -> tuple[int, Any]:
    request = expand(request)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        body = request.get("body")
        data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        conn.request(request["method"], request["path"], body=data,
                     headers=dict(request.get("headers") or {}))
        response = conn.getresponse()
        raw = response.read().decode()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return response.status, raw


@pytest.mark.parametrize("name", MOCKED)
def test_mock_answers_like_vllm(mocks: tuple[MockLLMServer, MockLLMServer], name: str) -> None:
    sample = load("vllm", name)
    wants_key = name.startswith(("error_401", "ok_with_key"))
    server = mocks[1] if wants_key else mocks[0]
    status, body = replay(server, sample["request"])
    assert status == sample["status"], (status, body)
    if isinstance(sample["body"], (dict, list)):
        assert invented(body, sample["body"]) == []
    else:
        assert json_type(body) == json_type(sample["body"]) or not sample["body"]


def client_reads(name: str) -> dict[tuple[Any, ...], type] | None:
    if "401" in name:
        return None  # only the status matters (auth_refused); the bodies differ by server
    if name.startswith(("error_404_unknown_route", "error_405")):
        return READ_DETAIL
    if name.startswith("error_"):
        return READ_ERROR
    if name.startswith("models") or name.endswith("_models.json"):
        return READ_MODELS
    if name.startswith("chat") and "stream" not in name:
        return READ_CHAT
    if name.startswith("error_"):
        return READ_ERROR
    return None


@pytest.mark.parametrize(
    ("server", "name"),
    [(s, p.name) for s in ("vllm", "llama") for p in sorted((SAMPLES / s).glob("*.json"))
     if not p.name.startswith("_")],
)
def test_real_answers_hold_what_the_client_reads(server: str, name: str) -> None:
    sample = load(server, name)
    reads = client_reads(name)
    if server == "llama" and reads is READ_DETAIL:
        reads = READ_ERROR  # llama-server answers unknown routes with its error object
    if reads is None or not (200 <= sample["status"] < 300 or reads in (READ_ERROR, READ_DETAIL)):
        assert "status" in sample and "request" in sample  # recorded in the common shape
        return
    assert missing_reads(sample["body"], reads) == []


@pytest.mark.parametrize("name", [n for n in MOCKED if client_reads(n) is not None])
def test_mock_answers_hold_what_the_client_reads(
    mocks: tuple[MockLLMServer, MockLLMServer], name: str
) -> None:
    sample = load("vllm", name)
    reads = client_reads(name)
    server = mocks[1] if name.startswith(("error_401", "ok_with_key")) else mocks[0]
    status, body = replay(server, sample["request"])
    if reads is READ_CHAT and status != 200:
        pytest.fail(f"the mock refused a request vLLM answered: {status} {body}")
    assert missing_reads(body, reads) == []


def test_401_is_a_bare_string_on_vllm_and_an_object_on_llama() -> None:
    # The one place the two real servers disagree on the error shape: llmbridge turns
    # both into http_401 with auth_refused (test_real_conformance.py checks it live).
    assert load("vllm", "error_401_no_key.json")["body"] == {"error": "Unauthorized"}
    llama = load("llama", "error_401_no_key.json")["body"]
    assert isinstance(llama["error"], dict) and llama["error"]["code"] == 401
