"""Health checks and model auto-pick against real servers (MockLLMServer, a closed port,
a socket that never answers), with the log lines checked; no API key in any log record."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import llmbridge
import pytest
from llmbridge import (
    AppConfig,
    ClientHolder,
    HealthReport,
    OllamaClient,
    OllamaConfig,
    OpenAIConfig,
    VLLMClient,
    VLLMConfig,
    build_llm_client,
    check_ollama_health,
    check_ollama_health_sync,
    check_vllm_health,
    check_vllm_health_sync,
)
from llmbridge.testing import MockLLMServer

PROMPTS = {"system": "Extract.", "user": "Doc: {document_text}"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel's backlog) but never answers: a hung server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def records(caplog: pytest.LogCaptureFixture, name: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name and r.levelno == level]


def model_list_requests(server: MockLLMServer) -> int:
    return sum(1 for r in server.requests if r.path in ("/v1/models", "/api/tags"))


# ---- module functions ----


def test_vllm_healthy_logs_info(caplog: pytest.LogCaptureFixture) -> None:
    with MockLLMServer(models=["a", "b"]) as server:
        with caplog.at_level(logging.INFO, logger="llmbridge"):
            assert asyncio.run(check_vllm_health(server.url, timeout=2.0)) is True
        assert server.requests[0].method == "GET"
        assert server.requests[0].path == "/v1/models"
    expected = f"vllm: healthy at {server.url} (2 models)"
    assert records(caplog, "llmbridge.vllm", logging.INFO) == [expected]


def test_vllm_unreachable_logs_warning(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with caplog.at_level(logging.INFO, logger="llmbridge"):
        assert asyncio.run(check_vllm_health(url, timeout=2.0)) is False
    (warning,) = records(caplog, "llmbridge.vllm", logging.WARNING)
    assert warning.startswith(f"vllm: unhealthy at {url}: connection_error: ")


def test_vllm_timeout(silent_server: str, caplog: pytest.LogCaptureFixture) -> None:
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="llmbridge"):
        assert check_vllm_health_sync(silent_server, timeout=0.3) is False
    assert time.monotonic() - start < 3
    assert records(caplog, "llmbridge.vllm", logging.WARNING) == [
        f"vllm: unhealthy at {silent_server}: timeout"]


def test_http_error_is_unhealthy(caplog: pytest.LogCaptureFixture) -> None:
    with MockLLMServer() as server, caplog.at_level(logging.INFO, logger="llmbridge"):
        assert check_vllm_health_sync(server.url + "/nothing-here", timeout=2.0) is False
    assert records(caplog, "llmbridge.vllm", logging.WARNING)[0].endswith(": http_404")


def test_ollama_health(caplog: pytest.LogCaptureFixture) -> None:
    with MockLLMServer(models=["llama3.1:latest"]) as server:
        with caplog.at_level(logging.INFO, logger="llmbridge"):
            assert check_ollama_health_sync(server.url, timeout=2.0) is True
            assert asyncio.run(check_ollama_health(server.url, 2.0, model="llama3.1")) is True
            # a missing model is degraded: reachable (True), with a warning
            assert check_ollama_health_sync(server.url, 2.0, model="mistral") is True
        assert {r.path for r in server.requests} == {"/api/tags"}
    assert records(caplog, "llmbridge.ollama", logging.INFO) == [
        f"ollama: healthy at {server.url} (1 models)"] * 2
    (warning,) = records(caplog, "llmbridge.ollama", logging.WARNING)
    assert warning == (f"ollama: degraded at {server.url}: model 'mistral' is not served "
                       "(served: llama3.1:latest)")


def test_credentials_in_the_url_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://user:hunter2@127.0.0.1:{closed_port()}"
    with caplog.at_level(logging.INFO, logger="llmbridge"):
        check_vllm_health_sync(url, timeout=1.0)
    assert "hunter2" not in caplog.text


# ---- client.health() ----


def test_client_health_report() -> None:
    with MockLLMServer(models=["m1", "m2"]) as server:
        with VLLMClient(VLLMConfig(base_url=server.url + "/v1", model="m2")) as client:
            report = client.health_sync()
    assert isinstance(report, HealthReport)
    assert report.status == "healthy" and report.ok and report.reachable
    assert report.models == ("m1", "m2")
    assert report.model == "m2"
    assert report.reason == ""
    assert report.latency_ms > 0
    assert report.provider == "vllm"


def test_degraded_when_the_model_is_missing(caplog: pytest.LogCaptureFixture) -> None:
    with MockLLMServer(models=["llama3.1:latest"]) as server:
        with OllamaClient(OllamaConfig(base_url=server.url, model="mistral")) as client, \
                caplog.at_level(logging.INFO, logger="llmbridge"):
            report = asyncio.run(client.health())
    assert report.status == "degraded" and not report.ok and report.reachable
    assert "model 'mistral' is not served" in report.reason
    assert records(caplog, "llmbridge.ollama", logging.WARNING)


def test_ollama_tag_latest_matches() -> None:
    with MockLLMServer(models=["llama3.1:latest"]) as server:
        with OllamaClient(OllamaConfig(base_url=server.url, model="llama3.1")) as client:
            assert client.health_sync().status == "healthy"


def test_slow_is_degraded() -> None:
    with MockLLMServer() as server:
        with VLLMClient(base_url=server.url, model="mock-model") as client:
            client.health_slow_threshold = 0.0  # every real answer is "slower"
            report = client.health_sync()
    assert report.status == "degraded"
    assert report.reason.startswith("slow: answered in ")


def test_client_health_unreachable(silent_server: str) -> None:
    with VLLMClient(base_url=silent_server) as client:
        report = client.health_sync(timeout=0.3)
    assert report.status == "unhealthy" and report.reason == "timeout" and not report.reachable


def test_health_is_cached_for_the_ttl() -> None:
    with MockLLMServer() as server:
        with VLLMClient(base_url=server.url, model="mock-model") as client:
            first = client.health_sync()
            assert client.health_sync() is first
            assert asyncio.run(llmbridge.health(client)) is first
            assert model_list_requests(server) == 1
            assert client.health_sync(force=True) is not first
            assert model_list_requests(server) == 2
            client.health_ttl = 0
            llmbridge.health_sync(client)
            assert model_list_requests(server) == 3


# ---- model auto-pick ----


def test_empty_model_picks_the_first_listed(caplog: pytest.LogCaptureFixture) -> None:
    with MockLLMServer(models=["picked", "other"]) as server:
        client = VLLMClient(VLLMConfig(base_url=server.url))

        async def main() -> list[Any]:
            return await asyncio.gather(*(client.call_llm(PROMPTS, None, str(i)) for i in range(5)))

        try:
            with caplog.at_level(logging.INFO, logger="llmbridge"):
                attempts = asyncio.run(main())
                attempts.append(asyncio.run(client.call_llm(PROMPTS, None, "again")))
        finally:
            client.close()
        chat = [r for r in server.requests if r.path == "/v1/chat/completions"]
        assert model_list_requests(server) == 1  # once, even for concurrent first calls
    assert all(a.success for a in attempts)
    assert {r.json["model"] for r in chat} == {"picked"}
    assert client.model == "picked"
    assert client.config.model == ""
    assert records(caplog, "llmbridge.vllm", logging.INFO) == [
        "vllm: no model configured; using 'picked', the first model the server lists"]


def test_auto_pick_sync() -> None:
    with MockLLMServer(models=["sync-model"]) as server:
        with VLLMClient(base_url=server.url + "/v1") as client:
            assert client.call_llm_sync(PROMPTS, None, "x").success
            assert client.call_llm_sync(PROMPTS, None, "y").success
        assert model_list_requests(server) == 1
        assert server.requests[-1].json["model"] == "sync-model"


def test_auto_pick_can_be_turned_off() -> None:
    with MockLLMServer() as server:
        with VLLMClient(base_url=server.url) as client:
            client.auto_pick_model = False
            assert client.call_llm_sync(PROMPTS, None, "x").success
            assert asyncio.run(client.call_llm(PROMPTS, None, "y")).success
        assert model_list_requests(server) == 0
        assert "model" not in server.last_request.json


def test_a_configured_model_never_lists() -> None:
    with MockLLMServer() as server:
        with VLLMClient(base_url=server.url, model="given") as client:
            asyncio.run(client.call_llm(PROMPTS, None, "x"))
        assert model_list_requests(server) == 0


def test_auto_pick_failure_sends_without_a_model(caplog: pytest.LogCaptureFixture) -> None:
    with MockLLMServer() as server:
        server.models = []  # the server lists nothing to pick
        with VLLMClient(base_url=server.url) as client, caplog.at_level(logging.INFO, logger="llmbridge"):
            client.call_llm_sync(PROMPTS, None, "x")
            client.call_llm_sync(PROMPTS, None, "y")
        assert model_list_requests(server) == 1
        assert "model" not in server.requests[-1].json
    (warning,) = records(caplog, "llmbridge.vllm", logging.WARNING)
    assert warning.startswith("vllm: no model configured and the server lists none")


# ---- no key in any log record ----


def test_no_api_key_in_any_log_record(caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-LEAK-CANARY-1234567890"
    dead = f"http://127.0.0.1:{closed_port()}"
    with MockLLMServer(models=["m"]) as server, caplog.at_level(logging.DEBUG):
        app = AppConfig(
            vllm=VLLMConfig(base_url=server.url, api_key=key),
            ollama=OllamaConfig(base_url=server.url, model="m", api_key=key),
            openai=OpenAIConfig(base_url=dead, model="m", api_key=key, max_retries=0),
        )
        for name in ("vllm", "ollama", "openai", "mystery"):
            with build_llm_client(name, app) as client:
                client.health_sync(timeout=1.0)
                client.call_llm_sync(PROMPTS, None, "x")  # vllm: auto-pick
        check_vllm_health_sync(dead, 1.0, api_key=key)
        check_ollama_health_sync(server.url, 1.0, api_key=key)
        dead_vllm = app.replace(vllm=app.vllm.replace(base_url=dead))
        llmbridge.build_llm_client_checked_sync("vllm", dead_vllm, timeout=1.0).close()
        holder = ClientHolder(app)
        holder.client  # noqa: B018
        holder.refresh({"model_provider": "vllm", "model_name": "m", "variant_id": "v"})
        asyncio.run(holder.close())
        try:
            llmbridge.load_config({"OPENAI_API_KEY": key + "\x01"})
        except llmbridge.ConfigError as error:
            logging.getLogger("llmbridge.test").error("config: %s", error)
        assert any(r.headers.get("authorization") == f"Bearer {key}" for r in server.requests)
    assert len(caplog.records) >= 8
    for record in caplog.records:
        assert key not in record.getMessage(), record.getMessage()
        assert key not in str(record.args)
