"""Hostile server replies: each must end in its exact ExtractionAttempt, and must not
disturb the other calls in flight on the same client.

Every test talks to `hostile_server.HostileServer` over real sockets. The hostile call
carries ``HOSTILE:<case>`` in its document_text; ~20 good calls run beside it on the
same client in one ``asyncio.gather``, and all of them must succeed with ``{"ok": True}``.
The gather is guarded by ``asyncio.wait_for(..., HANG_GUARD)`` so a hang fails the test
instead of the suite. Timeouts are small so the module runs in seconds; they are hang
guards and outcomes, never wall-clock assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from hostile_server import DEFLATE_CONTENT, GZIP_CONTENT, HostileServer, marker
from llmbridge import ExtractionAttempt, VLLMClient

HANG_GUARD = 30.0
BYSTANDERS = 20
PROMPTS = {"system": "Extract the fields as JSON.", "user": "Document:\n{document_text}"}
SECRET = "sk-secret-123"
FAST: dict[str, Any] = {
    "timeout": 2.0,
    "max_retries": 0,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
}
RESET_PHASES = [
    "reset_accept",
    "reset_after_request",
    "reset_after_status",
    "reset_after_headers",
    "reset_mid_body",
]
REDIRECT_CODES = [301, 302, 307, 308]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server
    assert not server.errors, server.errors
    assert not server.stopped_by_itself


@pytest.fixture
def target(hostile: HostileServer) -> Iterator[HostileServer]:
    """A plain second server; the hostile server's redirects point at it."""
    with HostileServer(honour_markers=False) as server:
        hostile.redirect_to = server.url
        yield server
    assert not server.errors, server.errors


@contextlib.contextmanager
def make_client(server: HostileServer, **overrides: Any) -> Iterator[VLLMClient]:
    fields: dict[str, Any] = {**FAST, "base_url": server.url + "/v1", "model": "hostile-model"}
    fields.update(overrides)
    client = VLLMClient(max_connections=64, **fields)
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------- helpers


def _in_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Run a blocking call in a daemon thread; its result as a future of this loop.
    (Not the default executor: asyncio.run would wait forever for a hung call.)"""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def work() -> None:
        try:
            outcome = (True, fn(*args))
        except BaseException as e:  # handed to the test
            outcome = (False, e)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the test already failed
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name="call_llm_sync", daemon=True).start()
    return fut


def run_guarded(coro: Any) -> Any:
    try:
        return asyncio.run(asyncio.wait_for(coro, HANG_GUARD))
    except asyncio.TimeoutError:
        pytest.fail(f"calls still pending after {HANG_GUARD} s (hang)")


def assert_good(goods: list[ExtractionAttempt]) -> None:
    bad = [a for a in goods if not (a.success and a.data == {"ok": True})]
    assert not bad, (
        f"{len(bad)} of {len(goods)} good calls failed, e.g. {bad[0]!r} {bad[0].error!r}"
    )


def run_with_bystanders(
    client: VLLMClient,
    documents: list[str],
    *,
    bystanders: int = BYSTANDERS,
    sync: bool = False,
) -> list[ExtractionAttempt]:
    """The hostile calls (one per document) and `bystanders` good calls in one gather on
    the same client. Asserts every good call succeeded; returns the hostile attempts."""

    async def main() -> list[ExtractionAttempt]:
        hostile_calls = [
            _in_thread(client.call_llm_sync, PROMPTS, None, doc)
            if sync
            else client.call_llm(PROMPTS, None, doc)
            for doc in documents
        ]
        good_calls = [
            client.call_llm(PROMPTS, None, f"good document {i}") for i in range(bystanders)
        ]
        return list(await asyncio.gather(*hostile_calls, *good_calls))

    results = run_guarded(main())
    assert len(results) == len(documents) + bystanders
    assert_good(results[len(documents) :])
    return results[: len(documents)]


def run_case(client: VLLMClient, case: str, **kwargs: Any) -> ExtractionAttempt:
    (attempt,) = run_with_bystanders(client, [marker(case)], **kwargs)
    assert isinstance(attempt, ExtractionAttempt)
    return attempt


def warm_up(client: VLLMClient, n: int = 40) -> None:
    """Fill the client's pool with idle keep-alive connections."""

    async def main() -> list[ExtractionAttempt]:
        calls = [client.call_llm(PROMPTS, None, f"warm {i}") for i in range(n)]
        return list(await asyncio.gather(*calls))

    assert_good(run_guarded(main()))


# --------------------------------------------------------------------------- expected outcomes


def expect_success(data: Any) -> Callable[[ExtractionAttempt], None]:
    def check(a: ExtractionAttempt) -> None:
        assert a.success, (a, a.error)
        assert a.error is None
        assert a.data == data

    return check


def expect_error(
    prefix: str, *, retryable: bool, exact: bool = False
) -> Callable[[ExtractionAttempt], None]:
    def check(a: ExtractionAttempt) -> None:
        assert not a.success, a
        assert isinstance(a.error, str), a
        if exact:
            assert a.error == prefix, a.error
        else:
            assert a.error.startswith(prefix), a.error
        assert a.retryable is retryable, (a, a.error)

    return check


def check_bad_utf8_content(a: ExtractionAttempt) -> None:
    assert a.success, (a, a.error)
    assert a.data == {"a": "x\ufffdy"}
    assert a.repaired is True
    assert isinstance(a.raw_response, str)
    assert "\ufffd" in a.raw_response


def check_bad_utf8_body(a: ExtractionAttempt) -> None:
    expect_error("invalid_json: response body is not JSON", retryable=True)(a)
    assert isinstance(a.raw_response, str)


def check_huge_header(a: ExtractionAttempt) -> None:
    expect_error("connection_error: response header too large", retryable=True)(a)
    assert "out of memory" not in a.error.lower()


EXPECT: dict[str, Callable[[ExtractionAttempt], None]] = {
    "bad_utf8_content": check_bad_utf8_content,
    "bad_utf8_body": check_bad_utf8_body,
    "gzip": expect_success({"enc": "gzip"}),
    "deflate": expect_success({"enc": "deflate"}),
    "gzip_no_header": expect_error("invalid_json:", retryable=True),
    "gzip_header_plain_body": expect_error("connection_error:", retryable=True),
    "slowloris": expect_error("timeout", retryable=True, exact=True),
    "huge_header": check_huge_header,
    "many_headers": expect_success({"ok": True}),
    "http10_close": expect_success({"ok": True}),
    "never_answer": expect_error("timeout", retryable=True, exact=True),
    **{phase: expect_error("connection_error:", retryable=True) for phase in RESET_PHASES},
    **{
        f"redirect_{c}": expect_error(f"http_{c}", retryable=False, exact=True)
        for c in REDIRECT_CODES
    },
    "chunked_truncated": expect_error("connection_error:", retryable=True),
    "short_body": expect_error("connection_error:", retryable=True),
}


def test_the_expectations_cover_every_case() -> None:
    from hostile_server import CASES

    assert set(EXPECT) == set(CASES)
    assert GZIP_CONTENT == '{"enc": "gzip"}' and DEFLATE_CONTENT == '{"enc": "deflate"}'


# --------------------------------------------------------------------------- invalid UTF-8


def test_invalid_utf8_inside_content_is_replaced(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "bad_utf8_content")
    check_bad_utf8_content(attempt)


def test_invalid_utf8_inside_content_sync(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "bad_utf8_content", sync=True)
    check_bad_utf8_content(attempt)


def test_invalid_utf8_whole_body_is_invalid_json(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "bad_utf8_body")
    check_bad_utf8_body(attempt)


def test_invalid_utf8_whole_body_sync(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "bad_utf8_body", sync=True)
    check_bad_utf8_body(attempt)


# --------------------------------------------------------------------------- content encoding


@pytest.mark.parametrize("case", ["gzip", "deflate"])
def test_compressed_body_with_content_encoding_is_decoded(
    hostile: HostileServer, case: str
) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, case)
    EXPECT[case](attempt)
    (request,) = hostile.requests_for(marker(case))
    assert "accept-encoding" in request.headers, request.headers


def test_gzip_body_without_content_encoding_is_invalid_json(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "gzip_no_header")
    EXPECT["gzip_no_header"](attempt)


def test_content_encoding_gzip_on_a_plain_body_is_a_connection_error(
    hostile: HostileServer,
) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "gzip_header_plain_body")
    EXPECT["gzip_header_plain_body"](attempt)


# --------------------------------------------------------------------------- slow, big, silent


def test_slowloris_body_times_out(hostile: HostileServer) -> None:
    with make_client(hostile, timeout=1.0) as client:
        attempt = run_case(client, "slowloris")
    EXPECT["slowloris"](attempt)


def test_one_megabyte_header_line(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "huge_header")
    check_huge_header(attempt)


def test_five_thousand_small_headers(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "many_headers")
    EXPECT["many_headers"](attempt)


def test_http10_close_delimited_body(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "http10_close")
    EXPECT["http10_close"](attempt)


def test_accept_and_never_answer_times_out_once(hostile: HostileServer) -> None:
    with make_client(hostile, timeout=1.0, max_retries=0) as client:
        attempt = run_case(client, "never_answer")
    EXPECT["never_answer"](attempt)
    assert attempt.attempts == 1
    assert hostile.count("never_answer") == 1


# --------------------------------------------------------------------------- resets


@pytest.mark.parametrize("pool", ["cold", "warm"])
@pytest.mark.parametrize("phase", RESET_PHASES)
def test_reset_is_a_connection_error_and_never_resent_silently(
    hostile: HostileServer, phase: str, pool: str
) -> None:
    with make_client(hostile, max_retries=2) as client:
        if pool == "warm":
            warm_up(client)
        attempt = run_case(client, phase)
    received = hostile.requests_for(marker(phase))
    if pool == "warm":
        # precondition of the variant: the hostile request went over a pooled connection
        assert received and received[0].seq_on_conn > 0, received[:1]
    EXPECT[phase](attempt)
    # the client's own retries, and nothing more: libcurl must not resend on top of them
    assert len(received) == attempt.attempts, (len(received), attempt)
    assert attempt.attempts == 3


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("code", REDIRECT_CODES)
def test_redirect_is_not_followed(hostile: HostileServer, target: HostileServer, code: int) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, f"redirect_{code}")
    EXPECT[f"redirect_{code}"](attempt)
    assert target.requests == []
    assert target.connections_accepted == 0


@pytest.mark.parametrize("code", REDIRECT_CODES)
def test_redirect_never_carries_the_api_key_away(
    hostile: HostileServer, target: HostileServer, code: int
) -> None:
    with make_client(hostile, api_key=SECRET) as client:
        attempt = run_case(client, f"redirect_{code}")
    EXPECT[f"redirect_{code}"](attempt)
    (request,) = hostile.requests_for(marker(f"redirect_{code}"))
    # the key was sent, to the host it belongs to
    assert request.headers.get("authorization") == f"Bearer {SECRET}"
    assert target.requests == []
    assert all("authorization" not in r.headers for r in target.requests)
    for text in (repr(attempt), attempt.error, attempt.raw_response, repr(attempt.to_dict())):
        assert SECRET not in (text or "")


# --------------------------------------------------------------------------- cut bodies


def test_truncated_chunked_body_is_a_connection_error(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "chunked_truncated")
    EXPECT["chunked_truncated"](attempt)


def test_body_shorter_than_content_length_is_a_connection_error(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "short_body")
    EXPECT["short_body"](attempt)


# --------------------------------------------------------------------------- mixtures


def test_one_bad_reply_among_200_good_calls(hostile: HostileServer) -> None:
    with make_client(hostile) as client:
        attempt = run_case(client, "bad_utf8_body", bystanders=200)
    check_bad_utf8_body(attempt)
    assert len(hostile.requests) == 201


def test_fifty_mixed_hostile_calls_complete_with_one_attempt_each(
    hostile: HostileServer, target: HostileServer
) -> None:
    cases = sorted(EXPECT)
    plan = [(f"#call-{i:02d}#", cases[i % len(cases)]) for i in range(50)]
    with make_client(hostile, timeout=2.0, max_retries=0) as client:
        attempts = run_with_bystanders(client, [marker(case, tag) for tag, case in plan])
    failures = []
    for (tag, case), attempt in zip(plan, attempts):
        try:
            EXPECT[case](attempt)
            assert attempt.attempts == 1, attempt
            sent = len(hostile.requests_for(tag))
            assert sent == 1, f"the server received {sent} requests for one try"
        except AssertionError as e:
            failures.append(f"{case} {tag}: {e}".splitlines()[0])
    assert not failures, "\n".join(failures)
    assert target.requests == []
