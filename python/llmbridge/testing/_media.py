"""Pure helpers of the mock server for embeddings and images.

Embeddings are derived from the text alone, so a test can compute the vector it expects
with `embedding_for` and compare bit for bit, whichever encoding the server used. Images
are decoded only to describe them (MIME type, size, digest) in the default caption, so a
test can tell that the bytes arrived intact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import struct
from typing import Any

from ._reply import json_array, json_object

__all__ = [
    "caption_for",
    "decode_image",
    "embedding_for",
    "embedding_text",
    "float32_base64",
    "request_images",
]

_FLOAT32 = struct.Struct("<f")
_WORD = struct.Struct("<I")


def _float32(value: float) -> float:
    return float(_FLOAT32.unpack(_FLOAT32.pack(value))[0])


def embedding_for(text: str, dims: int) -> list[float]:
    """The vector the mock server answers for `text` with `dims` dimensions.

    Deterministic and platform-independent: raw values in [-1, 1) come from SHA-256 in
    counter mode over the UTF-8 text (a seeded stream, not `random`, whose algorithms may
    change), the first `dims` of them are L2-normalised, and each is rounded to the
    nearest float32, so the JSON float answer and the base64 (little-endian float32)
    answer are the same numbers bit for bit. A shorter vector is the normalised prefix of
    a longer one, as Matryoshka models give for ``dimensions``.
    """
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be an int >= 1, got {dims!r}")
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    raw: list[float] = []
    block = 0
    while len(raw) < dims:
        digest = hashlib.sha256(seed + block.to_bytes(8, "little")).digest()
        for offset in range(0, len(digest), _WORD.size):
            (word,) = _WORD.unpack_from(digest, offset)
            raw.append(word / 2.0**31 - 1.0)
        block += 1
    del raw[dims:]
    norm = math.sqrt(sum(v * v for v in raw))
    if norm == 0.0:  # every word 2**31: not reachable in practice, but keep it defined
        return [_float32(1.0 / math.sqrt(dims))] * dims
    return [_float32(v / norm) for v in raw]


def float32_base64(vector: list[float]) -> str:
    """`vector` as OpenAI's ``encoding_format: "base64"`` sends it: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_text(messages: list[Any]) -> str:
    """The text a chat-style embeddings request (``messages``) is embedded as.

    In message order: each string ``content``, and in a list ``content`` each ``text``
    part's text and each ``image_url`` part's URL (the data URL as sent), joined by
    ``"\\n"``.
    """
    parts: list[str] = []
    for message in messages:
        content = (json_object(message) or {}).get("content")
        if isinstance(content, str):
            parts.append(content)
        for item in json_array(content) or ():
            part = json_object(item)
            if part is None:
                continue
            text = part.get("text")
            if isinstance(text, str):
                parts.append(text)
            url = _image_url(part)
            if url is not None:
                parts.append(url)
    return "\n".join(parts)


def _image_url(part: dict[str, Any]) -> str | None:
    if part.get("type") != "image_url":
        return None
    image = part.get("image_url")
    url = image if isinstance(image, str) else (json_object(image) or {}).get("url")
    return url if isinstance(url, str) else None


def request_images(data: Any) -> list[str]:
    """Every image a request body carries, as sent: the URL of each OpenAI ``image_url``
    content part and each bare base64 string of Ollama's ``messages[].images`` and
    top-level ``images`` (``/api/generate``)."""
    body = json_object(data)
    if body is None:
        return []
    found: list[str] = []
    for item in json_array(body.get("messages")) or ():
        message = json_object(item)
        if message is None:
            continue
        for element in json_array(message.get("content")) or ():
            part = json_object(element)
            url = _image_url(part) if part is not None else None
            if url is not None:
                found.append(url)
        found.extend(i for i in json_array(message.get("images")) or () if isinstance(i, str))
    found.extend(i for i in json_array(body.get("images")) or () if isinstance(i, str))
    return found


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def _sniff(data: bytes) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def decode_image(source: str) -> tuple[str, bytes] | None:
    """(MIME type, bytes) of a ``data:`` URL or bare base64 image; None when it is
    neither (an ``http(s)://`` URL) or the base64 does not decode.

    The MIME type is the one the data URL declares, else sniffed from magic bytes.
    """
    mime = ""
    payload = source
    if source.startswith("data:"):
        header, sep, payload = source[5:].partition(",")
        if not sep or not header.endswith(";base64"):
            return None
        mime = header[: -len(";base64")].split(";")[0]
    elif "://" in source:
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return (mime or _sniff(data)), data


def caption_for(images: list[str]) -> str:
    """The mock's default answer to a request carrying images, e.g.
    ``"caption: 1 image(s), image/png, 1234 bytes, sha256 0123456789ab"``.

    One ``MIME, N bytes, sha256 <first 12 hex digits>`` entry per image, joined by
    ``"; "``; an image that is not inline base64 is ``url <URL>``, an undecodable one
    ``invalid base64``.
    """
    entries: list[str] = []
    for source in images:
        decoded = decode_image(source)
        if decoded is not None:
            mime, data = decoded
            digest = hashlib.sha256(data).hexdigest()[:12]
            entries.append(f"{mime}, {len(data)} bytes, sha256 {digest}")
        elif "://" in source and not source.startswith("data:"):
            entries.append(f"url {source}")
        else:
            entries.append("invalid base64")
    return f"caption: {len(images)} image(s), " + "; ".join(entries)
