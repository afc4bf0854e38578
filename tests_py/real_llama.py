"""llama.cpp's llama-server for the real-server tier: a tiny model, the server, fixtures.

No model can be downloaded here, so `write_tiny_gguf` writes one: a random-weight
llama-architecture GGUF (2 layers, n_embd 64) with a character-level SPM vocabulary and a
ChatML template. Its answers are noise, but a json_schema grammar turns noise into valid
JSON; a constant hidden component weighted by the output matrix keeps the model off
whitespace (which a grammar allows almost everywhere, so a random model can loop on it
until max_tokens) and towards closing strings, objects and arrays, so schema-constrained
answers end in tens of tokens. What tests can expect (greedy, temperature 0): enum values
and required keys as the schema says, free strings mostly "", numbers of a digit or two,
arrays at their minItems, `{"":""}` for json_object; answers without a grammar run to
max_tokens. One character is one token, so the context holds about as many characters.

The binary comes from `bash scripts/real_servers/llama_server.sh` (a cached build). The
fixtures `llama_server`, `llama_server_auth` and `llama_embed_server` (registered from
conftest.py) start one server each per session; with `LLMBRIDGE_SKIP_REAL_SERVERS=1` they
skip, and without the binary they fail, so CI never skips this tier by accident.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from real_common import RunningServer, cache_dir, free_port, run_server, skip_real_servers

# `--embeddings` alone is not enough for /v1/embeddings: the tiny GGUF names no pooling
# type, llama.cpp's default for the llama architecture is "none" (one vector per token),
# and the OpenAI-compatible endpoint refuses that with 400 "Pooling type 'none' is not OAI
# compatible". Mean pooling gives one L2-normalised (--embd-normalize 2) vector of N_EMBD.
# One slot: with -np 4 and the per-slot KV cache this llama-server uses by default, a
# text's vector depends on the slot that computes it (so on the other texts of the
# request), by up to 0.11 in one component of a unit vector; `--kv-unified` brings that
# down to float rounding (~1e-5) and -np 1 makes every vector bit-exact.
EMBEDDING_PARALLEL = 1
EMBEDDING_ARGS = ("--embeddings", "--pooling", "mean")

# Keep in step with LLAMA_CPP_PYTHON_VERSION in scripts/real_servers/llama_server.sh.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
BUILD_SCRIPT = "scripts/real_servers/llama_server.sh"
MODEL_ID = "tiny"
AUTH_KEY = "sk-llama-test"

# --- the tiny model ---------------------------------------------------------------------

N_LAYER = 2
N_EMBD = 64
N_HEAD = 2
N_FF = 128
N_CTX_TRAIN = 65536  # only a ceiling for -c; the weights do not care

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
UNK_ID, BOS_ID, EOS_ID, IM_START_ID, IM_END_ID = range(len(SPECIAL_TOKENS))
SPM_SPACE = "\u2581"  # SentencePiece's "▁": a space in the text

# ChatML, written out for this model; llama.cpp runs it with its Jinja engine.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Logit offsets that the bias component adds to every position (the random logits spread
# about 1). The model is close to a bigram model and llmbridge samples greedily, so without
# them a grammar answer can cycle until max_tokens: on whitespace (allowed almost
# everywhere) or on one character inside a string. A '"' that beats every other token
# ends each free string at once; '}' and ']' end containers once the schema allows, ','
# comes next (below ']', or arrays would never end); digits lose to all three, so numbers
# stay short.
WHITESPACE_BIAS = -12.0
QUOTE_BIAS = 9.0
CLOSER_BIAS = 5.0
COMMA_BIAS = 1.0
DIGIT_BIAS = -4.0
BYTE_BIAS = -4.0  # the <0xNN> tokens are there to tokenize any prompt; answers stay ASCII


def tiny_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types: specials, the 256 byte tokens, "▁", printable ASCII."""
    import gguf

    tokens = list(SPECIAL_TOKENS)
    types = [gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * (len(SPECIAL_TOKENS) - 1)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += [SPM_SPACE] + [chr(c) for c in range(0x21, 0x7F)]
    types += [gguf.TokenType.NORMAL] * (1 + 0x7F - 0x21)
    # Single characters never merge, so the SPM scores only need to be distinct-ish.
    scores = [0.0] * len(tokens)
    for i in range(len(SPECIAL_TOKENS) + 256, len(tokens)):
        scores[i] = -float(i)
    return tokens, scores, [int(t) for t in types]


def _bias_per_token(tokens: Sequence[str]) -> list[float]:
    whitespace = {SPM_SPACE, "<0x20>", "<0x09>", "<0x0A>", "<0x0D>"}
    closers = {"}", "]"}
    def bias(token: str) -> float:
        if token in whitespace:
            return WHITESPACE_BIAS
        if token == '"':
            return QUOTE_BIAS
        if token in closers:
            return CLOSER_BIAS
        if token == ",":
            return COMMA_BIAS
        if token.isdigit():
            return DIGIT_BIAS
        if token.startswith("<0x") and len(token) == 6:
            return BYTE_BIAS
        return 0.0

    return [bias(t) for t in tokens]


def write_tiny_gguf(path: Path | str, seed: int = 0) -> Path:
    """Write the tiny random-weight llama GGUF to `path` (about 0.5 MB, well under a
    second); the same seed gives the same file."""
    import gguf
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens, scores, types = tiny_vocab()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    def normal(*shape: int, std: float) -> Any:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    # Dimension 0 of the residual stream is the bias component: every token embedding
    # holds a constant there and no layer writes to it, so after the final RMS norm it is
    # about sqrt(N_EMBD) for every position, and output[:, 0] becomes a per-token logit
    # offset. The other dimensions are small noise, the model's arbitrary "language".
    bias_dim, noise = 0, 0.05
    embd = normal(n_vocab, N_EMBD, std=noise)
    embd[:, bias_dim] = 1.0
    bias_level = float(np.sqrt(N_EMBD / (1.0 + (N_EMBD - 1) * noise**2)))  # after the norm
    output = normal(n_vocab, N_EMBD, std=0.3)  # random logits with a spread of about 1
    output[:, bias_dim] = np.asarray(_bias_per_token(tokens), dtype=np.float32) / bias_level

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("llmbridge-tiny")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(UNK_ID)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(IM_END_ID)  # ChatML ends a turn with <|im_end|>
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    # No "▁" before text that follows a special token: this llama.cpp feeds the tokenized
    # generation prompt ("<|im_start|>assistant\n") through the json_schema grammar, and a
    # "▁assistant" would not match it ("Failed to initialize samplers").
    w.add_add_space_prefix(False)
    w.add_chat_template(CHAT_TEMPLATE)

    ones = np.ones(N_EMBD, dtype=np.float32)
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", output)
    for i in range(N_LAYER):
        # Row bias_dim of every matrix that writes the residual stream stays zero.
        # Small writes, so the layers stir the noise without drowning the bias component.
        attn_out = normal(N_EMBD, N_EMBD, std=0.005)
        ffn_down = normal(N_EMBD, N_FF, std=0.005)
        attn_out[bias_dim, :] = 0.0
        ffn_down[bias_dim, :] = 0.0
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        w.add_tensor(f"blk.{i}.attn_q.weight", normal(N_EMBD, N_EMBD, std=0.1))
        w.add_tensor(f"blk.{i}.attn_k.weight", normal(N_EMBD, N_EMBD, std=0.1))
        w.add_tensor(f"blk.{i}.attn_v.weight", normal(N_EMBD, N_EMBD, std=0.1))
        w.add_tensor(f"blk.{i}.attn_output.weight", attn_out)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
        w.add_tensor(f"blk.{i}.ffn_gate.weight", normal(N_FF, N_EMBD, std=0.1))
        w.add_tensor(f"blk.{i}.ffn_up.weight", normal(N_FF, N_EMBD, std=0.1))
        w.add_tensor(f"blk.{i}.ffn_down.weight", ffn_down)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# --- the server -------------------------------------------------------------------------


def llama_server_binary() -> Path | None:
    """The cached llama-server that the build script installs, or None."""
    binary = cache_dir() / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}" / "bin" / "llama-server"
    return binary if binary.is_file() else None


@contextlib.contextmanager
def start_llama_server(
    tmp_dir: Path,
    *,
    api_key: str | None = None,
    ctx: int = 4096,
    parallel: int = 4,
    threads_http: int = 320,
    extra_args: Sequence[str] = (),
    seed: int = 0,
) -> Iterator[RunningServer]:
    """Write the tiny model into `tmp_dir` and run llama-server on it until the block ends.

    `ctx` is the context of one request (one slot): llama-server splits `-c` between its
    `-np` slots, so it gets `-c ctx*parallel`, and `max_model_len` is `ctx`. Requests
    beyond `parallel` queue in the server. `threads_http` must cover the client's
    concurrency: each idle keep-alive connection holds one HTTP thread for the server's
    5 s keep-alive timeout, and concurrent calls beyond the thread count stall.
    """
    binary = llama_server_binary()
    if binary is None:
        raise FileNotFoundError(f"no llama-server in {cache_dir()}; run bash {BUILD_SCRIPT}")
    tmp_dir = Path(tmp_dir)
    model_path = write_tiny_gguf(tmp_dir / "tiny.gguf", seed=seed)
    port = free_port()
    argv = [
        str(binary), "-m", str(model_path), "--alias", MODEL_ID,
        "--host", "127.0.0.1", "--port", str(port),
        "-c", str(ctx * parallel), "-np", str(parallel),
        # One compute thread: two on a busy 2-core machine sometimes took 100-300 ms a token.
        "-t", "1", "--threads-http", str(threads_http),
        "--no-ui",
    ]
    if api_key is not None:
        argv += ["--api-key", api_key]
    argv += list(extra_args)
    name = "llama-server-auth" if api_key else "llama-server"
    with run_server("llama", argv, port=port, model=MODEL_ID, max_model_len=ctx,
                    api_key=api_key, log_path=tmp_dir / f"{name}.log",
                    ready_path="/health", ready_timeout=60.0) as server:
        server.extra.update(binary=str(binary), gguf=str(model_path), parallel=parallel,
                            n_ctx_total=ctx * parallel)
        yield server


# --- pytest fixtures (registered through pytest_plugins in conftest.py) ------------------


def _server_or_skip(tmp_path_factory: pytest.TempPathFactory, api_key: str | None,
                    extra_args: Sequence[str] = (), name: str | None = None,
                    parallel: int = 4) -> contextlib.AbstractContextManager[RunningServer]:
    if skip_real_servers():
        pytest.skip("real servers skipped (LLMBRIDGE_SKIP_REAL_SERVERS is set)")
    if llama_server_binary() is None:
        pytest.fail(f"llama-server is not built (looked in {cache_dir()}): run "
                    f"`bash {BUILD_SCRIPT}` once (about 20 CPU-minutes, cached after), or set "
                    f"LLMBRIDGE_SKIP_REAL_SERVERS=1 to skip the real-server tier locally",
                    pytrace=False)
    tmp = tmp_path_factory.mktemp(name or ("llama-server-auth" if api_key else "llama-server"))
    return start_llama_server(tmp, api_key=api_key, extra_args=extra_args, parallel=parallel)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A llama-server on the tiny model, model id "tiny", no API key; one per session."""
    with _server_or_skip(tmp_path_factory, None) as server:
        yield server


@pytest.fixture(scope="session")
def llama_server_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Like `llama_server`, but it wants `Authorization: Bearer sk-llama-test`."""
    with _server_or_skip(tmp_path_factory, AUTH_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def llama_embed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second llama-server on the same tiny model with `--embeddings --pooling mean` and
    one slot: /v1/embeddings answers one vector of N_EMBD (64) floats per input, the same
    bits for the same text whatever else the request holds; no API key."""
    with _server_or_skip(tmp_path_factory, None, EMBEDDING_ARGS, "llama-embed-server",
                         parallel=EMBEDDING_PARALLEL) as server:
        server.extra.update(n_embd=N_EMBD, pooling="mean")
        yield server
