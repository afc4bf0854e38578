"""The Python code blocks of README.md and docs/*.md, as the tests read them.

test_examples.py compiles every block; test_typing.py type-checks every block. The rules
(docs/typing.md, "How the docs are checked"):

- A block fenced ```python is code. One written as an interactive session (its first
  line starts with ``>>>``) is checked as the code on its ``>>>`` / ``...`` lines.
- Snippets may ``await`` at top level and use names a worker defines elsewhere: each
  block becomes the body of an ``async def``, after its file's *context*, one HTML
  comment in the markdown (by convention under the title)::

      <!-- typecheck: context (names the snippets below assume; see docs/typing.md)
      import llmbridge
      client: llmbridge.VLLMClient
      -->

  whose lines are put at module level (imports and declarations of the names the
  snippets assume), so the snippets are checked against the real API.
- A block that cannot be checked (another program's code) is preceded by the line
  ``<!-- typecheck: skip (why) -->``. Keep these rare.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_CONTEXT = re.compile(r"^<!-- typecheck: context[^\n]*\n(.*?)^-->", re.S | re.M)
_SKIP = re.compile(r"<!-- typecheck: skip \((.+)\) -->\n\Z")

HEADER = "from __future__ import annotations\n"
FUNCTION = "async def _doc_block() -> None:\n"


def doc_files() -> list[str]:
    """README.md and docs/*.md, relative to the repository root."""
    return ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class DocBlock:
    doc: str  # e.g. "docs/streaming.md"
    index: int  # 1-based, in the file
    line: int  # markdown line of the block's first code line
    source: str  # the code as the reader sees it
    context: str  # the file's context lines ("" when it has none)
    skip: Optional[str]  # why the block is not type-checked, or None

    @property
    def name(self) -> str:
        return f"{self.doc}#{self.index}"

    @property
    def module_name(self) -> str:
        stem = re.sub(r"[^a-z0-9]+", "_", self.doc.lower().removesuffix(".md"))
        return f"docblock_{stem}_{self.index}"

    @property
    def is_session(self) -> bool:
        return self.source.startswith(">>>")

    def code(self) -> str:
        """The block's code: a session's prompt lines, or the block as it is."""
        if not self.is_session:
            return self.source
        lines = self.source.splitlines()
        code = [ln[4:] for ln in lines if ln.startswith((">>> ", "... ")) or ln in (">>>", "...")]
        return "\n".join(code) + "\n"

    def module(self) -> tuple[str, int]:
        """The module that is checked, and the module line of the block's first line.

        The block is indented into ``async def _doc_block()`` so it may await at top
        level; the context comes before it, at module level."""
        context = self.context if self.context.endswith("\n") or not self.context \
            else self.context + "\n"
        head = HEADER + "\n" + context + "\n\n" + FUNCTION
        body = "".join(f"    {ln}\n" if ln.strip() else "\n" for ln in self.code().splitlines())
        return head + (body or "    pass\n"), head.count("\n") + 1

    def markdown_line(self, module_line: int) -> int:
        """The markdown line of a line of module() (for sessions: of the block's start)."""
        _, first = self.module()
        if self.is_session:
            return self.line
        return self.line + max(0, module_line - first)


def python_blocks() -> list[DocBlock]:
    blocks = []
    for doc in doc_files():
        text = (ROOT / doc).read_text(encoding="utf-8")
        contexts = _CONTEXT.findall(text)
        assert len(contexts) <= 1, f"{doc}: more than one typecheck context comment"
        context = contexts[0] if contexts else ""
        for i, m in enumerate(_FENCE.finditer(text)):
            skip = _SKIP.search(text, 0, m.start())
            blocks.append(DocBlock(
                doc=doc, index=i + 1, line=text.count("\n", 0, m.start(1)) + 1,
                source=m.group(1), context=context,
                skip=skip.group(1) if skip else None,
            ))
    return blocks


def compiles(block: DocBlock) -> None:
    """Raises SyntaxError when the block's module is not valid Python."""
    source, _ = block.module()
    ast.parse(source, filename=block.name)
