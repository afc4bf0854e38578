"""load_config() and AppConfig: every variable, every kind of bad value, defaults,
pickling, and the docs / .env.example kept in sync with the C++ catalogue."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import llmbridge
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmbridge import (
    AppConfig,
    ConfigError,
    OllamaConfig,
    OpenAIConfig,
    VLLMConfig,
    _native,
    load_config,
)

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = [name for name, *_ in _native.env_variables()]



def test_nothing_set_gives_the_defaults() -> None:
    app = load_config({})
    assert app == AppConfig()
    assert app.vllm == VLLMConfig()
    assert app.ollama == OllamaConfig()
    assert app.openai == OpenAIConfig()
    assert app.llm_provider == app.provider == "ollama"
    assert app.embedding_provider == "ollama"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_MODEL", "from-env")
    monkeypatch.setenv("AI_PROVIDER", "vLLM")
    app = load_config()
    assert app.vllm.model == "from-env"
    assert app.provider == "vllm"


# variable -> (value, config attribute path, expected)
EVERY = {
    "VLLM_BASE_URL": ("http://gpu:8001/v1", "vllm.base_url", "http://gpu:8001/v1"),
    "VLLM_MODEL": ("qwen", "vllm.model", "qwen"),
    "VLLM_TIMEOUT": ("30.5", "vllm.timeout", 30.5),
    "VLLM_CONNECT_TIMEOUT": ("2", "vllm.connect_timeout", 2.0),
    "VLLM_MAX_RETRIES": ("0", "vllm.max_retries", 0),
    "VLLM_RETRY_BASE_DELAY": ("0.25", "vllm.retry_base_delay", 0.25),
    "VLLM_RETRY_MAX_DELAY": ("9", "vllm.retry_max_delay", 9.0),
    "VLLM_RETRY_BACKOFF_MULTIPLIER": ("1.5", "vllm.retry_backoff_multiplier", 1.5),
    "VLLM_TEMPERATURE": ("0.7", "vllm.temperature", 0.7),
    "VLLM_MAX_TOKENS": ("512", "vllm.max_tokens", 512),
    "VLLM_API_KEY": ("sk-vllm", "vllm.api_key", "sk-vllm"),
    "VLLM_TEXT_MODEL": ("t", "vllm.text_model", "t"),
    "VLLM_VISION_MODEL": ("v", "vllm.vision_model", "v"),
    "VLLM_EMBEDDING_MODEL": ("e", "vllm.embedding_model", "e"),
    "VLLM_EMBEDDING_DIMENSIONS": ("768", "vllm.embedding_dimensions", 768),
    "VLLM_ROUTING": ("prefix", "vllm.routing", "prefix"),
    "VLLM_PREFIX_OVERLOAD_FACTOR": ("1.5", "vllm.prefix_overload_factor", 1.5),
    "VLLM_EJECT_AFTER": ("5", "vllm.eject_after", 5),
    "VLLM_VALIDATE_SCHEMA": ("false", "vllm.validate_schema", False),
    "VLLM_SCHEMA_RETRY": ("0", "vllm.schema_retry", False),
    "OLLAMA_HOST": ("0.0.0.0", "ollama.base_url", "http://0.0.0.0:11434"),
    "OLLAMA_BASE_URL": ("http://ollama:11434", "ollama.base_url", "http://ollama:11434"),
    "OLLAMA_MODEL": ("qwen3:8b", "ollama.model", "qwen3:8b"),
    "OLLAMA_TIMEOUT": ("60", "ollama.timeout", 60.0),
    "OLLAMA_MAX_RETRIES": ("5", "ollama.max_retries", 5),
    "OLLAMA_TEMPERATURE": ("1", "ollama.temperature", 1.0),
    "OLLAMA_MAX_TOKENS": ("100", "ollama.max_tokens", 100),
    "OLLAMA_NUM_CTX": ("8192", "ollama.num_ctx", 8192),
    "OLLAMA_KEEP_ALIVE": ("5m", "ollama.keep_alive", "5m"),
    "OLLAMA_API_KEY": ("ok-1", "ollama.api_key", "ok-1"),
    "OLLAMA_VALIDATE_SCHEMA": ("No", "ollama.validate_schema", False),
    "OLLAMA_SCHEMA_RETRY": (" OFF ", "ollama.schema_retry", False),
    "OPENAI_API_KEY": ("sk-x", "openai.api_key", "sk-x"),
    "OPENAI_BASE_URL": ("https://openrouter.ai/api", "openai.base_url", "https://openrouter.ai/api"),
    "OPENAI_MODEL": ("gpt-4.1", "openai.model", "gpt-4.1"),
    "OPENAI_TIMEOUT": ("9", "openai.timeout", 9.0),
    "OPENAI_MAX_RETRIES": ("1", "openai.max_retries", 1),
    "OPENAI_TEMPERATURE": ("2", "openai.temperature", 2.0),
    "OPENAI_MAX_TOKENS": ("7", "openai.max_tokens", 7),
    "OPENAI_VALIDATE_SCHEMA": ("FALSE", "openai.validate_schema", False),
    "OPENAI_SCHEMA_RETRY": ("no", "openai.schema_retry", False),
    "AI_PROVIDER": (" VLLM ", "llm_provider", "vllm"),
    "LLM_PROVIDER": ("openai", "llm_provider", "openai"),
    "EMBEDDING_PROVIDER": ("Ollama", "embedding_provider", "ollama"),
}


def _attr(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def test_the_table_covers_every_variable() -> None:
    assert set(EVERY) == set(VARIABLES)


@pytest.mark.parametrize("variable", sorted(EVERY))
def test_every_variable(variable: str) -> None:
    value, path, expected = EVERY[variable]
    assert _attr(load_config({variable: value}), path) == expected


@pytest.mark.parametrize("variable", sorted(EVERY))
def test_empty_means_unset(variable: str) -> None:
    assert load_config({variable: ""}) == AppConfig()
    assert load_config({variable: "   "}) == AppConfig()


BAD = [
    ("VLLM_TIMEOUT", "abc", "a number of seconds > 0"),
    ("VLLM_TIMEOUT", "-1", "a number of seconds > 0"),
    ("VLLM_TIMEOUT", "nan", "a number of seconds > 0"),
    ("VLLM_TIMEOUT", "0", "a number of seconds > 0"),
    ("VLLM_CONNECT_TIMEOUT", "inf", "a number of seconds > 0"),
    ("VLLM_MAX_RETRIES", "1.5", "an integer >= 0"),
    ("VLLM_MAX_RETRIES", "-1", "an integer >= 0"),
    ("VLLM_BASE_URL", "localhost:8000", "an http:// or https:// URL"),
    ("VLLM_TEMPERATURE", "3", "a number between 0 and 2"),
    ("VLLM_MAX_TOKENS", "0", "an integer > 0"),
    ("VLLM_RETRY_BASE_DELAY", "-0.5", "a number of seconds >= 0"),
    ("VLLM_RETRY_BACKOFF_MULTIPLIER", "0.9", "a number >= 1"),
    ("VLLM_EMBEDDING_DIMENSIONS", "x", "an integer >= 0"),
    ("OLLAMA_HOST", "ollama:99999", "host, host:port"),
    ("OLLAMA_BASE_URL", "ollama:11434", "an http:// or https:// URL"),
    ("OLLAMA_TIMEOUT", "soon", "a number of seconds > 0"),
    ("OLLAMA_MAX_RETRIES", "many", "an integer >= 0"),
    ("OLLAMA_TEMPERATURE", "-1", "a number between 0 and 2"),
    ("OLLAMA_MAX_TOKENS", "1e3", "an integer > 0"),
    ("OLLAMA_NUM_CTX", "-4", "an integer >= 0"),
    ("OLLAMA_KEEP_ALIVE", "forever", "a duration"),
    ("OPENAI_BASE_URL", "api.openai.com", "an http:// or https:// URL"),
    ("OPENAI_TIMEOUT", "1e999", "a number of seconds > 0"),
    ("OPENAI_MAX_RETRIES", "2.0", "an integer >= 0"),
    ("OPENAI_TEMPERATURE", "2.5", "a number between 0 and 2"),
    ("OPENAI_MAX_TOKENS", "-7", "an integer > 0"),
    ("VLLM_VALIDATE_SCHEMA", "maybe", "true or false"),
    ("OLLAMA_SCHEMA_RETRY", "2", "true or false"),
    ("OPENAI_VALIDATE_SCHEMA", "tru", "true or false"),
]


@pytest.mark.parametrize("variable,value,allowed", BAD)
def test_bad_value_names_variable_value_and_allowed(variable: str, value: str,
                                                    allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({variable: value})
    message = str(info.value)
    assert f"{variable}={value!r}: must be {allowed}" in message
    (problem,) = info.value.problems
    assert problem[0] == variable


def test_issue_example_message() -> None:
    expected = "VLLM_TIMEOUT='abc': must be a number of seconds > 0"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config({"VLLM_TIMEOUT": "abc"})


def test_every_bad_variable_is_reported_at_once() -> None:
    env = {variable: value for variable, value, _ in BAD}
    with pytest.raises(ConfigError) as info:
        load_config(env)
    reported = {p[0] for p in info.value.problems}
    # OLLAMA_BASE_URL wins over OLLAMA_HOST, which is then not read
    assert reported == {variable for variable, _, _ in BAD} - {"OLLAMA_HOST"}
    assert str(info.value).startswith(f"{len(reported)} invalid environment variables: ")


@pytest.mark.parametrize("variable", ["VLLM_API_KEY", "OLLAMA_API_KEY", "OPENAI_API_KEY"])
def test_an_api_key_value_is_never_shown(variable: str) -> None:
    secret = "sk-very-secret\x01tail"
    with pytest.raises(ConfigError) as info:
        load_config({variable: secret, "VLLM_TIMEOUT": "x"})
    assert "very-secret" not in str(info.value)
    assert f"{variable}=<redacted>" in str(info.value)


def test_retry_delays_are_checked_together() -> None:
    with pytest.raises(ConfigError, match=r"VLLM_RETRY_MAX_DELAY='1': must be a number of seconds >= "
                                          r"VLLM_RETRY_BASE_DELAY \(5\)"):
        load_config({"VLLM_RETRY_BASE_DELAY": "5", "VLLM_RETRY_MAX_DELAY": "1"})


def test_provider_selection() -> None:
    assert load_config({"AI_PROVIDER": "vllm"}).embedding_provider == "vllm"
    app = load_config({"AI_PROVIDER": "vllm", "LLM_PROVIDER": "openai"})
    assert (app.llm_provider, app.embedding_provider) == ("openai", "openai")
    app = load_config({"LLM_PROVIDER": "vllm", "EMBEDDING_PROVIDER": "ollama"})
    assert (app.llm_provider, app.embedding_provider) == ("vllm", "ollama")


def test_ollama_base_url_wins_over_host() -> None:
    app = load_config({"OLLAMA_HOST": "gpu:1234", "OLLAMA_BASE_URL": "http://other:11434"})
    assert app.ollama.base_url == "http://other:11434"
    assert load_config({"OLLAMA_HOST": "gpu:1234"}).ollama.base_url == "http://gpu:1234"
    assert load_config({"OLLAMA_HOST": "https://o.example"}).ollama.base_url == "https://o.example"


def test_app_config_repr_redacts_keys() -> None:
    app = load_config({"OPENAI_API_KEY": "sk-abc123", "VLLM_API_KEY": "tok-xyz"})
    assert app.openai.api_key == "sk-abc123"
    assert "sk-abc123" not in repr(app)
    assert "tok-xyz" not in repr(app)
    assert "api_key='***'" in repr(app)


def test_app_config_post_init_normalises() -> None:
    app = AppConfig(llm_provider=" VLLM ")
    assert app.provider == "vllm"
    assert app.embedding_provider == "vllm"
    assert AppConfig(llm_provider="", embedding_provider=" OpenAI").embedding_provider == "openai"
    assert AppConfig(llm_provider="").llm_provider == "ollama"


@pytest.mark.parametrize("obj", [
    AppConfig(),
    VLLMConfig(model="m", api_key="sk-1"),
    OllamaConfig(keep_alive="5m", num_ctx=2048),
    OpenAIConfig(api_key="sk-2", temperature=1.0),
])
def test_configs_pickle_and_compare(obj: object) -> None:
    clone = pickle.loads(pickle.dumps(obj))
    assert clone == obj
    assert type(clone) is type(obj)
    assert repr(clone) == repr(obj)


def test_equality_and_replace() -> None:
    a = VLLMConfig(model="m")
    assert a == VLLMConfig(model="m")
    assert a != VLLMConfig(model="n")
    assert a.replace(model="n") == VLLMConfig(model="n")
    app = AppConfig()
    assert app.replace(llm_provider="vllm").provider == "vllm"
    with pytest.raises(ConfigError):
        a.replace(timeout=-1)


@pytest.mark.parametrize("cls", [VLLMConfig, OllamaConfig, OpenAIConfig])
def test_default_configs_satisfy_the_invariants(cls: type) -> None:
    c = cls()
    assert c.timeout > 0 and math.isfinite(c.timeout)
    assert c.max_retries >= 0
    assert 0 <= c.temperature <= 2
    assert c.max_tokens > 0


@settings(deadline=None)
@given(st.sampled_from(VARIABLES), st.text(max_size=30))
def test_any_value_loads_or_raises_config_error(variable: str, value: str) -> None:
    try:
        app = load_config({variable: value})
    except ConfigError as error:
        assert variable in str(error)
        if not variable.endswith("API_KEY"):
            assert len(error.problems) == 1
        return
    for config in (app.vllm, app.ollama, app.openai):
        assert config.timeout > 0 and math.isfinite(config.timeout)
        assert config.max_retries >= 0
        assert 0 <= config.temperature <= 2
        assert config.max_tokens > 0


@settings(deadline=None)
@given(
    st.sampled_from(["VLLM", "OLLAMA", "OPENAI"]),
    st.floats(min_value=0.001, max_value=1e6, allow_nan=False),
    st.integers(min_value=0, max_value=100),
    st.floats(min_value=0, max_value=2),
    st.integers(min_value=1, max_value=10**6),
)
def test_valid_numbers_round_trip(prefix: str, timeout: float, retries: int, temperature: float,
                                  max_tokens: int) -> None:
    app = load_config({
        f"{prefix}_TIMEOUT": repr(timeout),
        f"{prefix}_MAX_RETRIES": str(retries),
        f"{prefix}_TEMPERATURE": repr(temperature),
        f"{prefix}_MAX_TOKENS": str(max_tokens),
    })
    config = getattr(app, prefix.lower())
    assert (config.timeout, config.max_retries, config.temperature, config.max_tokens) == (
        timeout, retries, temperature, max_tokens)


def test_docs_and_env_example_list_every_variable() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name, default, _allowed, _meaning in _native.env_variables():
        assert f"| `{name}` |" in docs, name
        assert re.search(rf"^#? ?{name}={re.escape(default)}$", example, re.M), name


def test_docs_list_every_config_field() -> None:
    import dataclasses

    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for cls in (VLLMConfig, OllamaConfig, OpenAIConfig, AppConfig):
        for f in dataclasses.fields(cls):
            assert f"`{f.name}`" in docs, (cls.__name__, f.name)


def test_public_names() -> None:
    for name in ("AppConfig", "load_config"):
        assert name in llmbridge.__all__
