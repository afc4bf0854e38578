"""The llmbridge command line: demo, extract, health, models, repair, serve-mock.

Exit codes: 0 success, 1 the model or server failed, 2 bad usage or configuration.
Errors go to stderr in one line; progress and tables go to stderr; data goes to
stdout, so pipes work. rich (the ``cli`` extra) draws the tables and progress bars
when it is installed; without it the output is plain text.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable, Optional, Sequence

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


def _app_config(args: argparse.Namespace) -> tuple[str, Any]:
    """(provider, AppConfig) from the environment, with --provider/--base-url/--model on top."""
    from . import load_config, registered_providers

    try:
        app = load_config()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    provider = (getattr(args, "provider", None) or app.llm_provider).strip().lower()
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
    if changes and hasattr(app, provider):
        try:
            app = app.replace(**{provider: getattr(app, provider).replace(**changes)})
        except (ConfigError, TypeError) as exc:
            raise UsageError(str(exc)) from None
    return provider, app


def _client(args: argparse.Namespace) -> Any:
    from . import build_llm_client

    provider, app = _app_config(args)
    return build_llm_client(provider, app)


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


def cmd_extract(args: argparse.Namespace) -> int:
    schema = None
    if args.schema:
        try:
            schema = json.loads(_read(args.schema, "schema file"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"schema file {args.schema!r} is not JSON: {exc}") from None
        if not isinstance(schema, dict):
            raise UsageError(f"schema file {args.schema!r} must hold a JSON object")
    user = _read(args.prompt_file, "prompt file") if args.prompt_file else args.prompt
    document = _read(args.document, "document")
    client = _client(args)
    with client:
        attempt = client.call_llm_sync({"system": args.system, "user": user}, schema, document)
    if not attempt.success:
        tries = "1 try" if attempt.attempts == 1 else f"{attempt.attempts} tries"
        _err("extract", f"{attempt.error} (after {tries})")
        return EXIT_FAILED
    json.dump(attempt.data, sys.stdout, ensure_ascii=False, indent=2 if args.pretty else None)
    sys.stdout.write("\n")
    if attempt.truncated:
        _err("extract", "warning: the answer was truncated (finish_reason length)")
    return EXIT_OK


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
        rows = [(k, ", ".join(v) if isinstance(v, list) else v) for k, v in data.items()]
        _table("llmbridge health", rows)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_models(args: argparse.Namespace) -> int:
    client = _client(args)
    with client:
        report = client.health_sync(force=True, timeout=args.timeout)
    if not report.reachable:
        _err("models", f"{report.base_url or client.config.base_url}: {report.reason}")
        return EXIT_FAILED
    for name in report.models:
        print(name)
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


def _provider_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", help="vllm, ollama or openai (default: $LLM_PROVIDER / $AI_PROVIDER, else ollama)")
    p.add_argument("--base-url", help="server URL (default: from the provider's environment variables)")
    p.add_argument("--model", help="model name (default: from the environment)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llmbridge", description="Native LLM client tools.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print the library's log records (INFO and up) on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="repair sample answers, then run extractions against the bundled mock server")
    p.add_argument("--calls", type=int, default=300, help="extractions to run (default 300)")
    p.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    p.add_argument("--seed", type=int, default=7, help="scenario seed (default 7)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("extract", help="document + prompt + schema -> the JSON on stdout")
    p.add_argument("document", nargs="?", help="document file (default: stdin)")
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
