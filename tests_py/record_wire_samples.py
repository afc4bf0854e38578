"""Record what a real server sends on the wire, for comparing the mock server with reality.

    python3 tests_py/record_wire_samples.py --server llama [--out DIR]

starts the real server(s) the way the test fixtures do, sends a fixed set of requests
(the model list, chat completions plain and with the json_schema llmbridge sends, SSE
streams with and without usage, and the error answers) and writes one JSON file per
exchange into tests_py/wire_samples/<server>/:

    {"request": {"method", "path", "headers", "body"}, "status": N,
     "headers": {the selected response headers}, "body": parsed JSON, or the raw text
     for SSE streams and non-JSON answers, "body_format": "json" | "sse" | "text"}

Generated values (ids, timestamps, timings, the tiny model's noise) are kept as recorded:
a comparison should look at names, types and nesting, not at values. `_meta.json` says
which server build answered and when.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from real_common import RunningServer

HERE = Path(__file__).resolve().parent

# Response headers worth comparing (names lowercased); others (Date, ...) are noise.
KEPT_HEADERS = ("content-type", "content-length", "transfer-encoding", "connection",
                "keep-alive", "server", "www-authenticate", "retry-after",
                "access-control-allow-origin")

SYSTEM = "Answer with the colour as JSON."
USER = "Which colour is the sky?"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
COLOUR_SCHEMA = {
    "type": "object",
    "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
    "required": ["colour"],
    "additionalProperties": False,
}
# The body llmbridge's OpenAI-compatible providers send (cpp/src/llm/provider.cpp).
JSON_SCHEMA_FORMAT = {"type": "json_schema",
                      "json_schema": {"name": "extraction", "schema": COLOUR_SCHEMA,
                                      "strict": True}}


def exchange(server: RunningServer, method: str, path: str, body: Any = None, *,
             raw_body: bytes | None = None, api_key: str | None = None) -> dict[str, Any]:
    """One request on a fresh connection; the answer as a sample dict."""
    headers = {"Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    data: bytes | None = raw_body
    if data is None and body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    host_port = server.base_url.removeprefix("http://")
    conn = http.client.HTTPConnection(host_port, timeout=120)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()  # http.client undoes the chunked transfer coding
        status = response.status
        kept = {name.lower(): value for name, value in response.getheaders()
                if name.lower() in KEPT_HEADERS}
    finally:
        conn.close()
    text = payload.decode("utf-8", errors="replace")
    content_type = kept.get("content-type", "")
    parsed: Any = text
    body_format = "text"
    if content_type.startswith("text/event-stream"):
        body_format = "sse"
    else:
        try:
            parsed, body_format = json.loads(text), "json"
        except ValueError:
            pass
    request: dict[str, Any] = {"method": method, "path": path, "headers": headers}
    if raw_body is not None:
        request["body_raw"] = raw_body.decode("utf-8", errors="replace")
    elif body is not None:
        request["body"] = body
    return {"request": request, "status": status, "headers": kept, "body": parsed,
            "body_format": body_format}


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": MESSAGES, "temperature": 0.0, **extra}


def llama_samples(plain: RunningServer, auth: RunningServer) -> dict[str, dict[str, Any]]:
    key = auth.api_key
    over = plain.max_model_len + 500  # one character is one token with the tiny vocab
    long_messages = [{"role": "user", "content": "x" * over}]
    samples: dict[str, Callable[[], dict[str, Any]]] = {
        "health": lambda: exchange(plain, "GET", "/health"),
        "models": lambda: exchange(plain, "GET", "/v1/models"),
        "chat_plain": lambda: exchange(plain, "POST", "/v1/chat/completions",
                                       chat(max_tokens=8)),
        "chat_json_schema": lambda: exchange(plain, "POST", "/v1/chat/completions",
                                             chat(max_tokens=256,
                                                  response_format=JSON_SCHEMA_FORMAT)),
        "chat_json_object": lambda: exchange(plain, "POST", "/v1/chat/completions",
                                             chat(max_tokens=64,
                                                  response_format={"type": "json_object"})),
        # llama-server serves its one model whatever the request names (vLLM: 404).
        "chat_unknown_model": lambda: exchange(plain, "POST", "/v1/chat/completions",
                                               {**chat(max_tokens=4), "model": "no-such"}),
        # The flat form (no "json_schema" wrapper) is not read: the answer is unconstrained.
        "chat_flat_schema_ignored": lambda: exchange(
            plain, "POST", "/v1/chat/completions",
            chat(max_tokens=8, response_format={"type": "json_schema",
                                                "schema": COLOUR_SCHEMA})),
        # max_tokens beyond the context is accepted (vLLM: 400); generation stops at the
        # context's end. The schema keeps this answer short.
        "chat_max_tokens_over_context": lambda: exchange(
            plain, "POST", "/v1/chat/completions",
            chat(max_tokens=plain.max_model_len * 10, response_format=JSON_SCHEMA_FORMAT)),
        "stream": lambda: exchange(plain, "POST", "/v1/chat/completions",
                                   chat(max_tokens=6, stream=True)),
        "stream_include_usage": lambda: exchange(
            plain, "POST", "/v1/chat/completions",
            chat(max_tokens=6, stream=True, stream_options={"include_usage": True})),
        "error_401_no_key": lambda: exchange(auth, "POST", "/v1/chat/completions",
                                             chat(max_tokens=4)),
        "error_401_wrong_key": lambda: exchange(auth, "POST", "/v1/chat/completions",
                                                chat(max_tokens=4), api_key="sk-wrong"),
        "models_auth_no_key": lambda: exchange(auth, "GET", "/v1/models"),
        "health_auth_no_key": lambda: exchange(auth, "GET", "/health"),
        "chat_auth_ok": lambda: exchange(auth, "POST", "/v1/chat/completions",
                                         chat(max_tokens=4), api_key=key),
        "error_400_context_overflow": lambda: exchange(
            plain, "POST", "/v1/chat/completions",
            {"model": "tiny", "messages": long_messages, "max_tokens": 4}),
        "error_400_no_messages": lambda: exchange(plain, "POST", "/v1/chat/completions",
                                                  {"model": "tiny", "max_tokens": 4}),
        "error_404_unknown_path": lambda: exchange(plain, "GET", "/v1/no-such-path"),
        "error_get_chat_completions": lambda: exchange(plain, "GET", "/v1/chat/completions"),
        "error_500_malformed_body": lambda: exchange(plain, "POST", "/v1/chat/completions",
                                                     raw_body=b'{"model": "tiny", "messages": ['),
    }
    return {name: make() for name, make in samples.items()}


def record_llama(out: Path) -> None:
    from real_llama import AUTH_KEY, start_llama_server

    with tempfile.TemporaryDirectory(prefix="wire-llama-") as tmp:
        tmp_path = Path(tmp)
        with start_llama_server(tmp_path / "plain") as plain, \
                start_llama_server(tmp_path / "auth", api_key=AUTH_KEY) as auth:
            samples = llama_samples(plain, auth)
            version = subprocess.run([str(plain.extra["binary"]), "--version"],
                                     capture_output=True, text=True, check=False)
            meta = {
                "server": "llama.cpp llama-server",
                "version": (version.stdout + version.stderr).strip().splitlines(),
                "recorded_at": datetime.datetime.now(datetime.timezone.utc)
                .isoformat(timespec="seconds"),
                "argv": [Path(a).name if a in (plain.extra["binary"], plain.extra["gguf"]) else a
                         for a in map(str, plain.process.args)],  # type: ignore[arg-type]
                "max_model_len": plain.max_model_len,
                "recorded_by": "python3 tests_py/record_wire_samples.py --server llama",
            }
    write(out, samples, meta)


def write(out: Path, samples: dict[str, dict[str, Any]], meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    for name, sample in samples.items():
        (out / f"{name}.json").write_text(json.dumps(sample, indent=2, ensure_ascii=False)
                                          + "\n")
        print(f"{name}: {sample['status']}", file=sys.stderr)
    (out / "_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(samples)} samples to {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["llama"], required=True)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the samples (default tests_py/wire_samples/SERVER)")
    args = parser.parse_args(argv)
    out = args.out or HERE / "wire_samples" / args.server
    if args.server == "llama":
        record_llama(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
