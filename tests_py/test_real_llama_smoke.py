"""Smoke tests against a real llama.cpp llama-server on the tiny model: it starts, lists
its model, answers schema-constrained calls through VLLMClient and OpenAICompatibleClient,
and enforces --api-key. The answers are noise shaped by the grammar, so the tests check
what the grammar guarantees (an enum value), not what a trained model would say."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from llmbridge import OpenAICompatibleClient, VLLMClient
from real_common import RunningServer
from real_llama import AUTH_KEY, MODEL_ID, tiny_vocab, write_tiny_gguf

pytestmark = pytest.mark.real_server

COLOURS = ["red", "green", "blue"]
COLOUR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"colour": {"type": "string", "enum": COLOURS}},
    "required": ["colour"],
    "additionalProperties": False,
}
PROMPTS = {"system": "Answer with the colour as JSON.", "user": "Which colour is the sky?"}
# Bounds a runaway answer; an enum answer takes a few dozen tokens with the tiny model.
MAX_TOKENS = 256


def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


@pytest.mark.skipif(sys.version_info < (3, 10), reason="gguf needs Python 3.10+ (the test extra "
                    "leaves it out there; the real-server tier runs on 3.11)")
def test_tiny_gguf_is_deterministic(tmp_path: Path) -> None:
    import gguf

    first = write_tiny_gguf(tmp_path / "a.gguf", seed=0).read_bytes()
    assert write_tiny_gguf(tmp_path / "b.gguf", seed=0).read_bytes() == first
    assert write_tiny_gguf(tmp_path / "c.gguf", seed=1).read_bytes() != first
    reader = gguf.GGUFReader(tmp_path / "a.gguf")
    assert {t.name for t in reader.tensors} >= {"token_embd.weight", "output.weight",
                                                "blk.1.ffn_down.weight"}
    tokens, _, _ = tiny_vocab()
    assert len(tokens) == len(set(tokens))  # a duplicate would shadow a token


def test_models_lists_tiny(llama_server: RunningServer) -> None:
    status, body = get_json(llama_server.base_url + "/v1/models")
    assert status == 200
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [MODEL_ID]


def test_health_through_the_client(llama_server: RunningServer) -> None:
    with VLLMClient(base_url=llama_server.base_url, model=MODEL_ID) as client:
        report = client.health_sync(force=True)
    assert report.status == "healthy", report
    assert MODEL_ID in report.models


def test_vllm_client_enum_schema(llama_server: RunningServer) -> None:
    async def main() -> Any:
        async with VLLMClient(base_url=llama_server.base_url, model=MODEL_ID,
                              max_tokens=MAX_TOKENS, max_retries=0) as client:
            return await client.call_llm(PROMPTS, COLOUR_SCHEMA)

    attempt = asyncio.run(main())
    assert attempt.success, (attempt.error, attempt.raw_response)
    assert attempt.data["colour"] in COLOURS
    assert set(attempt.data) == {"colour"}
    assert attempt.attempts == 1


def test_openai_compatible_client_enum_schema_sync(llama_server: RunningServer) -> None:
    with OpenAICompatibleClient(base_url=llama_server.base_url, model=MODEL_ID,
                                max_tokens=MAX_TOKENS, max_retries=0) as client:
        attempt = client.call_llm_sync(PROMPTS, COLOUR_SCHEMA)
    assert attempt.success, (attempt.error, attempt.raw_response)
    assert attempt.data["colour"] in COLOURS


def test_concurrent_calls_all_answer(llama_server: RunningServer) -> None:
    # More calls than slots (-np 4): the rest queue in the server and still answer.
    async def main() -> list[Any]:
        async with VLLMClient(base_url=llama_server.base_url, model=MODEL_ID,
                              max_tokens=MAX_TOKENS, max_retries=0) as client:
            return await asyncio.gather(*(client.call_llm(PROMPTS, COLOUR_SCHEMA)
                                          for _ in range(16)))

    attempts = asyncio.run(main())
    assert [a.error for a in attempts if not a.success] == []
    assert all(a.data["colour"] in COLOURS for a in attempts)


def test_auth_refused_without_the_key(llama_server_auth: RunningServer) -> None:
    with VLLMClient(base_url=llama_server_auth.base_url, model=MODEL_ID,
                    max_tokens=MAX_TOKENS) as client:
        attempt = client.call_llm_sync(PROMPTS, COLOUR_SCHEMA)
    assert not attempt.success
    assert attempt.auth_refused
    assert not attempt.retryable
    assert attempt.attempts == 1  # 401 is never retried
    assert attempt.status_code == 401


def test_auth_wrong_key_refused(llama_server_auth: RunningServer) -> None:
    with VLLMClient(base_url=llama_server_auth.base_url, model=MODEL_ID,
                    max_tokens=MAX_TOKENS, api_key="sk-wrong") as client:
        attempt = client.call_llm_sync(PROMPTS, COLOUR_SCHEMA)
    assert attempt.auth_refused


def test_auth_accepted_with_the_key(llama_server_auth: RunningServer) -> None:
    assert llama_server_auth.api_key == AUTH_KEY
    with VLLMClient(base_url=llama_server_auth.base_url, model=MODEL_ID,
                    max_tokens=MAX_TOKENS, max_retries=0, api_key=AUTH_KEY) as client:
        attempt = client.call_llm_sync(PROMPTS, COLOUR_SCHEMA)
    assert attempt.success, (attempt.error, attempt.raw_response)
    assert attempt.data["colour"] in COLOURS
