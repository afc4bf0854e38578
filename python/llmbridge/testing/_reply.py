"""What the mock server answers: the scripted `Reply` and the `RecordedRequest` it saw.

Both are plain data. `Reply` describes one answer independently of the endpoint; the
server renders it in the shape of whichever endpoint consumed it (OpenAI chat, OpenAI
completions, Ollama chat, Ollama generate).
"""

from __future__ import annotations

import json as _json
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union, cast

DEFAULT_CONTENT = '{"ok": true}'

#: The values of `Reply.stream_fault`.
STREAM_FAULTS = ("cut", "cut_hard", "stall", "stall_keepalive", "error", "garbage")

# A token is a run of non-space characters with the whitespace before it, or trailing
# whitespace on its own: "Hello, world!\n" -> ["Hello,", " world!", "\n"]. The tokens
# join back to the text exactly, which is all a stream test needs of a tokenizer.
_TOKEN = re.compile(r"\s*\S+|\s+")


def split_tokens(text: str | None) -> list[str]:
    """`text` split the way the mock streams it: words with their leading whitespace."""
    return _TOKEN.findall(text) if text else []


# Request bodies are whatever the client sent: these take any value and give it back typed
# only when it has the JSON shape asked for.
def json_object(value: object) -> Optional[dict[str, Any]]:
    """`value` when it is a JSON object (a dict), else None."""
    return cast("dict[str, Any]", value) if isinstance(value, dict) else None


def json_array(value: object) -> Optional[list[object]]:
    """`value` when it is a JSON array (a list), else None."""
    return cast("list[object]", value) if isinstance(value, list) else None


@dataclass
class Reply:
    """One scripted answer of the mock server.

    The fields compose; the order in which the server applies them is: wait `delay`;
    if `reset`, drop the connection; build the body (`raw_body`, else a non-JSON body if
    `malformed`, else the provider's error envelope if `status >= 400`, else the
    endpoint's success shape); send it (only half of it, then close, if
    `truncate_body`). Embeddings endpoints consume replies too and use the same fields,
    except the generation ones (`content`, `tokens`, `reasoning`, `tool_calls`, stream
    fields); `embeddings` replaces their vectors. A streaming request (OpenAI
    ``"stream": true``; Ollama unless ``"stream": false``) whose reply reaches the
    success shape is answered as a stream instead: see `tokens`, `chunk_delay`,
    `usage_chunk` and `stream_fault`.
    """

    #: The generated text (OpenAI ``message.content`` / ``text``, Ollama
    #: ``message.content`` / ``response``). ``None`` gives ``"content": null`` on OpenAI
    #: paths and ``""`` on Ollama paths.
    content: str | None = DEFAULT_CONTENT
    #: HTTP status code of the answer.
    status: int = 200
    #: Extra response headers; they replace the server's headers of the same name.
    headers: dict[str, str] = field(default_factory=dict[str, str])
    #: Seconds to wait before answering (asynchronously: other connections are served).
    delay: float = 0.0
    #: Value of the ``Retry-After`` header (seconds or an HTTP date), if any.
    retry_after: float | str | None = None
    #: OpenAI ``finish_reason``; Ollama ``done_reason``. ``None``: ``"tool_calls"`` on
    #: OpenAI paths when `tool_calls` is set, else ``"stop"``.
    finish_reason: str | None = None
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
    #: The answer as stream tokens, one stream event each. ``None``: `content` split by
    #: `split_tokens`. When set, non-streaming answers use ``"".join(tokens)`` as the
    #: content, and ``completion_tokens`` defaults to ``len(tokens)``.
    tokens: list[str] | None = None
    #: Tool calls, each ``{"name": str, "arguments": dict | str, "id": str | None}``. A
    #: dict argument is sent as JSON (a string on OpenAI paths, an object on Ollama);
    #: a str argument is sent as is on OpenAI paths, so it may be broken JSON. When set,
    #: the default `content` becomes ``None``.
    tool_calls: list[dict[str, Any]] | None = None
    #: Seconds between stream events (asynchronous; the stream stops if the client
    #: hangs up meanwhile).
    chunk_delay: float = 0.0
    #: OpenAI streams: send the usage chunk when the request asked for it with
    #: ``stream_options.include_usage``. False never sends it.
    usage_chunk: bool = True
    #: A fault injected into a stream after `fault_after` token events: "cut", "cut_hard",
    #: "stall", "stall_keepalive", "error" or "garbage" (see docs/testing.md).
    stream_fault: str | None = None
    #: Token events (reasoning, content and tool-call deltas) sent before `stream_fault`.
    fault_after: int = 1
    #: How long a "stall" / "stall_keepalive" lasts before the stream resumes (the
    #: server stops earlier if the client hangs up).
    stall_seconds: float = 30.0
    #: Embeddings endpoints: the vectors to answer, one per input, instead of the ones
    #: derived from the text (`embedding_for`). Sent as given (float32-rounded for
    #: base64), so a test may answer with too few vectors or the wrong size.
    embeddings: list[list[float]] | None = None
    #: Answer with a small instance of the JSON schema the request asked for (OpenAI
    #: ``response_format.json_schema.schema``, Ollama ``format``), as a server enforcing
    #: it would, instead of `content`. A request without a schema gets `content`. See
    #: `Reply.matching_schema`.
    follow_schema: bool = False

    def __post_init__(self) -> None:
        if self.stream_fault is not None and self.stream_fault not in STREAM_FAULTS:
            raise ValueError(
                f"stream_fault must be one of {', '.join(STREAM_FAULTS)}, "
                f"got {self.stream_fault!r}"
            )
        if self.fault_after < 0:
            raise ValueError(f"fault_after must be >= 0, got {self.fault_after}")
        # A tool-call answer has no text unless the test gave some. The identity test
        # tells the untouched default from a `content` the caller passed.
        if self.tool_calls and self.content is DEFAULT_CONTENT:
            self.content = None

    @property
    def answer_text(self) -> str | None:
        """The answer's full text: ``"".join(tokens)`` when `tokens` is set, else `content`."""
        if self.tokens is not None:
            return "".join(self.tokens)
        return self.content

    def stream_tokens(self) -> list[str]:
        """The content tokens of a stream: `tokens`, else `content` split by `split_tokens`."""
        if self.tokens is not None:
            return self.tokens
        return split_tokens(self.content)

    @classmethod
    def json(cls, obj: Any, **kwargs: Any) -> Reply:
        """A reply whose content is `obj` serialised as JSON."""
        return cls(content=_json.dumps(obj), **kwargs)

    @classmethod
    def matching_schema(cls, **kwargs: Any) -> Reply:
        """A reply that is an instance of the request's JSON schema (e.g. the good answer
        after a scripted one that breaks the schema)."""
        return cls(follow_schema=True, **kwargs)

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
    def tool_call(
        cls,
        name: str,
        arguments: dict[str, Any] | str | None = None,
        *,
        id: str | None = None,  # noqa: A002 - the wire name
        **kwargs: Any,
    ) -> Reply:
        """A reply that calls one tool (``content`` None, finish_reason "tool_calls").

        `arguments` is a dict (sent as JSON) or a str sent as is (may be broken JSON).
        """
        call = {"name": name, "arguments": {} if arguments is None else arguments, "id": id}
        kwargs.setdefault("content", None)
        return cls(tool_calls=[call], **kwargs)

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
        data = json_object(self.json)
        if data is None:
            return ""
        messages = json_array(data.get("messages"))
        if messages is not None:
            parts: list[str] = []
            for message in messages:
                content = (json_object(message) or {}).get("content")
                if isinstance(content, str):
                    parts.append(content)
                for part in json_array(content) or ():
                    text = (json_object(part) or {}).get("text")
                    if isinstance(text, str):
                        parts.append(text)
            return "\n".join(parts)
        prompt = data.get("prompt")
        if isinstance(prompt, str):
            return prompt
        return "\n".join(p for p in json_array(prompt) or () if isinstance(p, str))
