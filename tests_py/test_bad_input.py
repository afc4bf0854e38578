"""Bad input from the caller, and secrets: each test here failed before its fix.

The findings of the stress run (issue "Hostile replies, bad input and secrets"): text
tools on invalid bytes, lone surrogates in call arguments, passwords in base URLs,
Python's integer digit limit, deep nesting on a small thread stack, prompts without a
user prompt, NaN in a schema. Hostile *server* replies are in test_hostile.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import llmbridge
import pytest
from llmbridge import (
    ConfigError,
    JSONRepairError,
    OllamaClient,
    OllamaConfig,
    VLLMClient,
    VLLMConfig,
)
from llmbridge.testing import MockLLMServer, Reply

PROMPTS = {"system": "Extract.", "user": "Document:\n{document_text}"}
FAST = {"timeout": 5.0, "max_retries": 0, "retry_base_delay": 0.01}
PASSWORD = "hunter2-very-secret"
# Longest message any of these errors may have: a short excerpt at most, never the input.
MAX_MESSAGE = 300


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as s:
        yield s


# ---- 2. the four text tools treat invalid bytes the same way: U+FFFD ----


def test_strip_markdown_fences_replaces_invalid_bytes() -> None:
    assert llmbridge.strip_markdown_fences(b"\xff") == "\ufffd"
    assert llmbridge.strip_markdown_fences(b'```json\n{"a": "\xff"}\n```') == '{"a": "\ufffd"}'
    assert llmbridge.strip_markdown_fences(bytearray(b"x\xc3")) == "x\ufffd"


@pytest.mark.parametrize(
    "blob", [b'{"a": "\xff"}', b'```json\n{"a": "\xff"}\n```', b"{'a': '\xff',}"]
)
def test_every_text_tool_replaces_invalid_bytes(blob: bytes) -> None:
    assert llmbridge.loads(blob) == {"a": "\ufffd"}
    assert json.loads(llmbridge.repair_json(blob)) == {"a": "\ufffd"}
    report = llmbridge.repair_report(blob)
    assert json.loads(report.json) == {"a": "\ufffd"}
    assert "invalid_utf8_replaced" in [r.kind for r in report.repairs]
    assert "\ufffd" in llmbridge.strip_markdown_fences(blob)


def test_text_tools_on_bytes_with_no_json_raise_jsonrepairerror_not_unicode() -> None:
    for tool in (llmbridge.repair_json, llmbridge.loads, llmbridge.repair_report):
        with pytest.raises(JSONRepairError):
            tool(b"\xff\xfe")


# ---- 3. lone surrogates: a clear error naming the argument, no echo ----


BIG = "x" * 10_000_000


@pytest.mark.parametrize(
    ("prompts", "schema", "document", "name"),
    [
        (PROMPTS, None, BIG + "\ud800", "document_text"),
        ({"system": "s\udfff", "user": "u"}, None, BIG, "prompts['system']"),
        ({"system": "s", "user": "u\ud83d"}, None, BIG, "prompts['user']"),
        (PROMPTS, {"type": "object", "description": "\ud800"}, BIG, "json_schema"),
        ({"messages": [{"role": "user", "content": "\ud800"}]}, None, BIG, "prompts['messages']"),
    ],
)
def test_lone_surrogate_names_the_argument_without_echoing_it(
    server: MockLLMServer, prompts: dict, schema: dict | None, document: str, name: str
) -> None:
    with VLLMClient(base_url=server.url, model="m", **FAST) as client:
        with pytest.raises(ValueError) as sync_error:
            client.call_llm_sync(prompts, schema, document)

        async def run() -> None:
            await client.call_llm(prompts, schema, document)

        with pytest.raises(ValueError) as async_error:
            asyncio.run(run())
    for err in (sync_error, async_error):
        message = str(err.value)
        assert message.startswith(name + " holds a lone surrogate"), message
        assert len(message) < MAX_MESSAGE
        assert "xxxxxxxxxx" not in message
    assert server.requests == []  # refused before anything was sent


def test_lone_surrogate_in_a_config_field_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^config field 'model' holds a lone surrogate"):
        VLLMConfig(base_url="http://127.0.0.1:9", model="m\ud800")
    with pytest.raises(TypeError, match=r"^config field 'model' must be str, got int"):
        VLLMConfig(base_url="http://127.0.0.1:9", model=5)  # type: ignore[arg-type]


def test_huge_bad_config_value_is_quoted_as_a_short_excerpt() -> None:
    with pytest.raises(ConfigError) as err:
        VLLMConfig(base_url="ftp://" + "y" * 1_000_000)
    assert len(str(err.value)) < MAX_MESSAGE + 200


def test_non_utf8_environment_never_echoes_the_environment() -> None:
    # A variable holding bytes that are not UTF-8 (os.environ gives them as lone
    # surrogates) used to make load_config raise pybind11's TypeError quoting the whole
    # environment, API keys included.
    env = {"VLLM_API_KEY": "sk-live-" + PASSWORD, "SOME_OTHER_TOOL": "caf\udce9", "VLLM_MODEL": "m"}
    app = llmbridge.load_config(env)
    assert app.vllm.model == "m"
    env["VLLM_MODEL"] = "m\udcff"
    with pytest.raises(ValueError) as err:
        llmbridge.load_config(env)
    assert str(err.value).startswith("environment variable VLLM_MODEL holds a lone surrogate")
    assert PASSWORD not in str(err.value)


# ---- 4. userinfo in a base URL never shows ----


URL_WITH_PASSWORD = f"http://admin:{PASSWORD}@127.0.0.1:9"


def test_config_and_client_reprs_hide_the_password() -> None:
    config = VLLMConfig(base_url=URL_WITH_PASSWORD, model="m")
    assert config.base_url == URL_WITH_PASSWORD  # the value itself is kept
    for shown in (repr(config), repr(VLLMClient(config)), repr(llmbridge.AppConfig(vllm=config)),
                  repr(OllamaConfig(base_url=URL_WITH_PASSWORD, model="m"))):
        assert PASSWORD not in shown
        assert "admin" not in shown
        assert "127.0.0.1:9" in shown


def test_invalid_base_url_with_a_password_is_reported_without_it() -> None:
    with pytest.raises(ConfigError) as err:
        VLLMConfig(base_url=f"ftp://admin:{PASSWORD}@host")
    assert PASSWORD not in str(err.value)
    with pytest.raises(ConfigError) as env_err:
        llmbridge.load_config({"VLLM_BASE_URL": f"ftp://admin:{PASSWORD}@host"})
    assert PASSWORD not in str(env_err.value)


def test_health_report_repr_and_logs_hide_the_password(
    server: MockLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url.replace("http://", f"http://admin:{PASSWORD}@")
    with caplog.at_level(logging.INFO, logger="llmbridge"):
        with VLLMClient(base_url=url, model="mock-model", **FAST) as client:
            report = client.health_sync(force=True)
            attempt = client.call_llm_sync(PROMPTS, None, "doc")
    assert report.status == "healthy"
    assert attempt.success
    assert PASSWORD not in repr(report)
    assert PASSWORD not in report.base_url
    assert caplog.records, "the health check logs its result"
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
    manual = llmbridge.HealthReport("healthy", base_url=URL_WITH_PASSWORD)
    assert PASSWORD not in repr(manual)


# ---- 5. the smaller findings ----


def test_loads_beyond_python_int_digit_limit_raises_jsonrepairerror() -> None:
    with pytest.raises(JSONRepairError, match="valid JSON that Python cannot hold"):
        llmbridge.loads("1" * 4301)
    with pytest.raises(JSONRepairError):
        llmbridge.loads("[" + "1" * 5000 + ",]")  # through the repair path too


def test_an_answer_beyond_python_int_digit_limit_is_a_failed_attempt(server: MockLLMServer) -> None:
    server.set_default(Reply(content='{"n": ' + "7" * 5000 + "}"))
    with VLLMClient(base_url=server.url, model="m", **FAST) as client:
        attempt = client.call_llm_sync(PROMPTS, None, "doc")

        async def run() -> list[llmbridge.ExtractionAttempt]:
            return await asyncio.wait_for(
                asyncio.gather(*(client.call_llm(PROMPTS, None, "doc") for _ in range(5))), 30)

        attempts = asyncio.run(run())
    for a in [attempt, *attempts]:
        assert not a.success
        assert a.retryable
        assert a.error.startswith("invalid_json: the answer cannot be converted to Python objects")
        assert len(a.error) < MAX_MESSAGE


def test_deep_nesting_at_the_limit_on_a_small_thread_stack() -> None:
    # loads used to recurse ~150-200 bytes of C stack per level and crashed (SIGSEGV) at
    # the documented 10,000-level limit in a thread with a 1.5 MiB stack. Run in a child
    # process so a regression fails this test instead of killing the test run.
    code = textwrap.dedent("""
        import threading, llmbridge
        out = []
        def work():
            doc = "[" * 10000 + "]" * 10000
            value = llmbridge.loads(doc)
            depth = 0
            while value:
                value = value[0]
                depth += 1
            obj = llmbridge.loads('{"a":' * 9999 + "1" + "}" * 9999)
            out.append((depth, llmbridge.repair_json("[" * 10000) == "[" * 10000 + "]" * 10000))
        threading.stack_size(1536 * 1024)
        t = threading.Thread(target=work)
        t.start()
        t.join()
        print(out)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[(9999, True)]"


@pytest.mark.parametrize(
    ("prompts", "needle"),
    [
        ({}, "prompts must hold 'user'"),
        ({"system": "only a system prompt"}, "prompts must hold 'user'"),
        ({"messages": []}, "prompts['messages'] is empty"),
    ],
)
def test_prompts_without_a_user_prompt_are_refused(
    server: MockLLMServer, prompts: dict, needle: str
) -> None:
    with VLLMClient(base_url=server.url, model="m", **FAST) as client:
        with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            client.call_llm_sync(prompts, None, "doc")
    with OllamaClient(base_url=server.url, model="m", **FAST) as client:
        with pytest.raises(ValueError):
            client.call_llm_sync(prompts, None, "doc")
    assert server.requests == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_schema_with_nan_names_json_schema(server: MockLLMServer, bad: float) -> None:
    with VLLMClient(base_url=server.url, model="m", **FAST) as client:
        with pytest.raises(ValueError) as err:
            client.call_llm_sync(PROMPTS, {"type": "number", "maximum": bad}, "doc")
        with pytest.raises(TypeError, match="^json_schema is not JSON-serialisable"):
            client.call_llm_sync(PROMPTS, {"type": object()}, "doc")
        with pytest.raises(ValueError, match=r"^prompts\['messages'\] is not valid JSON"):
            client.call_llm_sync({"messages": [{"role": "user", "content": bad}]}, None, "doc")
    assert str(err.value).startswith("json_schema is not valid JSON")
    assert "schema_json" not in str(err.value)


def test_array_longer_than_simdjsons_size_counter() -> None:
    # simdjson's dom::array::size() saturates at 0xFFFFFF; the list was allocated with it
    # and every element written: a heap overflow a ~34 MB answer could trigger.
    n = 0xFFFFFF + 3
    value = llmbridge.loads("[" + "0," * (n - 1) + "0]")
    assert len(value) == n
    assert value[-1] == 0
    del value
