"""`make run` as a newcomer runs it: in a terminal, on the embedded PostgreSQL, then Ctrl-C.

The demo is the code the suite runs (one dialect), and its start and stop are tested
like any other code path: a real pseudo-terminal, a real `make run` with no
DATABASE_URL or REDIS_URL, the first page fetched over HTTP, Ctrl-C typed at the
terminal, the exit status read from make. Twice: a first start (cluster, migrations,
demo data) and a second one (everything already there)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core import embedded_db

BASE_DIR = Path(__file__).resolve().parents[2]
CTRL_C = b"\x03"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Terminal:
    """`make run` on its own pseudo-terminal, as a shell would start it."""

    def __init__(self, var_dir: Path, port: int):
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "MAKEFLAGS", "MAKELEVEL")}
        env.update(CLOUDBILL_VAR_DIR=str(var_dir), TERM="dumb")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session leader whose controlling terminal is the pty
            os.chdir(BASE_DIR)
            os.execvpe("make", ["make", "--no-print-directory", "run", f"PORT={port}"], env)
        self.output = b""
        self.status: int | None = None

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the other end closed: everyone has exited
                    return
                if not chunk:
                    return
                self.output += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, seconds: float) -> int | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.read(0.5)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.read(0.5)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        return None

    def kill(self) -> None:
        if self.status is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
        os.close(self.fd)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


def _first_page(term: Terminal, port: int, seconds: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        term.read(0.3)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if os.waitpid(term.pid, os.WNOHANG)[0]:
            return None
    return None


def _get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def _postgres_running(var_dir: Path) -> bool:
    return embedded_db.socket_dir(var_dir) is not None and (var_dir / "postgres" / "postmaster.pid").exists()


def _start_and_stop(var_dir: Path, *, first: bool) -> tuple[Terminal, float]:
    port = _free_port()
    term = Terminal(var_dir, port)
    try:
        took = _first_page(term, port, 240 if first else 60)
        assert took is not None, term.text[-4000:]
        assert "Starting PostgreSQL 18 (embedded" in term.text
        # The demo's API answers in the API's error format, even with DEBUG on.
        status, content_type, body = _get(port, "/api/v1/no-such-thing/")
        assert (status, content_type) == (404, "application/json"), body[:200]
        term.read(3)  # let the worker and beat come up before they are asked to stop
        t0 = time.monotonic()
        term.type(CTRL_C)
        status = term.wait(30)
        stopped_in = time.monotonic() - t0
        assert status == 0, term.text[-4000:]
        assert stopped_in < 15, term.text[-3000:]
        assert "Traceback" not in term.text, term.text
        assert "No hostname was supplied" not in term.text
        assert "Interrupt" not in term.text  # make never saw the Ctrl-C
        assert "PostgreSQL stopped" in term.text
        assert not _postgres_running(var_dir)
        return term, took
    finally:
        term.kill()


@pytest.fixture
def var_dir():
    # Not pytest's tmp_path: pytest keeps its root 0700 at every session start, and the
    # server runs as an unprivileged user of its own that must reach its data directory.
    path = Path(tempfile.mkdtemp(prefix="cloudbill-launcher-"))
    path.chmod(0o755)
    yield path / "var"
    shutil.rmtree(path, ignore_errors=True)


def test_make_run_starts_on_embedded_postgresql_and_ctrl_c_stops_everything_with_status_0(var_dir):
    term, _ = _start_and_stop(var_dir, first=True)
    assert "first start creates the cluster" in term.text
    assert "Applying" in term.text and "migrations" in term.text
    assert "Demo data" in term.text or "demo data" in term.text

    again, took = _start_and_stop(var_dir, first=False)
    assert "Migrations: up to date." in again.text
    assert "first start" not in again.text.split("Migrations")[0]
    print(f"second start answered its first page after {took:.1f} s")
