"""llmbridge against a real vLLM (CPU build, tiny random model): the basics a worker needs.

The servers come from `real_vllm.py` (started once per session, both in parallel). The
model's weights are random, so answers are checked for what the server guarantees: the
JSON-schema grammar keeps them inside the schema.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from llmbridge import ExtractionAttempt, VLLMClient
from real_common import RunningServer

pytestmark = pytest.mark.real_server

LABELS = ["cat", "dog", "bird"]
SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": LABELS}},
    "required": ["label"],
    "additionalProperties": False,
}
PROMPTS = {"system": "Classify the animal.", "user": "Text: {document_text}\nAnswer in JSON."}
DOCUMENT = "It barks at the postman."
# Short answers and no retries: a test never waits on backoff.
CLIENT = {"timeout": 120.0, "max_retries": 0, "max_tokens": 64, "temperature": 0.0}


def get_json(server: RunningServer, path: str) -> object:
    headers = {"Authorization": f"Bearer {server.api_key}"} if server.api_key else {}
    request = urllib.request.Request(server.base_url + path, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.load(response)


def test_models_lists_tiny(vllm_server: RunningServer) -> None:
    listing = get_json(vllm_server, "/v1/models")
    assert isinstance(listing, dict)
    assert listing["object"] == "list"
    [model] = listing["data"]
    assert model["id"] == "tiny"
    assert model["owned_by"] == "vllm"
    assert model["max_model_len"] == 8192


def check_enum_answer(attempt: ExtractionAttempt) -> None:
    assert attempt.success, (attempt.error, attempt.raw_response)
    assert attempt.error is None
    assert attempt.status_code == 200
    assert attempt.attempts == 1
    assert attempt.provider == "vllm"
    assert attempt.model == "tiny"
    assert attempt.data in [{"label": label} for label in LABELS], attempt.raw_response
    assert attempt.finish_reason == "stop"  # the grammar ended it, not max_tokens
    assert attempt.prompt_tokens and attempt.prompt_tokens > 0
    assert attempt.completion_tokens and 0 < attempt.completion_tokens < 64
    # vLLM does not echo X-Request-Id (unless --enable-request-id-headers): the id is the
    # one the client sent.
    assert attempt.request_id and attempt.request_id.startswith("llmb-")


def test_call_llm_sync_enum_schema(vllm_server: RunningServer) -> None:
    with VLLMClient(base_url=vllm_server.base_url, model="tiny", **CLIENT) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, DOCUMENT)
    check_enum_answer(attempt)


def test_call_llm_async_enum_schema(vllm_server: RunningServer) -> None:
    async def main() -> list[ExtractionAttempt]:
        client = VLLMClient(base_url=vllm_server.base_url, model="tiny", **CLIENT)
        try:
            return list(await asyncio.gather(
                *(client.call_llm(PROMPTS, SCHEMA, f"{DOCUMENT} ({i})") for i in range(4))))
        finally:
            await client.close()

    for attempt in asyncio.run(main()):
        check_enum_answer(attempt)


def test_wrong_model_is_http_404(vllm_server: RunningServer) -> None:
    with VLLMClient(base_url=vllm_server.base_url, model="no-such-model", **CLIENT) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, DOCUMENT)
    assert not attempt.success
    assert attempt.error == "http_404"
    assert attempt.status_code == 404
    assert attempt.retryable is False
    assert attempt.auth_refused is False
    assert attempt.attempts == 1


def test_auth_server_refuses_without_the_key(vllm_server_auth: RunningServer) -> None:
    with VLLMClient(base_url=vllm_server_auth.base_url, model="tiny",
                    **{**CLIENT, "max_retries": 2}) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, DOCUMENT)
    assert not attempt.success
    assert attempt.error == "http_401"
    assert attempt.status_code == 401
    assert attempt.auth_refused is True
    assert attempt.retryable is False
    assert attempt.attempts == 1  # 401 is never retried


def test_auth_server_answers_with_the_key(vllm_server_auth: RunningServer) -> None:
    assert vllm_server_auth.api_key
    with VLLMClient(base_url=vllm_server_auth.base_url, model="tiny",
                    api_key=vllm_server_auth.api_key, **CLIENT) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, DOCUMENT)
    check_enum_answer(attempt)


def test_auth_server_lists_models_only_with_the_key(vllm_server_auth: RunningServer) -> None:
    listing = get_json(vllm_server_auth, "/v1/models")
    assert isinstance(listing, dict)
    assert [m["id"] for m in listing["data"]] == ["tiny"]
    request = urllib.request.Request(vllm_server_auth.base_url + "/v1/models")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    refused.value.close()
