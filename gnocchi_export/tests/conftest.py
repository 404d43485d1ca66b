"""A real Gnocchi API for the export's tests: the `gnocchi` package (4.7.1) from its own venv
(.ci/gnocchi-peer), its WSGI app under gunicorn on 127.0.0.1 and a free port, basic auth,
file storage in a temporary folder, and a PostgreSQL indexer database of its own, created
fresh per test session and upgraded by `gnocchi-upgrade`. No metricd: reads ask for
`refresh=true`, which aggregates the pending measures in the API before answering.

The peer can be stopped and started again on the same port (`stop()`, `start()`), for the
outage tests. Its indexer database is GNOCCHI_PEER_DB (default `cloudbill_gnocchi_indexer`),
with `_gwN` per pytest-xdist worker, on DATABASE_URL's server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / ".ci"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GnocchiPeer:
    def __init__(self, venv: Path, config: Path, port: int, log: Path) -> None:
        self.venv, self.config, self.port, self.log = venv, config, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "GNOCCHI_CONFIG": str(self.config)}
        self.process = subprocess.Popen(
            [str(self.venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "--no-control-socket", "--chdir", str(CI), "gnocchi_wsgi:application"],
            env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Gnocchi peer exited ({self.process.returncode}): see {self.log}")
            try:
                if requests.get(f"{self.url}/v1/archive_policy", auth=("admin", ""), timeout=10).ok:
                    return
            except requests.RequestException:  # not listening yet, or its first request still loading
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the Gnocchi peer did not answer within 60 s: see {self.log}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def _admin_dsn(database: str) -> str:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@localhost:5432/cloudbill"))
    return urlunsplit(url._replace(scheme="postgresql", path=f"/{database}"))


@pytest.fixture(scope="session")
def gnocchi_peer(tmp_path_factory):
    started = time.monotonic()
    venv = Path(subprocess.run([str(CI / "gnocchi-peer")], check=True, capture_output=True, text=True)
                .stdout.strip().splitlines()[-1])
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    database = os.environ.get("GNOCCHI_PEER_DB", "cloudbill_gnocchi_indexer") + (f"_{worker}" if worker else "")
    admin = psycopg2.connect(_admin_dsn("postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{database}"')
    base = tmp_path_factory.mktemp("gnocchi")
    config = base / "gnocchi.conf"
    config.write_text(
        "[DEFAULT]\ndebug = false\n"
        "[api]\nauth_mode = basic\n"
        f"[indexer]\nurl = {_admin_dsn(database)}\n"
        f"[storage]\ndriver = file\nfile_basepath = {base / 'storage'}\n"
    )
    log = base / "gnocchi.log"
    subprocess.run([str(venv / "bin" / "gnocchi-upgrade"), "--config-file", str(config)], check=True,
                   stdout=log.open("ab"), stderr=subprocess.STDOUT)
    peer = GnocchiPeer(venv, config, _free_port(), log)
    peer.start()
    print(f"\nGnocchi peer up at {peer.url} in {time.monotonic() - started:.1f} s")
    yield peer
    peer.stop()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def gnocchi(gnocchi_peer, settings):
    """A gnocchiclient for the peer (started again if a test stopped it), with the export's
    settings pointing at it. Tests share the peer: their resources' ids differ (PostgreSQL
    sequences are not rolled back with a test's transaction)."""
    if gnocchi_peer.process is None:
        gnocchi_peer.start()
    settings.GNOCCHI_EXPORT_URL = gnocchi_peer.url
    settings.GNOCCHI_EXPORT_AUTH = "basic"
    settings.GNOCCHI_EXPORT_USER = "admin"
    from gnocchi_export.services import make_client

    return make_client()
