"""Testing kit for code that talks to LLM servers: a real, scriptable mock server.

``MockLLMServer`` is an HTTP/1.1 server on 127.0.0.1 that answers like vLLM's
OpenAI-compatible API and Ollama's native API, from a script of ``Reply`` objects. It
streams (SSE as vLLM sends it, NDJSON as Ollama does) and can inject stream faults. It
answers embeddings with vectors derived from the text (``embedding_for``) and requests
carrying images with a caption of what arrived (``caption_for``). It uses only the
standard library and does not need llmbridge's native extension, so it can drive any
client: llmbridge's, httpx, openai-python, urllib. See docs/testing.md.
"""

from __future__ import annotations

from ._media import caption_for, embedding_for, embedding_text
from ._mock_server import MockLLMServer, run, serve_forever
from ._replicas import MockReplicas
from ._reply import STREAM_FAULTS, RecordedRequest, Reply, split_tokens

__all__ = [
    "STREAM_FAULTS",
    "MockLLMServer",
    "MockReplicas",
    "RecordedRequest",
    "Reply",
    "caption_for",
    "embedding_for",
    "embedding_text",
    "run",
    "serve_forever",
    "split_tokens",
]
