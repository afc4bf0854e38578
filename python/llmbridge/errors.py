"""The exception hierarchy: every llmbridge error is an LLMBridgeError."""

from __future__ import annotations

__all__ = ["ConfigError", "JSONRepairError", "LLMBridgeError"]


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
