"""embed_image(): vLLM's chat-style embeddings request for multimodal embedding models."""

from __future__ import annotations

import asyncio

import pytest

import llmbridge
from llmbridge.testing import MockLLMServer, Reply, embedding_for, embedding_text

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


@pytest.fixture()
def server() -> MockLLMServer:
    with MockLLMServer() as s:
        yield s


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embed_image_sends_messages_and_returns_one_vector(server: MockLLMServer, mode: str) -> None:
    with llmbridge.VLLMClient(base_url=server.url, model="m", max_retries=0) as client:
        if mode == "sync":
            r = client.embed_image_sync(llmbridge.Image.from_bytes(PNG))
        else:
            r = asyncio.run(client.embed_image(PNG))
    assert r.success, r
    body = server.last_request.json
    assert server.last_request.path == "/v1/embeddings"
    assert "input" not in body and body["encoding_format"] == "base64"
    part = body["messages"][0]["content"][0]
    assert part["type"] == "image_url"
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
    assert len(r) == 1 and r.dimensions == server.embedding_dimensions
    expected = embedding_for(embedding_text(body["messages"]), server.embedding_dimensions)
    assert r.vectors == [expected]


def test_embed_image_refused_by_the_server_is_an_error_value(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(400, "model is not a multimodal embedding model"))
    with llmbridge.VLLMClient(base_url=server.url, model="m", max_retries=0) as client:
        r = client.embed_image_sync(PNG)
    assert not r.success
    assert r.error == "http_400"
    assert "multimodal" in r.description
    with pytest.raises(llmbridge.LLMCallError):
        r.raise_for_error()


def test_embed_image_is_refused_for_ollama_before_sending(server: MockLLMServer) -> None:
    with llmbridge.OllamaClient(base_url=server.url, model="m") as client:
        with pytest.raises(ValueError, match="OpenAI-compatible"):
            client.embed_image_sync(PNG)
    assert server.request_count == 0


def test_embed_image_checks_its_input(server: MockLLMServer) -> None:
    with llmbridge.VLLMClient(base_url=server.url, model="m") as client:
        with pytest.raises(TypeError):
            client.embed_image_sync(12)
        with pytest.raises(ValueError, match="image type"):
            client.embed_image_sync(b"not an image")
    assert server.request_count == 0
