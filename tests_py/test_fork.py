"""Fork safety: a client (and its started engine) inherited by a forked child works there,
and the parent's keeps working (gunicorn preload, multiprocessing with fork)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import llmbridge
from llmbridge.testing import MockLLMServer, Reply

PROMPTS = {"system": "s", "user": "u"}


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        s.set_default(Reply.json({"ok": True}))
        yield s


def _in_child(fn) -> int:
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 5
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def test_started_client_works_in_a_forked_child(server: MockLLMServer) -> None:
    with llmbridge.VLLMClient(base_url=server.url, model="m", max_retries=0) as client:
        assert client.call_llm_sync(PROMPTS).success  # the engine thread runs now

        def child() -> int:
            attempt = client.call_llm_sync(PROMPTS)
            client.close()
            return 0 if attempt.success and attempt.data == {"ok": True} else 3

        assert _in_child(child) == 0
        assert client.call_llm_sync(PROMPTS).success  # the parent's engine is untouched


def test_client_built_before_fork_is_used_first_in_the_child(server: MockLLMServer) -> None:
    # gunicorn --preload: the client exists before the fork, its engine starts in the child.
    with llmbridge.VLLMClient(base_url=server.url, model="m", max_retries=0) as client:

        def child() -> int:
            return 0 if client.call_llm_sync(PROMPTS).success else 3

        assert _in_child(child) == 0
        assert client.call_llm_sync(PROMPTS).success
