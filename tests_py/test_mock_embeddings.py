"""MockLLMServer embeddings (/v1/embeddings, /api/embed) and images, over real sockets."""

from __future__ import annotations

import base64
import http.client
import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from llmbridge.testing import (
    MockLLMServer,
    Reply,
    caption_for,
    embedding_for,
    embedding_text,
)

# The smallest valid PNG (1x1, transparent) and the start of a JPEG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(60))


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as srv:
        yield srv


def call(server: MockLLMServer, path: str, payload: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


def get(server: MockLLMServer, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


def embed(server: MockLLMServer, **payload: Any) -> tuple[int, Any]:
    payload.setdefault("model", "mock-model")
    return call(server, "/v1/embeddings", payload)


def decode(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# ------------------------------------------------------------------ embedding_for


def test_embedding_for_is_deterministic_normalised_float32() -> None:
    vec = embedding_for("hello", 16)
    assert vec == embedding_for("hello", 16)
    assert vec != embedding_for("hello!", 16)
    assert len(vec) == 16
    assert abs(sum(v * v for v in vec) - 1.0) < 1e-6
    assert all(struct.unpack("<f", struct.pack("<f", v))[0] == v for v in vec)
    # A shorter vector is the normalised prefix of a longer one (Matryoshka-like).
    short, full = embedding_for("hello", 4), embedding_for("hello", 64)
    ratio = short[0] / full[0]
    assert all(abs(s - f * ratio) < 1e-6 for s, f in zip(short, full))
    with pytest.raises(ValueError):
        embedding_for("x", 0)


# ------------------------------------------------------------------ /v1/embeddings


def test_openai_shape_single_string(server: MockLLMServer) -> None:
    status, body = embed(server, input="hello world")
    assert status == 200
    assert body["id"].startswith("embd-") and len(body["id"]) > len("embd-")
    assert body["object"] == "list"
    assert isinstance(body["created"], int)
    assert body["model"] == "mock-model"
    assert body["data"] == [
        {"index": 0, "object": "embedding", "embedding": embedding_for("hello world", 8)}
    ]
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3, "completion_tokens": 0}


def test_openai_list_float_and_base64_agree_bit_for_bit(server: MockLLMServer) -> None:
    texts = ["a", "bb", "ccc", "ünïcödé ✓"]
    _, floats = embed(server, input=texts, encoding_format="float")
    _, b64 = embed(server, input=texts, encoding_format="base64")
    for i, text in enumerate(texts):
        expected = embedding_for(text, 8)
        assert floats["data"][i]["index"] == i
        assert floats["data"][i]["embedding"] == expected
        assert isinstance(b64["data"][i]["embedding"], str)
        assert decode(b64["data"][i]["embedding"]) == expected
        assert base64.b64decode(b64["data"][i]["embedding"]) == struct.pack("<8f", *expected)


def test_dimensions_default_and_override() -> None:
    with MockLLMServer(embedding_dimensions=32) as srv:
        _, body = embed(srv, input="x")
        assert body["data"][0]["embedding"] == embedding_for("x", 32)
        _, body = embed(srv, input="x", dimensions=5)
        assert body["data"][0]["embedding"] == embedding_for("x", 5)


def test_shuffle_needs_sorting_by_index() -> None:
    texts = [f"text {i}" for i in range(6)]
    with MockLLMServer(embeddings_shuffle=True) as srv:
        _, body = embed(srv, input=texts)
        indexes = [d["index"] for d in body["data"]]
        assert indexes != sorted(indexes)
        assert sorted(indexes) == list(range(6))
        for item in body["data"]:
            assert item["embedding"] == embedding_for(texts[item["index"]], 8)
        srv.embeddings_shuffle = False
        _, body = embed(srv, input=texts)
        assert [d["index"] for d in body["data"]] == list(range(6))


def test_ignore_base64_answers_floats(server: MockLLMServer) -> None:
    server.embeddings_ignore_base64 = True
    _, body = embed(server, input=["q"], encoding_format="base64")
    assert body["data"][0]["embedding"] == embedding_for("q", 8)


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "input"),
        ({"input": 5}, "input"),
        ({"input": ["ok", 3]}, "input"),
        ({"input": [1, 2, 3]}, "input"),  # token ids are not supported by the mock
        ({"input": []}, "input"),
        ({"input": "x", "encoding_format": "bytes"}, "encoding_format"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "dimensions": "4"}, "dimensions"),
        ({"messages": []}, "messages"),
    ],
)
def test_openai_invalid_input_is_400(
    server: MockLLMServer, payload: dict[str, Any], param: str
) -> None:
    server.enqueue(Reply.error(500))  # refused before the script is consulted
    status, body = embed(server, **payload)
    assert status == 400
    assert body["error"]["code"] == 400
    assert body["error"]["param"] == param
    assert isinstance(body["error"]["message"], str)
    assert server.pending_replies == 1


def test_non_object_body_is_400(server: MockLLMServer) -> None:
    status, body = call(server, "/v1/embeddings", b"[1, 2]")
    assert status == 400 and body["error"]["param"] == "body"
    status, body = call(server, "/api/embed", b"")
    assert status == 400 and body == {"error": "missing request body"}


def test_scripted_replies_apply_to_embeddings(server: MockLLMServer) -> None:
    server.enqueue(
        Reply.error(503, "busy", retry_after=2),
        Reply(embeddings=[[1.0, 0.0], [0.0, 1.0]], model="other", prompt_tokens=7),
        Reply(malformed=True),
    )
    status, body = embed(server, input="a")
    assert status == 503
    assert body["error"]["message"] == "busy"
    status, body = embed(server, input=["a", "b"], encoding_format="base64")
    assert status == 200
    assert [decode(d["embedding"]) for d in body["data"]] == [[1.0, 0.0], [0.0, 1.0]]
    assert body["model"] == "other"
    assert body["usage"]["prompt_tokens"] == 7
    status, raw = embed(server, input="a")
    assert status == 200 and isinstance(raw, bytes)
    # The script is shared with generation: an error applies to whichever comes next.
    server.enqueue(Reply.error(429))
    assert call(server, "/api/embed", {"model": "m", "input": "a"}) == (
        429,
        {"error": "Too Many Requests"},
    )


def test_responder_is_consulted(server: MockLLMServer) -> None:
    seen: list[str] = []

    def responder(request: Any) -> Reply | None:
        seen.append(request.path)
        return Reply.error(500) if request.json.get("input") == "boom" else None

    server.responder = responder
    assert embed(server, input="boom")[0] == 500
    assert embed(server, input="fine")[0] == 200
    assert seen == ["/v1/embeddings", "/v1/embeddings"]


def test_chat_style_embeddings_with_image(server: MockLLMServer) -> None:
    url = data_url(PNG)
    messages = [
        {"role": "system", "content": "describe"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": "a pixel"},
            ],
        },
    ]
    status, body = embed(server, messages=messages)
    assert status == 200
    assert len(body["data"]) == 1
    expected_text = "\n".join(["describe", url, "a pixel"])
    assert embedding_text(messages) == expected_text
    assert body["data"][0]["embedding"] == embedding_for(expected_text, 8)
    assert server.embedded_inputs == 1


# ------------------------------------------------------------------ /api/embed


def test_ollama_embed_shape(server: MockLLMServer) -> None:
    status, body = call(server, "/api/embed", {"model": "nomic", "input": ["a", "b"]})
    assert status == 200
    assert set(body) == {
        "model",
        "embeddings",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
    }
    assert body["model"] == "nomic"
    assert body["embeddings"] == [embedding_for("a", 8), embedding_for("b", 8)]
    assert body["total_duration"] > 0 and body["load_duration"] == 0
    assert body["prompt_eval_count"] == 2
    _, body = call(
        server, "/api/embed", {"model": "m", "input": "a", "truncate": True, "dimensions": 3}
    )
    assert body["embeddings"] == [embedding_for("a", 3)]


def test_ollama_embed_errors_and_empty_input(server: MockLLMServer) -> None:
    for bad in (5, [1], {"a": 1}, ["x", None]):
        assert call(server, "/api/embed", {"model": "m", "input": bad}) == (
            400,
            {"error": "invalid input type"},
        )
    for empty in ("", []):
        assert call(server, "/api/embed", {"model": "m", "input": empty}) == (
            200,
            {"model": "m", "embeddings": []},
        )


def test_counters_and_reset(server: MockLLMServer) -> None:
    embed(server, input=["a", "b", "c"])
    embed(server, input="d")
    call(server, "/api/embed", {"model": "m", "input": ["e", "f"]})
    embed(server, input=5)  # refused: counted as a request, no inputs
    assert server.embedding_requests == 4
    assert server.embedded_inputs == 6
    server.reset()
    assert (server.embedding_requests, server.embedded_inputs) == (0, 0)


# ------------------------------------------------------------------ images


def openai_image_chat(model: str, *urls: str, **extra: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "what is this?"}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return {"model": model, "messages": [{"role": "user", "content": parts}], **extra}


def test_caption_echoes_openai_images(server: MockLLMServer) -> None:
    status, body = call(server, "/v1/chat/completions", openai_image_chat("m", data_url(PNG)))
    assert status == 200
    content = body["choices"][0]["message"]["content"]
    assert content.startswith(f"caption: 1 image(s), image/png, {len(PNG)} bytes, sha256 ")
    assert content == caption_for([data_url(PNG)])
    # The MIME type is the declared one; two images give two entries.
    _, body = call(
        server,
        "/v1/chat/completions",
        openai_image_chat("m", data_url(JPEG, "image/jpeg"), "https://x.test/a.png"),
    )
    content = body["choices"][0]["message"]["content"]
    assert content.startswith(f"caption: 2 image(s), image/jpeg, {len(JPEG)} bytes, ")
    assert content.endswith("; url https://x.test/a.png")


def test_caption_echoes_ollama_images(server: MockLLMServer) -> None:
    bare = base64.b64encode(JPEG).decode()
    payload = {
        "model": "llava",
        "stream": False,
        "messages": [{"role": "user", "content": "what?", "images": [bare]}],
    }
    status, body = call(server, "/api/chat", payload)
    assert status == 200
    assert body["message"]["content"].startswith(
        f"caption: 1 image(s), image/jpeg, {len(JPEG)} bytes"
    )
    _, body = call(
        server,
        "/api/generate",
        {
            "model": "llava",
            "stream": False,
            "prompt": "?",
            "images": [base64.b64encode(PNG).decode()],
        },
    )
    assert body["response"].startswith(f"caption: 1 image(s), image/png, {len(PNG)} bytes")


def test_caption_streams_and_yields_to_scripts(server: MockLLMServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        payload = openai_image_chat("m", data_url(PNG), stream=True)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(payload))
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    deltas = [
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in text.splitlines()
        if line.startswith("data: {")
    ]
    assert "".join(deltas) == caption_for([data_url(PNG)])
    server.enqueue("scripted")
    _, body = call(server, "/v1/chat/completions", openai_image_chat("m", data_url(PNG)))
    assert body["choices"][0]["message"]["content"] == "scripted"
    server.set_default("chosen default")
    _, body = call(server, "/v1/chat/completions", openai_image_chat("m", data_url(PNG)))
    assert body["choices"][0]["message"]["content"] == "chosen default"


def test_vision_models_are_served() -> None:
    with MockLLMServer(models=["text-model"], vision_models=["vl-model"]) as srv:
        assert [m["id"] for m in get(srv, "/v1/models")["data"]] == ["text-model", "vl-model"]
        tags = get(srv, "/api/tags")["models"]
        assert [m["name"] for m in tags] == ["text-model", "vl-model"]
        assert "clip" in tags[1]["details"]["families"]


def test_strict_refuses_images_for_text_models() -> None:
    with MockLLMServer(models=["text-model"], vision_models=["vl-model"], strict=True) as srv:
        url = data_url(PNG)
        status, body = call(srv, "/v1/chat/completions", openai_image_chat("text-model", url))
        assert status == 400
        assert body["error"]["message"] == "text-model is not a multimodal model"
        status, body = call(srv, "/v1/chat/completions", openai_image_chat("vl-model", url))
        assert status == 200
        assert body["choices"][0]["message"]["content"].startswith("caption: 1 image(s)")
        status, body = embed(
            srv, model="text-model", messages=openai_image_chat("", url)["messages"]
        )
        assert status == 400
        ollama = {
            "model": "text-model",
            "stream": False,
            "messages": [
                {"role": "user", "content": "?", "images": [base64.b64encode(PNG).decode()]}
            ],
        }
        status, body = call(srv, "/api/chat", ollama)
        assert status == 400 and "image" in body["error"]
        # Text-only requests to the text model, and unknown models, as before.
        assert embed(srv, model="text-model", input="x")[0] == 200
        assert embed(srv, model="nope", input="x")[0] == 404
