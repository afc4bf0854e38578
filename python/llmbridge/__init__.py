"""llmbridge: a native LLM client and JSON text tools for Python extraction workers."""

from __future__ import annotations

try:
    from . import _native
except ImportError as exc:  # pragma: no cover - only when the build is missing
    raise ImportError(
        "llmbridge's native extension (llmbridge._native) could not be imported. "
        "Install the package with pip (it builds the C++ core), e.g. "
        "`pip install .` from a source checkout; see README.md."
    ) from exc

__version__ = "0.1.0"

strip_markdown_fences = _native.strip_markdown_fences

__all__ = ["__version__", "strip_markdown_fences"]
