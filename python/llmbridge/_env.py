"""AppConfig and load_config(): the application's configuration from the environment.

Parsing and validation happen in the C++ core (``config::load_app_config``); this module
turns the result into the provider config dataclasses and raises one ConfigError that
lists every bad variable. See docs/configuration.md for every variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from . import _native
from .config import OllamaConfig, OpenAIConfig, VLLMConfig
from .errors import ConfigError

__all__ = ["AppConfig", "load_config"]


@dataclass
class AppConfig:
    """Every provider's config plus which provider serves LLM calls and embeddings.

    ``llm_provider`` defaults to ``"ollama"``; ``embedding_provider`` defaults to the LLM
    provider. Provider names are stored trimmed and lower-case. API keys are redacted in
    the repr (the nested configs redact them).
    """

    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    ollama: OllamaConfig = field(default_factory=OllamaConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    llm_provider: str = "ollama"
    embedding_provider: Optional[str] = None

    def __post_init__(self) -> None:
        self.llm_provider = _native.normalized_provider_name(self.llm_provider or "") or "ollama"
        if self.embedding_provider is None or not self.embedding_provider.strip():
            self.embedding_provider = self.llm_provider
        else:
            self.embedding_provider = _native.normalized_provider_name(self.embedding_provider)

    @property
    def provider(self) -> str:
        """Alias of ``llm_provider``."""
        return self.llm_provider

    def replace(self, **changes: Any) -> AppConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def load_config(environ: Optional[Mapping[str, str]] = None) -> AppConfig:
    """Build an AppConfig from environment variables (``os.environ`` by default).

    Empty values count as unset. Raises ConfigError listing every bad variable, its
    value (never an API key's) and what is allowed, e.g.
    ``VLLM_TIMEOUT='abc': must be a number of seconds > 0``; the problems are also on
    the exception as ``problems``: a list of ``(variable, value, allowed, message)``.
    """
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if isinstance(k, str) and isinstance(v, str)}
    fields, problems = _native.load_app_config(env)
    if problems:
        count = len(problems)
        head = f"{count} invalid environment variable" + ("" if count == 1 else "s")
        error = ConfigError(head + ": " + "; ".join(message for *_, message in problems))
        error.problems = list(problems)
        raise error
    # The core gives the fields whenever it reports no problem.
    assert fields is not None
    return AppConfig(
        vllm=VLLMConfig(**fields["vllm"]),
        ollama=OllamaConfig(**fields["ollama"]),
        openai=OpenAIConfig(**fields["openai"]),
        llm_provider=fields["llm_provider"],
        embedding_provider=fields["embedding_provider"],
    )
