"""``python -m llmbridge.testing [--port N]``: run the mock LLM server in the foreground."""

from __future__ import annotations

import argparse
import sys

from ._mock_server import MockLLMServer, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmbridge.testing",
        description="Serve a mock vLLM/Ollama API that answers '{\"ok\": true}'.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help="served model name (repeatable; default mock-model)",
    )
    args = parser.parse_args(argv)

    def announce(server: MockLLMServer) -> None:
        sys.stdout.write(f"mock LLM server on {server.url} (Ctrl-C to stop)\n")
        sys.stdout.flush()

    run(args.port, args.host, models=args.models, on_ready=announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
