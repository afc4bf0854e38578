"""The factory, its registry, resolved variants, the startup fallback and ClientHolder,
against real MockLLMServers."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Optional

import llmbridge
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmbridge import (
    AppConfig,
    ClientHolder,
    OllamaClient,
    OllamaConfig,
    OpenAICompatibleClient,
    OpenAIConfig,
    VLLMClient,
    VLLMConfig,
    build_config_from_resolved,
    build_llm_client,
    build_llm_client_checked,
    build_llm_client_checked_sync,
    register_provider,
    unregister_provider,
)
from llmbridge.testing import MockLLMServer, Reply

PROMPTS = {"system": "Extract.", "user": "Doc: {document_text}"}
BUILTIN = {"vllm": VLLMClient, "ollama": OllamaClient, "openai": OpenAICompatibleClient}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Resolved:
    model_provider: Optional[str] = None
    model_name: Optional[str] = None
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    timeout: Optional[float] = None
    variant_id: Optional[str] = None


def factory_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "llmbridge.factory" and r.levelno == logging.WARNING]


# ---- routing ----


@pytest.mark.parametrize("name,cls", [
    ("vllm", VLLMClient), ("ollama", OllamaClient), ("openai", OpenAICompatibleClient),
    ("VLLM", VLLMClient), (" Ollama ", OllamaClient), ("\tOpenAI\n", OpenAICompatibleClient),
    ("", OllamaClient), (None, OllamaClient),
])
def test_routes(name: Optional[str], cls: type, caplog: pytest.LogCaptureFixture) -> None:
    app = AppConfig(vllm=VLLMConfig(model="v"), openai=OpenAIConfig(api_key="sk-1"))
    with caplog.at_level(logging.WARNING, logger="llmbridge.factory"):
        client = build_llm_client(name, app)
    try:
        assert type(client) is cls
        assert client.config == getattr(app, client.provider)
        assert factory_warnings(caplog) == []
    finally:
        client.close()


def test_unknown_provider_warns_and_builds_ollama(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmbridge.factory"):
        client = build_llm_client("Bedrock", AppConfig())
    try:
        assert type(client) is OllamaClient
        (message,) = factory_warnings(caplog)
        assert message == "factory: unknown provider 'bedrock'; using ollama"
    finally:
        client.close()


def test_none_means_the_configured_provider() -> None:
    client = build_llm_client(None, AppConfig(llm_provider="vllm"))
    try:
        assert type(client) is VLLMClient
    finally:
        client.close()


def test_app_config_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_MODEL", "from-env")
    client = build_llm_client()
    try:
        assert type(client) is OpenAICompatibleClient
        assert client.config.model == "from-env"
    finally:
        client.close()


NAMES = st.sampled_from(["ollama", "vllm", "openai", "", None, "VLLM", " Ollama "])


@settings(deadline=None, max_examples=150,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES | st.text(max_size=12))
def test_routing_property(name: Optional[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="llmbridge.factory"):
        client = build_llm_client(name, AppConfig())
    try:
        normalised = (name or "").strip(" \t\n\r\f\v")
        normalised = "".join(c.lower() if "A" <= c <= "Z" else c for c in normalised)
        if normalised in BUILTIN:
            assert type(client) is BUILTIN[normalised]
            assert factory_warnings(caplog) == []
        elif normalised == "":
            assert type(client) is OllamaClient
            assert factory_warnings(caplog) == []
        else:
            assert type(client) is OllamaClient
            assert len(factory_warnings(caplog)) == 1
    finally:
        client.close()


# ---- resolved variants ----


BASE = AppConfig(vllm=VLLMConfig(base_url="http://gpu:8000", model="base-v", temperature=0.1),
                 ollama=OllamaConfig(model="base-o"))


@pytest.mark.parametrize("resolved", [
    Resolved("vllm", "qwen", 0.5, 256, 30.0, "v1"),
    {"model_provider": "vllm", "model_name": "qwen", "temperature": 0.5, "max_tokens": 256,
     "timeout": 30.0, "variant_id": "v1"},
])
def test_build_config_from_resolved(resolved: Any) -> None:
    config = build_config_from_resolved(resolved, BASE)
    assert config == BASE.vllm.replace(model="qwen", temperature=0.5, max_tokens=256, timeout=30.0)
    assert config.base_url == "http://gpu:8000"


def test_none_and_missing_keep_the_base() -> None:
    assert build_config_from_resolved(Resolved("vllm"), BASE) == BASE.vllm
    assert build_config_from_resolved({"model_provider": "VLLM"}, BASE) == BASE.vllm
    assert build_config_from_resolved({"model_provider": "ollama", "max_tokens": None,
                                       "temperature": 0.0}, BASE) == BASE.ollama.replace(temperature=0.0)
    # a mapping of base configs works too
    assert build_config_from_resolved({"model_provider": "ollama", "model_name": "m"},
                                      {"ollama": BASE.ollama}) == BASE.ollama.replace(model="m")


def test_bad_override_raises_config_error() -> None:
    with pytest.raises(llmbridge.ConfigError, match="temperature"):
        build_config_from_resolved(Resolved("vllm", temperature=5.0), BASE)


def test_build_llm_client_from_resolved() -> None:
    client = build_llm_client(Resolved("OLLAMA", "qwen3:8b", max_tokens=99), BASE)
    try:
        assert type(client) is OllamaClient
        assert client.config == BASE.ollama.replace(model="qwen3:8b", max_tokens=99)
    finally:
        client.close()


def test_resolved_sends_the_override() -> None:
    with MockLLMServer() as server:
        app = AppConfig(vllm=VLLMConfig(base_url=server.url, model="base"))
        client = build_llm_client({"model_provider": "vllm", "model_name": "variant-model",
                                   "max_tokens": 33}, app)
        try:
            attempt = client.call_llm_sync(PROMPTS, None, "x")
        finally:
            client.close()
    assert attempt.success
    assert server.requests[-1].json["model"] == "variant-model"
    assert server.requests[-1].json["max_tokens"] == 33


# ---- registry ----


def test_a_new_openai_compatible_provider_is_one_registration() -> None:
    with MockLLMServer(models=["router-model"]) as server:
        register_provider("OpenRouter", OpenAICompatibleClient,
                          lambda app: app.openai.replace(base_url=server.url, model="router-model"))
        try:
            assert "openrouter" in llmbridge.registered_providers()
            client = build_llm_client(" openrouter ", AppConfig())
            try:
                assert type(client) is OpenAICompatibleClient
                assert client.call_llm_sync(PROMPTS, None, "x").success
            finally:
                client.close()
            with pytest.raises(ValueError, match="already registered"):
                register_provider("openrouter", OpenAICompatibleClient, "openai")
        finally:
            unregister_provider("openrouter")
    assert "openrouter" not in llmbridge.registered_providers()


def test_builtins_are_registered_the_same_way() -> None:
    assert llmbridge.registered_providers()[:3] == ("ollama", "vllm", "openai")
    with pytest.raises(ValueError):
        unregister_provider("ollama")
    with pytest.raises(ValueError):
        register_provider("  ", OllamaClient, "ollama")


# ---- startup fallback ----


def test_checked_keeps_a_healthy_vllm(caplog: pytest.LogCaptureFixture) -> None:
    with MockLLMServer(models=["m"]) as server:
        app = AppConfig(vllm=VLLMConfig(base_url=server.url, model="m"))

        async def main() -> Any:
            return await build_llm_client_checked("vllm", app, timeout=2.0)

        with caplog.at_level(logging.INFO):
            client = asyncio.run(main())
        try:
            assert type(client) is VLLMClient
        finally:
            client.close()
    assert factory_warnings(caplog) == []


def test_checked_falls_back_to_ollama(caplog: pytest.LogCaptureFixture) -> None:
    port = closed_port()
    app = AppConfig(vllm=VLLMConfig(base_url=f"http://127.0.0.1:{port}"),
                    ollama=OllamaConfig(base_url="http://127.0.0.1:11434", model="llama3.1"))

    async def main() -> Any:
        return await build_llm_client_checked("vllm", app, timeout=1.0)

    with caplog.at_level(logging.INFO):
        client = asyncio.run(main())
    try:
        assert type(client) is OllamaClient
        assert client.config == app.ollama
    finally:
        client.close()
    (warning,) = factory_warnings(caplog)
    assert warning.startswith(f"factory: vllm at http://127.0.0.1:{port} failed its health check; "
                              "falling back to ollama")
    assert any(r.name == "llmbridge.vllm" and r.levelno == logging.WARNING for r in caplog.records)


def test_checked_sync_falls_back_and_leaves_others_alone() -> None:
    app = AppConfig(vllm=VLLMConfig(base_url=f"http://127.0.0.1:{closed_port()}"))
    client = build_llm_client_checked_sync("vllm", app, timeout=1.0)
    try:
        assert type(client) is OllamaClient
    finally:
        client.close()
    client = build_llm_client_checked_sync("openai", app, timeout=1.0)  # never checked
    try:
        assert type(client) is OpenAICompatibleClient
    finally:
        client.close()


# ---- switching ----


class CountingVLLMClient(VLLMClient):
    """Counts retirements and closes, to prove the holder closes an old client once."""

    instances: list[CountingVLLMClient] = []

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.retired = 0
        self.closes = 0
        CountingVLLMClient.instances.append(self)

    def close_when_idle(self) -> None:
        self.retired += 1
        super().close_when_idle()

    def close(self) -> Any:
        self.closes += 1
        return super().close()


@pytest.fixture
def counting_vllm() -> Any:
    CountingVLLMClient.instances = []
    register_provider("vllm", CountingVLLMClient, "vllm", replace=True)
    yield CountingVLLMClient
    register_provider("vllm", VLLMClient, "vllm", replace=True)


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_refresh_keeps_the_client_when_nothing_changed(counting_vllm: Any) -> None:
    app = AppConfig(llm_provider="vllm", vllm=VLLMConfig(model="a"))
    holder = ClientHolder(app)
    client = holder.client
    assert holder.refresh(Resolved("vllm", "a", temperature=0.3)) is False  # only temperature
    assert holder.refresh({"model_provider": " VLLM "}) is False
    assert holder.client is client
    asyncio.run(holder.close())
    assert client.closed and client.closes == 1


def test_switch_logs_and_closes_the_old_client_exactly_once(
        counting_vllm: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = AppConfig(llm_provider="vllm", vllm=VLLMConfig(model="a", api_key="sk-holder-secret"))
    holder = ClientHolder(app)
    first = holder.client
    with caplog.at_level(logging.INFO, logger="llmbridge.factory"):
        assert holder.refresh(Resolved("vllm", "b", variant_id="v2")) is True
    second = holder.client
    assert second is not first and second.config.model == "b"
    assert first.closed and first.retired == 1
    switch = [r.getMessage() for r in caplog.records if r.name == "llmbridge.factory"]
    assert switch == ["factory: switching LLM client vllm -> vllm (model 'a' -> 'b', variant 'v2')"]

    with caplog.at_level(logging.INFO, logger="llmbridge.factory"):
        assert holder.refresh(Resolved("ollama", variant_id="v3")) is True
    assert type(holder.client) is OllamaClient
    assert second.closed and second.retired == 1
    assert "vllm -> ollama (model 'b' -> 'llama3.1', variant 'v3')" in caplog.records[-1].getMessage()

    asyncio.run(holder.close())
    asyncio.run(holder.close())  # idempotent
    assert [c.retired + c.closes for c in CountingVLLMClient.instances] == [1, 1]
    with pytest.raises(llmbridge.LLMBridgeError):
        holder.refresh(Resolved("vllm"))
    assert all("sk-holder-secret" not in r.getMessage() for r in caplog.records)


def test_a_call_in_flight_on_the_old_client_finishes_normally(counting_vllm: Any) -> None:
    with MockLLMServer(models=["a", "b"]) as server:
        server.set_default(Reply.json({"name": "Ada"}, delay=0.5))
        app = AppConfig(llm_provider="vllm", vllm=VLLMConfig(base_url=server.url, model="a"))

        async def main() -> tuple[Any, Any, Any]:
            holder = ClientHolder(app)
            old = holder.client
            in_flight = asyncio.ensure_future(old.call_llm(PROMPTS, None, "doc"))
            while server.wait_for_requests(1, timeout=0.01) is False:
                await asyncio.sleep(0.01)
            assert holder.refresh(Resolved("vllm", "b", variant_id="v2")) is True
            assert not old.closed  # still busy: closes when idle
            new_attempt = await holder.client.call_llm(PROMPTS, None, "doc")
            old_attempt = await in_flight
            await holder.close()
            return old, old_attempt, new_attempt

        old, old_attempt, new_attempt = asyncio.run(main())
    assert old_attempt.success, old_attempt.error
    assert old_attempt.data == {"name": "Ada"}
    assert old_attempt.model == "a"
    assert new_attempt.success and new_attempt.model == "b"
    assert wait_until(lambda: old.closed)
    assert old.retired == 1 and old.closes == 0


def test_a_sync_call_in_flight_survives_a_switch(counting_vllm: Any) -> None:
    import threading

    with MockLLMServer() as server:
        server.set_default(Reply.json({"ok": 1}, delay=0.4))
        app = AppConfig(llm_provider="vllm", vllm=VLLMConfig(base_url=server.url, model="a"))
        holder = ClientHolder(app)
        old = holder.client
        results: list[Any] = []
        worker = threading.Thread(
            target=lambda: results.append(old.call_llm_sync(PROMPTS, None, "d")))
        worker.start()
        assert server.wait_for_requests(1)
        assert holder.refresh(Resolved("ollama")) is True
        worker.join()
        asyncio.run(holder.close())
    assert results[0].success
    assert wait_until(lambda: old.closed)


def test_first_refresh_builds_without_switching(caplog: pytest.LogCaptureFixture) -> None:
    holder = ClientHolder(AppConfig())
    with caplog.at_level(logging.INFO, logger="llmbridge.factory"):
        assert holder.refresh(Resolved("openai", "gpt-x", variant_id="v1")) is False
    client = holder.client
    assert type(client) is OpenAICompatibleClient and client.config.model == "gpt-x"
    assert "factory: using openai (model 'gpt-x', variant 'v1')" in caplog.text
    asyncio.run(holder.close())
    assert client.closed


def test_holder_base_url_change_switches() -> None:
    holder = ClientHolder(AppConfig(llm_provider="vllm"))
    first = holder.client
    register_provider("vllm2", VLLMClient, lambda app: app.vllm.replace(base_url="http://other:8000"))
    try:
        assert holder.refresh({"model_provider": "vllm2"}) is True
        assert first.closed
        assert holder.refresh({"model_provider": "vllm"}) is True  # same model, other URL
    finally:
        unregister_provider("vllm2")
        asyncio.run(holder.close())
