"""MockLLMServer over real sockets: endpoint shapes, scripting, faults, HTTP behaviour."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmbridge.testing import MockLLMServer, RecordedRequest, Reply, run

Result = tuple[int, dict[str, str], bytes]


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer() as srv:
        yield srv


def call(
    server: MockLLMServer,
    method: str,
    path: str,
    payload: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> Result:
    """One request on a fresh connection; returns status, lower-cased headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def chat(server: MockLLMServer, text: str = "hi", **extra: Any) -> Result:
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": text}]}
    payload.update(extra)
    return call(server, "POST", "/v1/chat/completions", payload)


def chat_content(server: MockLLMServer, text: str = "hi") -> Any:
    status, _, body = chat(server, text)
    assert status == 200
    return json.loads(body)["choices"][0]["message"]["content"]


# ------------------------------------------------------------------ endpoint shapes


def test_chat_completion_shape(server: MockLLMServer) -> None:
    server.enqueue(Reply("hello", prompt_tokens=7, completion_tokens=2))
    status, headers, body = chat(server, "say hello")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    data = json.loads(body)
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "mock-model"
    choice = data["choices"][0]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "hello"
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 2,
        "total_tokens": 9,
        "prompt_tokens_details": None,
    }


def test_completions_shape(server: MockLLMServer) -> None:
    server.enqueue(Reply("world", model="other-model"))
    status, _, body = call(
        server, "POST", "/v1/completions", {"model": "m", "prompt": "hello", "max_tokens": 5}
    )
    assert status == 200
    data = json.loads(body)
    assert data["id"].startswith("cmpl-")
    assert data["object"] == "text_completion"
    assert data["model"] == "other-model"
    assert data["choices"][0]["text"] == "world"
    assert data["choices"][0]["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_ollama_chat_shape(server: MockLLMServer) -> None:
    server.enqueue(Reply("hi there", reasoning="thought", completion_tokens=3))
    payload = {"model": "llama3:8b", "messages": [{"role": "user", "content": "x"}]}
    status, headers, body = call(server, "POST", "/api/chat", {**payload, "stream": False})
    assert status == 200
    assert headers["content-type"] == "application/json"
    data = json.loads(body)
    assert data["model"] == "llama3:8b"
    assert data["created_at"].endswith("Z")
    assert data["message"] == {"role": "assistant", "content": "hi there", "thinking": "thought"}
    assert data["done"] is True
    assert data["done_reason"] == "stop"
    assert data["eval_count"] == 3
    assert data["prompt_eval_count"] >= 1
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(data[key], int)


def test_ollama_generate_shape(server: MockLLMServer) -> None:
    server.enqueue("generated")
    status, _, body = call(
        server, "POST", "/api/generate", {"model": "m", "prompt": "p", "stream": False}
    )
    assert status == 200
    data = json.loads(body)
    assert data["response"] == "generated"
    assert data["done"] is True and data["done_reason"] == "stop"
    assert "message" not in data


def test_models_endpoint(server: MockLLMServer) -> None:
    server.models = ["a", "b"]
    server.max_model_len = 4096
    status, _, body = call(server, "GET", "/v1/models")
    assert status == 200
    data = json.loads(body)
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["a", "b"]
    first = data["data"][0]
    assert first["object"] == "model"
    assert first["owned_by"] == "vllm"
    assert first["max_model_len"] == 4096
    assert isinstance(first["created"], int)


def test_ollama_tags_root_and_version(server: MockLLMServer) -> None:
    status, _, body = call(server, "GET", "/api/tags")
    assert status == 200
    (model,) = json.loads(body)["models"]
    assert model["name"] == model["model"] == "mock-model"
    assert {"modified_at", "size", "digest", "details"} <= model.keys()
    assert model["details"]["format"] == "gguf"

    status, headers, body = call(server, "GET", "/")
    assert (status, body) == (200, b"Ollama is running")
    assert headers["content-type"].startswith("text/plain")

    for path in ("/api/version", "/version"):
        status, _, body = call(server, "GET", path)
        assert status == 200 and "version" in json.loads(body)


def test_health_status_is_settable(server: MockLLMServer) -> None:
    assert call(server, "GET", "/health")[::2] == (200, b"")
    server.health_status = 503
    status, headers, body = call(server, "GET", "/health")
    assert (status, body, headers["content-length"]) == (503, b"", "0")


def test_head_sends_headers_only(server: MockLLMServer) -> None:
    status, headers, body = call(server, "HEAD", "/")
    assert status == 200
    assert body == b""
    assert headers["content-length"] == str(len(b"Ollama is running"))


def test_unknown_path_and_wrong_method(server: MockLLMServer) -> None:
    status, _, body = call(server, "GET", "/v2/nothing")
    assert (status, json.loads(body)) == (404, {"detail": "Not Found"})
    status, headers, body = call(server, "GET", "/v1/chat/completions")
    assert (status, json.loads(body)) == (405, {"detail": "Method Not Allowed"})
    assert headers["allow"] == "POST"
    assert server.pending_replies == 0


# ------------------------------------------------------------------------ scripting


def test_script_is_fifo_across_generation_endpoints(server: MockLLMServer) -> None:
    server.enqueue("one", Reply("two"), {"three": 3}, "four")
    assert server.pending_replies == 4
    assert chat_content(server) == "one"
    _, _, body = call(server, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 1})
    assert json.loads(body)["choices"][0]["text"] == "two"
    # Ollama streams unless told not to.
    _, _, body = call(server, "POST", "/api/chat", {"model": "m", "messages": [], "stream": False})
    assert json.loads(json.loads(body)["message"]["content"]) == {"three": 3}
    generate = {"model": "m", "prompt": "x", "stream": False}
    _, _, body = call(server, "POST", "/api/generate", generate)
    assert json.loads(body)["response"] == "four"
    assert server.pending_replies == 0


def test_default_reply_and_set_default(server: MockLLMServer) -> None:
    assert json.loads(chat_content(server)) == {"ok": True}
    server.set_default(Reply.json({"default": 1}))
    server.enqueue("scripted")
    assert chat_content(server) == "scripted"
    assert json.loads(chat_content(server)) == {"default": 1}
    assert json.loads(chat_content(server)) == {"default": 1}


def test_responder_takes_precedence_and_none_falls_through(server: MockLLMServer) -> None:
    def responder(request: RecordedRequest) -> Reply | None:
        if "echo" in request.prompt:
            return Reply(request.prompt.upper())
        return None

    server.responder = responder
    server.enqueue("scripted")
    assert chat_content(server, "echo me") == "ECHO ME"
    assert server.pending_replies == 1  # the responder answered; the script was untouched
    assert chat_content(server, "plain") == "scripted"
    assert json.loads(chat_content(server, "plain")) == {"ok": True}


def test_responder_exception_becomes_500(server: MockLLMServer) -> None:
    def responder(request: RecordedRequest) -> Reply:
        raise ValueError("boom")

    server.responder = responder
    status, _, body = chat(server)
    assert status == 500
    assert "boom" in json.loads(body)["error"]["message"]
    assert [type(e) for e in server.errors] == [ValueError]


def test_reply_constructors() -> None:
    assert Reply.json({"a": 1}).content == '{"a": 1}'
    assert Reply.fenced({"a": 1}).content == '```json\n{"a": 1}\n```'
    error = Reply.error(429, "slow down", retry_after=2)
    assert (error.status, error.error_message, error.retry_after) == (429, "slow down", 2)
    cut = Reply.truncated('{"a": ')
    assert (cut.content, cut.finish_reason) == ('{"a": ', "length")
    assert Reply().content == '{"ok": true}'


def test_fenced_content_round_trips(server: MockLLMServer) -> None:
    server.enqueue(Reply.fenced({"x": [1, 2]}))
    assert chat_content(server) == '```json\n{"x": [1, 2]}\n```'


def test_reset_clears_script_records_and_counters(server: MockLLMServer) -> None:
    server.enqueue("a", "b")
    server.set_default("custom")
    server.responder = lambda req: Reply("from responder")
    server.health_status = 503
    chat(server)
    server.reset()
    assert (server.requests, server.pending_replies, server.connections_accepted) == ([], 0, 0)
    assert (server.responder, server.health_status) == (None, 200)
    assert json.loads(chat_content(server)) == {"ok": True}


# ---------------------------------------------------------------------- faults


def test_delay_does_not_block_other_requests(server: MockLLMServer) -> None:
    server.enqueue(Reply("slow", delay=1.0))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(chat_content, server, "slow")
        assert server.wait_for_requests(1)
        started = time.monotonic()
        assert chat_content(server, "fast") == '{"ok": true}'
        fast_elapsed = time.monotonic() - started
        assert not slow.done()
        assert slow.result(timeout=5) == "slow"
    assert fast_elapsed < 0.5
    first = server.requests[0]
    assert time.monotonic() - first.received_at >= 1.0


def test_error_status_with_retry_after_openai_envelope(server: MockLLMServer) -> None:
    server.enqueue(Reply.error(429, "rate limited", retry_after=1.5), Reply.error(503))
    status, headers, body = chat(server)
    assert status == 429
    assert headers["retry-after"] == "1.5"
    assert json.loads(body) == {
        "error": {
            "message": "rate limited",
            "type": "Too Many Requests",
            "param": None,
            "code": 429,
        }
    }
    status, headers, body = call(server, "POST", "/v1/completions", {"prompt": "x"})
    assert status == 503
    assert "retry-after" not in headers
    assert json.loads(body)["error"]["code"] == 503


def test_error_envelope_ollama(server: MockLLMServer) -> None:
    server.enqueue(
        Reply.error(404, "model 'nope' not found"),
        Reply.error(503, "server busy, please try again. maximum pending requests exceeded"),
    )
    status, _, body = call(server, "POST", "/api/chat", {"model": "nope", "messages": []})
    assert (status, json.loads(body)) == (404, {"error": "model 'nope' not found"})
    status, _, body = call(server, "POST", "/api/generate", {"model": "m", "prompt": "x"})
    assert status == 503 and json.loads(body)["error"].startswith("server busy")


def test_custom_headers_and_request_id_echo(server: MockLLMServer) -> None:
    server.enqueue(Reply(headers={"x-should-retry": "false", "Content-Type": "text/html"}))
    status, headers, _ = call(
        server, "POST", "/v1/chat/completions", {"messages": []}, {"X-Request-Id": "req-42"}
    )
    assert status == 200
    assert headers["x-request-id"] == "req-42"
    assert headers["x-should-retry"] == "false"
    assert headers["content-type"] == "text/html"
    _, headers, _ = chat(server)
    assert "x-request-id" not in headers


def test_reset_reply_is_a_connection_error(server: MockLLMServer) -> None:
    server.enqueue(Reply(reset=True))
    with pytest.raises(ConnectionResetError):
        chat(server)
    assert chat_content(server) == '{"ok": true}'  # the server keeps serving


def test_truncate_body_is_an_incomplete_read(server: MockLLMServer) -> None:
    server.enqueue(Reply("x" * 200, truncate_body=True))
    with pytest.raises(http.client.IncompleteRead) as info:
        chat(server)
    partial, expected = info.value.partial, info.value.expected
    assert len(partial) == (len(partial) + expected) // 2  # half of the announced length


def test_malformed_and_raw_body(server: MockLLMServer) -> None:
    server.enqueue(Reply(malformed=True), Reply(raw_body=b"<html>bad gateway</html>", status=502))
    status, headers, body = chat(server)
    assert status == 200 and headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(body)
    assert chat(server)[::2] == (502, b"<html>bad gateway</html>")


def test_empty_choices(server: MockLLMServer) -> None:
    server.enqueue(*[Reply("ignored", empty_choices=True)] * 3)
    _, _, body = chat(server)
    assert json.loads(body)["choices"] == []
    _, _, body = call(server, "POST", "/v1/completions", {"prompt": "x"})
    assert json.loads(body)["choices"] == []
    _, _, body = call(server, "POST", "/api/chat", {"model": "m", "messages": []})
    assert json.loads(body)["message"]["content"] == ""


def test_finish_reason_length(server: MockLLMServer) -> None:
    server.enqueue(Reply.truncated('{"a": [1, 2'), Reply.truncated("cut"))
    _, _, body = chat(server)
    choice = json.loads(body)["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("length", '{"a": [1, 2')
    generate = {"model": "m", "prompt": "x", "stream": False}
    _, _, body = call(server, "POST", "/api/generate", generate)
    assert json.loads(body)["done_reason"] == "length"


def test_client_hanging_up_during_delay_is_counted(server: MockLLMServer) -> None:
    server.enqueue(Reply(delay=5.0))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        body = b'{"messages": []}'
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        assert server.wait_for_requests(1)
    deadline = time.monotonic() + 2
    while (server.requests_abandoned, server.open_connections) != (1, 0):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert server.requests_abandoned == 1
    assert server.open_connections == 0


# ------------------------------------------------------------------- HTTP layer


def test_keep_alive_reuses_one_connection(server: MockLLMServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for i in range(5):
            conn.request("POST", "/v1/chat/completions", body=json.dumps({"n": i}))
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
            conn.request("GET", "/health")
            conn.getresponse().read()
    finally:
        conn.close()
    assert server.connections_accepted == 1
    assert [r.json for r in server.requests if r.method == "POST"] == [{"n": i} for i in range(5)]


def test_connection_close_is_respected(server: MockLLMServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for _ in range(2):
            conn.request("GET", "/v1/models", headers={"Connection": "close"})
            resp = conn.getresponse()
            assert resp.getheader("connection") == "close"
            resp.read()
    finally:
        conn.close()
    assert server.connections_accepted == 2


def test_requests_are_recorded(server: MockLLMServer) -> None:
    payload = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "part"}]}],
    }
    call(
        server,
        "POST",
        "/v1/chat/completions?trace=1",
        payload,
        {"Authorization": "Bearer k", "X-Custom": "v"},
    )
    (req,) = server.requests
    assert (req.method, req.path, req.query) == ("POST", "/v1/chat/completions", "trace=1")
    assert req.headers["authorization"] == "Bearer k"
    assert req.headers["x-custom"] == "v"
    assert req.headers["content-type"] == "application/json"
    assert req.json == payload
    assert json.loads(req.body) == payload
    assert req.prompt == "part"
    assert req.received_at <= time.monotonic()
    assert server.last_request == req


def test_non_json_body_is_recorded_and_still_answered(server: MockLLMServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/api/generate", body=b"not json")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert (server.last_request.body, server.last_request.json) == (b"not json", None)


def raw_exchange(server: MockLLMServer, *parts: bytes) -> bytes:
    """Send `parts` on a raw socket, reading a reply between them; read until EOF.

    The requests must make the server close (Connection: close, or a 400).
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        received = b""
        for i, part in enumerate(parts):
            sock.sendall(part)
            if i < len(parts) - 1:
                received += sock.recv(65536)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


def test_chunked_request_body(server: MockLLMServer) -> None:
    server.enqueue("chunked ok")
    reply = raw_exchange(
        server,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
        b'5\r\n{"mes\r\n'
        b'b;ext=1\r\nsages": []}\r\n'
        b"0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert server.last_request.json == {"messages": []}


def test_expect_100_continue(server: MockLLMServer) -> None:
    body = b'{"prompt": "x"}'
    reply = raw_exchange(
        server,
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n",
        body,
    )
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")


def test_garbage_request_gets_400(server: MockLLMServer) -> None:
    reply = raw_exchange(server, b"NONSENSE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_concurrent_requests_each_get_their_own_answer(server: MockLLMServer) -> None:
    # Every request asks for its own number back; all are in flight at once (delay).
    server.responder = lambda req: Reply(f"answer-{req.prompt}", delay=0.3)
    count = 200
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda i: chat_content(server, str(i)), range(count)))
    elapsed = time.monotonic() - started
    assert answers == [f"answer-{i}" for i in range(count)]
    assert server.connections_accepted == count
    assert elapsed < 8.0


def test_500_concurrent_connections_from_one_event_loop(server: MockLLMServer) -> None:
    # Client and server each hold one fd per connection, all in this process.
    resource = pytest.importorskip("resource")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = 500
    if soft != resource.RLIM_INFINITY and soft < 2 * count + 200:
        pytest.skip(f"RLIMIT_NOFILE {soft} is too low for {count} connections")
    server.responder = lambda req: Reply(f"n{req.prompt}", delay=0.3)

    async def one(i: int) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            body = json.dumps({"prompt": str(i)}).encode()
            writer.write(
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            return json.loads(await reader.readexactly(length))["choices"][0]["text"]
        finally:
            writer.close()
            await writer.wait_closed()

    async def main() -> list[str]:
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 10)

    assert asyncio.run(main()) == [f"n{i}" for i in range(count)]
    assert server.connections_accepted == count


# -------------------------------------------------------------------- lifecycle


def test_stop_is_prompt_with_a_pending_delayed_request() -> None:
    server = MockLLMServer().start()
    server.enqueue(Reply(delay=30.0))
    outcome: dict[str, Any] = {}

    def client() -> None:
        try:
            outcome["result"] = chat(server)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=client)
    thread.start()
    try:
        assert server.wait_for_requests(1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
        assert not server.running
    finally:
        thread.join(5)
    assert isinstance(outcome.get("error"), (ConnectionError, http.client.HTTPException))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_start_and_stop_are_idempotent_and_restartable() -> None:
    server = MockLLMServer()
    server.stop()  # never started: nothing happens
    server.start()
    port = server.port
    server.start()
    assert server.port == port
    assert chat_content(server) == '{"ok": true}'
    server.stop()
    server.stop()
    server.start()
    try:
        assert chat_content(server) == '{"ok": true}'
    finally:
        server.stop()


def test_port_in_use_raises_on_start(server: MockLLMServer) -> None:
    with pytest.raises(OSError):
        MockLLMServer(port=server.port).start()


def test_port_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        _ = MockLLMServer().port


def test_sync_context_manager() -> None:
    with MockLLMServer(models=["x"]) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert json.loads(call(server, "GET", "/v1/models")[2])["data"][0]["id"] == "x"
    assert not server.running


def test_async_context_manager_leaves_the_callers_loop_free() -> None:
    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.ensure_future(ticker())
        async with MockLLMServer() as server:
            server.enqueue(Reply("late", delay=0.3))
            loop = asyncio.get_running_loop()
            status, _, _ = await loop.run_in_executor(None, chat, server)
        tick_task.cancel()
        try:
            await tick_task
        except asyncio.CancelledError:
            pass
        return status, ticks

    status, ticks = asyncio.run(main())
    assert status == 200
    assert ticks >= 10  # the caller's loop kept running during the delayed reply


def test_run_serves_until_stop_event() -> None:
    ready: dict[str, MockLLMServer] = {}
    started = threading.Event()
    stop = threading.Event()

    def on_ready(srv: MockLLMServer) -> None:
        ready["server"] = srv
        started.set()

    thread = threading.Thread(
        target=run, kwargs={"on_ready": on_ready, "stop_event": stop, "default": "from-run"}
    )
    thread.start()
    try:
        assert started.wait(5)
        assert chat_content(ready["server"]) == "from-run"
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert not ready["server"].running


def test_module_works_without_the_native_extension() -> None:
    # Load the testing package from its files, without llmbridge/__init__ (which imports
    # the native module), and check that _native was never imported.
    import llmbridge.testing

    package_dir = Path(llmbridge.testing.__file__).parent
    code = f"""
import importlib.util, json, sys, urllib.request
spec = importlib.util.spec_from_file_location(
    "standalone_testing", {str(package_dir / "__init__.py")!r},
    submodule_search_locations=[{str(package_dir)!r}])
module = importlib.util.module_from_spec(spec)
sys.modules["standalone_testing"] = module
spec.loader.exec_module(module)
with module.MockLLMServer() as server:
    with urllib.request.urlopen(server.url + "/v1/models", timeout=5) as resp:
        assert json.load(resp)["data"][0]["id"] == "mock-model"
assert not any(name.startswith("llmbridge") for name in sys.modules), sorted(sys.modules)
"""
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=str(package_dir.parent.parent),
    )
    assert result.returncode == 0, result.stderr


def test_http_1_0_closes_after_the_answer(server: MockLLMServer) -> None:
    reply = raw_exchange(server, b"GET /health HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in reply


def test_command_line_entry_point() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmbridge.testing", "--port", "0", "--model", "cli-model"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split()[4]
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/v1/models")
            assert json.loads(conn.getresponse().read())["data"][0]["id"] == "cli-model"
        finally:
            conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# ------------------------------------------------------------------ bounded records


def test_max_recorded_keeps_the_newest_and_counts_all() -> None:
    with MockLLMServer(max_recorded=2) as srv:
        for i in range(5):
            assert chat(srv, f"m{i}")[0] == 200
        assert srv.request_count == 5
        assert [r.prompt for r in srv.requests] == ["m3", "m4"]
        assert srv.last_request is not None and srv.last_request.prompt == "m4"
        assert srv.wait_for_requests(5, timeout=0.1)
        srv.reset()
        assert srv.request_count == 0 and srv.requests == []
    with MockLLMServer(max_recorded=0) as srv:
        assert chat(srv)[0] == 200
        assert srv.requests == [] and srv.request_count == 1
    with pytest.raises(ValueError, match="max_recorded"):
        MockLLMServer(max_recorded=-1)


# ------------------------------------------------------------------ like vLLM: api_key, strict


def test_api_key_answers_like_vllm() -> None:
    with MockLLMServer(api_key="sk-k") as srv:
        status, _, body = chat(srv)
        assert status == 401
        assert json.loads(body) == {"error": "Unauthorized"}
        assert call(srv, "GET", "/v1/models", headers={"Authorization": "Bearer sk-x"})[0] == 401
        assert call(srv, "GET", "/v1/models", headers={"Authorization": "Bearer sk-k"})[0] == 200
        assert call(srv, "GET", "/health")[0] == 200  # vLLM leaves /health open
        payload = {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}
        status, _, _ = call(srv, "POST", "/v1/chat/completions", payload,
                            headers={"Authorization": "Bearer sk-k"})
        assert status == 200


def test_strict_refuses_what_vllm_refuses() -> None:
    with MockLLMServer(models=["tiny"], max_model_len=100, strict=True) as srv:
        status, _, body = chat(srv, model="other")
        assert status == 404
        error = json.loads(body)["error"]
        assert error["type"] == "NotFoundError" and error["code"] == 404
        assert "`other` does not exist" in error["message"]
        assert "Valid aliases: tiny." in error["message"]
        long_prompt = [{"role": "user", "content": "w" * 404}]
        status, _, body = call(srv, "POST", "/v1/chat/completions",
                               {"model": "tiny", "messages": long_prompt})
        assert status == 400
        error = json.loads(body)["error"]
        assert "maximum context length is 100 tokens" in error["message"]
        assert error["param"] == "input_tokens"
        status, _, body = chat(srv, model="tiny", max_tokens=101)
        assert status == 400
        assert json.loads(body)["error"]["param"] == "max_tokens"
        assert "max_tokens=101 cannot be greater than max_model_len=100" in body.decode()
        # a prompt that fits with a max_tokens that does not: accepted, as vLLM 0.32 does
        assert chat(srv, "w" * 200, model="tiny", max_tokens=100)[0] == 200


def test_strict_answers_a_schema_with_an_instance_of_it() -> None:
    schema = {"type": "object", "required": ["kind", "items", "n"],
              "properties": {"kind": {"enum": ["b", "a"]}, "n": {"type": "integer", "minimum": 3},
                             "items": {"type": "array", "minItems": 2,
                                       "items": {"type": "object", "required": ["x"],
                                                 "properties": {"x": {"type": "boolean"}}}}}}
    with MockLLMServer(models=["tiny"], strict=True) as srv:
        status, _, body = chat(srv, model="tiny", response_format={
            "type": "json_schema", "json_schema": {"name": "s", "schema": schema}})
        assert status == 200
        content = json.loads(json.loads(body)["choices"][0]["message"]["content"])
        assert content == {"kind": "b", "items": [{"x": True}, {"x": True}], "n": 3}
        srv.enqueue("scripted")  # a scripted reply still wins
        status, _, body = chat(srv, model="tiny", response_format={
            "type": "json_schema", "json_schema": {"name": "s", "schema": schema}})
        assert json.loads(body)["choices"][0]["message"]["content"] == "scripted"


# ------------------------------------------------------------------ follow_schema


def test_matching_schema_answers_an_instance_of_the_request_schema(server: MockLLMServer) -> None:
    schema = {"type": "object",
              "properties": {"n": {"type": "integer", "minimum": 3},
                             "tags": {"type": "array", "items": {"enum": ["a"]}}},
              "required": ["n", "tags"]}
    openai_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    server.enqueue(Reply.json({"n": "bad"}), Reply.matching_schema(), Reply.matching_schema(),
                   Reply.matching_schema(content="no schema asked"))
    status, _, body = chat(server, response_format=openai_format)
    assert json.loads(json.loads(body)["choices"][0]["message"]["content"]) == {"n": "bad"}
    status, _, body = chat(server, response_format=openai_format)
    assert json.loads(json.loads(body)["choices"][0]["message"]["content"]) == {
        "n": 3, "tags": ["a"]}
    status, _, body = call(server, "POST", "/api/chat", {
        "model": "mock-model", "messages": [{"role": "user", "content": "x"}], "stream": False,
        "format": schema})
    assert json.loads(json.loads(body)["message"]["content"]) == {"n": 3, "tags": ["a"]}
    assert chat_content(server) == "no schema asked"
    # As the default reply too.
    server.set_default(Reply.matching_schema())
    status, _, body = chat(server, response_format=openai_format)
    assert json.loads(json.loads(body)["choices"][0]["message"]["content"]) == {
        "n": 3, "tags": ["a"]}
