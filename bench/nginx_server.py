"""A throwaway nginx that answers POST /v1/chat/completions with one fixed body.

Used by bench/bench_client.py (config: bench/nginx.conf.template, the body inline in a
`return`) and bench/bench_stream.py (bench/nginx_stream.conf.template: a body too large to
inline, so it is written as a file into the temp directory and served from there). Every
file nginx writes (pid, error log, temp dirs) lives in a private temp directory, and
nginx runs in the foreground as a child of this process, so stopping it is ours to do:
`NginxServer` is a context manager that always stops it (also on an exception or
Ctrl-C), and on Linux the kernel stops it too if this process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")

INSTALL_HINT = (
    "nginx is needed for this benchmark and was not found on PATH.\n"
    "  Debian/Ubuntu: sudo apt-get install -y nginx-light   (or nginx)\n"
    "  Fedora:        sudo dnf install -y nginx\n"
    "  macOS:         brew install nginx\n"
    "It runs as the current user on 127.0.0.1 with a temporary config; no service is set up."
)


def find_nginx() -> str | None:
    # Debian puts it in /usr/sbin, which is not on every user's PATH.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_quote(text: str) -> str:
    """`text` as the inside of an nginx single-quoted string.

    nginx turns \\\\, \\' and \\n (also \\t, \\r) inside quotes into one character, so
    backslashes and quotes are escaped; `$` would start a variable, so it is refused.
    """
    if "$" in text:
        raise ValueError("the response body must not contain '$' (nginx would expand it)")
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask for SIGTERM when our parent dies.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class NginxServer:
    """`with NginxServer(body) as srv:` serves `body` at `srv.url + "/v1/chat/completions"`.

    `template` and `files` are for configs that serve files: each `files` entry is written
    to `<prefix>/www/<name>` before nginx starts, and `@WWW@` in the template names that
    directory. The answer to POST /v1/chat/completions must still be `body` (checked),
    unless `body` is empty: then the template is a proxy, and `fill` gives its other
    @NAME@ placeholders (bench/nginx_proxy.conf.template: @UPSTREAMS@).
    """

    def __init__(self, body: bytes, nginx: str | None = None, *, template: Path = TEMPLATE,
                 files: Mapping[str, bytes] | None = None,
                 fill: Mapping[str, str] | None = None) -> None:
        self.body = body
        self.template = template
        self.files = dict(files or {})
        self.fill = dict(fill or {})  # more @NAME@ placeholders of the template
        self.nginx = nginx or find_nginx()
        if self.nginx is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.prefix: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> NginxServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.prefix = tempfile.mkdtemp(prefix="llmbridge-bench-nginx-")
        www = os.path.join(self.prefix, "www")
        os.mkdir(www)
        if self.files:
            # Started as root, nginx reads files as its workers' user (nobody): let it
            # through the private prefix (0700 from mkdtemp) to www, and read the files.
            os.chmod(self.prefix, 0o711)
            os.chmod(www, 0o755)
        for name, data in self.files.items():
            with open(os.path.join(www, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(www, name), 0o644)
        # A port picked free can be taken before nginx binds it: try a few.
        last_error = ""
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(self.prefix, "nginx.conf")
            text = self.template.read_text()
            text = (text.replace("@PREFIX@", self.prefix)
                    .replace("@WWW@", www)
                    .replace("@PORT@", str(self.port)))
            if "@BODY@" in text:
                text = text.replace("@BODY@", nginx_quote(self.body.decode("utf-8")))
            for name, value in self.fill.items():
                text = text.replace(name, value)
            with open(conf, "w") as f:
                f.write(text)
            log = open(os.path.join(self.prefix, "stderr.log"), "wb")
            self.proc = subprocess.Popen(
                # -e: the error log before the config is read (else /var/log/nginx).
                [self.nginx, "-c", conf, "-p", self.prefix + "/", "-e",
                 os.path.join(self.prefix, "error.log"), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            log.close()
            if self._wait_listening(5.0):
                if self.body:  # a proxy config (no body of its own) is not checked
                    self._check_answer()
                return
            last_error = self._log_tail()
            self._terminate()
        raise RuntimeError(f"nginx did not start:\n{last_error}")

    def _wait_listening(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def _check_answer(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("POST", "/v1/chat/completions", body=b"{}",
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            got = resp.read()
        finally:
            conn.close()
        if resp.status != 200 or got != self.body:
            raise RuntimeError(f"nginx answered {resp.status} with {got[:200]!r}, "
                               f"not the configured body")

    def _log_tail(self) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            path = os.path.join(self.prefix or "", name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    out.append(f.read()[-2000:].decode("utf-8", "replace"))
        return "\n".join(out)

    def pids(self) -> list[int]:
        """The master and its workers (to read their CPU time)."""
        if self.proc is None:
            return []
        master = self.proc.pid
        found = [master]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            # Field 4 (ppid) comes after the command name, which is in parentheses.
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(entry))
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU of nginx so far (Linux /proc; 0.0 elsewhere)."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def _terminate(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: fast shutdown
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self._terminate()
        self.proc = None
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None
