"""What the mock server answers: the scripted `Reply` and the `RecordedRequest` it saw.

Both are plain data. `Reply` describes one answer independently of the endpoint; the
server renders it in the shape of whichever endpoint consumed it (OpenAI chat, OpenAI
completions, Ollama chat, Ollama generate).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Union

DEFAULT_CONTENT = '{"ok": true}'


@dataclass
class Reply:
    """One scripted answer of the mock server.

    The fields compose; the order in which the server applies them is: wait `delay`;
    if `reset`, drop the connection; build the body (`raw_body`, else a non-JSON body if
    `malformed`, else the provider's error envelope if `status >= 400`, else the
    endpoint's success shape); send it (only half of it, then close, if
    `truncate_body`).
    """

    #: The generated text (OpenAI ``message.content`` / ``text``, Ollama
    #: ``message.content`` / ``response``). ``None`` gives ``"content": null`` on OpenAI
    #: paths and ``""`` on Ollama paths.
    content: str | None = DEFAULT_CONTENT
    #: HTTP status code of the answer.
    status: int = 200
    #: Extra response headers; they replace the server's headers of the same name.
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (asynchronously: other connections are served).
    delay: float = 0.0
    #: Value of the ``Retry-After`` header (seconds or an HTTP date), if any.
    retry_after: float | str | None = None
    #: OpenAI ``finish_reason``; Ollama ``done_reason``.
    finish_reason: str = "stop"
    #: OpenAI: ``"choices": []``; Ollama: empty ``message.content`` / ``response``.
    empty_choices: bool = False
    #: Close the TCP connection abruptly (RST) without answering.
    reset: bool = False
    #: Send the headers with the full Content-Length, then half of the body, then close.
    truncate_body: bool = False
    #: Answer with a body that is not valid JSON (status as given, normally 200).
    malformed: bool = False
    #: Send exactly these bytes as the body (Content-Type stays application/json unless
    #: `headers` says otherwise).
    raw_body: bytes | None = None
    #: Message put in the provider's error envelope when ``status >= 400`` (default: the
    #: HTTP reason phrase).
    error_message: str | None = None
    #: Usage numbers; ``None`` means an estimate of about one token per 4 characters.
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: The ``model`` field of the answer (default: the request's model, else the first
    #: served model).
    model: str | None = None
    #: Reasoning text: OpenAI ``message.reasoning``, Ollama ``thinking``.
    reasoning: str | None = None

    @classmethod
    def json(cls, obj: Any, **kwargs: Any) -> Reply:
        """A reply whose content is `obj` serialised as JSON."""
        return cls(content=_json.dumps(obj), **kwargs)

    @classmethod
    def fenced(cls, obj: Any, **kwargs: Any) -> Reply:
        """A reply whose content is `obj` as JSON inside a ```json markdown fence."""
        text = obj if isinstance(obj, str) else _json.dumps(obj)
        return cls(content=f"```json\n{text}\n```", **kwargs)

    @classmethod
    def text(cls, content: str, **kwargs: Any) -> Reply:
        """A reply with this exact content."""
        return cls(content=content, **kwargs)

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        retry_after: float | str | None = None,
        **kwargs: Any,
    ) -> Reply:
        """An error answer in the endpoint's error envelope."""
        return cls(
            content=None,
            status=status,
            error_message=message,
            retry_after=retry_after,
            **kwargs,
        )

    @classmethod
    def truncated(cls, content: str, **kwargs: Any) -> Reply:
        """A reply cut by the token limit: ``finish_reason`` (``done_reason``) "length"."""
        kwargs.setdefault("finish_reason", "length")
        return cls(content=content, **kwargs)


ReplyLike = Union[Reply, str, dict[str, Any]]


def as_reply(value: ReplyLike) -> Reply:
    """Accept the shorthands: a `str` is the content, a `dict` is JSON content."""
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(content=value)
    if isinstance(value, dict):
        return Reply.json(value)
    raise TypeError(f"expected a Reply, str or dict, got {type(value).__name__}")


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the mock server received it."""

    method: str
    #: The path without the query string, e.g. ``/v1/chat/completions``.
    path: str
    #: Header names are lower-case; repeated headers are joined with ", ".
    headers: dict[str, str]
    body: bytes
    #: The parsed JSON body, or ``None`` when the body is empty or not JSON.
    json: Any
    #: ``time.monotonic()`` when the request head was read.
    received_at: float
    #: The query string without the "?", "" when there is none.
    query: str = ""

    @property
    def prompt(self) -> str:
        """The request's text: chat message contents joined by newlines, or ``prompt``.

        Handy in a responder to answer each request according to what it asked.
        """
        data = self.json
        if not isinstance(data, dict):
            return ""
        messages = data.get("messages")
        if isinstance(messages, list):
            parts = []
            for message in messages:
                if not isinstance(message, dict):
                    continue
                content = message.get("content")
                if isinstance(content, str):
                    parts.append(content)
                elif isinstance(content, list):
                    parts.extend(
                        p["text"]
                        for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str)
                    )
            return "\n".join(parts)
        prompt = data.get("prompt")
        if isinstance(prompt, str):
            return prompt
        if isinstance(prompt, list):
            return "\n".join(p for p in prompt if isinstance(p, str))
        return ""
