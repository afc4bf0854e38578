"""The provider factory, its registry, and ClientHolder (switching providers at runtime).

Routing (trim, ignore case, "" = default, unknown = default + warning) is decided by the
C++ core (``config::route_provider``) against the registry's names; this module adds the
registry, the "resolved" overrides and the holder. See docs/configuration.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union, cast

from . import _native
from ._client import OllamaClient, OpenAICompatibleClient, VLLMClient
from ._env import AppConfig, load_config
from ._health import check_vllm_health, check_vllm_health_sync, display_url
from .config import _ProviderConfig
from .errors import LLMBridgeError

__all__ = [
    "ClientHolder",
    "ProviderSpec",
    "build_config_from_resolved",
    "build_embedding_client",
    "build_llm_client",
    "build_llm_client_checked",
    "build_llm_client_checked_sync",
    "register_provider",
    "registered_providers",
    "unregister_provider",
]

logger = logging.getLogger("llmbridge.factory")

ConfigSource = Union[str, Callable[[AppConfig], _ProviderConfig]]

#: Fields of a "resolved" object / mapping and the config field each overrides.
RESOLVED_OVERRIDES = {
    "model_name": "model",
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "timeout": "timeout",
}


@dataclass(frozen=True)
class ProviderSpec:
    """A registered provider: the client class and where its base config comes from
    (an AppConfig attribute name such as ``"openai"``, or ``callable(app_config) -> config``)."""

    name: str
    client_cls: Callable[[Any], Any]
    config: ConfigSource

    def base_config(self, app_config: AppConfig) -> _ProviderConfig:
        if callable(self.config):
            return self.config(app_config)
        config: _ProviderConfig = getattr(app_config, self.config)  # an AppConfig field
        return config


_registry: dict[str, ProviderSpec] = {}
_registry_lock = threading.Lock()


def register_provider(name: str, client_cls: Callable[[Any], Any],
                      config_attr_or_factory: ConfigSource, *, replace: bool = False) -> None:
    """Make ``name`` (matched trimmed and case-insensitively) buildable by the factory.

    An OpenAI-compatible service is one line::

        register_provider("openrouter", OpenAICompatibleClient,
                          lambda app: app.openai.replace(base_url="https://openrouter.ai/api"))

    Registering a taken name raises ValueError unless ``replace=True``.
    """
    key = _native.normalized_provider_name(name)
    if not key:
        raise ValueError("a provider name must not be empty")
    if not (isinstance(config_attr_or_factory, str) or callable(config_attr_or_factory)):
        raise TypeError("config_attr_or_factory must be an AppConfig attribute name or a callable")
    with _registry_lock:
        if key in _registry and not replace:
            raise ValueError(f"provider {key!r} is already registered (pass replace=True)")
        _registry[key] = ProviderSpec(key, client_cls, config_attr_or_factory)


def unregister_provider(name: str) -> None:
    """Remove a registered provider. The default (ollama) cannot be removed."""
    key = _native.normalized_provider_name(name)
    if key == "ollama":
        raise ValueError("the default provider 'ollama' cannot be unregistered")
    with _registry_lock:
        _registry.pop(key, None)


def registered_providers() -> tuple[str, ...]:
    """Names the factory can build, built-ins first."""
    with _registry_lock:
        return tuple(_registry)


def _spec(name: str) -> ProviderSpec:
    with _registry_lock:
        return _registry[name]


# The built-ins go through the same door as everything else.
register_provider("ollama", OllamaClient, "ollama")
register_provider("vllm", VLLMClient, "vllm")
register_provider("openai", OpenAICompatibleClient, "openai")


# ---- resolved objects ----


def _is_resolved(value: Any) -> bool:
    return value is not None and not isinstance(value, str)


def _get(resolved: Any, key: str) -> Any:
    if isinstance(resolved, Mapping):
        return cast("Mapping[str, Any]", resolved).get(key)
    return getattr(resolved, key, None)


def _route(requested: Optional[str], app_config: AppConfig, *, warn: bool) -> ProviderSpec:
    """None / "" mean "the configured provider" (app_config.llm_provider, default ollama)."""
    if requested is None or not _native.normalized_provider_name(str(requested)):
        requested = app_config.llm_provider
    normalised, provider, known = _native.route_provider(
        str(requested), list(registered_providers())
    )
    if not known and warn:
        logger.warning("factory: unknown provider %r; using %s", normalised, provider)
    return _spec(provider)


def _base(spec: ProviderSpec, base_configs: Any) -> _ProviderConfig:
    if isinstance(base_configs, Mapping):
        configs = cast("Mapping[str, Any]", base_configs)
        if spec.name in configs:
            config: _ProviderConfig = configs[spec.name]
            return config
        raise LLMBridgeError(f"factory: no base config for provider {spec.name!r}")
    return spec.base_config(base_configs)


def _apply_overrides(config: _ProviderConfig, resolved: Any) -> _ProviderConfig:
    changes = {}
    for key, field_name in RESOLVED_OVERRIDES.items():
        value = _get(resolved, key)
        if value is not None:
            changes[field_name] = value
    return config.replace(**changes) if changes else config


def build_config_from_resolved(resolved: Any, base_configs: Any = None) -> _ProviderConfig:
    """The config for a resolved variant: the provider's base config (from ``base_configs``,
    an AppConfig or a mapping ``{provider: config}``; ``load_config()`` when None) with
    ``model_name``, ``temperature``, ``max_tokens`` and ``timeout`` applied (None or
    missing keeps the base value). ``resolved`` is any object with those attributes or a
    mapping with those keys; ``model_provider`` picks the provider like the factory does."""
    app_config = base_configs if base_configs is not None else load_config()
    if isinstance(app_config, Mapping):
        spec = _route(_get(resolved, "model_provider"), AppConfig(), warn=False)
    else:
        spec = _route(_get(resolved, "model_provider"), app_config, warn=False)
    return _apply_overrides(_base(spec, app_config), resolved)


def _plan(provider_or_resolved: Any, app_config: AppConfig) -> tuple[ProviderSpec, _ProviderConfig]:
    if _is_resolved(provider_or_resolved):
        spec = _route(_get(provider_or_resolved, "model_provider"), app_config, warn=True)
        return spec, _apply_overrides(_base(spec, app_config), provider_or_resolved)
    spec = _route(provider_or_resolved, app_config, warn=True)
    return spec, _base(spec, app_config)


def build_llm_client(provider_or_resolved: Any = None,
                     app_config: Optional[AppConfig] = None) -> Any:
    """Build the client for a provider name or a resolved variant.

    ``"vllm"`` -> VLLMClient(app_config.vllm), ``"ollama"`` -> OllamaClient,
    ``"openai"`` -> OpenAICompatibleClient, a registered name -> its client. Matching trims
    and ignores case. None or "" -> the configured provider (``app_config.llm_provider``,
    "ollama" unless set). Anything else -> a WARNING on ``llmbridge.factory`` and an
    OllamaClient. ``app_config`` defaults to ``load_config()``.
    """
    if app_config is None:
        app_config = load_config()
    spec, config = _plan(provider_or_resolved, app_config)
    return spec.client_cls(config)


def build_embedding_client(app_config: Optional[AppConfig] = None) -> Any:
    """The client for embeddings: ``app_config.embedding_provider`` (``EMBEDDING_PROVIDER``,
    which defaults to the LLM provider), with that provider's config, so embeddings can
    come from vLLM while chat goes to OpenAI. ``embed()`` uses the config's
    ``embedding_model`` (``VLLM_EMBEDDING_MODEL``) when it has one. ``app_config``
    defaults to ``load_config()``."""
    if app_config is None:
        app_config = load_config()
    spec = _route(app_config.embedding_provider or app_config.llm_provider, app_config, warn=True)
    return spec.client_cls(_base(spec, app_config))


def _fallback(spec: ProviderSpec, config: _ProviderConfig, app_config: AppConfig) -> Any:
    logger.warning("factory: vllm at %s failed its health check; falling back to ollama at %s",
                   display_url(config._base_url_text()),
                   display_url(app_config.ollama._base_url_text()))
    return _spec("ollama").client_cls(app_config.ollama)


async def build_llm_client_checked(provider_or_resolved: Any = None,
                                   app_config: Optional[AppConfig] = None,
                                   timeout: float = 5.0) -> Any:
    """As :func:`build_llm_client`, but when vLLM is chosen and does not answer its health
    check within ``timeout`` seconds, log a WARNING and return an OllamaClient built from
    ``app_config.ollama`` instead. A degraded vLLM (reachable, model missing or slow) is kept."""
    if app_config is None:
        app_config = load_config()
    spec, config = _plan(provider_or_resolved, app_config)
    if spec.name == "vllm" and not await check_vllm_health(
        config._base_url_text(), timeout, model=config.model, api_key=config.api_key
    ):
        return _fallback(spec, config, app_config)
    return spec.client_cls(config)


def build_llm_client_checked_sync(provider_or_resolved: Any = None,
                                  app_config: Optional[AppConfig] = None,
                                  timeout: float = 5.0) -> Any:
    """Blocking twin of :func:`build_llm_client_checked`."""
    if app_config is None:
        app_config = load_config()
    spec, config = _plan(provider_or_resolved, app_config)
    if spec.name == "vllm" and not check_vllm_health_sync(
        config._base_url_text(), timeout, model=config.model, api_key=config.api_key
    ):
        return _fallback(spec, config, app_config)
    return spec.client_cls(config)


# ---- switching ----


def _retire(client: Any) -> None:
    """Close ``client`` once its calls in flight are done (they finish normally)."""
    close_when_idle = getattr(client, "close_when_idle", None)
    if close_when_idle is not None:
        close_when_idle()
    else:  # a registered client without it: nothing better than closing now
        client.close()


class ClientHolder:
    """Holds the current LLM client and swaps it when the resolved variant changes.

    ``holder.client`` builds the configured provider's client on first use.
    ``holder.refresh(resolved)`` compares the provider, model and base URL the variant
    resolves to with the current client's; when any differs it builds the new client
    through the factory, swaps it in, logs the switch (INFO on ``llmbridge.factory``)
    and retires the old client: it is closed exactly once, when its last call in flight
    has finished, so those calls complete normally. Other overrides (temperature,
    max_tokens, timeout) alone do not rebuild the client. Thread-safe.
    """

    def __init__(self, app_config: Optional[AppConfig] = None) -> None:
        self._app_config = app_config
        self._client: Any = None
        self._key: Optional[tuple[str, str, str]] = None
        self._variant: Optional[str] = None
        self._closed = False
        self._lock = threading.RLock()

    @property
    def app_config(self) -> AppConfig:
        with self._lock:
            if self._app_config is None:
                self._app_config = load_config()
            return self._app_config

    @staticmethod
    def _key_of(spec: ProviderSpec, config: _ProviderConfig) -> tuple[str, str, str]:
        return (spec.name, config.model, _native.normalized_base_url(config._base_url_text()))

    @property
    def client(self) -> Any:
        """The current client (built from the configured provider on first use)."""
        with self._lock:
            if self._closed:
                raise LLMBridgeError("ClientHolder is closed")
            if self._client is None:
                spec, config = _plan(None, self.app_config)
                self._client = spec.client_cls(config)
                self._key = self._key_of(spec, config)
            return self._client

    def refresh(self, resolved: Any) -> bool:
        """Switch to the client for ``resolved`` if its provider, model or base URL differ.

        Returns True when an existing client was replaced; False when the current one was
        kept (or none existed yet: then the resolved one becomes the first client).
        """
        with self._lock:
            if self._closed:
                raise LLMBridgeError("ClientHolder is closed")
            spec, config = _plan(resolved, self.app_config)
            key = self._key_of(spec, config)
            if self._client is not None and key == self._key:
                return False
            old, old_key = self._client, self._key
            self._client = spec.client_cls(config)
            self._key = key
            variant = _get(resolved, "variant_id") if _is_resolved(resolved) else None
            self._variant = variant
        if old is None:
            logger.info("factory: using %s (model %r, variant %r)", key[0], key[1], variant)
            return False
        old_provider, old_model = (old_key[0], old_key[1]) if old_key else ("?", "")
        logger.info("factory: switching LLM client %s -> %s (model %r -> %r, variant %r)",
                    old_provider, key[0], old_model, key[1], variant)
        _retire(old)
        return True

    async def close(self) -> None:
        """Close the current client (now: its calls in flight complete with "cancelled").
        Clients retired by refresh() close themselves when idle. Idempotent."""
        with self._lock:
            client, self._client = self._client, None
            self._closed = True
        if client is not None:
            result = client.close()
            if hasattr(result, "__await__"):
                await result

    async def __aenter__(self) -> ClientHolder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
