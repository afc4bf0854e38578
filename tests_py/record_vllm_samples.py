"""Record what a real vLLM (CPU build, the tiny test model) sends on the wire, for a later
comparison with `llmbridge.testing.MockLLMServer`.

    python3 tests_py/record_vllm_samples.py [--out tests_py/wire_samples/vllm]

Needs the venv of `bash scripts/real_servers/vllm_cpu.sh`. Starts the two servers of the
test fixtures (plain and `--api-key`), sends each request below over a fresh connection
and writes one JSON file per exchange: {"request": {method, path, headers, body},
"status", "headers": {the selected ones}, "body"}. The body is the parsed JSON when the
answer is JSON, else the raw text (SSE streams are kept byte for byte, as text). Ids,
timestamps and the random model's words change from run to run; shapes do not.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from real_common import RunningServer
from real_vllm import (
    API_KEY,
    MAX_MODEL_LEN,
    SERVED_MODEL,
    VLLM_VERSION,
    start_vllm_servers,
    write_tiny_model,
)

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "wire_samples" / "vllm"
# Headers worth comparing (Date changes on every answer).
SELECTED_HEADERS = (
    "content-type", "content-length", "transfer-encoding", "connection", "server",
    "x-request-id", "www-authenticate", "retry-after", "content-encoding", "allow",
)

LABELS = ["cat", "dog", "bird"]
SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": LABELS}},
    "required": ["label"],
    "additionalProperties": False,
}
MESSAGES = [
    {"role": "system", "content": "Classify the animal."},
    {"role": "user", "content": "Text: It barks at the postman.\nAnswer in JSON."},
]
# What llmbridge's VLLMClient sends for a call with a schema (cpp/src/llm/provider.cpp).
JSON_SCHEMA_BODY = {
    "model": SERVED_MODEL,
    "messages": MESSAGES,
    "max_tokens": 64,
    "temperature": 0.0,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "extraction", "schema": SCHEMA, "strict": True},
    },
}
PLAIN_BODY = {"model": SERVED_MODEL, "messages": MESSAGES, "max_tokens": 12, "temperature": 0.0}
# The tiny tokenizer makes ~8 tokens of each repetition: ~32,000 tokens, far over the
# context; and ~4,800, which fits but not with the client's default max_tokens of 4096
# (vLLM 0.32 answers that with 200: it stops at the context, finish_reason "length").
LONG_TEXT = "cat dog bird 12345, " * (MAX_MODEL_LEN // 2)
MEDIUM_TEXT = "cat dog bird 12345, " * 600


class Exchange(NamedTuple):
    name: str  # the sample's file name
    server: str  # "plain" or "auth"
    method: str
    path: str
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = {}


def exchanges() -> list[Exchange]:
    E = Exchange
    return [
        E("models", "plain", "GET", "/v1/models", None),
        E("health", "plain", "GET", "/health", None),
        E("version", "plain", "GET", "/version", None),
        E("chat_plain", "plain", "POST", "/v1/chat/completions", PLAIN_BODY),
        E("chat_json_schema", "plain", "POST", "/v1/chat/completions", JSON_SCHEMA_BODY),
        E("chat_json_schema_x_request_id", "plain", "POST", "/v1/chat/completions",
          JSON_SCHEMA_BODY, headers={"X-Request-Id": "llmb-0123456789abcdef"}),
        E("chat_json_object", "plain", "POST", "/v1/chat/completions",
          {**PLAIN_BODY, "max_tokens": 16, "response_format": {"type": "json_object"}}),
        E("chat_guided_json_legacy", "plain", "POST", "/v1/chat/completions",
          {**PLAIN_BODY, "guided_json": SCHEMA}),
        E("error_400_flat_schema_form", "plain", "POST", "/v1/chat/completions",
          {**PLAIN_BODY, "response_format": {"type": "json_schema", "schema": SCHEMA}}),
        E("chat_stream", "plain", "POST", "/v1/chat/completions",
          {**PLAIN_BODY, "max_tokens": 6, "stream": True}),
        E("chat_stream_include_usage", "plain", "POST", "/v1/chat/completions",
          {**PLAIN_BODY, "max_tokens": 6, "stream": True,
           "stream_options": {"include_usage": True}}),
        E("chat_stream_json_schema", "plain", "POST", "/v1/chat/completions",
          {**JSON_SCHEMA_BODY, "stream": True, "stream_options": {"include_usage": True}}),
        E("error_401_no_key", "auth", "POST", "/v1/chat/completions", JSON_SCHEMA_BODY),
        E("error_401_wrong_key_models", "auth", "GET", "/v1/models",
          headers={"Authorization": "Bearer sk-wrong"}),
        E("ok_with_key_models", "auth", "GET", "/v1/models",
          headers={"Authorization": f"Bearer {API_KEY}"}),
        E("auth_health_no_key", "auth", "GET", "/health"),
        E("auth_version_no_key", "auth", "GET", "/version"),
        E("error_404_wrong_model", "plain", "POST", "/v1/chat/completions",
          {**JSON_SCHEMA_BODY, "model": "no-such-model"}),
        E("error_404_unknown_route", "plain", "GET", "/v1/no-such-route", None),
        E("error_405_get_chat", "plain", "GET", "/v1/chat/completions", None),
        E("error_400_prompt_over_context", "plain", "POST", "/v1/chat/completions",
          {**PLAIN_BODY, "messages": [{"role": "user", "content": LONG_TEXT}]}),
        E("chat_prompt_plus_max_tokens_over_context", "plain", "POST",
          "/v1/chat/completions",
          {**PLAIN_BODY, "max_tokens": 4096,
           "messages": [{"role": "user", "content": MEDIUM_TEXT}]}),
        E("error_400_max_tokens_over_context", "plain", "POST", "/v1/chat/completions",
          {**PLAIN_BODY, "max_tokens": MAX_MODEL_LEN + 1}),
        E("error_400_malformed_body", "plain", "POST", "/v1/chat/completions",
         b'{"model": "tiny", "messages": ['),
        E("error_400_messages_missing", "plain", "POST", "/v1/chat/completions",
          {"model": SERVED_MODEL}),
    ]


def send(server: RunningServer, exchange: Exchange) -> dict[str, Any]:
    method, path, body = exchange.method, exchange.path, exchange.body
    headers = {"Accept": "*/*", **exchange.headers}
    payload: bytes | None = None
    if isinstance(body, bytes):
        payload = body
    elif body is not None:
        payload = json.dumps(body).encode()
    if payload is not None:
        headers["Content-Type"] = "application/json"
    host, port = server.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        status = response.status
        got = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    text = raw.decode("utf-8", errors="replace")
    parsed: Any = text
    if got.get("content-type", "").startswith("application/json"):
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
    if isinstance(body, bytes):
        request_body: Any = body.decode()
    elif isinstance(body, dict):
        request_body = _shorten(body)
    else:
        request_body = body
    return {
        "request": {"method": method, "path": path, "headers": headers, "body": request_body},
        "status": status,
        "headers": {k: got[k] for k in SELECTED_HEADERS if k in got},
        "body": parsed,
    }


def _shorten(body: dict[str, Any]) -> dict[str, Any]:
    """The over-long prompt, written as a note instead of 100 kB of text."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    short = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and len(content) > 2000:
            message = {**message, "content": f"{content[:40]}... ({len(content)} characters)"}
        short.append(message)
    return {**body, "messages": short}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vllm-samples-") as tmp:
        tmp_dir = Path(tmp)
        model_dir = write_tiny_model(tmp_dir / "tiny-llama")
        started = time.monotonic()
        with start_vllm_servers(model_dir, tmp_dir) as servers:
            for name, server in servers.items():
                if not isinstance(server, RunningServer):
                    print(f"vLLM ({name}) did not start: {server}", file=sys.stderr)
                    return 1
            print(f"servers ready after {time.monotonic() - started:.0f} s", file=sys.stderr)
            for exchange in exchanges():
                server = servers[exchange.server]
                assert isinstance(server, RunningServer)
                flags = " --api-key" if exchange.server == "auth" else ""
                sample = {"server": f"vllm-cpu {VLLM_VERSION}{flags}", **send(server, exchange)}
                target = args.out / f"{exchange.name}.json"
                target.write_text(json.dumps(sample, indent=2, ensure_ascii=False) + "\n")
                print(f"{sample['status']} {exchange.method} {exchange.path} -> {target.name}",
                      file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
