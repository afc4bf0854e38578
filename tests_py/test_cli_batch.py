"""`llmbridge extract --jsonl`: batch mode, run as a real subprocess against MockLLMServer.

The contract (docs/batch.md): one `{"id", "attempt"}` line per document, appended and
flushed line by line; `--resume` skips the ids already written (a cut-off last line is
removed and redone); exit 0 when every document succeeded, 1 when one failed (with a
summary of the errors by kind), 2 for usage errors and bad input lines.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmbridge.testing import MockLLMServer, Reply
from test_cli import TIMEOUT, cli_env, run_cli


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer(max_recorded=0) as s:
        yield s


def flags(server: MockLLMServer) -> list[str]:
    return ["--provider", "vllm", "--base-url", server.url + "/v1", "--model", "m"]


NO_RETRIES = {"VLLM_MAX_RETRIES": "0"}


def write_corpus(path: Path, n: int, **fields: str) -> None:
    id_field = fields.get("id_field", "id")
    text_field = fields.get("text_field", "document_text")
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({id_field: f"d{i}", text_field: f"text {i} end"}) + "\n")


def results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_killed_run_then_resume_gives_each_id_once(server: MockLLMServer, tmp_path: Path) -> None:
    n = 2000
    corpus, out = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    write_corpus(corpus, n)
    server.set_default(Reply(delay=0.01))  # slow enough to kill it half way
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmbridge", "extract", "--jsonl", str(corpus), "--out", str(out),
         "--concurrency", "8", *flags(server)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= n // 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
    written = out.read_bytes().count(b"\n")
    assert n // 2 <= written < n
    with out.open("a", encoding="utf-8") as f:  # a line cut off by the kill
        f.write('{"id": "d1999", "attempt": {"succ')

    server.set_default(Reply())
    proc2 = run_cli("extract", "--jsonl", str(corpus), "--out", str(out), "--resume",
                    *flags(server))  # fmt: skip
    assert proc2.returncode == 0, proc2.stderr
    ids = Counter(r["id"] for r in results(out))
    assert ids == Counter(f"d{i}" for i in range(n))  # each id exactly once
    assert all(r["attempt"]["success"] for r in results(out))
    assert server.request_count < n + n // 2 + 16  # the first half was not sent again


def test_failed_documents_exit_1_with_a_summary(server: MockLLMServer, tmp_path: Path) -> None:
    corpus, out = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    write_corpus(corpus, 40)

    def responder(request: Any) -> Reply | None:
        for i in (3, 11, 27):
            if f"text {i} end" in request.prompt:
                return Reply(status=500)
        if "text 5 end" in request.prompt:
            return Reply(status=400)
        return None

    server.responder = responder
    for rich in (True, False):
        out.unlink(missing_ok=True)
        proc = run_cli("extract", "--jsonl", str(corpus), "--out", str(out), *flags(server),
                       env=NO_RETRIES, rich=rich)  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.splitlines()
        assert any("http_500" in line and "3" in line.replace("http_500", "") for line in lines)
        assert any("http_400" in line for line in lines)
        assert any("failed" in line and "4" in line for line in lines)
        by_id = {r["id"]: r["attempt"] for r in results(out)}
        assert len(by_id) == 40
        assert by_id["d3"]["error"] == "http_500" and by_id["d5"]["error"] == "http_400"
        assert by_id["d0"]["success"] is True and by_id["d0"]["data"] == {"ok": True}


def test_all_succeeded_exit_0_custom_fields(server: MockLLMServer, tmp_path: Path) -> None:
    corpus, out = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    write_corpus(corpus, 10, id_field="key", text_field="body")
    proc = run_cli("extract", "--jsonl", str(corpus), "--out", str(out), "--id-field", "key",
                   "--text-field", "body", "--concurrency", "3", *flags(server))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["id"] for r in results(out)) == sorted(f"d{i}" for i in range(10))


def test_bad_input_lines_are_reported_by_number(server: MockLLMServer, tmp_path: Path) -> None:
    corpus, out = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    secret = "SECRET-PAYROLL " * 20
    lines = [
        json.dumps({"id": "a", "document_text": "fine"}),
        "not json " + secret,
        json.dumps([1, 2]),
        json.dumps({"id": "b"}),
        json.dumps({"document_text": "no id " + secret}),
        "",
        json.dumps({"id": "c", "document_text": "fine too"}),
    ]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = run_cli("extract", "--jsonl", str(corpus), "--out", str(out), *flags(server))
    assert proc.returncode == 2, proc.stderr
    for number, problem in (
        (2, "not JSON"),
        (3, "not a JSON object"),
        (4, "'document_text' is missing"),
        (5, "'id' is missing"),
    ):
        assert any(f"line {number}: {problem}" in line for line in proc.stderr.splitlines())
    # short excerpts only (40 characters): never the whole line
    assert proc.stderr.count("SECRET-PAYROLL") <= 3
    assert "SECRET-PAYROLL SECRET-PAYROLL SECRET-PAYROLL" not in proc.stderr
    assert sorted(r["id"] for r in results(out)) == ["a", "c"]  # the good lines were done


def test_usage_errors(server: MockLLMServer, tmp_path: Path) -> None:
    corpus, out = tmp_path / "docs.jsonl", tmp_path / "out.jsonl"
    write_corpus(corpus, 3)
    base = ["extract", "--jsonl", str(corpus), *flags(server)]
    assert run_cli(*base).returncode == 2  # no --out
    assert run_cli(*base, "--out", str(out), "--concurrency", "0").returncode == 2
    missing = run_cli("extract", "--jsonl", str(tmp_path / "nope"), "--out", str(out),
                      *flags(server))  # fmt: skip
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    out.write_text('{"id": "d0", "attempt": {}}\n', encoding="utf-8")
    refused = run_cli(*base, "--out", str(out))
    assert refused.returncode == 2 and "--resume" in refused.stderr
    out.write_text("garbage\n", encoding="utf-8")
    bad_out = run_cli(*base, "--out", str(out), "--resume")
    assert bad_out.returncode == 2 and "line 1" in bad_out.stderr
