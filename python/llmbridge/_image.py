"""Images as message content: ``Image.from_path``, ``from_bytes``, ``from_url``.

An Image goes into a message's content list beside text parts, in ``chat``,
``chat_stream`` and ``caption``. OpenAI-compatible servers get it as a base64 data URL,
Ollama as bare base64 in the message's ``images`` (the core does both; it also sniffs the
type from the bytes).
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import _native

__all__ = ["MAX_IMAGE_BYTES", "Image"]

#: The largest image accepted (bytes), unless from_bytes/from_path are given max_bytes.
MAX_IMAGE_BYTES = 20 << 20


class Image:
    """One image for a message: a data URL (from bytes or a file) or an http(s) URL."""

    __slots__ = ("url", "mime", "size")

    def __init__(self, url: str, mime: Optional[str], size: Optional[int]) -> None:
        self.url = url
        self.mime = mime
        self.size = size

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview], mime: Optional[str] = None, *,
                   max_bytes: int = MAX_IMAGE_BYTES) -> Image:
        """An image from its bytes; the type is sniffed (PNG, JPEG, GIF, WebP) unless given."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"image data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data:
            raise ValueError("the image is empty (0 bytes)")
        if len(data) > max_bytes:
            raise ValueError(f"the image is {len(data)} bytes, over the limit of {max_bytes} "
                             "(max_bytes; MAX_IMAGE_BYTES is 20 MB)")
        sniffed = _native.sniff_image_mime(data)
        if mime is None:
            if not sniffed:
                raise ValueError("cannot tell the image type from its first bytes (PNG, JPEG, GIF and "
                                 "WebP are recognised): pass mime='image/...'")
            mime = sniffed
        elif not isinstance(mime, str) or not mime.startswith("image/"):
            raise ValueError(f"mime must be an image type such as 'image/png', got {str(mime)[:40]!r}")
        return cls(_native.image_data_url(data, mime), mime, len(data))

    @classmethod
    def from_path(cls, path: Union[str, os.PathLike[str]], mime: Optional[str] = None, *,
                  max_bytes: int = MAX_IMAGE_BYTES) -> Image:
        """An image from a file (its size is checked before it is read)."""
        size = os.stat(path).st_size
        if size > max_bytes:
            raise ValueError(f"{os.fspath(path)!s:.80}: the image is {size} bytes, over the limit of "
                             f"{max_bytes} (max_bytes)")
        with open(path, "rb") as f:
            return cls.from_bytes(f.read(), mime, max_bytes=max_bytes)

    @classmethod
    def from_url(cls, url: str) -> Image:
        """An image the server fetches itself (vLLM does; Ollama does not) or a data URL."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:image/")):
            raise ValueError("an image URL must start with http://, https:// or data:image/")
        return cls(url, None, None)

    def to_part(self) -> dict[str, Any]:
        """The OpenAI content part."""
        return {"type": "image_url", "image_url": {"url": self.url}}

    def __repr__(self) -> str:
        where = "data" if self.url.startswith("data:") else self.url[:60]
        return f"Image({where}, mime={self.mime!r}, size={self.size!r})"
