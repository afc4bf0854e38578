"""Quickstart (async): extract an invoice's fields with llmbridge.

The client is configured from the environment (VLLM_BASE_URL, VLLM_MODEL and every other
VLLM_* setting, see docs/configuration.md). Without VLLM_BASE_URL the script starts the
bundled mock LLM server and scripts the answer a model would give, so it runs anywhere:

    python examples/quickstart_async.py
    VLLM_BASE_URL=http://localhost:8000 VLLM_MODEL=qwen2.5-7b-instruct \\
        python examples/quickstart_async.py

The extracted fields are printed on stdout as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import llmbridge
from llmbridge.testing import MockLLMServer, Reply

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


async def extract(app: llmbridge.AppConfig) -> dict[str, Any] | None:
    async with llmbridge.build_llm_client("vllm", app) as client:
        attempt = await client.call_llm(PROMPTS, INVOICE_SCHEMA, INVOICE)
    if not attempt.success:
        # call_llm does not raise for server or model problems: they are in attempt.error
        print(f"extraction failed: {attempt.error} ({attempt.attempts} tries)", file=sys.stderr)
        return None
    invoice: dict[str, Any] = attempt.data  # parsed JSON: fences stripped, repaired when needed
    return invoice


async def main() -> int:
    if os.environ.get("VLLM_BASE_URL"):
        data = await extract(llmbridge.load_config())
    else:
        async with MockLLMServer() as server:
            print(f"VLLM_BASE_URL is not set: using the bundled mock server at {server.url}",
                  file=sys.stderr)
            # What a model typically sends: the JSON wrapped in a markdown fence.
            server.enqueue(Reply.fenced({"vendor": "ACME Corp", "invoice_number": "INV-2024-0042",
                                         "issue_date": "2024-03-15", "total": 1250.0,
                                         "currency": "EUR"}))
            app = llmbridge.load_config({**os.environ, "VLLM_BASE_URL": server.url})
            data = await extract(app)
    if data is None:
        return 1
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
