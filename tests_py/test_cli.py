"""The command line (`python -m llmbridge ...`), run as a real subprocess.

The contract under test (python/llmbridge/_cli.py): exit 0 on success, 1 when the model
or server failed, 2 for bad usage or configuration; errors on stderr in one line that
starts with "llmbridge <command>: "; data on stdout. Servers are the package's own
MockLLMServer, started in this process (or by `serve-mock`); nothing is patched.

rich is optional (the `cli` extra): nothing here depends on its box drawing, and the
tests marked "plain" hide it to cover the fallback output.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import llmbridge
import pytest
from llmbridge._demo import Scenario
from llmbridge.testing import MockLLMServer, Reply, caption_for, embedding_for

# The directory that holds the imported llmbridge, so the subprocess imports the same
# build (a --target install here, site-packages in CI).
SITE = str(Path(llmbridge.__file__).resolve().parent.parent)
TIMEOUT = 60
# Variables load_config reads: the subprocess starts without any of them.
_CONFIG_VARIABLE = re.compile(
    r"^(VLLM_|OLLAMA_|OPENAI_)|^(AI_PROVIDER|LLM_PROVIDER|EMBEDDING_PROVIDER)$"
)
# `python -c` stand-in for `python -m llmbridge` that hides rich (the plain fallback).
_WITHOUT_RICH = (
    "import sys; sys.modules['rich'] = None; "
    "from llmbridge._cli import main; sys.exit(main(sys.argv[1:]))"
)


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not _CONFIG_VARIABLE.match(k) and k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SITE, env.get("PYTHONPATH", "")) if p)
    # Plain, wide output from rich when it is installed: no colour codes, no wrapping.
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    stdin: str = "",
    env: Mapping[str, str] | None = None,
    rich: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion; stdin is always given so nothing waits on a terminal."""
    prefix = ["-m", "llmbridge"] if rich else ["-c", _WITHOUT_RICH]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=cli_env(env),
        timeout=TIMEOUT,
    )


def error_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    """The one stderr line of a failed command (asserts there is exactly one)."""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith(f"llmbridge {command}: "), lines[0]
    return lines[0]


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as srv:
        yield srv


def generation_requests(server: MockLLMServer) -> list:
    return [r for r in server.requests if r.method == "POST"]


# ---- parser: help, no command ------------------------------------------------

SUBCOMMANDS = ["caption", "chat", "demo", "embed", "extract", "health", "models", "repair",
               "serve-mock"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_exits_0(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: llmbridge {command}")


def test_top_level_help_lists_every_subcommand() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in SUBCOMMANDS:
        assert command in proc.stdout


def test_no_subcommand_is_a_usage_error() -> None:
    proc = run_cli()
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = error_line(proc, "usage")
    assert "command" in line


def test_console_script_entry_point_is_the_cli() -> None:
    from importlib.metadata import entry_points

    from llmbridge._cli import main

    scripts = entry_points()
    group = (scripts.select(group="console_scripts") if hasattr(scripts, "select")
             else scripts.get("console_scripts", []))  # Python 3.9
    (ep,) = {e.value: e for e in group if e.name == "llmbridge"}.values()
    assert ep.value == "llmbridge.__main__:main"
    assert ep.load() is main


# ---- demo ----------------------------------------------------------------------


@pytest.mark.parametrize(("rich", "seed"), [(True, 7), (False, 11)], ids=["default", "plain"])
def test_demo_summary_matches_what_the_scenario_injected(rich: bool, seed: int) -> None:
    calls = 60
    proc = run_cli("demo", "--calls", str(calls), "--concurrency", "8", "--seed", str(seed),
                   rich=rich)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()  # one JSON line: the data
    out = json.loads(line)
    summary, injected = out["summary"], out["injected"]

    # "injected" is the scenario's plan, which is a pure function of the seed.
    scenario = Scenario(seed)
    expected_plan: dict[str, int] = {}
    for i in range(calls):
        kind = scenario.kind(i)
        expected_plan[kind] = expected_plan.get(kind, 0) + 1
    assert injected == expected_plan
    n = {kind: injected.get(kind, 0) for kind in
         ("clean", "fenced", "broken", "truncated", "overloaded", "slow", "unparseable",
          "bad_request")}
    assert sum(n.values()) == calls

    assert summary["calls"] == calls
    assert summary["successes"] == calls - n["unparseable"] - n["bad_request"]
    assert summary.get("errors: http_400", 0) == n["bad_request"]
    assert summary.get("errors: invalid_json", 0) == n["unparseable"]
    expected_errors = {"errors: http_400", "errors: invalid_json"}
    assert not [k for k in summary if k.startswith("errors: ") and k not in expected_errors]
    assert summary["repaired"] == n["fenced"] + n["broken"] + n["truncated"]
    assert summary["truncated"] == n["truncated"]
    # 503 once per overloaded document; unparseable answers use both retries (max_retries=2).
    assert summary["retries"] == n["overloaded"] + 2 * n["unparseable"]
    for key in ("latency p50 ms", "latency p95 ms", "latency p99 ms", "calls/s"):
        assert float(summary[key]) >= 0

    # The human part goes to stderr, in either renderer.
    assert "JSON repair" in proc.stderr
    assert f"{calls} extractions" in proc.stderr
    assert "Summary" in proc.stderr and "successes" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag", ["--calls", "--concurrency"])
def test_demo_rejects_zero(flag: str) -> None:
    proc = run_cli("demo", flag, "0")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert flag in error_line(proc, "demo")


# ---- extract -------------------------------------------------------------------

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {"total": {"type": "number"}, "currency": {"type": "string"}},
    "required": ["total"],
}


def write_schema(tmp_path: Path) -> Path:
    path = tmp_path / "invoice.schema.json"
    path.write_text(json.dumps(INVOICE_SCHEMA), encoding="utf-8")
    return path


def test_extract_vllm_stdin_document(server: MockLLMServer, tmp_path: Path) -> None:
    server.enqueue(Reply.fenced({"total": 12.5, "currency": "EUR"}))
    proc = run_cli(
        "extract", "--provider", "vllm", "--base-url", server.url, "--model", "mock-model",
        "--schema", str(write_schema(tmp_path)),
        "--system", "You extract invoices.", "--prompt", "Invoice:\n{document_text}\nEnd.",
        stdin="Total due: 12.50 EUR (Café Zürich)",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"total": 12.5, "currency": "EUR"}
    assert proc.stdout.count("\n") == 1  # compact: one line
    assert proc.stderr == ""

    (request,) = generation_requests(server)
    assert request.path == "/v1/chat/completions"
    body = request.json
    assert body["model"] == "mock-model"
    assert body["messages"] == [
        {"role": "system", "content": "You extract invoices."},
        {"role": "user", "content": "Invoice:\nTotal due: 12.50 EUR (Café Zürich)\nEnd."},
    ]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == INVOICE_SCHEMA


@pytest.mark.parametrize(("provider", "field"), [("vllm", "max_tokens"), ("ollama", "num_predict")])
def test_extract_max_tokens_flag(server: MockLLMServer, provider: str, field: str) -> None:
    # Regression: extract always sent max_tokens 4096, so a vLLM served with a smaller
    # context refused every CLI extraction with 400.
    env = {"VLLM_MAX_TOKENS": "", "OLLAMA_MAX_TOKENS": ""}
    proc = run_cli("extract", "--provider", provider, "--base-url", server.url,
                   "--model", "mock-model", "--max-tokens", "256", stdin="doc", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("extract", "--provider", provider, "--base-url", server.url,
                   "--model", "mock-model", stdin="doc",
                   env={**env, f"{provider.upper()}_MAX_TOKENS": "77"})
    assert proc.returncode == 0, proc.stderr
    first, second = generation_requests(server)
    sent = [r.json[field] if field in r.json else r.json["options"][field] for r in (first, second)]
    assert sent == [256, 77]
    proc = run_cli("extract", "--provider", provider, "--base-url", server.url,
                   "--model", "mock-model", "--max-tokens", "0", stdin="doc")
    assert proc.returncode == 2
    assert "max_tokens" in error_line(proc, "extract")


def test_extract_ollama_document_file_prompt_file_pretty(
    server: MockLLMServer, tmp_path: Path
) -> None:
    server.enqueue(Reply.json({"total": 99.0, "currency": "USD"}))
    document = tmp_path / "invoice.txt"
    document.write_text("Amount: 99 USD", encoding="utf-8")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Read this invoice:\n{document_text}", encoding="utf-8")
    proc = run_cli(
        "extract", str(document), "--provider", "ollama", "--base-url", server.url,
        "--model", "mock-model", "--schema", str(write_schema(tmp_path)),
        "--prompt-file", str(prompt), "--pretty",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"total": 99.0, "currency": "USD"}
    assert proc.stdout.startswith("{\n  ")  # --pretty indents

    (request,) = generation_requests(server)
    assert request.path == "/api/chat"
    assert request.json["model"] == "mock-model"
    assert request.json["format"] == INVOICE_SCHEMA
    assert request.json["messages"][-1] == {"role": "user",
                                            "content": "Read this invoice:\nAmount: 99 USD"}


def test_extract_openai_configured_from_the_environment(server: MockLLMServer) -> None:
    # No flags at all: provider, server, model and key all come from the environment.
    server.enqueue(Reply.json({"total": 3}))
    proc = run_cli("extract", stdin="Total 3", env={
        "LLM_PROVIDER": "openai", "OPENAI_BASE_URL": server.url,
        "OPENAI_MODEL": "gpt-test", "OPENAI_API_KEY": "sk-test-123"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"total": 3}
    (request,) = generation_requests(server)
    assert request.path == "/v1/chat/completions"
    assert request.json["model"] == "gpt-test"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    # Without --schema: plain JSON mode, and the default prompt is the document itself.
    assert request.json["response_format"] == {"type": "json_object"}
    assert request.json["messages"][-1]["content"] == "Total 3"
    assert "sk-test-123" not in proc.stderr


def test_extract_warns_when_the_answer_was_truncated(server: MockLLMServer) -> None:
    server.enqueue(Reply.truncated('{"total": 12.5, "items": [1, 2'))
    proc = run_cli("extract", "--provider", "vllm", "--base-url", server.url,
                   "--model", "mock-model", stdin="doc")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"total": 12.5, "items": [1, 2]}
    assert "truncated" in error_line(proc, "extract")


def test_extract_server_error_exits_1(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(500, message="engine crashed"))
    proc = run_cli("extract", stdin="doc", env={
        "AI_PROVIDER": "vllm", "VLLM_BASE_URL": server.url, "VLLM_MODEL": "mock-model",
        "VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    line = error_line(proc, "extract")
    assert "http_500" in line and "after 1 try)" in line
    assert len(generation_requests(server)) == 1


def test_extract_unparseable_answer_exits_1(server: MockLLMServer) -> None:
    server.set_default(Reply.text("Sorry, I cannot help with that."))
    proc = run_cli("extract", "--provider", "vllm", "--base-url", server.url,
                   "--model", "mock-model", stdin="doc", env={"VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    assert "invalid_json" in error_line(proc, "extract")


def test_extract_answer_that_breaks_the_schema_exits_1(server: MockLLMServer,
                                                       tmp_path: Path) -> None:
    server.set_default(Reply.json({"total": "12", "currency": 3}))
    args = ("extract", "--provider", "vllm", "--base-url", server.url, "--model", "mock-model",
            "--schema", str(write_schema(tmp_path)))
    proc = run_cli(*args, stdin="doc", env={"VLLM_MAX_RETRIES": "1"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("llmbridge extract: schema_mismatch: /total: ")
    assert lines[0].endswith("(after 2 tries)")
    assert lines[1:] == [f"llmbridge extract:   also /currency: {lines[1].split(': ', 2)[2]}"]
    # Turned off, the answer is printed as it came.
    proc = run_cli(*args, stdin="doc", env={"VLLM_VALIDATE_SCHEMA": "false"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"total": "12", "currency": 3}


def test_extract_unreachable_server_exits_1() -> None:
    proc = run_cli("extract", "--provider", "vllm", "--base-url",
                   f"http://127.0.0.1:{closed_port()}", "--model", "m", stdin="doc",
                   env={"VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "connection_error" in error_line(proc, "extract")


def test_extract_unreachable_server_without_model_is_one_error_line() -> None:
    proc = run_cli("extract", "--provider", "vllm", "--base-url",
                   f"http://127.0.0.1:{closed_port()}", stdin="doc",
                   env={"VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    error_line(proc, "extract")


# Bad usage: (id, argv with {tmp} for the test's directory, environment, words the message names).
USAGE_ERRORS = [
    ("unknown-option", ["extract", "--bogus"], {}, ["--bogus"]),
    ("missing-schema-file", ["extract", "--schema", "{tmp}/missing.json"], {},
     ["schema file", "missing.json"]),
    ("schema-not-json", ["extract", "--schema", "{tmp}/broken.json"], {},
     ["broken.json", "not JSON"]),
    ("schema-not-object", ["extract", "--schema", "{tmp}/array.json"], {},
     ["array.json", "JSON object"]),
    ("unknown-provider", ["extract", "--provider", "nope"], {}, ["'nope'", "vllm"]),
    ("bad-env-variable", ["extract", "--provider", "vllm"], {"VLLM_TIMEOUT": "abc"},
     ["VLLM_TIMEOUT", "'abc'"]),
    ("timeout-not-a-number", ["extract", "--timeout", "abc"], {}, ["--timeout", "'abc'"]),
    ("timeout-negative", ["extract", "--provider", "vllm", "--timeout", "-1"], {}, ["timeout"]),
    ("missing-document", ["extract", "{tmp}/missing.txt", "--provider", "vllm"], {},
     ["document", "missing.txt"]),
    ("bad-base-url", ["health", "--provider", "vllm", "--base-url", "notaurl"], {},
     ["base_url", "notaurl"]),
    ("bad-env-for-models", ["models"], {"OLLAMA_MAX_RETRIES": "1.5"}, ["OLLAMA_MAX_RETRIES"]),
    ("chat-missing-schema-file", ["chat", "hi", "--schema", "{tmp}/missing.json"], {},
     ["schema file", "missing.json"]),
    ("chat-schema-not-object", ["chat", "hi", "--schema", "{tmp}/array.json"], {},
     ["array.json", "JSON object"]),
    # Refused by the core before any I/O (the model is given, so nothing is looked up).
    ("chat-negative-temperature", ["chat", "hi", "--provider", "vllm", "--model", "m",
                                   "--temperature", "-1"], {}, ["temperature"]),
    ("chat-zero-max-tokens", ["chat", "hi", "--provider", "ollama", "--max-tokens", "0"], {},
     ["max_tokens"]),
    ("chat-temperature-not-a-number", ["chat", "hi", "--temperature", "hot"], {},
     ["--temperature", "'hot'"]),
]


@pytest.mark.parametrize(("argv", "env", "words"), [u[1:] for u in USAGE_ERRORS],
                         ids=[u[0] for u in USAGE_ERRORS])
def test_bad_usage_exits_2_with_one_line(
    tmp_path: Path, argv: Sequence[str], env: dict[str, str], words: Sequence[str]
) -> None:
    (tmp_path / "broken.json").write_text('{"type": "object",', encoding="utf-8")
    (tmp_path / "array.json").write_text('[{"type": "object"}]', encoding="utf-8")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = run_cli(*argv, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("llmbridge ")
    for word in words:
        assert word in lines[0]


def test_unknown_option_names_the_subcommand() -> None:
    proc = run_cli("extract", "--bogus")
    assert proc.returncode == 2
    error_line(proc, "extract")


# ---- health and models -----------------------------------------------------------


@pytest.mark.parametrize("provider", ["vllm", "ollama"])
def test_health_json_healthy(server: MockLLMServer, provider: str) -> None:
    proc = run_cli("health", "--json", "--provider", provider, "--base-url", server.url,
                   "--model", "mock-model")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "healthy"
    assert report["provider"] == provider
    assert report["model"] == "mock-model"
    assert report["models"] == ["mock-model"]
    assert report["base_url"].startswith(server.url)
    assert report["reason"] == ""
    assert report["latency_ms"] >= 0
    path = "/api/tags" if provider == "ollama" else "/v1/models"
    assert [r.path for r in server.requests] == [path]


def test_health_model_missing_is_degraded(server: MockLLMServer) -> None:
    proc = run_cli("health", "--json", "--provider", "vllm", "--base-url", server.url,
                   "--model", "qwen-absent")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["status"] == "degraded"
    assert report["models"] == ["mock-model"]
    assert "qwen-absent" in report["reason"]


def test_health_unreachable_is_unhealthy() -> None:
    proc = run_cli("health", "--json", "--provider", "vllm",
                   "--base-url", f"http://127.0.0.1:{closed_port()}", "--timeout", "5")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["status"] == "unhealthy"
    assert report["models"] == []
    assert "connection_error" in report["reason"]


@pytest.mark.parametrize("rich", [True, False], ids=["default", "plain"])
def test_health_table_on_stderr(server: MockLLMServer, rich: bool) -> None:
    proc = run_cli("health", "--provider", "vllm", "--base-url", server.url, rich=rich)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # the table is for people: stderr
    assert "llmbridge health" in proc.stderr
    status_line = next(line for line in proc.stderr.splitlines() if "status" in line)
    assert "healthy" in status_line
    assert "mock-model" in proc.stderr and server.url in proc.stderr


@pytest.mark.parametrize("provider", ["vllm", "ollama"])
def test_models_one_per_line(server: MockLLMServer, provider: str) -> None:
    server.models = ["qwen2.5-7b-instruct", "llama3.1:8b"]
    proc = run_cli("models", "--provider", provider, "--base-url", server.url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["qwen2.5-7b-instruct", "llama3.1:8b"]


@pytest.mark.parametrize(("provider", "expected"), [
    ("vllm", [{"id": "qwen2.5-7b-instruct", "owned_by": "vllm", "max_model_len": 8192},
              {"id": "llama3.1:8b", "owned_by": "vllm", "max_model_len": 8192}]),
    # /api/tags has neither field.
    ("ollama", [{"id": "qwen2.5-7b-instruct", "owned_by": None, "max_model_len": None},
                {"id": "llama3.1:8b", "owned_by": None, "max_model_len": None}]),
])
def test_models_long_and_json(provider: str, expected: list) -> None:
    with MockLLMServer(models=["qwen2.5-7b-instruct", "llama3.1:8b"], max_model_len=8192) as server:
        proc = run_cli("models", "--json", "--provider", provider, "--base-url", server.url)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == expected
        proc = run_cli("models", "-l", "--provider", provider, "--base-url", server.url)
        assert proc.returncode == 0, proc.stderr
        assert [line.split("\t") for line in proc.stdout.splitlines()] == [
            ["-" if v is None else str(v) for v in m.values()] for m in expected]
        path = "/api/tags" if provider == "ollama" else "/v1/models"
        assert {r.path for r in server.requests} == {path}


def test_models_api_key_flag() -> None:
    with MockLLMServer(api_key="sk-right-123") as server:
        proc = run_cli("models", "--provider", "vllm", "--base-url", server.url,
                       "--api-key", "sk-wrong-456")
        assert proc.returncode == 1
        assert proc.stdout == ""
        assert "http_401" in error_line(proc, "models")
        assert "sk-wrong-456" not in proc.stderr
        proc = run_cli("models", "--provider", "vllm", "--base-url", server.url,
                       "--api-key", "sk-right-123")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == ["mock-model"]


def test_models_unreachable_exits_1() -> None:
    port = closed_port()
    proc = run_cli("models", "--provider", "vllm", "--base-url", f"http://127.0.0.1:{port}")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"llmbridge models: http://127.0.0.1:{port}" in proc.stderr
    assert "connection_error" in proc.stderr


def test_models_unreachable_is_one_error_line() -> None:
    proc = run_cli("models", "--provider", "vllm",
                   "--base-url", f"http://127.0.0.1:{closed_port()}")
    assert proc.returncode == 1
    error_line(proc, "models")


# ---- chat ------------------------------------------------------------------------


def chat_flags(server: MockLLMServer, provider: str = "vllm") -> list[str]:
    return ["--provider", provider, "--base-url", server.url, "--model", "mock-model"]


@pytest.mark.parametrize("provider", ["vllm", "ollama"])
def test_chat_streams_the_answer(server: MockLLMServer, provider: str) -> None:
    server.enqueue(Reply(tokens=["Bonjour", ",", " Zoë", "!"]))
    proc = run_cli("chat", "Say hello", "--system", "Be brief.", "--max-tokens", "64",
                   "--temperature", "0.5", *chat_flags(server, provider))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Bonjour, Zoë!\n"
    assert proc.stderr == ""
    (request,) = generation_requests(server)
    body = request.json
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Say hello"}]
    if provider == "vllm":
        assert request.path == "/v1/chat/completions"
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert (body["max_tokens"], body["temperature"]) == (64, 0.5)
    else:
        assert request.path == "/api/chat"
        assert body["stream"] is True
        assert (body["options"]["num_predict"], body["options"]["temperature"]) == (64, 0.5)
    assert server.streams_completed == 1


def test_chat_prints_each_token_as_it_arrives(server: MockLLMServer) -> None:
    # The first token reaches the reader while the server is still sending the rest.
    server.enqueue(Reply(tokens=["first", " second", " third"], chunk_delay=1.0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmbridge", "chat", "go", *chat_flags(server)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=cli_env(), bufsize=0)
    try:
        first = proc.stdout.read(5)
        assert first == b"first"
        assert server.streams_completed == 0  # the stream is still going
        rest, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert first + rest == b"first second third\n"


@pytest.mark.parametrize("args", [["-"], []], ids=["dash", "no-argument"])
def test_chat_reads_the_prompt_from_stdin(server: MockLLMServer, args: list[str]) -> None:
    proc = run_cli("chat", *args, *chat_flags(server), stdin="Résumé this:\nline two\n")
    assert proc.returncode == 0, proc.stderr
    (request,) = generation_requests(server)
    assert request.json["messages"] == [{"role": "user", "content": "Résumé this:\nline two\n"}]


def test_chat_without_any_prompt_is_a_usage_error(server: MockLLMServer) -> None:
    proc = run_cli("chat", *chat_flags(server), stdin=" \n")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "prompt" in error_line(proc, "chat")
    assert generation_requests(server) == []


@pytest.mark.parametrize("provider", ["vllm", "ollama"])
def test_chat_no_stream(server: MockLLMServer, provider: str) -> None:
    server.enqueue(Reply("Plain answer."))
    proc = run_cli("chat", "hi", "--no-stream", *chat_flags(server, provider))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Plain answer.\n"
    (request,) = generation_requests(server)
    assert request.json.get("stream", False) is False
    assert server.streams_started == 0


def test_chat_json_prints_the_whole_result(server: MockLLMServer) -> None:
    server.enqueue(Reply("<think>2 + 2</think>4", prompt_tokens=11, completion_tokens=5))
    proc = run_cli("chat", "2 + 2?", "--json", *chat_flags(server))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["success"] is True
    assert result["text"] == "4"
    assert result["reasoning"] == "2 + 2"
    assert (result["prompt_tokens"], result["completion_tokens"]) == (11, 5)
    assert result["error"] is None and result["tool_calls"] == []
    assert result["provider"] == "vllm" and result["model"] == "mock-model"
    assert server.streams_started == 0  # --json does not stream


def test_chat_json_shows_tool_calls(server: MockLLMServer) -> None:
    server.enqueue(Reply.tool_call("get_weather", '{"city": "Paris",', id="call_1"))
    proc = run_cli("chat", "weather?", "--json", *chat_flags(server))
    assert proc.returncode == 0, proc.stderr
    (call,) = json.loads(proc.stdout)["tool_calls"]
    assert call == {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"},
                    "arguments_text": '{"city": "Paris",'}


@pytest.mark.parametrize(("provider", "field"), [("vllm", "response_format"), ("ollama", "format")])
def test_chat_schema_prints_the_data(
    server: MockLLMServer, tmp_path: Path, provider: str, field: str
) -> None:
    server.enqueue(Reply.fenced({"total": 12.5, "currency": "EUR"}))
    proc = run_cli("chat", "Invoice: 12.50 EUR", "--schema", str(write_schema(tmp_path)),
                   *chat_flags(server, provider))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"total": 12.5, "currency": "EUR"}
    (request,) = generation_requests(server)
    if provider == "vllm":
        assert request.json[field] == {"type": "json_schema", "json_schema": {
            "name": "response", "schema": INVOICE_SCHEMA, "strict": True}}
    else:
        assert request.json[field] == INVOICE_SCHEMA
    assert server.streams_started == 0  # --schema implies --no-stream


def test_chat_schema_unparseable_answer_exits_1(server: MockLLMServer, tmp_path: Path) -> None:
    server.set_default(Reply.text("Sorry, no."))
    proc = run_cli("chat", "x", "--schema", str(write_schema(tmp_path)), *chat_flags(server),
                   env={"VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert error_line(proc, "chat").startswith("llmbridge chat: error: invalid_json")


def _metrics(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split(": ", 1)[1].split())


def test_chat_verbose_prints_the_stream_metrics(server: MockLLMServer) -> None:
    server.enqueue(Reply(tokens=["a", " b", " c", " d"], chunk_delay=0.05,
                         prompt_tokens=9, completion_tokens=4))
    proc = run_cli("chat", "go", "-v", *chat_flags(server))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "a b c d\n"
    (line,) = proc.stderr.splitlines()
    m = _metrics(line)
    assert (m["tokens"], m["prompt_tokens"], m["completion_tokens"]) == ("4", "9", "4")
    assert m["finish_reason"] == "stop"
    ttft, total, rate = float(m["ttft_ms"]), float(m["total_ms"]), float(m["tokens_per_s"])
    assert 0 < ttft <= total
    # 3 tokens after the first, 50 ms apart: at most 1 / 0.05 s per token.
    assert 0 < rate <= 25


def test_chat_verbose_without_stream(server: MockLLMServer) -> None:
    server.enqueue(Reply("ok", prompt_tokens=3, completion_tokens=1))
    proc = run_cli("chat", "go", "-v", "--no-stream", *chat_flags(server))
    assert proc.returncode == 0, proc.stderr
    m = _metrics(proc.stderr.strip())
    assert (m["attempts"], m["prompt_tokens"], m["completion_tokens"]) == ("1", "3", "1")
    assert float(m["latency_ms"]) > 0


# (fault, the error's start, the message) for a stream broken after 2 tokens.
STREAM_FAULTS = [
    ("cut", "connection_error: the stream ended before [DONE]", None),
    ("error", "http_500", "model overloaded"),
    ("garbage", "invalid_json", "not json"),
]


@pytest.mark.parametrize(("fault", "error", "message"), STREAM_FAULTS,
                         ids=[f[0] for f in STREAM_FAULTS])
def test_chat_stream_failure_exits_1(
    server: MockLLMServer, fault: str, error: str, message: str | None
) -> None:
    server.enqueue(Reply(tokens=["one", " two", " three"], stream_fault=fault, fault_after=2,
                         error_message="model overloaded"))
    proc = run_cli("chat", "go", *chat_flags(server))
    assert proc.returncode == 1
    assert proc.stdout == "one two\n"  # what came before the fault, then the line ends
    line = error_line(proc, "chat")
    assert line.startswith(f"llmbridge chat: error: {error}")
    if message:
        assert line.endswith(f" ({message})")
    assert len(generation_requests(server)) == 1  # never retried after the first token


@pytest.mark.parametrize("mode", [[], ["--no-stream"], ["--json"]],
                         ids=["stream", "no-stream", "json"])
def test_chat_server_error_exits_1(server: MockLLMServer, mode: list[str]) -> None:
    server.enqueue(Reply.error(500, message="engine crashed"))
    proc = run_cli("chat", "go", *mode, *chat_flags(server), env={"VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    line = error_line(proc, "chat")
    assert line.startswith("llmbridge chat: error: http_500 (")
    assert "engine crashed" in line
    if mode == ["--json"]:  # the result is still printed: it is the data
        result = json.loads(proc.stdout)
        assert (result["success"], result["error"]) == (False, "http_500")
        assert result["status_code"] == 500
    else:
        assert proc.stdout == ""


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_chat_never_prints_the_api_key(mode: list[str]) -> None:
    key = "sk-secret-7f3a9"
    with MockLLMServer() as server:
        # Some servers quote the key they were sent in the 401 body.
        server.set_default(Reply.error(401, message=f"invalid key {key}"))
        proc = run_cli("chat", "go", *mode, "--api-key", key, *chat_flags(server))
        assert proc.returncode == 1
        line = error_line(proc, "chat")
        assert "http_401" in line and "API key" in line
        assert key not in proc.stdout + proc.stderr
        (request,) = generation_requests(server)  # 401 is never retried
        assert request.headers["authorization"] == f"Bearer {key}"


def test_chat_api_key_from_the_environment(server: MockLLMServer) -> None:
    proc = run_cli("chat", "go", "--provider", "openai", "--base-url", server.url,
                   env={"OPENAI_API_KEY": "sk-env-1", "OPENAI_MODEL": "gpt-test"})
    assert proc.returncode == 0, proc.stderr
    (request,) = generation_requests(server)
    assert request.headers["authorization"] == "Bearer sk-env-1"
    assert request.json["model"] == "gpt-test"


def test_chat_unreachable_server_exits_1() -> None:
    proc = run_cli("chat", "go", "--provider", "vllm", "--model", "m", "--base-url",
                   f"http://127.0.0.1:{closed_port()}", env={"VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert error_line(proc, "chat").startswith("llmbridge chat: error: connection_error")


def test_readme_chat_and_models_lines_run(server: MockLLMServer) -> None:
    # README.md, "Command line": every `llmbridge chat` / `llmbridge models` line works
    # as written, pointed at the mock.
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r'^(?:echo "(.+)" \| )?llmbridge ((?:chat|models)\b.*?)(?:  +#.*)?$',
                       readme, re.M)
    assert len(lines) >= 3, "README.md no longer shows the chat and models examples"
    for stdin, command in lines:
        argv = shlex.split(command) + ["--provider", "vllm", "--base-url", server.url]
        proc = run_cli(*argv, stdin=stdin)
        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stdout.strip(), command


# ---- embed -----------------------------------------------------------------------


def embed_requests(server: MockLLMServer) -> list:
    return [r for r in server.requests if r.path in ("/v1/embeddings", "/api/embed")]


def json_lines(stdout: str) -> list:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize(("provider", "path"),
                         [("vllm", "/v1/embeddings"), ("ollama", "/api/embed")])
def test_embed_prints_one_json_line_per_text(
    server: MockLLMServer, provider: str, path: str
) -> None:
    texts = ["Café Zürich", "naïve façade", "третий"]
    proc = run_cli("embed", *texts, "--provider", provider, "--base-url", server.url,
                   "--model", "mock-model")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    # float32 on the wire and in the result: the JSON numbers are the mock's, bit for bit.
    assert json_lines(proc.stdout) == [
        {"index": i, "embedding": embedding_for(t, 8)} for i, t in enumerate(texts)]
    (request,) = embed_requests(server)
    assert request.path == path
    assert request.json["input"] == texts
    assert request.json["model"] == "mock-model"
    if provider == "vllm":
        assert request.json["encoding_format"] == "base64"


def test_embed_file_in_batches_keeps_the_order(tmp_path: Path) -> None:
    texts = [f"line {i}" for i in range(7)]
    path = tmp_path / "lines.txt"
    path.write_text("\r\n".join(texts) + "\r\n", encoding="utf-8")  # CRLF: stripped
    with MockLLMServer(embeddings_shuffle=True) as server:
        proc = run_cli("embed", "--file", str(path), "--batch-size", "3",
                       "--provider", "vllm", "--base-url", server.url)
        assert proc.returncode == 0, proc.stderr
        assert json_lines(proc.stdout) == [
            {"index": i, "embedding": embedding_for(t, 8)} for i, t in enumerate(texts)]
        assert (server.embedding_requests, server.embedded_inputs) == (3, 7)
        assert sorted(len(r.json["input"]) for r in embed_requests(server)) == [1, 3, 3]


def test_embed_file_from_stdin(server: MockLLMServer) -> None:
    proc = run_cli("embed", "--file", "-", "--provider", "vllm", "--base-url", server.url,
                   stdin="alpha\nbeta")  # no newline after the last line
    assert proc.returncode == 0, proc.stderr
    assert [line["embedding"] for line in json_lines(proc.stdout)] == [
        embedding_for("alpha", 8), embedding_for("beta", 8)]


def test_embed_dimensions_flag(server: MockLLMServer) -> None:
    proc = run_cli("embed", "short", "--dimensions", "3", "--provider", "vllm",
                   "--base-url", server.url)
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout) == [{"index": 0, "embedding": embedding_for("short", 3)}]
    (request,) = embed_requests(server)
    assert request.json["dimensions"] == 3


def test_embed_uses_embedding_provider_and_model_from_the_environment(
    server: MockLLMServer,
) -> None:
    # Chat would go to OpenAI; embeddings come from vLLM with its embedding model.
    server.models = ["mock-model", "bge-m3"]
    env = {"LLM_PROVIDER": "openai", "EMBEDDING_PROVIDER": "vllm",
           "VLLM_BASE_URL": server.url, "VLLM_EMBEDDING_MODEL": "bge-m3"}
    proc = run_cli("embed", "hello", env=env)
    assert proc.returncode == 0, proc.stderr
    (request,) = embed_requests(server)
    assert (request.path, request.json["model"]) == ("/v1/embeddings", "bge-m3")
    # --model wins over VLLM_EMBEDDING_MODEL.
    server.reset()
    proc = run_cli("embed", "hello", "--model", "mock-model", env=env)
    assert proc.returncode == 0, proc.stderr
    (request,) = embed_requests(server)
    assert request.json["model"] == "mock-model"


def test_embed_npy_writes_a_float32_array(server: MockLLMServer, tmp_path: Path) -> None:
    numpy = pytest.importorskip("numpy")
    out = tmp_path / "vectors"  # written as named: no ".npy" added
    proc = run_cli("embed", "a", "b", "c", "--npy", str(out), "--batch-size", "2",
                   "--provider", "vllm", "--base-url", server.url)
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "")
    array = numpy.load(out)
    assert array.dtype == numpy.float32 and array.shape == (3, 8)
    assert array.tolist() == [embedding_for(t, 8) for t in "abc"]


def test_embed_npy_without_numpy_is_a_usage_error(server: MockLLMServer, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['numpy'] = None; "
            "from llmbridge._cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run(
        [sys.executable, "-c", code, "embed", "a", "--npy", str(tmp_path / "out.npy"),
         "--provider", "vllm", "--base-url", server.url],
        capture_output=True, text=True, env=cli_env(), timeout=TIMEOUT)
    assert proc.returncode == 2
    assert "needs numpy" in error_line(proc, "embed")
    assert embed_requests(server) == []  # checked before anything is sent
    assert not (tmp_path / "out.npy").exists()


def test_embed_dimension_mismatch_exits_1(server: MockLLMServer) -> None:
    proc = run_cli("embed", "a", "--provider", "vllm", "--base-url", server.url,
                   env={"VLLM_EMBEDDING_DIMENSIONS": "16"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    line = error_line(proc, "embed")
    assert line.startswith(
        "llmbridge embed: error: embedding_dimension_mismatch: expected 16, got 8")


def test_embed_one_failed_batch_fails_the_whole(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(400, message="input too long"))
    proc = run_cli("embed", "a", "b", "c", "--batch-size", "1", "--provider", "vllm",
                   "--base-url", server.url)
    assert proc.returncode == 1
    assert proc.stdout == ""  # no partial output
    line = error_line(proc, "embed")
    assert line.startswith("llmbridge embed: error: http_400") and "input too long" in line


def test_embed_unreachable_server_exits_1() -> None:
    proc = run_cli("embed", "a", "--provider", "vllm", "--base-url",
                   f"http://127.0.0.1:{closed_port()}", env={"VLLM_MAX_RETRIES": "0"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert error_line(proc, "embed").startswith("llmbridge embed: error: connection_error")


@pytest.mark.parametrize(("args", "stdin", "expected"), [
    ([], "", "no texts"),
    (["a", "--file", "-"], "b\n", "not both"),
    (["--file", "-"], "a\n\nb\n", "line 2 of stdin is empty"),
    (["--file", "-"], "", "holds no text"),
    (["a", "--batch-size", "0"], "", "embedding_batch_size"),
    (["a", "--dimensions", "0"], "", "--dimensions must be >= 1"),
])
def test_embed_bad_usage_exits_2(
    server: MockLLMServer, args: list[str], stdin: str, expected: str
) -> None:
    proc = run_cli("embed", *args, "--provider", "vllm", "--base-url", server.url, stdin=stdin)
    assert proc.returncode == 2
    assert expected in error_line(proc, "embed")
    assert embed_requests(server) == []


# ---- caption ---------------------------------------------------------------------


def tiny_png() -> bytes:
    """A valid 2x2 red PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def vision_server() -> Iterator[MockLLMServer]:
    with MockLLMServer(vision_models=["mock-vl"], strict=True) as srv:
        yield srv


def test_caption_vllm_with_the_vision_model_from_the_environment(
    vision_server: MockLLMServer, tmp_path: Path
) -> None:
    png = tiny_png()
    path = tmp_path / "red.png"
    path.write_bytes(png)
    proc = run_cli("caption", str(path), "--provider", "vllm", "--base-url", vision_server.url,
                   env={"VLLM_VISION_MODEL": "mock-vl"})
    assert proc.returncode == 0, proc.stderr
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    assert proc.stdout == caption_for([data_url]) + "\n"
    (request,) = generation_requests(vision_server)
    assert request.json["model"] == "mock-vl"
    assert request.json["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Describe this image."},
        {"type": "image_url", "image_url": {"url": data_url}}]}]


def test_caption_ollama_prompt_and_stdin(vision_server: MockLLMServer) -> None:
    png = tiny_png()
    proc = subprocess.run(
        [sys.executable, "-m", "llmbridge", "caption", "-", "--prompt", "What colour?",
         "--model", "mock-vl", "--provider", "ollama", "--base-url", vision_server.url],
        input=png, capture_output=True, env=cli_env(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    b64 = base64.b64encode(png).decode()
    assert proc.stdout.decode() == caption_for([b64]) + "\n"
    (request,) = generation_requests(vision_server)
    assert request.path == "/api/chat"
    (message,) = request.json["messages"]
    assert (message["content"], message["images"]) == ("What colour?", [b64])


def test_caption_without_a_vision_model_exits_1(
    vision_server: MockLLMServer, tmp_path: Path
) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(tiny_png())
    proc = run_cli("caption", str(path), "--provider", "vllm", "--base-url", vision_server.url)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert error_line(proc, "caption").startswith("llmbridge caption: error: vision_unavailable")
    assert generation_requests(vision_server) == []  # nothing sent


def test_caption_model_without_vision_exits_1(vision_server: MockLLMServer, tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(tiny_png())
    proc = run_cli("caption", str(path), "--model", "mock-model", "--provider", "vllm",
                   "--base-url", vision_server.url)
    assert proc.returncode == 1
    line = error_line(proc, "caption")
    assert "http_400" in line and "not a multimodal model" in line


@pytest.mark.parametrize(("image", "expected"), [
    ("missing.png", "cannot read image"),
    ("https://example.com/cat.png", "ollama takes images as data, not URLs"),
    ("not-an-image.txt", "cannot tell the image type"),
])
def test_caption_bad_image_exits_2(
    vision_server: MockLLMServer, tmp_path: Path, image: str, expected: str
) -> None:
    (tmp_path / "not-an-image.txt").write_text("hello", encoding="utf-8")
    if not image.startswith("https://"):
        image = str(tmp_path / image)
    proc = run_cli("caption", image, "--model", "mock-vl", "--provider", "ollama",
                   "--base-url", vision_server.url)
    assert proc.returncode == 2
    assert expected in error_line(proc, "caption")
    assert generation_requests(vision_server) == []


# ---- repair ----------------------------------------------------------------------


def test_repair_stdin_to_stdout_with_report() -> None:
    proc = run_cli("repair", "--report", stdin="{'vendor': 'Café', 'total': 12.5,")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"vendor": "Café", "total": 12.5}
    report = json.loads(proc.stderr)
    assert report["changed"] is True
    assert report["truncated"] is True
    kinds = {r["kind"] for r in report["repairs"]}
    assert {"quote_normalised", "container_closed"} <= kinds
    assert all(isinstance(r["position"], int) for r in report["repairs"])


def test_repair_valid_json_is_unchanged() -> None:
    proc = run_cli("repair", "--report", stdin='{"a": [1, 2, {"b": null}]}\n')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"a": [1, 2, {"b": None}]}
    assert json.loads(proc.stderr) == {"changed": False, "truncated": False, "repairs": []}


def test_repair_without_report_keeps_stderr_empty() -> None:
    proc = run_cli("repair", stdin='```json\n{"ok": true}\n```')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"ok": True}
    assert proc.stderr == ""


def test_readme_repair_line_is_true() -> None:
    # README.md, "Command line": echo "<text>" | llmbridge repair --report  # <output>
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    match = re.search(r'^echo "(.+)" \| llmbridge repair --report +# (.+)$', readme, re.M)
    assert match, "README.md no longer shows the repair example"
    proc = run_cli("repair", "--report", stdin=match.group(1) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == match.group(2).strip()
    assert json.loads(proc.stderr)["changed"] is True


@pytest.mark.parametrize("text", ["I cannot extract anything from this.", ""],
                         ids=["prose", "empty"])
def test_repair_no_json_exits_1(text: str) -> None:
    proc = run_cli("repair", stdin=text)
    assert proc.returncode == 1
    assert proc.stdout == ""
    error_line(proc, "repair")


# ---- serve-mock --------------------------------------------------------------------


def _start_serve_mock(*args: str) -> subprocess.Popen[str]:
    # A process started in the background by a non-interactive shell ignores SIGINT, and
    # children inherit that; restoring Python's handler first makes the test independent
    # of how pytest itself was started. The rest is exactly `python -m llmbridge`.
    code = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "runpy.run_module('llmbridge', run_name='__main__', alter_sys=True)")
    return subprocess.Popen([sys.executable, "-c", code, "serve-mock", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env())


def test_serve_mock_serves_until_sigint() -> None:
    proc = _start_serve_mock("--port", "0", "--model", "served-a", "--model", "served-b")
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=TIMEOUT)
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        url = match.group(1)

        with urllib.request.urlopen(url + "/v1/models", timeout=TIMEOUT) as resp:
            models = json.load(resp)
        assert [m["id"] for m in models["data"]] == ["served-a", "served-b"]

        body = json.dumps({"model": "served-b",
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(url + "/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            answer = json.load(resp)
        assert answer["model"] == "served-b"
        assert json.loads(answer["choices"][0]["message"]["content"]) == {"ok": True}

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        proc.stdout.close()
        proc.stderr.close()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "Traceback" not in "".join(rest)


def test_serve_mock_port_in_use_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli("serve-mock", "--port", str(port))
    assert proc.returncode == 2
    line = error_line(proc, "serve-mock")
    assert f"127.0.0.1:{port}" in line
