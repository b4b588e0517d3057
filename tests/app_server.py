"""Launch the real app (``python app.py``) in a subprocess for browser and client tests.

    @pytest.mark.browser
    def test_something(app_url):    # "http://127.0.0.1:PORT/"; conftest.py imports the fixture
        ...

The server runs offline (HF_HUB_OFFLINE=1) on a free localhost port, once per test session; its
log goes to a temp file whose tail is shown if it does not come up. :func:`running_app` is the
same thing as a plain context manager, for scripts (the benchmark uses it).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Seconds to wait for the server to answer HTTP before giving up.
STARTUP_TIMEOUT = 120.0


@dataclass
class AppServer:
    """A launched app: ``url`` ("http://127.0.0.1:PORT/"), the process and its log file."""

    url: str
    process: subprocess.Popen
    log_path: Path
    started_at: float  # time.perf_counter() just before Popen

    def log_tail(self, lines: int = 60) -> str:
        """Last ``lines`` lines of the server's stdout/stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(server log {self.log_path} unreadable: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory of the server process so far (VmHWM, MiB); None if unknown."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # the line reads "VmHWM:  123 kB"
        except (OSError, ValueError, IndexError):
            pass
        return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_app(timeout: float = STARTUP_TIMEOUT, env: dict[str, str] | None = None,
                poll: float = 0.5, keep_log: bool = False) -> Iterator[AppServer]:
    """Start ``python app.py`` on a free port, wait until it serves, stop it on exit.

    Args:
        timeout: seconds to wait for an HTTP 200 from the root page.
        env: extra environment variables for the server.
        poll: seconds between HTTP probes.
        keep_log: keep the log file after a normal stop (it is always kept, and named in the
            error, when the server fails to start).

    Yields:
        :class:`AppServer` (``.url`` ends with "/").

    Raises:
        RuntimeError: the server exited or did not answer within ``timeout``; the message
            holds the tail of its log.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                  "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                  "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
                  **(env or {})}
    fd, name = tempfile.mkstemp(prefix="app_server_", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=server_env,
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = AppServer(url, proc, log_path, started)
    served = False
    try:
        deadline = time.monotonic() + timeout
        while not _serves(url):
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with code {proc.returncode} before serving "
                                   f"{url}; log {log_path}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not serve {url} within {timeout:.0f} s; "
                                   f"log {log_path}:\n{server.log_tail()}")
            time.sleep(poll)
        served = True
        yield server
    finally:
        _stop(proc)
        if served and not keep_log:
            log_path.unlink(missing_ok=True)


#: The server started by the ``app_url`` fixture (None until then); tests may read its log.
current: AppServer | None = None


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """URL of the app served for this test session, e.g. "http://127.0.0.1:40123/".

    conftest.py imports it, so every test module shares one server; the
    server object (process, log) is ``app_server.current`` while it runs.
    """
    global current
    stack = contextlib.ExitStack()
    try:
        server = stack.enter_context(running_app())
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        pytest.fail(str(exc), pytrace=False)
    current = server
    try:
        yield server.url
    finally:
        current = None
        stack.close()
