"""Quickstart (blocking): extract an invoice's fields with llmbridge, no asyncio.

The same as quickstart_async.py for scripts and thread pools: ``call_llm_sync`` is the
blocking twin of ``call_llm`` (it releases the GIL while it waits). The client is
configured from the environment (VLLM_BASE_URL, VLLM_MODEL, ...); without VLLM_BASE_URL
the script starts the bundled mock LLM server, so it runs anywhere:

    python examples/quickstart_sync.py
    VLLM_BASE_URL=http://localhost:8000 VLLM_MODEL=qwen2.5-7b-instruct \\
        python examples/quickstart_sync.py

The extracted fields are printed on stdout as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import llmbridge
from llmbridge.testing import MockLLMServer

INVOICE = """\
ACME Corp, 12 Harbour Road, Rotterdam
Invoice INV-2024-0042, issued 2024-03-15

2 x Widget, large      500.00 EUR
1 x Installation       250.00 EUR

Total due: 1,250.00 EUR
"""

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "invoice_number": {"type": "string"},
        "issue_date": {"type": "string", "format": "date"},
        "total": {"type": "number"},
        "currency": {"type": "string"},
    },
    "required": ["vendor", "invoice_number", "total", "currency"],
}

PROMPTS = {
    "system": "Extract the invoice fields as JSON. Answer with JSON only.",
    "user": "Invoice:\n{document_text}",  # {document_text} marks where the document goes
}


def extract(app: llmbridge.AppConfig) -> dict[str, Any] | None:
    with llmbridge.VLLMClient(app.vllm) as client:
        attempt = client.call_llm_sync(PROMPTS, INVOICE_SCHEMA, INVOICE)
    if not attempt.success:
        # call_llm_sync does not raise for server or model problems: see attempt.error
        print(f"extraction failed: {attempt.error} ({attempt.attempts} tries)", file=sys.stderr)
        return None
    invoice: dict[str, Any] = attempt.data  # parsed JSON: fences stripped, repaired when needed
    return invoice


def main() -> int:
    if os.environ.get("VLLM_BASE_URL"):
        data = extract(llmbridge.load_config())
    else:
        with MockLLMServer() as server:
            print(f"VLLM_BASE_URL is not set: using the bundled mock server at {server.url}",
                  file=sys.stderr)
            # A sloppy but common answer: single quotes and a trailing comma (repaired).
            server.enqueue("{'vendor': 'ACME Corp', 'invoice_number': 'INV-2024-0042', "
                           "'issue_date': '2024-03-15', 'total': 1250.0, 'currency': 'EUR',}")
            app = llmbridge.load_config({**os.environ, "VLLM_BASE_URL": server.url})
            data = extract(app)
    if data is None:
        return 1
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
