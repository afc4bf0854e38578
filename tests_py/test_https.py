"""HTTPS: certificate verification is on by default; a custom CA file or verify_tls=False opt out."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import llmbridge

ANSWER = {
    "id": "chatcmpl-tls",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"tls": true}'},
                 "finish_reason": "stop"}],
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return crt, key


@pytest.fixture(scope="module")
def https_url(cert: tuple[Path, Path]) -> Iterator[str]:
    crt, key = cert
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


PROMPTS = {"system": "s", "user": "u"}


def test_self_signed_certificate_is_refused_by_default(https_url: str) -> None:
    with llmbridge.VLLMClient(base_url=https_url, model="m", max_retries=2) as client:
        attempt = client.call_llm_sync(PROMPTS)
    assert not attempt.success
    assert attempt.error is not None and attempt.error.startswith("connection_error: ")
    assert attempt.retryable is False  # a certificate problem does not heal by retrying
    assert attempt.attempts == 1


def test_custom_ca_file_is_trusted(https_url: str, cert: tuple[Path, Path]) -> None:
    with llmbridge.VLLMClient(base_url=https_url, model="m", ca_file=str(cert[0])) as client:
        attempt = client.call_llm_sync(PROMPTS)
    assert attempt.success, attempt
    assert attempt.data == {"tls": True}


def test_verification_can_be_switched_off(https_url: str) -> None:
    with llmbridge.VLLMClient(base_url=https_url, model="m", verify_tls=False) as client:
        attempt = client.call_llm_sync(PROMPTS)
    assert attempt.success, attempt


# The client, run in a private mount namespace where /etc/ssl/certs is empty (no Debian bundle,
# the path libcurl was built with) and /etc/pki/tls/certs/ca-bundle.crt trusts the test
# certificate: the file layout of RHEL, Fedora and Amazon Linux, where the wheels' Debian
# libcurl must still find the system's certificate authorities.
RHEL_LAYOUT = """
mount -t tmpfs none /etc/ssl/certs && mkdir -p /etc/pki && mount -t tmpfs none /etc/pki &&
mkdir -p /etc/pki/tls/certs && cp "$1" /etc/pki/tls/certs/ca-bundle.crt && shift && exec "$@"
"""
CLIENT = """
import sys, llmbridge
with llmbridge.VLLMClient(base_url=sys.argv[1], model="m") as client:
    attempt = client.call_llm_sync({"system": "s", "user": "u"})
print(attempt.data if attempt.success else attempt.error)
"""


def test_system_bundle_is_found_where_rhel_keeps_it(https_url: str,
                                                     cert: tuple[Path, Path]) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare (util-linux) for a private mount namespace")
    proc = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", RHEL_LAYOUT, "sh",
         str(cert[0]), sys.executable, "-c", CLIENT, https_url],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "{'tls': True}", proc.stdout + proc.stderr
