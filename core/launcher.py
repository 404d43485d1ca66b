"""`make run`: the demo's database, the demo data, then web, worker and beat until Ctrl-C.

    python -m core.launcher [--port 8000]

Without `DATABASE_URL` it starts the embedded PostgreSQL under var/ (core/embedded_db.py)
and stops it again at the end; with one, it uses that server and leaves it alone. Each
step says what it does and how long it took. Ctrl-C (or SIGTERM) stops web, worker and
beat (see `Supervisor`), then the database; the exit status is 0 when everything stopped
because it was asked to, 1 when one of them died on its own.

Django is not imported here: settings are read by the child processes, which get the
database's URL in their environment.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from billing_site.celery_queues import QUEUES_BY_KIND

if TYPE_CHECKING:
    from core.embedded_db import EmbeddedServer

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def var_dir() -> Path:
    return Path(os.environ.get("CLOUDBILL_VAR_DIR", BASE_DIR / "var")).resolve()


def say(text: str) -> None:
    print(text, flush=True)


def processes(port: str) -> dict[str, list[str]]:
    celery = [str(BIN / "celery"), "-A", "billing_site"]
    return {
        "web": [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        # The demo's one worker takes every queue; production runs workers per queue.
        "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2", "--without-gossip",
                   "--without-mingle", "--without-heartbeat", "-Q", ",".join(QUEUES_BY_KIND)],
        "beat": [*celery, "beat", "--loglevel=INFO"],
    }


class Foreground:
    """Own the terminal's foreground process group while the demo runs.

    Ctrl-C goes to the terminal's foreground group. Left there, it would also reach `make`,
    which then reports "Interrupt" and exits 130 however cleanly the demo stopped. In a
    group of our own, only this launcher hears it; the group is handed back at the end.
    Without a terminal (a script, CI) nothing changes."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.previous: int | None = None

    def __enter__(self) -> Foreground:
        try:
            fd = os.open("/dev/tty", os.O_RDWR)
        except OSError:
            return self
        try:
            if os.tcgetpgrp(fd) != os.getpgrp():
                os.close(fd)  # started in the background: leave the terminal alone
                return self
            self.fd, self.previous = fd, os.getpgrp()
            os.setpgid(0, 0)
            self._hand_to(os.getpgrp())
        except OSError:
            self.fd = None
        return self

    def _hand_to(self, group: int) -> None:
        assert self.fd is not None
        # A background group that sets the foreground gets SIGTTOU unless it ignores it.
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self.fd, group)
        finally:
            signal.signal(signal.SIGTTOU, old)

    def __exit__(self, *_exc: object) -> None:
        if self.fd is None or self.previous is None:
            return
        try:
            self._hand_to(self.previous)
        except OSError:
            pass
        os.close(self.fd)


class Supervisor:
    """Web, worker and beat side by side, their output interleaved line by line.

    Each runs in a session of its own, so a Ctrl-C at the terminal reaches none of them
    directly: on Ctrl-C, SIGTERM, or the death of any one, each main process gets one
    SIGTERM (a Celery worker then stops its own pool: signalling the pool as well would
    turn a warm shutdown into lost children), and whatever still runs after
    `STOP_TIMEOUT` seconds is killed with its whole group."""

    STOP_TIMEOUT = 10

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str]):
        self.commands, self.env = commands, env
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.width = max(map(len, commands))
        self.colour = sys.stdout.isatty()
        self.lock = threading.Lock()

    def _print(self, name: str, line: str) -> None:
        label = f"{time.strftime('%H:%M:%S')} {name:<{self.width}} |"
        if self.colour:
            code = 31 + list(self.commands).index(name) % 6 if name in self.commands else 37
            label = f"\033[{code}m{label}\033[0m"
        with self.lock:
            sys.stdout.write(f"{label} {line}\n")
            sys.stdout.flush()

    def _pump(self, name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self._print(name, raw.rstrip("\n"))

    def run(self, stop: threading.Event) -> str | None:
        """Until `stop` is set or a process ends; returns the name of one that ended first."""
        for name, command in self.commands.items():
            proc = subprocess.Popen(command, cwd=BASE_DIR, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
            self.procs[name] = proc
            threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()
            self._print("system", f"{name} started (pid {proc.pid})")
        died = None
        while not stop.wait(0.2):
            died = next((n for n, p in self.procs.items() if p.poll() is not None), None)
            if died:
                self._print("system", f"{died} exited with status {self.procs[died].returncode}; stopping the rest")
                break
        self.stop()
        return died

    def stop(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                self._print("system", f"stopping {name}")
                proc.terminate()
        deadline = time.monotonic() + self.STOP_TIMEOUT
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._print("system", f"{name} did not stop in {self.STOP_TIMEOUT} s: killed")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Stragglers of a group whose leader has gone (a pool child, say) go too.
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass


def run(port: str) -> int:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE",
                                                              "billing_site.settings.local"))
    env["PYTHONUNBUFFERED"] = "1"
    # Web, worker and beat write their Prometheus counters to one directory, summed by
    # /metrics (core/metrics.py); what a previous run left is cleared first.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir() / "prometheus"))
    _fresh_metrics_dir(env["PROMETHEUS_MULTIPROC_DIR"])
    server: EmbeddedServer | None = None
    stop = threading.Event()

    def _asked_to_stop(signum: int, _frame: object) -> None:
        _announce_stop(stop, server, signum)
        raise _Stop

    signal.signal(signal.SIGINT, _asked_to_stop)
    signal.signal(signal.SIGTERM, _asked_to_stop)
    try:
        if not env.get("DATABASE_URL"):
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, sudo): harmless here.
                warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
                from core.embedded_db import SERVER_MAJOR, EmbeddedServer

                server = EmbeddedServer(var_dir())
                first = server.first_start
                say(f"  Starting PostgreSQL {SERVER_MAJOR} (embedded, {var_dir() / 'postgres'})"
                    + (" — the first start creates the cluster" if first else "") + "…")
                t0 = time.monotonic()
                try:
                    env["DATABASE_URL"] = server.start()
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                    server = None
                    say(f"  PostgreSQL did not start ({exc}).\n  Its log: {var_dir() / 'postgres' / 'log'}; "
                        "or set DATABASE_URL to use a server of your own.")
                    return 1
                say(f"    ready in {time.monotonic() - t0:.1f} s")
        else:
            say("  Database: the server DATABASE_URL names.")
        prepare = subprocess.run([PYTHON, "manage.py", "prepare_demo", "--port", port], env=env, cwd=BASE_DIR)
        if prepare.returncode != 0:
            say(f"  Preparing the demo failed (exit status {prepare.returncode}); see above.")
            return prepare.returncode
        supervisor = Supervisor(processes(port), env)
        # From here the signal only sets `stop`: the supervisor's loop notices and stops all.
        signal.signal(signal.SIGINT, lambda signum, _frame: _announce_stop(stop, server, signum))
        signal.signal(signal.SIGTERM, lambda signum, _frame: _announce_stop(stop, server, signum))
        died = supervisor.run(stop)
        return 1 if died else 0
    except _Stop:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            t0 = time.monotonic()
            problem = server.stop()
            say(f"  PostgreSQL: {problem}" if problem else f"  PostgreSQL stopped in {time.monotonic() - t0:.1f} s.")


def _fresh_metrics_dir(path: str) -> None:
    from core.metrics import fresh_multiprocess_dir

    fresh_multiprocess_dir(path)


class _Stop(Exception):
    """Ctrl-C or SIGTERM before the processes started: end the current step."""


def _announce_stop(stop: threading.Event, server: EmbeddedServer | None, signum: int) -> None:
    """Set `stop` and say so, once however many signals arrive."""
    if not stop.is_set():
        stop.set()
        print(flush=True)
        say(f"  {signal.Signals(signum).name} received: stopping web, worker, beat"
            + (" and the database" if server is not None else "") + "…")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
    args = parser.parse_args(argv)
    with Foreground():
        return run(str(args.port))


if __name__ == "__main__":
    sys.exit(main())
