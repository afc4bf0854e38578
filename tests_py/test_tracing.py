"""OpenTelemetry tracing (llmbridge.instrument): one GenAI-convention span per logical
call, one ``llmbridge.try`` event per HTTP try, against the bundled mock server, with the
SDK's InMemorySpanExporter behind a TracerProvider passed to instrument(). Also the
per-try records themselves (``.tries``), content capture (off unless asked), the
LLMBRIDGE_OTEL switch and a missing opentelemetry (in subprocesses), and tracers or
exporters that fail. No wall-clock assertions: times are only checked to be ordered."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import llmbridge
import pytest
from generation_helpers import (
    MESSAGES,
    MODEL,
    PROVIDERS,
    free_closed_port,
    invoke,
    make_client,
)
from llmbridge import OllamaClient, TryRecord, VLLMClient
from llmbridge.testing import MockLLMServer, Reply

trace = pytest.importorskip("opentelemetry.trace")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

MODES = ["sync", "async"]
PROMPTS = {"system": "You extract names.", "user": "Document:\n{document_text}\nAnswer in JSON."}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
VISION = "vis-1"


class Spans:
    """The spans a test's calls produced, through a TracerProvider given to instrument()."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def one(self) -> Any:
        spans = self.finished()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]


@pytest.fixture
def spans() -> Iterator[Spans]:
    s = Spans()
    llmbridge.instrument(tracer_provider=s.provider, capture_content=False)
    try:
        yield s
    finally:
        llmbridge.uninstrument()
        s.provider.shutdown()


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer(vision_models=[VISION]) as s:
        yield s


def try_events(span: Any) -> list[Any]:
    return [e for e in span.events if e.name == "llmbridge.try"]


def every_recorded_value(span_list: list[Any]) -> list[str]:
    """Every attribute value and event attribute value of the spans, and their names, as
    text: what an exporter would ship."""
    out: list[str] = []
    for s in span_list:
        out.append(s.name)
        out.append(str(s.status.description))
        for value in s.attributes.values():
            out.append(json.dumps(value, default=str) if not isinstance(value, str) else value)
        for e in s.events:
            out.append(e.name)
            for value in e.attributes.values():
                out.append(value if isinstance(value, str) else json.dumps(value, default=str))
    return out


# The call kinds: (method, args, kwargs, operation, streamed).
CALLS = [
    ("call_llm", (PROMPTS, SCHEMA, "Ada Lovelace"), {}, "chat", False),
    ("chat", (MESSAGES,), {}, "chat", False),
    ("generate", ("Say hi",), {"system": "Be brief."}, "chat", False),
    ("complete", ("Once upon",), {}, "text_completion", False),
    ("embed", (["one", "two"],), {}, "embeddings", False),
    ("chat_stream", (MESSAGES,), {}, "chat", True),
    ("complete_stream", ("Once upon",), {}, "text_completion", True),
]


def run_call(
    client: Any, mode: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if method == "call_llm":
        if mode == "sync":
            return client.call_llm_sync(*args)

        async def go() -> Any:
            return await client.call_llm(*args)

        return asyncio.run(go())
    return invoke(client, mode, method, *args, **kwargs)


# ---------------------------------------------------------------- a span per call kind


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("method", "args", "kwargs", "operation", "streamed"), CALLS,
                         ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("cls", PROVIDERS)
def test_each_call_kind_is_one_client_span(
    spans: Spans, server: MockLLMServer, cls: type, mode: str, method: str,
    args: tuple[Any, ...], kwargs: dict[str, Any], operation: str, streamed: bool,
) -> None:
    # follow_schema: call_llm's answer must match SCHEMA (answers are checked against it).
    server.set_default(Reply(prompt_tokens=11, completion_tokens=7, model="served-1",
                             follow_schema=True))
    with make_client(server, cls) as client:
        result = run_call(client, mode, method, args, kwargs)
        provider = client.provider
    last = result[-1] if streamed else result
    assert getattr(last, "success", True) and not isinstance(last, llmbridge.StreamError), last
    span = spans.one()
    assert span.name == f"{operation} {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    a = span.attributes
    assert a["gen_ai.operation.name"] == operation
    assert a["gen_ai.provider.name"] == provider
    assert a["gen_ai.system"] == provider
    assert a["gen_ai.request.model"] == MODEL
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == server.port
    assert "error.type" not in a
    if operation == "embeddings":
        assert a.get("gen_ai.usage.input_tokens") == last.prompt_tokens
        assert a["gen_ai.response.model"] == last.model
        assert "gen_ai.usage.output_tokens" not in a
        assert "gen_ai.response.finish_reasons" not in a
    else:
        assert a["gen_ai.response.model"] == "served-1"
        assert a["gen_ai.usage.input_tokens"] == 11
        assert a["gen_ai.usage.output_tokens"] == 7
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
    if streamed:
        assert a["gen_ai.request.stream"] is True
        assert a["gen_ai.response.time_to_first_chunk"] >= 0
    else:
        assert "gen_ai.request.stream" not in a
        assert a["llmbridge.request_id"] == last.request_id
    if method == "call_llm":
        assert a["gen_ai.output.type"] == "json"
    (event,) = try_events(span)
    assert event.attributes["llmbridge.try.attempt"] == 1
    assert event.attributes["http.response.status_code"] == 200
    assert event.attributes["llmbridge.try.replica"].startswith(f"http://127.0.0.1:{server.port}")
    assert event.attributes["llmbridge.try.duration_ms"] >= 0
    assert "error.type" not in event.attributes
    assert span.start_time <= event.timestamp <= span.end_time


@pytest.mark.parametrize("mode", MODES)
def test_caption_and_embed_image_are_chat_and_embeddings_spans(
    spans: Spans, server: MockLLMServer, mode: str
) -> None:
    with make_client(server, VLLMClient, vision_model=VISION) as client:
        assert invoke(client, mode, "caption", PNG).success
        assert invoke(client, mode, "embed_image", PNG, model="emb-1").success
    caption, embed_image = spans.finished()
    assert caption.name == f"chat {VISION}"
    assert caption.attributes["gen_ai.request.model"] == VISION
    assert embed_image.name == "embeddings emb-1"
    assert embed_image.attributes["gen_ai.operation.name"] == "embeddings"


def test_the_embedding_model_names_the_embed_span(spans: Spans, server: MockLLMServer) -> None:
    with make_client(server, VLLMClient, embedding_model="emb-cfg") as client:
        assert client.embed_sync("x", dimensions=4).success
        assert client.embed_sync("x", model="emb-arg").success
    configured, given = spans.finished()
    assert configured.name == "embeddings emb-cfg"
    assert configured.attributes["gen_ai.embeddings.dimension.count"] == 4
    assert given.name == "embeddings emb-arg"


def test_request_parameters_are_recorded_when_set(spans: Spans, server: MockLLMServer) -> None:
    server.set_default(Reply.matching_schema())
    with make_client(server, VLLMClient, max_tokens=321, temperature=0.25) as client:
        assert client.chat_sync(MESSAGES, max_tokens=12, temperature=0.5, top_p=0.9, seed=7,
                                stop=["END", "STOP"], json_schema=SCHEMA, model="other").success
        assert client.chat_sync(MESSAGES).success
    explicit, defaults = spans.finished()
    a = explicit.attributes
    assert explicit.name == "chat other"
    assert a["gen_ai.request.model"] == "other"
    assert a["gen_ai.request.max_tokens"] == 12
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.seed"] == 7
    assert a["gen_ai.request.stop_sequences"] == ("END", "STOP")
    assert a["gen_ai.output.type"] == "json"
    # Unset options: the config's max_tokens and temperature are what was sent.
    d = defaults.attributes
    assert d["gen_ai.request.max_tokens"] == 321
    assert d["gen_ai.request.temperature"] == 0.25
    for key in ("gen_ai.request.top_p", "gen_ai.request.seed", "gen_ai.request.stop_sequences",
                "gen_ai.output.type"):
        assert key not in d


# ---------------------------------------------------------------- tries and failures


@pytest.mark.parametrize("mode", MODES)
def test_a_500_then_a_success_is_one_span_with_two_try_events(
    spans: Spans, server: MockLLMServer, mode: str
) -> None:
    server.enqueue(Reply(status=500), Reply.json({"name": "Ada"}))
    with make_client(server) as client:
        attempt = run_call(client, mode, "call_llm", (PROMPTS, SCHEMA, "Ada"), {})
    assert attempt.success and attempt.attempts == 2
    span = spans.one()
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    first, second = try_events(span)
    assert first.attributes["llmbridge.try.attempt"] == 1
    assert second.attributes["llmbridge.try.attempt"] == 2
    assert first.attributes["http.response.status_code"] == 500
    assert first.attributes["error.type"] == "http_500"
    assert second.attributes["http.response.status_code"] == 200
    assert "error.type" not in second.attributes
    assert span.start_time <= first.timestamp <= second.timestamp <= span.end_time
    # The events are the result's own records.
    assert [t.status_code for t in attempt.tries] == [500, 200]
    assert [int(t.start_ms * 1e6) for t in attempt.tries] == [first.timestamp, second.timestamp]


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_call_has_error_type_and_status_error(
    spans: Spans, server: MockLLMServer, mode: str
) -> None:
    server.set_default(Reply(status=503))
    with make_client(server, max_retries=1) as client:
        r = invoke(client, mode, "chat", MESSAGES)
    assert r.error == "http_503"
    span = spans.one()
    assert span.attributes["error.type"] == "http_503"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "http_503"
    assert [e.attributes["http.response.status_code"] for e in try_events(span)] == [503, 503]


def test_connection_errors_and_timeouts_name_their_kind_not_their_message(
    spans: Spans, server: MockLLMServer
) -> None:
    with make_client(f"http://127.0.0.1:{free_closed_port()}/v1", max_retries=1) as client:
        r = client.chat_sync(MESSAGES)
    assert r.error.startswith("connection_error: ")
    server.set_default(Reply(delay=2.0))
    with make_client(server, timeout=0.2, max_retries=0) as client:
        assert client.chat_sync(MESSAGES).error == "timeout"
    refused, timed_out = spans.finished()
    assert refused.attributes["error.type"] == "connection_error"
    assert refused.status.description == "connection_error"
    events = try_events(refused)
    assert len(events) == 2
    for e in events:
        assert e.attributes["error.type"] == "connection_error"
        assert "http.response.status_code" not in e.attributes
    assert timed_out.attributes["error.type"] == "timeout"
    assert try_events(timed_out)[0].attributes["error.type"] == "timeout"


def test_a_cancelled_call_ends_its_span_as_cancelled(spans: Spans, server: MockLLMServer) -> None:
    server.set_default(Reply(delay=5.0))
    with make_client(server) as client:

        async def main() -> None:
            task = asyncio.ensure_future(client.call_llm(PROMPTS, SCHEMA, "Ada"))
            assert await asyncio.to_thread(server.wait_for_requests, 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
    span = spans.one()
    assert span.attributes["error.type"] == "cancelled"
    assert span.status.status_code is StatusCode.ERROR


def test_a_call_cut_by_close_is_cancelled(spans: Spans, server: MockLLMServer) -> None:
    server.set_default(Reply(delay=5.0))
    with make_client(server) as client:

        async def main() -> Any:
            task = asyncio.ensure_future(client.chat(MESSAGES))
            assert await asyncio.to_thread(server.wait_for_requests, 1)
            client.close()
            return await task

        r = asyncio.run(main())
    assert r.error == "cancelled"
    span = spans.one()
    assert span.attributes["error.type"] == "cancelled"
    (event,) = try_events(span)
    assert event.attributes["error.type"] == "cancelled"


def test_the_replica_that_answered_is_the_span_server(spans: Spans, server: MockLLMServer) -> None:
    dead = f"http://127.0.0.1:{free_closed_port()}/v1"
    with make_client(f"{dead},{server.url}/v1", max_retries=2) as client:
        # Ties are broken at random: with 30 calls, a first try on the dead replica is
        # all but certain (it is ejected after its first failures).
        for _ in range(30):
            assert client.chat_sync(MESSAGES).success
    failovers = 0
    for span in spans.finished():
        assert span.attributes["server.port"] == server.port
        events = try_events(span)
        assert events[-1].attributes["llmbridge.try.replica"] == server.url
        if len(events) == 2:  # the first try went to the dead replica (until it is ejected)
            failovers += 1
            assert events[0].attributes["llmbridge.try.replica"] == dead[: -len("/v1")]
            assert events[0].attributes["error.type"] == "connection_error"
    assert failovers >= 1


# ---------------------------------------------------------------- streams


@pytest.mark.parametrize("cls", [VLLMClient, OllamaClient])
def test_a_stream_span_ends_when_the_stream_ends(
    spans: Spans, server: MockLLMServer, cls: type
) -> None:
    server.set_default(Reply(tokens=["a", "b", "c"], prompt_tokens=4, completion_tokens=3))
    with make_client(server, cls) as client, client.chat_stream_sync(MESSAGES) as stream:
        first = next(stream)
        assert type(first) is llmbridge.StreamStarted
        assert spans.finished() == []  # still open while the stream runs
        events = list(stream)
        assert type(events[-1]) is llmbridge.StreamEnd
        span = spans.one()
    assert span.attributes["gen_ai.usage.output_tokens"] == 3
    assert span.attributes["gen_ai.request.stream"] is True
    assert [e.attributes["http.response.status_code"] for e in try_events(span)] == [200]
    assert events[-1].tries[0].status_code == 200


def test_a_stream_retried_before_its_first_byte_has_both_tries(
    spans: Spans, server: MockLLMServer
) -> None:
    server.enqueue(Reply(status=503), Reply(tokens=["x"]))

    async def main() -> list[Any]:
        with make_client(server) as client:
            async with client.chat_stream(MESSAGES) as stream:
                return [e async for e in stream]

    events = asyncio.run(main())
    assert type(events[-1]) is llmbridge.StreamEnd
    span = spans.one()
    statuses = [e.attributes["http.response.status_code"] for e in try_events(span)]
    assert statuses == [503, 200]


def test_a_failed_stream_has_error_type(spans: Spans, server: MockLLMServer) -> None:
    server.set_default(Reply(status=500))
    with make_client(server, max_retries=1) as client, client.complete_stream_sync("x") as stream:
        events = list(stream)
    assert type(events[-1]) is llmbridge.StreamError
    span = spans.one()
    assert span.name == f"text_completion {MODEL}"
    assert span.attributes["error.type"] == "http_500"
    assert span.status.status_code is StatusCode.ERROR
    assert len(try_events(span)) == 2 == len(events[-1].tries)


@pytest.mark.parametrize("how", ["close", "break", "task_cancel"])
def test_a_stream_left_early_ends_its_span_as_cancelled(
    spans: Spans, server: MockLLMServer, how: str
) -> None:
    server.set_default(Reply(tokens=["t"] * 200, chunk_delay=0.02))
    with make_client(server) as client:
        if how == "close":
            stream = client.chat_stream_sync(MESSAGES)
            next(stream)
            stream.close()
        elif how == "break":
            for event in client.chat_stream_sync(MESSAGES):
                if type(event) is llmbridge.Token:
                    break
            del event
        else:

            async def main() -> None:
                async def read() -> None:
                    async for _ in client.chat_stream(MESSAGES):
                        pass

                task = asyncio.ensure_future(read())
                assert await asyncio.to_thread(server.wait_for_requests, 1)
                await asyncio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

            asyncio.run(main())
        import gc

        gc.collect()  # the "break" stream is dropped, not closed
        span = spans.one()
    assert span.attributes["error.type"] == "cancelled"
    assert span.status.status_code is StatusCode.ERROR


# ---------------------------------------------------------------- content


SECRET_KEY = "sk-very-secret-key-0123456789"
SECRET_PROMPT = "PROMPT-TEXT-zebra-41"
SECRET_DOC = "DOCUMENT-TEXT-okapi-97"
SECRET_ANSWER = "ANSWER-TEXT-quokka-12"


def secret_calls(client: Any) -> None:
    """Every call kind, each carrying the secret texts."""
    prompts = {"system": SECRET_PROMPT, "user": "Doc: {document_text}"}
    messages = [{"role": "system", "content": SECRET_PROMPT},
                {"role": "user", "content": SECRET_DOC}]
    assert client.call_llm_sync(prompts, None, SECRET_DOC).success
    assert client.chat_sync(messages).success
    assert client.generate_sync(SECRET_DOC, system=SECRET_PROMPT).success
    assert client.complete_sync(SECRET_PROMPT + SECRET_DOC).success
    assert client.embed_sync([SECRET_PROMPT, SECRET_DOC]).success
    with client.chat_stream_sync(messages) as stream:
        assert type(list(stream)[-1]) is llmbridge.StreamEnd

    async def main() -> None:
        assert (await client.call_llm(prompts, None, SECRET_DOC)).success
        assert (await client.chat(messages)).success

    asyncio.run(main())


@pytest.mark.parametrize("cls", PROVIDERS)
def test_no_prompt_document_answer_or_key_is_recorded_by_default(
    spans: Spans, server: MockLLMServer, cls: type
) -> None:
    server.set_default(Reply.json({"name": SECRET_ANSWER}))
    with make_client(server, cls, api_key=SECRET_KEY) as client:
        secret_calls(client)
    recorded = spans.finished()
    assert len(recorded) == 8
    text = "\n".join(every_recorded_value(recorded))
    for secret in (SECRET_KEY, SECRET_PROMPT, SECRET_DOC, SECRET_ANSWER, "Bearer"):
        assert secret not in text, secret
    for s in recorded:
        assert "gen_ai.input.messages" not in s.attributes
        assert "gen_ai.output.messages" not in s.attributes


def test_a_password_in_the_base_url_is_never_recorded(spans: Spans, server: MockLLMServer) -> None:
    url = f"http://someone:pa55-w0rd-x@127.0.0.1:{server.port}/v1"
    with make_client(url, max_retries=0) as client:
        assert client.chat_sync(MESSAGES).success
    text = "\n".join(every_recorded_value(spans.finished()))
    assert "pa55-w0rd-x" not in text and "someone" not in text
    assert f"127.0.0.1:{server.port}" in text


def test_content_capture_records_messages_and_answers_but_never_the_key(
    server: MockLLMServer,
) -> None:
    s = Spans()
    llmbridge.instrument(tracer_provider=s.provider, capture_content=True)
    try:
        server.set_default(Reply.json({"name": SECRET_ANSWER}))
        with make_client(server, VLLMClient, api_key=SECRET_KEY) as client:
            secret_calls(client)
    finally:
        llmbridge.uninstrument()
    recorded = s.finished()
    text = "\n".join(every_recorded_value(recorded))
    assert SECRET_KEY not in text and "Bearer" not in text
    by_name: dict[str, list[Any]] = {}
    for span in recorded:
        by_name.setdefault(span.attributes["gen_ai.operation.name"], []).append(span)
    call_llm = by_name["chat"][0]
    inputs = json.loads(call_llm.attributes["gen_ai.input.messages"])
    assert inputs == [
        {"role": "system", "parts": [{"type": "text", "content": SECRET_PROMPT}]},
        {"role": "user", "parts": [{"type": "text", "content": f"Doc: {SECRET_DOC}"}]},
    ]
    outputs = json.loads(call_llm.attributes["gen_ai.output.messages"])
    assert outputs[0]["role"] == "assistant"
    assert outputs[0]["finish_reason"] == "stop"
    assert SECRET_ANSWER in outputs[0]["parts"][0]["content"]
    (completion,) = by_name["text_completion"]
    assert json.loads(completion.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": SECRET_PROMPT + SECRET_DOC}]}
    ]
    # Embeddings record no content: the conventions define none for them.
    (embed,) = by_name["embeddings"]
    assert SECRET_DOC not in "\n".join(every_recorded_value([embed]))


def test_images_are_marked_not_copied_when_content_is_captured(server: MockLLMServer) -> None:
    s = Spans()
    llmbridge.instrument(tracer_provider=s.provider, capture_content=True)
    try:
        with make_client(server, VLLMClient, vision_model=VISION) as client:
            assert client.caption_sync(PNG, prompt="What is it?").success
    finally:
        llmbridge.uninstrument()
    inputs = json.loads(s.one().attributes["gen_ai.input.messages"])
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "What is it?"},
                                                 {"type": "image"}]}]


@pytest.mark.parametrize(
    ("value", "captured"),
    [("true", True), ("SPAN_ONLY", True), ("span_and_event", True), ("1", True),
     ("false", False), ("NO_CONTENT", False), ("EVENT_ONLY", False), ("", False)],
)
def test_the_standard_capture_variable_turns_capture_on(
    server: MockLLMServer, monkeypatch: pytest.MonkeyPatch, value: str, captured: bool
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    s = Spans()
    llmbridge.instrument(tracer_provider=s.provider)
    try:
        with make_client(server) as client:
            assert client.chat_sync(MESSAGES).success
    finally:
        llmbridge.uninstrument()
    assert ("gen_ai.input.messages" in s.one().attributes) is captured


# ---------------------------------------------------------------- switching


def test_uninstrument_stops_spans_and_both_switches_are_idempotent(server: MockLLMServer) -> None:
    s = Spans()
    assert not llmbridge.is_instrumented()
    llmbridge.instrument(tracer_provider=s.provider)
    llmbridge.instrument(tracer_provider=s.provider)  # again: still one span per call
    assert llmbridge.is_instrumented()
    with make_client(server) as client:
        assert client.chat_sync(MESSAGES).success
        assert len(s.finished()) == 1
        llmbridge.uninstrument()
        llmbridge.uninstrument()
        assert not llmbridge.is_instrumented()
        assert client.chat_sync(MESSAGES).success
        with client.chat_stream_sync(MESSAGES) as stream:
            list(stream)
    assert len(s.finished()) == 1


def test_instrument_again_switches_the_provider(server: MockLLMServer) -> None:
    a, b = Spans(), Spans()
    try:
        llmbridge.instrument(tracer_provider=a.provider)
        with make_client(server) as client:
            client.chat_sync(MESSAGES)
            llmbridge.instrument(tracer_provider=b.provider)
            client.chat_sync(MESSAGES)
    finally:
        llmbridge.uninstrument()
    assert len(a.finished()) == 1 and len(b.finished()) == 1


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter with this test run's import path."""
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    full_env.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
    if "LLMBRIDGE_OTEL" not in env:
        full_env.pop("LLMBRIDGE_OTEL", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=120)


CHILD_CALL = """
    import sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import llmbridge
    from llmbridge.testing import MockLLMServer
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # after the import: the tracer follows the global one
    with MockLLMServer() as server:
        with llmbridge.VLLMClient(base_url=server.url + "/v1", model="m1") as client:
            assert client.chat_sync([{"role": "user", "content": "hi"}]).success
    print(llmbridge.is_instrumented(), [s.name for s in exporter.get_finished_spans()])
"""


@pytest.mark.parametrize(("value", "expected"), [("1", "True ['chat m1']"), ("0", "False []"),
                                                 ("", "False []")])
def test_the_llmbridge_otel_variable_turns_tracing_on_at_import(value: str, expected: str) -> None:
    done = run_python(CHILD_CALL, LLMBRIDGE_OTEL=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_without_opentelemetry_instrument_names_the_extra_and_nothing_is_imported() -> None:
    done = run_python("""
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        import llmbridge
        try:
            llmbridge.instrument()
        except ImportError as e:
            print("ImportError:", e)
        print(llmbridge.is_instrumented())
    """)
    assert done.returncode == 0, done.stderr
    assert "ImportError:" in done.stdout and "llmbridge[otel]" in done.stdout
    assert done.stdout.strip().endswith("False")


def test_llmbridge_otel_without_opentelemetry_warns_and_imports() -> None:
    done = run_python("""
        import sys
        sys.modules["opentelemetry"] = None
        import llmbridge
        print(llmbridge.is_instrumented())
    """, LLMBRIDGE_OTEL="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert "LLMBRIDGE_OTEL is set, but tracing stays off" in done.stderr
    assert "llmbridge[otel]" in done.stderr


def test_calls_while_tracing_is_off_import_no_opentelemetry() -> None:
    done = run_python("""
        import asyncio, sys
        import llmbridge
        from llmbridge.testing import MockLLMServer
        with MockLLMServer() as server:
            with llmbridge.VLLMClient(base_url=server.url + "/v1", model="m1") as client:
                assert client.call_llm_sync({"user": "x"}, None, "d").success
                assert client.chat_sync([{"role": "user", "content": "hi"}]).success
                assert client.embed_sync("x").success
                with client.chat_stream_sync([{"role": "user", "content": "hi"}]) as s:
                    list(s)
                async def main():
                    assert (await client.chat([{"role": "user", "content": "hi"}])).success
                asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------- tracing never fails a call


class BrokenTracer(trace.Tracer):
    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracer is broken")

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracer is broken")


class BrokenSpan(trace.NonRecordingSpan):
    def set_attributes(self, attributes: Any) -> None:
        raise RuntimeError("span is broken")

    def set_attribute(self, key: str, value: Any) -> None:
        raise RuntimeError("span is broken")

    def add_event(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("span is broken")

    def end(self, end_time: Any = None) -> None:
        raise RuntimeError("span is broken")


class BrokenSpanTracer(trace.Tracer):
    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return BrokenSpan(trace.INVALID_SPAN_CONTEXT)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unused")


class ProviderOf(trace.TracerProvider):
    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return self.tracer


class RaisingExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise RuntimeError("exporter is broken")


def all_kinds(client: Any) -> list[Any]:
    out = [client.call_llm_sync(PROMPTS, SCHEMA, "Ada"), client.chat_sync(MESSAGES, max_tokens=3),
           client.complete_sync("x"), client.embed_sync("x")]
    with client.chat_stream_sync(MESSAGES) as stream:
        out.append(list(stream)[-1])

    async def main() -> list[Any]:
        results = [await client.call_llm(PROMPTS, SCHEMA, "Ada"), await client.chat(MESSAGES),
                   await client.embed("x")]
        async with client.chat_stream(MESSAGES) as stream:
            results.append([e async for e in stream][-1])
        return results

    return out + asyncio.run(main())


@pytest.mark.parametrize("broken", ["tracer", "span", "exporter"])
def test_a_broken_tracer_span_or_exporter_never_fails_a_call(
    server: MockLLMServer, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    from llmbridge import _tracing

    if broken == "exporter":
        provider: Any = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(RaisingExporter()))
    else:
        provider = ProviderOf(BrokenTracer() if broken == "tracer" else BrokenSpanTracer())
    server.set_default(Reply.json({"name": "Ada"}))
    _tracing._warned = False
    llmbridge.instrument(tracer_provider=provider, capture_content=True)
    try:
        with caplog.at_level(logging.WARNING), make_client(server) as client:
            results = all_kinds(client)
    finally:
        llmbridge.uninstrument()
    assert len(results) == 9
    for r in results:
        assert isinstance(r, llmbridge.StreamEnd) or r.success, r
    assert results[0].data == {"name": "Ada"}
    if broken != "exporter":  # the SDK reports its exporter's failures itself
        warnings = [r for r in caplog.records if r.name == "llmbridge.tracing"]
        assert len(warnings) == 1  # said once, not per call
        assert "broken" in warnings[0].getMessage()


# ---------------------------------------------------------------- the records themselves


def test_tries_are_typed_records_on_every_result(server: MockLLMServer) -> None:
    server.enqueue(Reply(status=429), Reply.json({"name": "Ada"}))
    with make_client(server) as client:
        attempt = client.call_llm_sync(PROMPTS, SCHEMA, "Ada")
        chat = client.chat_sync(MESSAGES)
        embedded = client.embed_sync(["a"])
    assert attempt.success
    assert all(type(t) is TryRecord for t in attempt.tries)
    first, second = attempt.tries
    assert (first.attempt, first.status_code, first.error) == (1, 429, "http_429")
    assert (second.attempt, second.status_code, second.error) == (2, 200, None)
    assert second.replica == server.url
    assert first.start_ms <= second.start_ms
    assert first.elapsed_ms >= 0 and second.elapsed_ms >= 0
    assert second.to_dict() == {
        "attempt": 2, "status_code": 200, "error": None, "replica": server.url,
        "start_ms": second.start_ms, "elapsed_ms": second.elapsed_ms,
    }
    assert "TryRecord(attempt=1, status_code=429" in repr(first)
    assert "tries" not in attempt.to_dict()  # the contract's keys stay as they were
    clone = pickle.loads(pickle.dumps(attempt))  # attempts stay picklable
    assert clone == attempt and clone.tries == attempt.tries
    assert type(clone.tries[0]) is TryRecord
    assert [t.status_code for t in chat.tries] == [200]
    assert [t.status_code for t in embedded.tries] == [200]


# ---------------------------------------------------------------- a real server


@pytest.mark.real_server
def test_a_real_llama_server_chat_span_has_its_token_counts_and_model(llama_server: Any) -> None:
    s = Spans()
    llmbridge.instrument(tracer_provider=s.provider)
    try:
        with VLLMClient(base_url=llama_server.base_url + "/v1", model=llama_server.model,
                        timeout=60.0, max_retries=0, max_tokens=8) as client:
            r = client.chat_sync([{"role": "user", "content": "Say hello."}])
    finally:
        llmbridge.uninstrument()
    assert r.success, r.error
    span = s.one()
    a = span.attributes
    assert span.name == f"chat {llama_server.model}"
    assert a["gen_ai.usage.input_tokens"] == r.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == r.completion_tokens > 0
    assert a["gen_ai.response.model"] == r.model != ""
    assert a["gen_ai.response.finish_reasons"] == (r.finish_reason,)
    assert a["server.port"] == int(llama_server.base_url.rsplit(":", 1)[1])
    (event,) = try_events(span)
    assert event.attributes["http.response.status_code"] == 200
