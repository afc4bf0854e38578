"""The exception hierarchy: every llmbridge error is an LLMBridgeError."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["ConfigError", "JSONRepairError", "LLMBridgeError", "LLMCallError"]


class LLMBridgeError(Exception):
    """Base class of every exception llmbridge raises."""


class JSONRepairError(LLMBridgeError, ValueError):
    """The text holds no JSON that can be recovered.

    ``position`` is the byte offset (in the UTF-8 input) where the problem was found,
    ``reason`` the short cause, e.g. ``"no JSON value found"``.
    """

    def __init__(self, message: str, position: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.reason = reason or message


class ConfigError(LLMBridgeError, ValueError):
    """A configuration value is invalid; the message names the field and the value."""

    #: Set by ``load_config()``: every bad variable as ``(variable, value, allowed, message)``.
    problems: list[tuple[str, str, str, str]]


class LLMCallError(LLMBridgeError):
    """A call failed: raised by ``ChatResult.raise_for_error()`` and ``list_models()``.

    Carries the fields of the failed result: ``error`` (the contract string, e.g.
    ``timeout``, ``http_503``), ``retryable``, ``status_code``, ``request_id`` and
    ``result`` (the ChatResult, or None). The message never holds the API key.
    """

    def __init__(self, result: Any = None, *, error: str = "", retryable: bool = False,
                 status_code: Optional[int] = None, description: str = "") -> None:
        if result is not None:
            error = result.error or ""
            retryable = result.retryable
            status_code = result.status_code
            description = result.description
        self.result = result
        self.error = error
        self.retryable = retryable
        self.status_code = status_code
        self.request_id = getattr(result, "request_id", None)
        message = f"{error}: {description}" if description and description != error else error
        super().__init__(message)

    @classmethod
    def from_values(cls, error: str, *, status_code: Optional[int] = None,
                    description: str = "", retryable: bool = False) -> LLMCallError:
        return cls(None, error=error, status_code=status_code, description=description,
                   retryable=retryable)
