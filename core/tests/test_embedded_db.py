"""The demo's database URL and the one-dialect start-up check."""

from __future__ import annotations

from pathlib import Path

import environ
import pytest
from django.db import connection

from core import checks, embedded_db


def test_the_embedded_url_names_the_socket_directory_django_environ_understands(tmp_path):
    var = tmp_path / "My Demo+1" / "var"
    config = environ.Env.db_url_config(embedded_db.url(var))
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["HOST"] == str((var / "postgres").resolve())
    assert config["NAME"] == "cloudbill" and config["USER"] == "postgres"


def test_the_url_follows_the_socket_the_running_server_reports(tmp_path):
    pgdata = tmp_path / "var" / "postgres"
    pgdata.mkdir(parents=True)
    # postmaster.pid as PostgreSQL writes it: pid, data dir, start time, port, socket dir, …
    (pgdata / "postmaster.pid").write_text(f"123\n{pgdata}\n1700000000\n5432\n/run/elsewhere\n\n  0 0\nready\n")
    assert embedded_db.socket_dir(tmp_path / "var") == Path("/run/elsewhere")
    assert environ.Env.db_url_config(embedded_db.url(tmp_path / "var"))["HOST"] == "/run/elsewhere"


@pytest.mark.django_db
def test_the_start_up_check_accepts_this_postgresql():
    assert checks.check_postgresql(databases=["default"]) == []


@pytest.mark.django_db
def test_the_start_up_check_refuses_another_engine_and_an_old_postgresql(monkeypatch, settings):
    monkeypatch.setitem(connection.settings_dict, "ENGINE", "django.db.backends.sqlite3")
    assert [e.id for e in checks.check_postgresql(databases=["default"])] == ["core.E001"]
    monkeypatch.setitem(connection.settings_dict, "ENGINE", "django.db.backends.postgresql")
    settings.POSTGRESQL_MIN_VERSION = connection.pg_version // 10000 + 1
    assert [e.id for e in checks.check_postgresql(databases=["default"])] == ["core.E002"]
