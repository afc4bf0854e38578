"""The llmbridge command line: caption, chat, demo, embed, extract, health, models, repair,
serve-mock.

Exit codes: 0 success, 1 the model or server failed, 2 bad usage or configuration.
Errors go to stderr in one line; progress and tables go to stderr; data goes to
stdout, so pipes work. rich (the ``cli`` extra) draws the tables and progress bars
when it is installed; without it the output is plain text.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional, Sequence, cast

from .errors import ConfigError, LLMBridgeError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad flags, files or configuration: exit code 2."""


def _err(command: str, message: str) -> None:
    print(f"llmbridge {command}: {message}", file=sys.stderr)


def _table(title: str, rows: Sequence[tuple[str, Any]]) -> None:
    """A two-column table on stderr."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max((len(k) for k, _ in rows), default=0)
        print(title, file=sys.stderr)
        for k, v in rows:
            print(f"  {k:<{width}}  {v}", file=sys.stderr)
        return
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for k, v in rows:
        table.add_row(str(k), str(v))
    Console(stderr=True).print(table)


# ---- configuration from the environment and flags ----


def _app_config(args: argparse.Namespace, *, embeddings: bool = False) -> tuple[str, Any]:
    """(provider, AppConfig) from the environment, with --provider/--base-url/--model on top.

    `embeddings`: without --provider, the provider is EMBEDDING_PROVIDER's (which defaults
    to the LLM provider), as build_embedding_client() chooses it.
    """
    from . import load_config, registered_providers

    try:
        app = load_config()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    default = (app.embedding_provider or app.llm_provider) if embeddings else app.llm_provider
    provider = (getattr(args, "provider", None) or default).strip().lower()
    if provider not in registered_providers():
        raise UsageError(
            f"unknown provider {provider!r} (choose from {', '.join(registered_providers())})"
        )
    changes = {}
    if getattr(args, "base_url", None):
        changes["base_url"] = args.base_url
    if getattr(args, "model", None):
        changes["model"] = args.model
    if getattr(args, "timeout", None) is not None:
        changes["timeout"] = args.timeout
    if getattr(args, "max_tokens", None) is not None:
        changes["max_tokens"] = args.max_tokens
    if getattr(args, "api_key", None):
        changes["api_key"] = args.api_key
    if getattr(args, "batch_size", None) is not None:
        changes["embedding_batch_size"] = args.batch_size
    if changes and hasattr(app, provider):
        try:
            app = app.replace(**{provider: getattr(app, provider).replace(**changes)})
        except (ConfigError, TypeError) as exc:
            raise UsageError(str(exc)) from None
    return provider, app


def _client(args: argparse.Namespace, *, embeddings: bool = False) -> Any:
    from . import build_llm_client

    provider, app = _app_config(args, embeddings=embeddings)
    return build_llm_client(provider, app)


def _failure(command: str, error: str | None, description: str | None) -> int:
    """The one error line of a failed result: `error: <error> (<description>)`, or
    `error: <description>` when the description already starts with the error."""
    error = error or "unknown"
    if description and description.startswith(error):
        _err(command, f"error: {description}")
    elif description:
        _err(command, f"error: {error} ({description})")
    else:
        _err(command, f"error: {error}")
    return EXIT_FAILED


def _quiet_broken_pipe() -> int:
    """The reader went away (`| head`): stop quietly, and keep Python from reporting the
    pipe again when it flushes stdout at exit."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_FAILED


# ---- commands ----


def cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    if args.calls < 1 or args.concurrency < 1:
        raise UsageError("--calls and --concurrency must be >= 1")
    return run_demo(calls=args.calls, concurrency=args.concurrency, seed=args.seed)


def _read(path: Optional[str], what: str) -> str:
    if path is None or path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path!r}: {exc.strerror}") from None


def _load_schema(path: str | None) -> dict[str, Any] | None:
    """The JSON Schema in `path` (None: no schema)."""
    if not path:
        return None
    try:
        schema = json.loads(_read(path, "schema file"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"schema file {path!r} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"schema file {path!r} must hold a JSON object")
    return cast("dict[str, Any]", schema)


def cmd_extract(args: argparse.Namespace) -> int:
    if args.jsonl is not None:
        return _extract_batch(args)
    if args.out is not None or args.resume:
        raise UsageError("--out and --resume go with --jsonl (batch mode)")
    schema = _load_schema(args.schema)
    user = _read(args.prompt_file, "prompt file") if args.prompt_file else args.prompt
    document = _read(args.document, "document")
    client = _client(args)
    with client:
        attempt = client.call_llm_sync({"system": args.system, "user": user}, schema, document)
    if not attempt.success:
        tries = "1 try" if attempt.attempts == 1 else f"{attempt.attempts} tries"
        _err("extract", f"{attempt.error} (after {tries})")
        for pointer, message in attempt.schema_errors[1:]:  # the first is in the error
            _err("extract", f"  also {pointer or '(root)'}: {message}")
        return EXIT_FAILED
    json.dump(attempt.data, sys.stdout, ensure_ascii=False, indent=2 if args.pretty else None)
    sys.stdout.write("\n")
    if attempt.truncated:
        _err("extract", "warning: the answer was truncated (finish_reason length)")
    return EXIT_OK


# ---- extract --jsonl: batch mode ----

_EXCERPT = 40  # characters of a bad input line shown in its error


def _excerpt(text: str) -> str:
    text = text.strip()
    return repr(text[:_EXCERPT] + "..." if len(text) > _EXCERPT else text)


def _error_kind(error: str | None) -> str:
    """`http_500`, `timeout`, `connection_error`, `invalid_json`, ...: the part before ':'."""
    return (error or "unknown").split(":", 1)[0]


def _id_key(value: Any) -> str:
    # ids are JSON strings or integers; their JSON text tells "1" from 1
    return json.dumps(value, ensure_ascii=False)


def _count_lines(path: str) -> int | None:
    """Lines in `path` (a cheap pass over bytes), for the progress total; None for stdin."""
    if path == "-":
        return None
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _resume_ids(path: str) -> set[str]:
    """The ids already in the output file `path`. A last line without its newline (the
    process was killed while writing it) is cut off, so the append starts on a fresh line
    and that document is done again."""
    done: set[str] = set()
    try:
        f = open(path, "rb+")
    except FileNotFoundError:
        return done
    except OSError as exc:
        raise UsageError(f"cannot open {path!r}: {exc.strerror}") from None
    with f:
        offset = 0
        for number, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                f.truncate(offset)
                break
            offset += len(raw)
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            if not isinstance(record, dict) or "id" not in record:
                raise UsageError(f"--resume: line {number} of {path!r} is not a result line "
                                 '({"id": ..., "attempt": ...}); is it the right file?')
            done.add(_id_key(record["id"]))
    return done


class _BatchInput:
    """The documents of a JSONL file, read line by line as the batch asks for them.

    Lines that are not JSON objects with a string or integer id and a string text are
    reported (line number, short excerpt) and left out; ids in `skip` (already in the
    output) are left out silently. `ids` maps a document's batch index to its id while it
    is in flight."""

    def __init__(self, lines: Iterator[bytes], where: str, id_field: str, text_field: str,
                 skip: set[str], report: Callable[[str], None]) -> None:
        self.lines = lines
        self.where = where
        self.id_field = id_field
        self.text_field = text_field
        self.skip = skip
        self.report = report
        self.ids: dict[int, Any] = {}
        self.skipped = self.bad = self.blank = 0

    def _bad(self, number: int, problem: str, line: str) -> None:
        self.bad += 1
        self.report(f"{self.where} line {number}: {problem}: {_excerpt(line)}")

    def documents(self) -> Iterator[str]:
        index = 0
        for number, raw in enumerate(self.lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._bad(number, "not UTF-8", raw.decode("utf-8", "replace"))
                continue
            if not line.strip():
                self.blank += 1
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self._bad(number, "not JSON", line)
                continue
            if not isinstance(record, dict):
                self._bad(number, "not a JSON object", line)
                continue
            record = cast("dict[str, Any]", record)
            ident = record.get(self.id_field)
            if isinstance(ident, bool) or not isinstance(ident, (str, int)):
                self._bad(number, f"{self.id_field!r} is missing or not a string or integer",
                          line)
                continue
            text = record.get(self.text_field)
            if not isinstance(text, str):
                self._bad(number, f"{self.text_field!r} is missing or not a string", line)
                continue
            if _id_key(ident) in self.skip:
                self.skipped += 1
                continue
            self.ids[index] = ident
            index += 1
            yield text


class _BatchProgress:
    """Progress on stderr: a rich bar when rich is installed and stderr is a terminal,
    else one plain line every few seconds. Also counts the outcomes for the summary."""

    PLAIN_EVERY = 2.0  # seconds between plain progress lines

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = self.failed = 0
        self.kinds: dict[str, int] = {}
        self.input: _BatchInput | None = None
        self.started = self.shown = time.monotonic()
        self.bar: Any = None
        if sys.stderr.isatty():
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            except ImportError:
                pass
            else:
                self.bar = Progress(TextColumn("extract"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"),
                                    console=Console(stderr=True), transient=False)
                self.task = self.bar.add_task("extract", total=total, info="")
                self.bar.start()

    def report(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(f"llmbridge extract: {message}", markup=False,
                                   highlight=False)
        else:
            _err("extract", message)

    def add(self, attempt: Any) -> None:
        self.done += 1
        if not attempt.success:
            self.failed += 1
            kind = _error_kind(attempt.error)
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        now = time.monotonic()
        if now - self.shown >= (0.1 if self.bar is not None else self.PLAIN_EVERY):
            self.show(now)

    def lines_handled(self) -> int:
        inp = self.input
        extra = (inp.skipped + inp.bad + inp.blank) if inp is not None else 0
        return self.done + extra

    def info(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-9)
        parts = [f"{rate:.0f} calls/s"]
        if self.total is not None and rate > 0:
            left = max(self.total - self.lines_handled(), 0) / rate
            parts.append(f"ETA {int(left) // 60}:{int(left) % 60:02d}")
        if self.kinds:
            parts.append("errors: " + " ".join(f"{k}={n}" for k, n in sorted(self.kinds.items())))
        return "  ".join(parts)

    def show(self, now: float) -> None:
        self.shown = now
        if self.bar is not None:
            self.bar.update(self.task, completed=self.lines_handled(), info=self.info(now))
            return
        of = f"/{self.total}" if self.total is not None else ""
        _err("extract", f"{self.lines_handled()}{of} lines, {self.done} calls done, "
                        f"{self.failed} failed  {self.info(now)}")

    def close(self) -> None:
        self.show(time.monotonic())
        if self.bar is not None:
            self.bar.stop()


async def _run_batch(client: Any, inp: _BatchInput, out: Any, prompts: dict[str, str],
                     schema: dict[str, Any] | None, concurrency: int,
                     progress: _BatchProgress) -> None:
    results = client.extract_many(inp.documents(), prompts, schema, concurrency=concurrency)
    async with results:
        async for index, attempt in results:
            record = {"id": inp.ids.pop(index), "attempt": attempt.to_dict()}
            # One write and a flush per line: a kill loses only the calls in flight.
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            out.flush()
            progress.add(attempt)


def _extract_batch(args: argparse.Namespace) -> int:
    import asyncio

    if args.document is not None:
        raise UsageError("give a document file or --jsonl, not both")
    if args.out is None:
        raise UsageError("--jsonl needs --out FILE (results are appended there, one JSON line "
                         "per document)")
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be >= 1, got {args.concurrency}")
    schema = _load_schema(args.schema)
    user = _read(args.prompt_file, "prompt file") if args.prompt_file else args.prompt
    prompts = {"system": args.system, "user": user}
    skip: set[str]
    if args.resume:
        skip = _resume_ids(args.out)
    else:
        skip = set()
        if os.path.exists(args.out) and os.path.getsize(args.out) > 0:
            raise UsageError(f"{args.out!r} is not empty: --resume continues it (skipping the "
                             "ids it holds), or remove it first")
    try:
        source = sys.stdin.buffer if args.jsonl == "-" else open(args.jsonl, "rb")
        total = _count_lines(args.jsonl)
    except OSError as exc:
        raise UsageError(f"cannot read {args.jsonl!r}: {exc.strerror}") from None
    where = "stdin" if args.jsonl == "-" else repr(args.jsonl)
    client = _client(args)
    progress = _BatchProgress(total)
    inp = _BatchInput(iter(source), where, args.id_field, args.text_field, skip,
                      progress.report)
    progress.input = inp
    try:
        with source, open(args.out, "a", encoding="utf-8") as out, client:
            asyncio.run(_run_batch(client, inp, out, prompts, schema, args.concurrency,
                                   progress))
    except OSError as exc:
        raise UsageError(f"cannot write {args.out!r}: {exc.strerror}") from None
    finally:
        progress.close()
    rows: list[tuple[str, Any]] = [("documents sent", progress.done),
                                   ("succeeded", progress.done - progress.failed),
                                   ("failed", progress.failed)]
    rows += [(f"  {kind}", n) for kind, n in sorted(progress.kinds.items())]
    rows += [("skipped (already in the output)", inp.skipped), ("bad input lines", inp.bad)]
    _table("llmbridge extract", rows)
    if inp.bad:
        return EXIT_USAGE
    return EXIT_FAILED if progress.failed else EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    client = _client(args)
    with client:
        report = client.health_sync(force=True, timeout=args.timeout)
    data = {"provider": report.provider or client.provider, "base_url": report.base_url,
            "status": report.status, "model": report.model, "models": list(report.models),
            "latency_ms": round(report.latency_ms, 1), "reason": report.reason}
    if args.json:
        print(json.dumps(data))
    else:
        rows = [(k, ", ".join(report.models) if k == "models" else v) for k, v in data.items()]
        _table("llmbridge health", rows)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_models(args: argparse.Namespace) -> int:
    from . import LLMCallError
    from ._health import display_url

    client = _client(args)
    with client:
        try:
            models = client.list_models_sync(timeout=args.timeout)
        except LLMCallError as exc:
            _err("models", f"{display_url(client.config.base_url)}: {exc}")
            return EXIT_FAILED
    rows = [{"id": m.id, "owned_by": m.owned_by, "max_model_len": m.max_model_len} for m in models]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif args.long:
        # Tab-separated, so `cut -f` works; "-" where the server gave nothing.
        for r in rows:
            print("\t".join("-" if v is None else str(v) for v in r.values()))
    else:
        for r in rows:
            print(r["id"])
    return EXIT_OK


# ---- chat ----


def _chat_prompt(args: argparse.Namespace) -> str:
    given: Optional[str] = args.prompt
    prompt = sys.stdin.read() if given is None or given == "-" else given
    if not prompt.strip():
        raise UsageError("no prompt: give it as an argument, or on stdin (with - or no argument)")
    return prompt


def _chat_failure(error: str | None, message: str | None) -> int:
    """The one error line of a failed chat: `error: <error> (<message>)`."""
    line = f"error: {error or 'unknown'}"
    if message and message != error:
        line += f" ({message})"
    _err("chat", line)
    return EXIT_FAILED


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_stream_metrics(end: Any) -> None:
    m = end.metrics
    _err("chat", f"ttft_ms={_fmt(m.ttft_ms)} tokens_per_s={_fmt(m.tokens_per_s)} "
                 f"tokens={m.tokens} prompt_tokens={_fmt(m.prompt_tokens)} "
                 f"completion_tokens={_fmt(m.completion_tokens)} total_ms={_fmt(m.total_ms)} "
                 f"finish_reason={_fmt(end.finish_reason)}")


def _print_result_metrics(result: Any) -> None:
    _err("chat", f"latency_ms={_fmt(result.latency_ms)} attempts={result.attempts} "
                 f"prompt_tokens={_fmt(result.prompt_tokens)} "
                 f"completion_tokens={_fmt(result.completion_tokens)} "
                 f"finish_reason={_fmt(result.finish_reason)}")


def _stream_chat(client: Any, messages: list[dict[str, str]], options: dict[str, Any],
                 metrics: bool) -> int:
    from . import StreamEnd, StreamError, Token

    out = sys.stdout
    wrote = False
    with client.chat_stream_sync(messages, **options) as stream:
        for event in stream:
            if isinstance(event, Token):
                out.write(event.text)
                out.flush()  # each token as it arrives
                wrote = True
            elif isinstance(event, StreamEnd):
                out.write("\n")
                out.flush()
                if metrics:
                    _print_stream_metrics(event)
                return EXIT_OK
            elif isinstance(event, StreamError):
                if wrote:  # end the partial answer's line before the error
                    out.write("\n")
                    out.flush()
                message = event.message
                if not message and event.status_code in (401, 403):
                    # The core leaves out 401/403 bodies: some servers quote the key.
                    message = f"the server refused the API key (HTTP {event.status_code})"
                return _chat_failure(event.error, message)
    return _chat_failure("connection_error", "the stream ended without its last event")


def cmd_chat(args: argparse.Namespace) -> int:
    schema = _load_schema(args.schema)
    prompt = _chat_prompt(args)
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": prompt})
    options: dict[str, Any] = {}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if schema is not None:
        options["json_schema"] = schema
    client = _client(args)  # --model, --max-tokens and --timeout go into its config
    stream = not (args.no_stream or args.json or schema is not None)
    try:
        with client:
            if stream:
                return _stream_chat(client, messages, options, args.metrics)
            result = client.chat_sync(messages, **options)
    except BrokenPipeError:
        return _quiet_broken_pipe()
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    elif result.success:
        if schema is not None:
            print(json.dumps(result.data, ensure_ascii=False))
        else:
            print(result.text)
    if args.metrics:
        _print_result_metrics(result)
    if not result.success:
        return _chat_failure(result.error, result.description)
    return EXIT_OK


# ---- embed and caption ----


def _embed_texts(args: argparse.Namespace) -> list[str]:
    """The texts to embed: the arguments, or the lines of --file (- for stdin)."""
    if args.file is not None:
        if args.texts:
            raise UsageError("give the texts as arguments or with --file, not both")
        content = _read(args.file, "texts file")
        lines = content.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the newline that ends the last line
        texts = [line[:-1] if line.endswith("\r") else line for line in lines]
        where = "stdin" if args.file == "-" else repr(args.file)
        for i, text in enumerate(texts):
            if not text.strip():
                raise UsageError(f"line {i + 1} of {where} is empty: one text per line "
                                 "(an index is a line number - 1, so blank lines are refused)")
        if not texts:
            raise UsageError(f"{where} holds no text (one text per line)")
        return texts
    if not args.texts:
        raise UsageError("no texts: give them as arguments, or one per line with --file")
    for i, text in enumerate(args.texts):
        if not text.strip():
            raise UsageError(f"text {i} is empty")
    return list(args.texts)


def cmd_embed(args: argparse.Namespace) -> int:
    texts = _embed_texts(args)
    if args.dimensions is not None and args.dimensions < 1:
        raise UsageError(f"--dimensions must be >= 1, got {args.dimensions}")
    numpy: Any = None
    npy: Optional[str] = args.npy
    if npy is not None:
        try:
            import numpy
        except ImportError:
            raise UsageError("--npy needs numpy, which is not installed (pip install numpy); "
                             "without --npy the vectors are printed as JSON lines") from None
    client = _client(args, embeddings=True)  # --batch-size and --timeout go into its config
    with client:
        result = client.embed_sync(texts, model=args.embedding_model, dimensions=args.dimensions)
    if not result.success:
        return _failure("embed", result.error, result.description)
    if numpy is not None and npy is not None:
        try:
            with open(npy, "wb") as f:  # an open file: numpy.save adds no ".npy"
                numpy.save(f, result.to_numpy())
        except OSError as exc:
            raise UsageError(f"cannot write {npy!r}: {exc.strerror}") from None
        return EXIT_OK
    try:
        out = sys.stdout
        for i, vector in enumerate(result.vectors):
            out.write(json.dumps({"index": i, "embedding": vector}) + "\n")
        out.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    return EXIT_OK


def _caption_image(source: str) -> Any:
    from . import Image

    if source == "-":
        return Image.from_bytes(sys.stdin.buffer.read())
    if source.startswith(("http://", "https://", "data:image/")):
        return Image.from_url(source)
    try:
        return Image.from_path(source)
    except OSError as exc:
        raise UsageError(f"cannot read image {source!r}: {exc.strerror}") from None


def cmd_caption(args: argparse.Namespace) -> int:
    image = _caption_image(args.image)
    client = _client(args)  # --max-tokens and --timeout go into its config
    with client:
        result = client.caption_sync(image, prompt=args.prompt, model=args.vision_model)
    if not result.success:
        return _failure("caption", result.error, result.description)
    try:
        print(result.text)
    except BrokenPipeError:
        return _quiet_broken_pipe()
    return EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    from . import JSONRepairError, repair_report

    text = sys.stdin.buffer.read()
    try:
        report = repair_report(text)
    except JSONRepairError as exc:
        _err("repair", str(exc))
        return EXIT_FAILED
    sys.stdout.write(report.json + "\n")
    if args.report:
        info = {"changed": report.changed, "truncated": report.truncated,
                "repairs": [{"kind": r.kind, "position": r.position} for r in report.repairs]}
        print(json.dumps(info), file=sys.stderr)
    return EXIT_OK


def cmd_serve_mock(args: argparse.Namespace) -> int:
    from .testing import run

    def ready(server: Any) -> None:
        print(f"llmbridge serve-mock: listening on {server.url} (Ctrl-C stops)",
              file=sys.stderr, flush=True)

    try:
        run(args.port, args.host, models=args.model or None, on_ready=ready)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK


# ---- argument parsing ----


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        _err(self.prog.split()[-1] if " " in self.prog else "usage", message)
        raise SystemExit(EXIT_USAGE)


def _provider_flags(p: argparse.ArgumentParser, *, provider_help: str | None = None,
                    model_dest: str = "model", model_help: str | None = None) -> None:
    p.add_argument("--provider", help=provider_help or
                   "vllm, ollama or openai (default: $LLM_PROVIDER / $AI_PROVIDER, else ollama)")
    p.add_argument("--base-url", help="server URL (default: from the provider's environment variables)")
    p.add_argument("--model", dest=model_dest, metavar="MODEL",
                   help=model_help or "model name (default: from the environment)")
    p.add_argument("--api-key", help="API key (default: $VLLM_API_KEY / $OPENAI_API_KEY / "
                                     "$OLLAMA_API_KEY, which keep it out of shell history)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llmbridge", description="Native LLM client tools.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print the library's log records (INFO and up) on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("caption", help="image -> its description by the vision model, on stdout")
    p.add_argument("image", help="image file (PNG, JPEG, GIF, WebP), - for stdin, or an "
                                 "http(s):// URL the server fetches (not Ollama)")
    p.add_argument("--prompt",
                   help="what to ask about the image (default: \"Describe this image.\")")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="most tokens the model may generate (default: the provider's "
                        "*_MAX_TOKENS variable, else 4096)")
    p.add_argument("--timeout", type=float, metavar="S", help="seconds per HTTP try")
    _provider_flags(p, model_dest="vision_model",
                    model_help="vision model (default: $VLLM_VISION_MODEL for vllm; "
                               "required for ollama and openai)")
    p.set_defaults(func=cmd_caption)

    p = sub.add_parser("chat", help="prompt -> the model's answer, streamed to stdout")
    p.add_argument("prompt", nargs="?", help="the user prompt (default, or -: read stdin)")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--schema", metavar="FILE",
                   help="JSON Schema file: ask for JSON in that shape and print the parsed JSON "
                        "(implies --no-stream)")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="most tokens the model may generate (default: the provider's "
                        "*_MAX_TOKENS variable, else 4096)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="sampling temperature (default: the provider's *_TEMPERATURE "
                        "variable, else 0)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds per HTTP try; when streaming, the wait for the first byte")
    p.add_argument("--no-stream", action="store_true",
                   help="wait for the whole answer instead of printing tokens as they come")
    p.add_argument("--json", action="store_true",
                   help="print the whole result (text, data, tool calls, usage, error) as JSON "
                        "(implies --no-stream)")
    p.add_argument("-v", "--metrics", action="store_true",
                   help="print timing and usage on stderr (streaming: TTFT, tokens/s, tokens)")
    _provider_flags(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("demo", help="repair sample answers, then run extractions against the bundled mock server")
    p.add_argument("--calls", type=int, default=300, help="extractions to run (default 300)")
    p.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    p.add_argument("--seed", type=int, default=7, help="scenario seed (default 7)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("embed",
                       help="texts -> one JSON line of embedding per text (or a .npy file)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="the texts to embed")
    p.add_argument("--file", metavar="FILE",
                   help="read the texts from FILE, one per line (- for stdin)")
    p.add_argument("--npy", metavar="OUT",
                   help="write a float32 array (texts x dimensions) to OUT instead of JSON lines "
                        "(needs numpy)")
    p.add_argument("--dimensions", type=int, metavar="N",
                   help="ask the server for N-dimensional vectors (sent as `dimensions`)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="texts per request; longer lists are split into requests sent "
                        "concurrently (default 64)")
    p.add_argument("--timeout", type=float, metavar="S", help="seconds per HTTP try")
    _provider_flags(p, model_dest="embedding_model",
                    provider_help="vllm, ollama or openai (default: $EMBEDDING_PROVIDER, else "
                                  "the LLM provider)",
                    model_help="embedding model (default: $VLLM_EMBEDDING_MODEL for vllm, "
                               "else the provider's model)")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("extract", help="document + prompt + schema -> the JSON on stdout; "
                                       "--jsonl: many documents -> one result line each")
    p.add_argument("document", nargs="?", help="document file (default: stdin)")
    p.add_argument("--jsonl", metavar="FILE",
                   help="batch mode: one JSON object per line with an id and the document "
                        "text (- for stdin); results go to --out")
    p.add_argument("--out", metavar="FILE",
                   help="batch mode: append one {\"id\", \"attempt\"} JSON line per document")
    p.add_argument("--resume", action="store_true",
                   help="batch mode: skip the ids already in --out (a cut-off last line is "
                        "removed and redone)")
    p.add_argument("--concurrency", type=int, default=64, metavar="N",
                   help="batch mode: calls in flight (default 64)")
    p.add_argument("--id-field", default="id", metavar="NAME",
                   help="batch mode: the id's key in each input line (default id)")
    p.add_argument("--text-field", default="document_text", metavar="NAME",
                   help="batch mode: the document's key in each input line "
                        "(default document_text)")
    p.add_argument("--schema", help="JSON Schema file")
    p.add_argument("--system", default="Extract the requested information. Answer with JSON only.",
                   help="system prompt")
    p.add_argument("--prompt", default="{document_text}",
                   help="user prompt; {document_text} marks where the document goes")
    p.add_argument("--prompt-file", help="read the user prompt from this file")
    p.add_argument("--timeout", type=float, help="seconds per HTTP try")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="most tokens the model may generate (default: the provider's "
                        "*_MAX_TOKENS variable, else 4096)")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    _provider_flags(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("health", help="health of the configured provider")
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    _provider_flags(p)
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("models", help="the models a server lists, one per line")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("-l", "--long", action="store_true",
                   help="id, owned_by and max_model_len, tab-separated (- when not listed)")
    p.add_argument("--json", action="store_true",
                   help="a JSON list of {id, owned_by, max_model_len} objects")
    _provider_flags(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("repair", help="stdin -> repaired JSON on stdout")
    p.add_argument("--report", action="store_true", help="print what was repaired (JSON, on stderr)")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("serve-mock", help="run the mock LLM server in the foreground")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--model", action="append", help="a served model name (repeatable)")
    p.set_defaults(func=cmd_serve_mock)
    return parser


def _configure_logging(verbose: bool) -> None:
    """The library logs through `logging`; the CLI shows those records only with -v.

    Without it, failures are reported once, in the command's own one-line error.
    """
    logger = logging.getLogger("llmbridge")
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.addHandler(logging.NullHandler())


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if extra:
        _err(args.command, f"unrecognized arguments: {' '.join(extra)}")
        return EXIT_USAGE
    _configure_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args))
    except UsageError as exc:
        _err(args.command, str(exc))
        return EXIT_USAGE
    except (ConfigError, ValueError, TypeError) as exc:
        _err(args.command, str(exc))
        return EXIT_USAGE
    except LLMBridgeError as exc:
        _err(args.command, str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err(args.command, "interrupted")
        return 130
