"""examples/ run as a newcomer runs them, and the README's code at least compiles.

Each quickstart is run in a subprocess twice: with no VLLM_BASE_URL (it starts the bundled
mock server itself) and against a MockLLMServer started here through VLLM_BASE_URL /
VLLM_MODEL (the path a real vLLM takes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import llmbridge
import pytest
from doc_blocks import DocBlock, python_blocks
from llmbridge.testing import MockLLMServer, Reply

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
QUICKSTARTS = ["quickstart_async.py", "quickstart_sync.py"]
SITE = str(Path(llmbridge.__file__).resolve().parent.parent)
_CONFIG_VARIABLE = re.compile(
    r"^(VLLM_|OLLAMA_|OPENAI_)|^(AI_PROVIDER|LLM_PROVIDER|EMBEDDING_PROVIDER)$"
)

# What the examples' built-in mock answer holds (and so what they print without a server).
INVOICE = {"vendor": "ACME Corp", "invoice_number": "INV-2024-0042",
           "issue_date": "2024-03-15", "total": 1250.0, "currency": "EUR"}


def run_example(
    name: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an example as a newcomer would: no VLLM_*/... settings but those given."""
    full_env = {k: v for k, v in os.environ.items() if not _CONFIG_VARIABLE.match(k)}
    path = full_env.get("PYTHONPATH", "")
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (SITE, path) if p)
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(EXAMPLES / name)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, encoding="utf-8", env=full_env,
                          timeout=60)


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer(models=["qwen2.5-7b-instruct"]) as srv:
        yield srv


def test_every_example_is_tested_and_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(QUICKSTARTS)
    listing = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in QUICKSTARTS:
        assert name in listing


@pytest.mark.parametrize("name", QUICKSTARTS)
def test_quickstart_runs_without_a_server(name: str) -> None:
    proc = run_example(name)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == INVOICE
    assert "bundled mock server" in proc.stderr


@pytest.mark.parametrize("name", QUICKSTARTS)
def test_quickstart_uses_the_configured_server(name: str, server: MockLLMServer) -> None:
    answer = {"vendor": "Globex", "invoice_number": "G-7", "total": 80.5, "currency": "USD"}
    server.enqueue(Reply.json(answer))
    proc = run_example(name, {"VLLM_BASE_URL": server.url, "VLLM_MODEL": "qwen2.5-7b-instruct"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == answer
    assert "mock server" not in proc.stderr

    (request,) = [r for r in server.requests if r.method == "POST"]
    assert request.path == "/v1/chat/completions"
    assert request.json["model"] == "qwen2.5-7b-instruct"
    schema = request.json["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) >= {"vendor", "invoice_number", "total", "currency"}
    assert "Invoice INV-2024-0042" in request.json["messages"][-1]["content"]


@pytest.mark.parametrize("name", QUICKSTARTS)
def test_quickstart_reports_a_failed_call(name: str, server: MockLLMServer) -> None:
    server.enqueue(Reply.error(400, message="maximum context length exceeded"))
    proc = run_example(name, {"VLLM_BASE_URL": server.url, "VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "http_400" in proc.stderr


# The docs' snippets reference names a worker defines (INVOICE_SCHEMA, a client), so they
# cannot run as they stand; each must be valid Python (as doc_blocks.py reads it), and
# test_typing.py type-checks them.
BLOCKS = python_blocks()


def test_docs_have_python_blocks() -> None:
    docs = {block.doc for block in BLOCKS}
    assert {"README.md", "docs/getting-started.md"} <= docs


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_doc_python_block_compiles(block: DocBlock) -> None:
    source, _ = block.module()
    compile(source, block.name, "exec")
