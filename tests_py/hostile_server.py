"""A hostile HTTP/1.1 server for client tests (a test helper, not package code).

`HostileServer` listens on 127.0.0.1 (ephemeral port) and runs its own asyncio loop in a
daemon thread, on raw non-blocking sockets (``loop.sock_accept`` / ``sock_recv`` /
``sock_sendall``), so every byte it writes is exactly the byte the test asked for.

Every request (head + ``Content-Length`` or chunked body) is recorded as a
`HostileRequest`. By default the answer is a well-formed OpenAI chat completion whose
content is ``{"ok": true}`` (keep-alive). When the request body contains
``HOSTILE:<case>`` (tests put it in ``document_text``) the server runs that case from
`CASES` instead: bad UTF-8, compressed bodies, slowloris, giant or countless headers,
HTTP/1.0 close-delimited bodies, silence, TCP resets at each phase, redirects, truncated
chunked and short bodies.

Why raw sockets rather than ``asyncio.start_server``: the ``reset_accept`` case must
reset a connection *before* reading the request, yet only for the call that asked for
it. The server looks at the bytes waiting in the kernel with ``MSG_PEEK`` (which reads
nothing) to find the marker, then resets; a stream transport would already have read
them.

Robustness rules: a client that hangs up at any point ends that connection quietly;
any other exception in a connection handler is kept in `errors` (the fixture asserts it
is empty) instead of escaping the thread. ``stop()`` closes the listener and every
socket and joins the thread; the thread also stops by itself after ``max_lifetime``
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

MARKER_RE = re.compile(rb"HOSTILE:([a-z0-9_]+)")
OK_CONTENT = '{"ok": true}'
MAX_HEAD = 256 * 1024
PEEK_MAX = 1 << 20
PEEK_TIMEOUT = 2.0
RESET_SETTLE = 0.02  # let the client read what was sent before the RST
SLOWLORIS_GAP = 0.3
HUGE_HEADER_BYTES = 1 << 20
MANY_HEADERS = 5000


def marker(case: str, tag: str = "") -> str:
    """The text a test puts in document_text to make the server run `case`."""
    return f"HOSTILE:{case} {tag}".rstrip()


@dataclass
class HostileRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeats joined by ", "
    body: bytes
    conn_id: int
    seq_on_conn: int  # 0 for the first request on its connection
    case: Optional[str]  # the HOSTILE:<case> marker found in the body, if any
    consumed: bool = True  # False: only seen with MSG_PEEK (reset_accept)
    received_at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _BadRequest(Exception):
    pass


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
    except ValueError as e:
        raise _BadRequest(f"bad request line: {head[:80]!r}") from e
    if not version.startswith("HTTP/1."):
        raise _BadRequest(f"bad version {version!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(f"bad header line {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return method, target.split("?", 1)[0], headers


def _content_length(headers: dict[str, str]) -> int:
    try:
        n = int(headers.get("content-length", "0"))
    except ValueError as e:
        raise _BadRequest("bad Content-Length") from e
    if n < 0:
        raise _BadRequest("negative Content-Length")
    return n


def _is_chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _peeked_request_complete(data: bytes) -> bool:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    try:
        _, _, headers = _parse_head(data[:end])
        if headers.get("expect", "").lower() == "100-continue":
            return True  # the body will not come before we answer; decide on the head
        if _is_chunked(headers):
            return b"\r\n0\r\n" in data[end:] or data[end + 4 :].startswith(b"0\r\n")
        return len(data) >= end + 4 + _content_length(headers)
    except _BadRequest:
        return True  # let the normal path answer 400


# --------------------------------------------------------------------------- bytes


def completion_body(req: Optional[HostileRequest], content: str = OK_CONTENT) -> bytes:
    model = "hostile-model"
    if req is not None and isinstance(req.json, dict) and isinstance(req.json.get("model"), str):
        model = req.json["model"]
    doc = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return json.dumps(doc).encode()


def response_head(
    status: str = "200 OK",
    headers: Optional[list[tuple[str, str]]] = None,
    *,
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{version} {status}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_response(
    body: bytes,
    status: str = "200 OK",
    extra: Optional[list[tuple[str, str]]] = None,
    *,
    keep_alive: bool = True,
) -> bytes:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    headers.append(("Connection", "keep-alive" if keep_alive else "close"))
    headers += extra or []
    return response_head(status, headers) + body


# --------------------------------------------------------------------------- connections


class _Conn:
    """One accepted socket; every operation survives the client hanging up."""

    def __init__(self, server: HostileServer, sock: socket.socket, conn_id: int) -> None:
        self.server = server
        self.sock = sock
        self.id = conn_id
        self.buf = bytearray()
        self.requests = 0
        self.closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def recv(self, n: int = 65536) -> bytes:
        """b"" on EOF or any socket error."""
        if self.closed:
            return b""
        try:
            return await self.loop.sock_recv(self.sock, n)
        except OSError:
            return b""

    async def send(self, data: bytes) -> bool:
        """False when the client is gone."""
        if self.closed:
            return False
        try:
            await self.loop.sock_sendall(self.sock, data)
        except OSError:
            return False
        return True

    async def peek(self) -> Optional[bytes]:
        """Wait for a whole request to sit in the kernel's buffer; return it unread.

        None when the client closed (or the socket failed) before sending anything.
        After PEEK_TIMEOUT returns what is there (the normal read path takes over).
        """
        loop = self.loop
        fd = self.sock.fileno()
        readable = loop.create_future()

        def on_readable() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await readable  # an idle keep-alive connection waits here
        finally:
            loop.remove_reader(fd)
        deadline = loop.time() + PEEK_TIMEOUT
        while True:
            try:
                data = self.sock.recv(PEEK_MAX, socket.MSG_PEEK)
            except BlockingIOError:
                data = None
            except OSError:
                return None
            if data == b"":
                return None
            if data is not None and (_peeked_request_complete(data) or loop.time() > deadline):
                return data
            await asyncio.sleep(0.002)

    async def hold(self) -> None:
        """Keep the socket open, reading and discarding, until the client goes away."""
        while await self.recv():
            pass

    def reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends a TCP RST."""
        if self.closed:
            return
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()

    def finish(self) -> None:
        """Graceful close: FIN after everything sent."""
        if self.closed:
            return
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        self.close()

    async def read_request(self) -> Optional[HostileRequest]:
        """Read one request; None on a clean EOF between requests or a hang-up mid-way."""
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > MAX_HEAD:
                raise _BadRequest("request head too large")
            data = await self.recv()
            if not data:
                return None
            buf += data
        method, path, headers = _parse_head(bytes(buf[:end]))
        del buf[: end + 4]
        if _is_chunked(headers):
            body = await self._read_chunked()
            if body is None:
                return None
        else:
            n = _content_length(headers)
            if len(buf) < n and headers.get("expect", "").lower() == "100-continue":
                if not await self.send(b"HTTP/1.1 100 Continue\r\n\r\n"):
                    return None
            while len(buf) < n:
                data = await self.recv()
                if not data:
                    return None
                buf += data
            body = bytes(buf[:n])
            del buf[:n]
        return self._make_request(method, path, headers, body, consumed=True)

    async def _read_chunked(self) -> Optional[bytes]:
        buf = self.buf
        out = bytearray()

        async def line() -> Optional[bytes]:
            while b"\r\n" not in buf:
                if len(buf) > MAX_HEAD:
                    raise _BadRequest("chunk line too long")
                data = await self.recv()
                if not data:
                    return None
                buf.extend(data)
            i = buf.index(b"\r\n")
            text = bytes(buf[:i])
            del buf[: i + 2]
            return text

        while True:
            size_line = await line()
            if size_line is None:
                return None
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as e:
                raise _BadRequest("bad chunk size") from e
            if size == 0:
                while True:  # trailers up to the empty line
                    trailer = await line()
                    if trailer is None:
                        return None
                    if trailer == b"":
                        return bytes(out)
            while len(buf) < size + 2:
                data = await self.recv()
                if not data:
                    return None
                buf.extend(data)
            out += buf[:size]
            del buf[: size + 2]

    def _make_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, *, consumed: bool
    ) -> HostileRequest:
        m = MARKER_RE.search(body)
        req = HostileRequest(
            method=method,
            path=path,
            headers=headers,
            body=body,
            conn_id=self.id,
            seq_on_conn=self.requests,
            case=m.group(1).decode() if m else None,
            consumed=consumed,
        )
        self.requests += 1
        self.server._record(req)
        return req

    def request_from_peek(self, data: bytes) -> Optional[HostileRequest]:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return None
        try:
            method, path, headers = _parse_head(data[:end])
        except _BadRequest:
            return None
        return self._make_request(method, path, headers, data[end + 4 :], consumed=False)


# --------------------------------------------------------------------------- behaviours

# Each case: async (conn, request) -> keep the connection open for another request?
Behaviour = Callable[[_Conn, HostileRequest], Awaitable[bool]]


async def good(conn: _Conn, req: HostileRequest) -> bool:
    if req.method == "GET":
        body = json.dumps({"object": "list", "data": [{"id": "hostile-model", "object": "model"}]})
        payload = body.encode()
    else:
        payload = completion_body(req)
    keep = req.headers.get("connection", "").lower() != "close"
    return await conn.send(json_response(payload, keep_alive=keep)) and keep


BAD_BYTE_SENTINEL = "@@BYTE_FF@@"


async def bad_utf8_content(conn: _Conn, req: HostileRequest) -> bool:
    # Content {"a": "x<0xff>y"}: the JSON envelope is fine, one raw 0xff sits in the string.
    body = completion_body(req, '{"a": "x' + BAD_BYTE_SENTINEL + 'y"}')
    body = body.replace(BAD_BYTE_SENTINEL.encode(), b"\xff")
    return await conn.send(json_response(body))


BAD_UTF8_BODY = b"\xff\xfe\x80 not utf-8 \xc3\x28 \xed\xa0\x80 \xf8\x88\x80\x80\x80 \xc0\xaf"


async def bad_utf8_body(conn: _Conn, req: HostileRequest) -> bool:
    return await conn.send(json_response(BAD_UTF8_BODY))


GZIP_CONTENT = '{"enc": "gzip"}'
DEFLATE_CONTENT = '{"enc": "deflate"}'


async def gzip_encoded(conn: _Conn, req: HostileRequest) -> bool:
    body = gzip.compress(completion_body(req, GZIP_CONTENT))
    return await conn.send(json_response(body, extra=[("Content-Encoding", "gzip")]))


async def deflate_encoded(conn: _Conn, req: HostileRequest) -> bool:
    body = zlib.compress(completion_body(req, DEFLATE_CONTENT))  # HTTP "deflate" is zlib format
    return await conn.send(json_response(body, extra=[("Content-Encoding", "deflate")]))


async def gzip_without_header(conn: _Conn, req: HostileRequest) -> bool:
    return await conn.send(json_response(gzip.compress(completion_body(req, GZIP_CONTENT))))


async def gzip_header_plain_body(conn: _Conn, req: HostileRequest) -> bool:
    body = completion_body(req)
    return await conn.send(json_response(body, extra=[("Content-Encoding", "gzip")]))


async def slowloris(conn: _Conn, req: HostileRequest) -> bool:
    body = completion_body(req)
    head = response_head(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    if not await conn.send(head):
        return False
    for i in range(len(body)):
        await asyncio.sleep(SLOWLORIS_GAP)
        if not await conn.send(body[i : i + 1]):
            return False
    return True


async def huge_header(conn: _Conn, req: HostileRequest) -> bool:
    body = completion_body(req)
    head = response_head(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("X-Huge", "h" * HUGE_HEADER_BYTES),
            ("Content-Length", str(len(body))),
        ],
    )
    await conn.send(head + body)
    return False


async def many_headers(conn: _Conn, req: HostileRequest) -> bool:
    body = completion_body(req)
    # "X-Filler-00001: vvvvvvvvvvvvvv\r\n" is 32 bytes; 5000 of them ~160 kB in all.
    filler = [(f"X-Filler-{i:05d}", "v" * 14) for i in range(MANY_HEADERS)]
    head = response_head(
        "200 OK",
        [("Content-Type", "application/json"), *filler, ("Content-Length", str(len(body)))],
    )
    return await conn.send(head + body)


async def http10_close(conn: _Conn, req: HostileRequest) -> bool:
    head = response_head(
        "200 OK",
        [("Content-Type", "application/json"), ("Connection", "close")],
        version="HTTP/1.0",
    )
    if await conn.send(head + completion_body(req)):
        conn.finish()
    return False


async def never_answer(conn: _Conn, req: HostileRequest) -> bool:
    await conn.hold()
    return False


async def _reset_after(conn: _Conn, data: bytes) -> bool:
    if data and not await conn.send(data):
        return False
    if data:
        await asyncio.sleep(RESET_SETTLE)
    conn.reset()
    return False


async def reset_accept(conn: _Conn, req: HostileRequest) -> bool:
    # Normally handled in the connection loop, before the request is read (see _serve).
    conn.reset()
    return False


async def reset_after_request(conn: _Conn, req: HostileRequest) -> bool:
    return await _reset_after(conn, b"")


async def reset_after_status(conn: _Conn, req: HostileRequest) -> bool:
    return await _reset_after(conn, b"HTTP/1.1 200 OK\r\n")


def _full_response(req: HostileRequest) -> tuple[bytes, bytes]:
    body = completion_body(req)
    head = response_head(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return head, body


async def reset_after_headers(conn: _Conn, req: HostileRequest) -> bool:
    head, _ = _full_response(req)
    return await _reset_after(conn, head)


async def reset_mid_body(conn: _Conn, req: HostileRequest) -> bool:
    head, body = _full_response(req)
    return await _reset_after(conn, head + body[: len(body) // 2])


REDIRECT_REASONS = {301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect",
                    308: "Permanent Redirect"}


def _redirect(code: int) -> Behaviour:
    async def redirect(conn: _Conn, req: HostileRequest) -> bool:
        target = conn.server.redirect_to or "http://127.0.0.1:9"
        body = b'{"detail": "moved"}'
        extra = [("Location", target.rstrip("/") + "/v1/chat/completions")]
        return await conn.send(json_response(body, f"{code} {REDIRECT_REASONS[code]}", extra))

    redirect.__name__ = f"redirect_{code}"
    return redirect


async def chunked_truncated(conn: _Conn, req: HostileRequest) -> bool:
    body = completion_body(req)
    head = response_head(
        "200 OK", [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    )
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:40], body[40:80]))
    if await conn.send(head + chunks):  # ... and never the terminating 0 chunk
        await asyncio.sleep(RESET_SETTLE)
        conn.finish()
    return False


async def short_body(conn: _Conn, req: HostileRequest) -> bool:
    head, body = _full_response(req)
    if await conn.send(head + body[: len(body) // 2]):
        await asyncio.sleep(RESET_SETTLE)
        conn.finish()
    return False


CASES: dict[str, Behaviour] = {
    "bad_utf8_content": bad_utf8_content,
    "bad_utf8_body": bad_utf8_body,
    "gzip": gzip_encoded,
    "deflate": deflate_encoded,
    "gzip_no_header": gzip_without_header,
    "gzip_header_plain_body": gzip_header_plain_body,
    "slowloris": slowloris,
    "huge_header": huge_header,
    "many_headers": many_headers,
    "http10_close": http10_close,
    "never_answer": never_answer,
    "reset_accept": reset_accept,
    "reset_after_request": reset_after_request,
    "reset_after_status": reset_after_status,
    "reset_after_headers": reset_after_headers,
    "reset_mid_body": reset_mid_body,
    **{f"redirect_{code}": _redirect(code) for code in REDIRECT_REASONS},
    "chunked_truncated": chunked_truncated,
    "short_body": short_body,
}


# --------------------------------------------------------------------------- server


class HostileServer:
    """See the module docstring. ``honour_markers=False`` makes a plain server that
    answers every request well and records it (a redirect target that counts)."""

    def __init__(self, *, honour_markers: bool = True, max_lifetime: float = 120.0) -> None:
        self.honour_markers = honour_markers
        self.max_lifetime = max_lifetime
        self.redirect_to: Optional[str] = None
        self._lock = threading.Lock()
        self._requests: list[HostileRequest] = []
        self._errors: list[BaseException] = []
        self._accepted = 0
        self._conn_ids = itertools.count(1)
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_evt: Optional[asyncio.Event] = None
        self._listener: Optional[socket.socket] = None
        self._port: Optional[int] = None
        self._ready = threading.Event()
        self.stopped_by_itself = False

    # ---- public ----

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[HostileRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, text: str) -> list[HostileRequest]:
        """Requests whose body contains `text` (a marker, or any tag)."""
        needle = text.encode()
        return [r for r in self.requests if needle in r.body]

    def count(self, case: str) -> int:
        return sum(1 for r in self.requests if r.case == case)

    @property
    def connections_accepted(self) -> int:
        with self._lock:
            return self._accepted

    @property
    def errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._errors)

    def start(self) -> HostileServer:
        if self._thread is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1024)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._thread_main, name="hostile-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        loop, evt = self._loop, self._stop_evt
        if loop is not None and evt is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed: stopped by itself
                loop.call_soon_threadsafe(evt.set)
        thread.join(10)
        self._thread = None
        if self._listener is not None:  # normally closed by the thread already
            self._listener.close()
            self._listener = None

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- internals ----

    def _record(self, req: HostileRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as e:  # never let anything escape the thread
            self._error(e)
        finally:
            loop.close()
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_evt = asyncio.Event()
        socks: set[socket.socket] = set()
        tasks: set[asyncio.Task[None]] = set()
        accept_task = asyncio.ensure_future(self._accept_loop(socks, tasks))
        self._ready.set()
        try:
            await asyncio.wait_for(self._stop_evt.wait(), self.max_lifetime)
        except asyncio.TimeoutError:
            self.stopped_by_itself = True
        accept_task.cancel()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(accept_task, *tasks, return_exceptions=True)
        for s in socks:  # accepted but never handed to a handler
            s.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _accept_loop(self, socks: set[socket.socket], tasks: set[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            try:
                sock, _ = await loop.sock_accept(self._listener)
            except OSError as e:  # EMFILE and friends: keep it, back off
                self._error(e)
                await asyncio.sleep(0.05)
                continue
            socks.add(sock)
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._accepted += 1
            conn = _Conn(self, sock, next(self._conn_ids))
            task = asyncio.ensure_future(self._serve(conn, socks))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _serve(self, conn: _Conn, socks: set[socket.socket]) -> None:
        try:
            while not conn.closed:
                if not conn.buf and self.honour_markers:
                    peeked = await conn.peek()
                    if peeked is None:
                        return
                    m = MARKER_RE.search(peeked)
                    if m is not None and m.group(1) == b"reset_accept":
                        conn.request_from_peek(peeked)
                        conn.reset()  # the request is still unread in the kernel
                        return
                try:
                    req = await conn.read_request()
                except _BadRequest as e:
                    body = json.dumps({"detail": str(e)}).encode()
                    await conn.send(json_response(body, "400 Bad Request", keep_alive=False))
                    conn.finish()
                    return
                if req is None:
                    return
                behaviour = good
                if self.honour_markers and req.case is not None:
                    behaviour = CASES.get(req.case, good)
                if not await behaviour(conn, req):
                    return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in this helper: keep it for the fixture to report
            self._error(e)
        finally:
            conn.close()
            socks.discard(conn.sock)
