"""Provider configs: VLLMConfig, OllamaConfig, OpenAIConfig.

Defaults and validation come from the C++ core (``_native.config_defaults`` and
``_native.validate_config``); these dataclasses add keyword construction, a repr
with the API key redacted, equality, ``replace(**changes)`` and pickling.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar, Union

from . import _native
from .errors import ConfigError

__all__ = ["OllamaConfig", "OpenAIConfig", "VLLMConfig"]

_VLLM = _native.config_defaults("vllm")
_OPENAI = _native.config_defaults("openai")
_OLLAMA = _native.config_defaults("ollama")

_C = TypeVar("_C", bound="_ProviderConfig")

# The fields of each config, from the core's one field list (config::for_each_field).
_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    p: tuple(d) for p, d in (("vllm", _VLLM), ("openai", _OPENAI), ("ollama", _OLLAMA))
}


def _redacted(key: Optional[str]) -> str:
    return "None" if key is None else ("''" if key == "" else "'***'")


def _joined_urls(urls: Any) -> str:
    """A list of replica URLs as the core holds it: one comma-separated string."""
    if not urls:
        raise ConfigError("base_url: an empty list; give at least one URL")
    for i, url in enumerate(urls):
        if not isinstance(url, str):
            raise ConfigError(f"base_url[{i}] must be a str, got {type(url).__name__}")
        if "," in url:
            raise ConfigError(f"base_url[{i}] = {_native.display_url(url)!r}: must be one URL "
                              "(no commas inside a list entry)")
    return ",".join(u.strip() for u in urls)


@dataclass
class _ProviderConfig:
    provider = ""  # class attribute, not a field

    #: One URL, or several replicas of one model: a list of URLs or one comma-separated
    #: string (stored as the comma-separated string). See docs/scaling-out.md.
    base_url: Union[str, list[str]] = ""
    model: str = ""
    timeout: float = _VLLM["timeout"]
    max_retries: int = _VLLM["max_retries"]
    retry_base_delay: float = _VLLM["retry_base_delay"]
    retry_max_delay: float = _VLLM["retry_max_delay"]
    retry_backoff_multiplier: float = _VLLM["retry_backoff_multiplier"]
    max_tokens: int = _VLLM["max_tokens"]
    temperature: float = _VLLM["temperature"]
    api_key: Optional[str] = field(default=None, repr=False)
    connect_timeout: float = _VLLM["connect_timeout"]
    embedding_batch_size: int = _VLLM["embedding_batch_size"]
    routing: str = _VLLM["routing"]
    prefix_overload_factor: float = _VLLM["prefix_overload_factor"]
    eject_after: int = _VLLM["eject_after"]
    #: Check each answer of a call with a JSON schema against it (docs/schema-validation.md).
    validate_schema: bool = _VLLM["validate_schema"]
    #: Retry a ``schema_mismatch`` by showing the model its errors (False: resend as is).
    schema_retry: bool = _VLLM["schema_retry"]

    def __post_init__(self) -> None:
        self.validate()

    def __setattr__(self, name: str, value: Any) -> None:
        # A misspelt field (cfg.modle = ...) would otherwise be silently ignored.
        known = _FIELD_NAMES.get(type(self).provider)
        if known is not None and name not in known:
            raise AttributeError(
                f"{type(self).__name__} has no field {name[:60]!r}; fields: " + ", ".join(known)
            )
        if name == "base_url" and isinstance(value, (list, tuple)):
            value = _joined_urls(value)
        object.__setattr__(self, name, value)

    def _base_url_text(self) -> str:
        """base_url as the core holds it: a list given to it is stored as one
        comma-separated string (__setattr__), so this only narrows the type."""
        url = self.base_url
        return url if isinstance(url, str) else ",".join(url)

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field, its value and what is allowed."""
        problems = _native.validate_config(self.provider, self)
        if problems:
            raise ConfigError(
                f"{type(self).__name__}: " + "; ".join(message for *_, message in problems)
            )

    def replace(self: _C, **changes: Any) -> _C:
        """A copy with some fields changed (validated like a new config)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        # A password in the base URL (http://user:pass@host) is never shown.
        parts = [
            f"{f.name}={_native.display_url(self._base_url_text())!r}" if f.name == "base_url"
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self) if f.repr
        ]
        parts.insert(9, f"api_key={_redacted(self.api_key)}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(repr=False)
class VLLMConfig(_ProviderConfig):
    """A vLLM server (OpenAI-compatible API). An empty model lets the server choose."""

    provider = "vllm"

    base_url: Union[str, list[str]] = _VLLM["base_url"]
    model: str = _VLLM["model"]
    text_model: str = _VLLM["text_model"]
    vision_model: str = _VLLM["vision_model"]
    embedding_model: str = _VLLM["embedding_model"]
    embedding_dimensions: int = _VLLM["embedding_dimensions"]


@dataclass(repr=False)
class OpenAIConfig(_ProviderConfig):
    """OpenAI or any OpenAI-compatible server (OpenRouter, Together, LiteLLM, ...)."""

    provider = "openai"

    base_url: Union[str, list[str]] = _OPENAI["base_url"]
    model: str = _OPENAI["model"]
    text_model: str = _OPENAI["text_model"]
    vision_model: str = _OPENAI["vision_model"]
    embedding_model: str = _OPENAI["embedding_model"]
    embedding_dimensions: int = _OPENAI["embedding_dimensions"]


@dataclass(repr=False)
class OllamaConfig(_ProviderConfig):
    """An Ollama server (native /api/chat)."""

    provider = "ollama"

    base_url: Union[str, list[str]] = _OLLAMA["base_url"]
    model: str = _OLLAMA["model"]
    num_ctx: int = _OLLAMA["num_ctx"]
    keep_alive: str = _OLLAMA["keep_alive"]
