from __future__ import annotations

import llmbridge


def test_fence_law_smoke() -> None:
    assert llmbridge.strip_markdown_fences("```json\n{\"a\": 1}\n```") == '{"a": 1}'
