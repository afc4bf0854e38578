"""embed() / embed_sync() on every client against the mock server, and EmbeddingResult:
vectors in input order, base64 and float answers, shuffled `data`, batching, the first
failed batch, dimension checks, input validation, the buffer protocol and numpy, which
model is asked, and build_embedding_client() for EMBEDDING_PROVIDER."""

from __future__ import annotations

import math
import sys
from typing import Any

import llmbridge
import pytest
from generation_helpers import MODEL, MODES, PROVIDERS, invoke, is_ollama, make_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmbridge import LLMCallError, OllamaClient, OpenAICompatibleClient, VLLMClient
from llmbridge.testing import MockLLMServer, Reply
from llmbridge.testing._media import embedding_for

TEXTS = ["alpha", "beta", "gamma", "delta", "épsilon ☃", "zeta"]


def embed(client: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
    return invoke(client, mode, "embed", *args, **kwargs)


def expected(texts: list[str], dims: int = 8) -> list[list[float]]:
    return [embedding_for(t, dims) for t in texts]


def embed_posts(server: MockLLMServer) -> list[Any]:
    return [r for r in server.requests if r.path in ("/v1/embeddings", "/api/embed")]


def embed_path(cls: type) -> str:
    return "/api/embed" if is_ollama(cls) else "/v1/embeddings"


@pytest.fixture
def server() -> Any:
    with MockLLMServer() as s:
        yield s


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_one_string(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls) as client:
        r = embed(client, mode, "hello world")
    assert r.success, r.error
    assert r.error is None
    assert r.vectors == expected(["hello world"])
    assert r.dimensions == 8
    assert len(r) == 1
    req = server.last_request
    assert req.path == embed_path(cls)
    assert req.json["input"] == ["hello world"] or req.json["input"] == "hello world"
    if not is_ollama(cls):
        assert req.json["encoding_format"] == "base64"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_a_list_in_input_order(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls) as client:
        r = embed(client, mode, TEXTS)
    assert r.success, r.error
    assert r.vectors == expected(TEXTS)
    assert r.dimensions == 8
    assert r.model == MODEL
    assert r.provider == client.provider
    posts = embed_posts(server)
    assert len(posts) == 1
    assert posts[0].path == embed_path(cls)
    assert posts[0].json["input"] == TEXTS
    assert posts[0].json["model"] == MODEL
    if is_ollama(cls):
        assert "encoding_format" not in posts[0].json
    else:
        assert posts[0].json["encoding_format"] == "base64"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_server_ignoring_base64_still_works(cls: type, mode: str) -> None:
    with MockLLMServer(embeddings_ignore_base64=True) as server, make_client(server, cls) as client:
        r = embed(client, mode, TEXTS)
        assert r.success, r.error
        assert r.vectors == expected(TEXTS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_shuffled_data_is_put_back_in_order(cls: type, mode: str) -> None:
    with MockLLMServer(embeddings_shuffle=True) as server, make_client(server, cls) as client:
        r = embed(client, mode, TEXTS)
        assert r.success, r.error
        assert r.vectors == expected(TEXTS)
        # also with floats instead of base64
        server.embeddings_ignore_base64 = True
        r = embed(client, mode, TEXTS)
        assert r.success, r.error
        assert r.vectors == expected(TEXTS)


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize(
    "cls, mode",
    [
        pytest.param(VLLMClient, "sync", id="vllm-sync"),
        pytest.param(OllamaClient, "async", id="ollama-async"),
    ],
)
def test_ten_thousand_texts_in_batches_keep_order(cls: type, mode: str) -> None:
    texts = [f"t{i}" for i in range(10_000)]
    with (
        MockLLMServer(max_recorded=0, embedding_dimensions=2) as server,
        make_client(server, cls, embedding_batch_size=7) as client,
    ):
        r = embed(client, mode, texts)
        assert r.success, r.error
        assert server.embedding_requests == math.ceil(10_000 / 7)
        assert server.embedded_inputs == 10_000
    assert len(r) == 10_000
    assert r.vectors == expected(texts, 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_small_batches_keep_order(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls, embedding_batch_size=4) as client:
        r = embed(client, mode, TEXTS)
    assert r.success, r.error
    assert r.vectors == expected(TEXTS)
    posts = embed_posts(server)
    assert sorted(len(p.json["input"]) for p in posts) == [2, 4]
    assert sorted(t for p in posts for t in p.json["input"]) == sorted(TEXTS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_one_failing_batch_fails_the_whole(server: MockLLMServer, cls: type, mode: str) -> None:
    marker = "FAIL-THIS-BATCH"

    def responder(request: Any) -> Any:
        inputs = (request.json or {}).get("input") or []
        return Reply.error(400, "bad batch") if marker in inputs else None

    server.responder = responder
    texts = [f"x{i}" for i in range(20)]
    texts[11] = marker
    with make_client(server, cls, embedding_batch_size=3) as client:
        r = embed(client, mode, texts)
    assert not r.success
    assert r.error.startswith("http_400"), r.error
    assert r.status_code == 400
    assert r.retryable is False
    assert r.vectors == []
    assert len(r) == 0
    assert server.embedding_requests == math.ceil(20 / 3)  # every batch was sent, none retried
    with pytest.raises(LLMCallError):
        r.raise_for_error()


@pytest.mark.parametrize("mode", MODES)
def test_the_first_failed_batch_in_input_order_is_the_error(
    server: MockLLMServer, mode: str
) -> None:
    def responder(request: Any) -> Any:
        inputs = (request.json or {}).get("input") or []
        if "EARLY" in inputs:
            return Reply.error(422, "early batch", delay=0.2)  # answers last
        if "LATE" in inputs:
            return Reply.error(400, "late batch")
        return None

    server.responder = responder
    texts = [f"x{i}" for i in range(12)]
    texts[1], texts[10] = "EARLY", "LATE"
    with make_client(server, VLLMClient, embedding_batch_size=3) as client:
        r = embed(client, mode, texts)
    assert not r.success
    assert r.error.startswith("http_422"), r.error
    assert r.status_code == 422


# ---------------------------------------------------------------- dimensions


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", [PROVIDERS[0], PROVIDERS[1]])
def test_config_dimensions_mismatch(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls, embedding_dimensions=4) as client:
        r = embed(client, mode, TEXTS)
    assert not r.success
    assert r.error == "embedding_dimension_mismatch: expected 4, got 8"
    assert r.vectors == []
    assert r.dimensions is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", [PROVIDERS[0], PROVIDERS[1]])
def test_config_dimensions_match(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls, embedding_dimensions=8) as client:
        r = embed(client, mode, TEXTS)
    assert r.success, r.error
    assert r.vectors == expected(TEXTS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_dimensions_argument_is_sent_and_checked(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    with make_client(server, cls) as client:
        r = embed(client, mode, TEXTS, dimensions=4)
        assert r.success, r.error
        assert server.last_request.json["dimensions"] == 4
        assert r.dimensions == 4
        assert r.vectors == expected(TEXTS, 4)
        # A server answering another size than asked is refused.
        server.enqueue(Reply(embeddings=[[0.5] * 8 for _ in TEXTS]))
        r = embed(client, mode, TEXTS, dimensions=4)
    assert not r.success
    assert r.error == "embedding_dimension_mismatch: expected 4, got 8"
    assert r.vectors == []
    with pytest.raises(LLMCallError, match="embedding_dimension_mismatch"):
        r.raise_for_error()


@pytest.mark.parametrize("mode", MODES)
def test_dimensions_argument_wins_over_config(server: MockLLMServer, mode: str) -> None:
    with make_client(server, VLLMClient, embedding_dimensions=16) as client:
        r = embed(client, mode, ["a", "b"], dimensions=3)
    assert r.success, r.error
    assert r.vectors == expected(["a", "b"], 3)


def test_bad_dimensions_argument(server: MockLLMServer) -> None:
    with make_client(server) as client:
        with pytest.raises(ValueError):
            client.embed_sync("a", dimensions=0)
        with pytest.raises(TypeError):
            client.embed_sync("a", dimensions=True)  # type: ignore[arg-type]
    assert server.request_count == 0


# ---------------------------------------------------------------- input edge cases


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_empty_list_is_success_without_a_request(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    with make_client(server, cls) as client:
        r = embed(client, mode, [])
    assert r.success, r.error
    assert r.vectors == []
    assert len(r) == 0
    assert memoryview(r).shape == (0, 0)
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", [PROVIDERS[0], PROVIDERS[1]])
def test_empty_string_is_sent_as_is(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls) as client:
        r = embed(client, mode, ["a", "", "b"])
    assert r.success, r.error
    assert server.last_request.json["input"] == ["a", "", "b"]
    assert r.vectors == expected(["a", "", "b"])


@pytest.mark.parametrize("mode", MODES)
def test_empty_string_is_sent_as_is_ollama(server: MockLLMServer, mode: str) -> None:
    with make_client(server, OllamaClient) as client:
        r = embed(client, mode, ["a", "", "b"])
    assert server.last_request.json["input"] == ["a", "", "b"]
    assert r.success, r.error
    assert r.vectors == expected(["a", "", "b"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", [b"bytes", 3, None, ["ok", ["nested"]]])
def test_non_str_item_is_a_type_error_naming_it(server: MockLLMServer, mode: str, bad: Any) -> None:
    items = bad if isinstance(bad, list) else ["ok", "fine", bad]
    index = 1 if isinstance(bad, list) else 2
    with make_client(server) as client, pytest.raises(TypeError, match=rf"texts\[{index}\]"):
        embed(client, mode, items)
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("texts", [b"bytes", 42, {"a": "b"}])
def test_texts_of_the_wrong_type(server: MockLLMServer, mode: str, texts: Any) -> None:
    with make_client(server) as client, pytest.raises(TypeError):
        embed(client, mode, texts)
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_lone_surrogate_is_a_value_error_naming_it(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    with make_client(server, cls) as client, pytest.raises(ValueError, match=r"texts\[1\]"):
        embed(client, mode, ["fine", "bad \ud800 text", "ok"])
    assert server.request_count == 0


def test_a_tuple_is_accepted(server: MockLLMServer) -> None:
    with make_client(server) as client:
        r = client.embed_sync(("a", "b"))
    assert r.success and r.vectors == expected(["a", "b"])


# ---------------------------------------------------------------- buffer / numpy


def test_buffer_protocol(server: MockLLMServer) -> None:
    with make_client(server) as client:
        r = client.embed_sync(TEXTS)
    view = memoryview(r)
    assert view.shape == (len(TEXTS), 8)
    assert view.format == "f"
    assert view.itemsize == 4
    assert view.readonly
    assert [list(row) for row in view.tolist()] == r.vectors


def test_numpy_asarray_is_a_float32_view(server: MockLLMServer) -> None:
    numpy = pytest.importorskip("numpy")
    with make_client(server) as client:
        r = client.embed_sync(TEXTS)
    arr = numpy.asarray(r)
    assert arr.dtype == numpy.float32
    assert arr.shape == (len(TEXTS), 8)
    assert arr.tolist() == r.vectors
    assert numpy.array_equal(arr, numpy.array(expected(TEXTS), dtype=numpy.float32))
    # zero copy: two views share the result's own buffer
    again = numpy.asarray(r)
    assert numpy.shares_memory(arr, again)
    assert not arr.flags.owndata
    out = r.to_numpy()
    assert out.dtype == numpy.float32 and out.shape == (len(TEXTS), 8)
    assert numpy.shares_memory(out, arr)


def test_to_numpy_without_numpy_is_an_import_error(
    server: MockLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_client(server) as client:
        r = client.embed_sync("a")
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(ImportError, match="numpy"):
        r.to_numpy()
    # the rest works without numpy
    assert memoryview(r).shape == (1, 8)


def test_raise_for_error_on_success_is_silent(server: MockLLMServer) -> None:
    with make_client(server) as client:
        r = client.embed_sync("a")
    r.raise_for_error()


@pytest.mark.parametrize("mode", MODES)
def test_server_error_is_a_result_not_an_exception(server: MockLLMServer, mode: str) -> None:
    server.set_default(Reply.error(400, "nope"))
    with make_client(server) as client:
        r = embed(client, mode, TEXTS)
    assert not r.success
    assert r.error.startswith("http_400")
    assert memoryview(r).shape == (0, 0)
    with pytest.raises(LLMCallError) as info:
        r.raise_for_error()
    assert "http_400" in str(info.value)


# ---------------------------------------------------------------- which model


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_explicit_model(server: MockLLMServer, cls: type, mode: str) -> None:
    extra = {} if is_ollama(cls) else {"embedding_model": "cfg-emb"}
    with make_client(server, cls, **extra) as client:
        r = embed(client, mode, "a", model="explicit-emb")
    assert r.success, r.error
    assert server.last_request.json["model"] == "explicit-emb"
    assert r.model == "explicit-emb"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", [PROVIDERS[0], PROVIDERS[1]])
def test_config_embedding_model(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls, embedding_model="cfg-emb") as client:
        r = embed(client, mode, "a")
    assert r.success, r.error
    assert server.last_request.json["model"] == "cfg-emb"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_client_model_otherwise(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls) as client:
        r = embed(client, mode, "a")
    assert r.success, r.error
    assert server.last_request.json["model"] == MODEL


# ---------------------------------------------------------------- property


@pytest.fixture(scope="module")
def shared_server() -> Any:
    with MockLLMServer(max_recorded=4, embeddings_shuffle=True) as s:
        yield s


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(
        st.one_of(
            st.text(st.characters(blacklist_categories=("Cs",))),
            st.just(""),
            st.text(alphabet=st.sampled_from(["\x00", "a", "é", "☃", "😀"]), max_size=6),
        ),
        max_size=12,
    )
)
def test_any_strings_round_trip_in_order(shared_server: MockLLMServer, texts: list[str]) -> None:
    with make_client(shared_server, VLLMClient, embedding_batch_size=5) as client:
        r = client.embed_sync(texts)
    assert r.success, r.error
    assert len(r) == len(texts)
    assert r.vectors == expected(texts)


# ---------------------------------------------------------------- mixed providers


def test_build_embedding_client_for_another_provider(server: MockLLMServer) -> None:
    env = {
        "LLM_PROVIDER": "ollama",
        "EMBEDDING_PROVIDER": "vllm",
        "VLLM_BASE_URL": server.url + "/v1",
        "VLLM_MODEL": "chat-model",
        "VLLM_EMBEDDING_MODEL": "emb-model",
        "OLLAMA_BASE_URL": server.url,
    }
    app = llmbridge.load_config(env)
    assert app.llm_provider == "ollama" and app.embedding_provider == "vllm"
    client = llmbridge.build_embedding_client(app)
    try:
        assert type(client) is VLLMClient
        r = client.embed_sync(["a", "b"])
        assert r.success, r.error
        assert r.vectors == expected(["a", "b"])
        req = server.last_request
        assert req.path == "/v1/embeddings"
        assert req.json["model"] == "emb-model"
    finally:
        client.close()
    chat = llmbridge.build_llm_client(None, app)
    try:
        assert type(chat) is OllamaClient
    finally:
        chat.close()


@pytest.mark.parametrize(
    "provider, cls",
    [("vllm", VLLMClient), ("openai", OpenAICompatibleClient), ("ollama", OllamaClient)],
)
def test_build_embedding_client_falls_back_to_llm_provider(provider: str, cls: type) -> None:
    app = llmbridge.load_config({"LLM_PROVIDER": provider, "OPENAI_API_KEY": "sk-x"})
    assert app.embedding_provider == provider
    client = llmbridge.build_embedding_client(app)
    try:
        assert type(client) is cls
    finally:
        client.close()


def test_build_embedding_client_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("EMBEDDING_PROVIDER", "LLM_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LLM_PROVIDER", "vllm")
    client = llmbridge.build_embedding_client()
    try:
        assert type(client) is VLLMClient
    finally:
        client.close()
