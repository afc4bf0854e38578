"""embed / embed_sync against a real llama-server serving /v1/embeddings.

The `llama_embed_server` fixture (tests_py/real_llama.py) runs a second llama-server on
the tiny random-weight GGUF with `--embeddings --pooling mean`. Without `--pooling mean`
the server starts but answers every /v1/embeddings request with 400 "Pooling type 'none'
is not OAI compatible": the GGUF names no pooling type and llama.cpp's default for the
llama architecture is per-token vectors. With mean pooling each input gets one vector of
the model's n_embd (64) floats, L2-normalised (the server's default `--embd-normalize 2`).

The tiny model's vectors are noise, but deterministic: the same text gives the same
vector, different texts differ. The tests assert exactly that, plus the wire facts a
client must cope with (listed in docs/testing.md, "Where the servers differ"):

- `encoding_format: "base64"` (which llmbridge always sends) is honoured: each
  `embedding` is a base64 string of little-endian float32. Without it the server answers
  float lists; a small proxy that drops the field from llmbridge's requests sends the
  client real float answers, and both paths must give the same vectors bit for bit.
- `dimensions` is ignored: the answer always has n_embd values, so llmbridge's own
  check turns a `dimensions` the model does not have into `embedding_dimension_mismatch`.
- An input over the physical batch (512 tokens; one character is one token here) is
  refused with 500 `server_error` "input (N tokens) is too large to process".
- The fixture runs one slot (`-np 1`): with 4 slots and the per-slot KV cache this
  llama-server defaults to, a text's vector depends on the slot that computes it, so
  "same text, same vector" would not hold across requests (see tests_py/real_llama.py).

Skipped as a whole with LLMBRIDGE_SKIP_REAL_SERVERS=1; CI never sets it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from llmbridge import OpenAICompatibleClient, VLLMClient
from real_common import RunningServer
from real_llama import N_EMBD

pytestmark = pytest.mark.real_server

CALL = {"timeout": 30.0, "max_retries": 0}
TEXTS = ["alpha", "The quick brown fox.", "ünïcödé ✓", "alpha", "x" * 200]


def _client(server: RunningServer, cls: type = VLLMClient, **overrides: Any) -> Any:
    return cls(**{"base_url": server.base_url, "model": server.model, **CALL, **overrides})


def _post_embeddings(server: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        server.base_url + "/v1/embeddings", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _f32(values: list[float]) -> list[float]:
    """The values rounded to float32, as llmbridge stores them."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _ok(result: Any, rows: int) -> list[list[float]]:
    assert result.success, result.error
    assert result.error in ("", None)
    assert result.dimensions == N_EMBD
    vectors = result.vectors
    assert len(vectors) == rows
    assert all(len(v) == N_EMBD for v in vectors)
    return vectors


@pytest.fixture(scope="module")
def server(llama_embed_server: RunningServer) -> RunningServer:
    return llama_embed_server


@pytest.fixture(scope="module")
def singles(server: RunningServer) -> dict[str, list[float]]:
    """Each distinct text of TEXTS embedded on its own: the reference vectors."""
    with _client(server) as client:
        return {t: _ok(client.embed_sync(t), 1)[0] for t in dict.fromkeys(TEXTS)}


# ---- the wire, seen without llmbridge --------------------------------------------------


def test_server_honours_base64_and_answers_floats_without_it(server: RunningServer) -> None:
    floats = _post_embeddings(server, {"model": server.model, "input": ["a", "b"]})
    b64 = _post_embeddings(server, {"model": server.model, "input": ["a", "b"],
                                    "encoding_format": "base64"})
    for answer in (floats, b64):
        assert answer["object"] == "list"
        assert [d["index"] for d in answer["data"]] == [0, 1]
        assert answer["usage"]["prompt_tokens"] > 0
    for f, b in zip(floats["data"], b64["data"]):
        assert isinstance(f["embedding"], list) and len(f["embedding"]) == N_EMBD
        assert isinstance(b["embedding"], str)
        raw = base64.b64decode(b["embedding"])
        assert len(raw) == 4 * N_EMBD
        # The float answer prints float32 values exactly: the two agree bit for bit.
        assert list(struct.unpack(f"<{N_EMBD}f", raw)) == _f32(f["embedding"])


def test_server_ignores_dimensions(server: RunningServer) -> None:
    answer = _post_embeddings(server, {"model": server.model, "input": "a", "dimensions": 8})
    assert len(answer["data"][0]["embedding"]) == N_EMBD


# ---- embed / embed_sync ----------------------------------------------------------------


@pytest.mark.parametrize("cls", [VLLMClient, OpenAICompatibleClient])
def test_embed_one_text(server: RunningServer, singles: dict[str, list[float]], cls: type) -> None:
    with _client(server, cls) as client:
        result = client.embed_sync("alpha")
    [vector] = _ok(result, 1)
    assert vector == singles["alpha"]
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-4)  # L2-normalised
    assert result.provider == ("vllm" if cls is VLLMClient else "openai")
    assert result.model == server.model
    assert result.attempts == 1
    assert result.prompt_tokens > 0


@pytest.mark.parametrize("cls", [VLLMClient, OpenAICompatibleClient])
def test_embed_list_in_input_order(server: RunningServer, singles: dict[str, list[float]],
                                   cls: type) -> None:
    with _client(server, cls) as client:
        vectors = _ok(client.embed_sync(TEXTS), len(TEXTS))
    assert vectors == [singles[t] for t in TEXTS]  # each row is its own text's vector
    assert vectors[0] == vectors[3]  # "alpha" twice
    distinct = {tuple(v) for v in vectors}
    assert len(distinct) == len(set(TEXTS))  # different texts, different vectors


def test_embed_async(server: RunningServer, singles: dict[str, list[float]]) -> None:
    async def main() -> list[Any]:
        with _client(server) as client:
            return await asyncio.gather(client.embed(TEXTS), client.embed("alpha"),
                                        *(client.embed(t) for t in TEXTS))

    results = asyncio.run(main())
    assert _ok(results[0], len(TEXTS)) == [singles[t] for t in TEXTS]
    assert _ok(results[1], 1) == [singles["alpha"]]
    for text, result in zip(TEXTS, results[2:]):
        assert _ok(result, 1) == [singles[text]]


def test_batches_of_two_equal_one_batch(server: RunningServer) -> None:
    with _client(server, embedding_batch_size=2) as client:
        split = client.embed_sync(TEXTS)
    with _client(server, embedding_batch_size=64) as client:
        whole = client.embed_sync(TEXTS)
    assert _ok(split, len(TEXTS)) == _ok(whole, len(TEXTS))
    assert split.attempts == 3  # one attempt per batch: 2 + 2 + 1
    assert whole.attempts == 1


def test_embedding_dimensions_checked(server: RunningServer) -> None:
    with _client(server, embedding_dimensions=N_EMBD) as client:
        _ok(client.embed_sync(["a", "b"]), 2)
    with _client(server, embedding_dimensions=N_EMBD // 2) as client:
        result = client.embed_sync(["a", "b"])
    assert not result.success
    assert result.error == f"embedding_dimension_mismatch: expected {N_EMBD // 2}, got {N_EMBD}"
    assert not result.retryable
    assert result.vectors == []
    assert result.dimensions is None and len(result) == 0


def test_dimensions_argument_ignored_by_server_is_a_mismatch(server: RunningServer) -> None:
    with _client(server) as client:
        result = client.embed_sync("a", dimensions=8)
        assert not result.success
        assert result.error == f"embedding_dimension_mismatch: expected 8, got {N_EMBD}"
        assert not result.retryable
        # The model's own size, asked for, is what the server answers anyway.
        _ok(client.embed_sync("a", dimensions=N_EMBD), 1)


def test_empty_text_is_embedded(server: RunningServer) -> None:
    with _client(server) as client:
        _ok(client.embed_sync(["", "a"]), 2)  # BOS alone is a token to pool


def test_text_over_the_physical_batch_is_a_500(server: RunningServer) -> None:
    # --embeddings sets n_batch = n_ubatch = 512 and a pooled input must fit in one ubatch;
    # llama-server refuses longer ones with 500 server_error, which llmbridge treats as any
    # 500: retryable (a retry fails the same way).
    with _client(server) as client:
        result = client.embed_sync(["ok", "y" * 600])
    assert not result.success
    assert result.error == "http_500"
    assert result.status_code == 500
    assert result.retryable
    assert "too large to process" in result.raw_response


def test_numpy_view_equals_vectors(server: RunningServer) -> None:
    numpy = pytest.importorskip("numpy")
    with _client(server) as client:
        result = client.embed_sync(TEXTS)
    vectors = _ok(result, len(TEXTS))
    array = result.to_numpy()
    assert array.dtype == numpy.float32
    assert array.shape == (len(TEXTS), N_EMBD)
    assert array.tolist() == vectors
    assert numpy.asarray(result).tolist() == vectors
    view = memoryview(result)
    assert view.format == "f" and view.shape == (len(TEXTS), N_EMBD)
    assert view.tolist() == vectors


# ---- a float answer from the real server -----------------------------------------------


class _DropEncodingFormat(BaseHTTPRequestHandler):
    """Forwards POST /v1/embeddings to the real server without `encoding_format`, so the
    server answers float lists to llmbridge's base64 request."""

    protocol_version = "HTTP/1.1"
    upstream = ""
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        type(self).seen.append(dict(body))
        body.pop("encoding_format", None)
        request = urllib.request.Request(self.upstream + self.path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            status, data = response.status, response.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def float_proxy(server: RunningServer) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handler = type("Handler", (_DropEncodingFormat,), {"upstream": server.base_url, "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_float_answers_equal_base64_answers(server: RunningServer, singles: dict[str, list[float]],
                                            float_proxy: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = float_proxy
    with VLLMClient(base_url=url, model=server.model, embedding_batch_size=2, **CALL) as client:
        result = client.embed_sync(TEXTS)
    assert [b.get("encoding_format") for b in seen] == ["base64"] * 3  # what llmbridge asked
    assert _ok(result, len(TEXTS)) == [singles[t] for t in TEXTS]
