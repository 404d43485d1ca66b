"""Start-up checks of core: the one database dialect, and a server new enough for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import connections


@register(Tags.database)
def check_postgresql(app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None,
                     **kwargs: Any) -> list[CheckMessage]:
    """PostgreSQL only (STYLE: one dialect), at least POSTGRESQL_MIN_VERSION. Runs where
    Django runs database checks (`migrate`, `check --database default`)."""
    errors: list[CheckMessage] = []
    for alias in databases or []:
        connection = connections[alias]
        engine = connection.settings_dict["ENGINE"]
        if engine != "django.db.backends.postgresql":
            errors.append(Error(
                f"Database {alias!r} uses {engine}; cloudbill runs on PostgreSQL only.",
                hint="Point DATABASE_URL at a PostgreSQL server, or unset it for the embedded demo server.",
                id="core.E001",
            ))
            continue
        major = connection.pg_version // 10000  # type: ignore[attr-defined]  # the PostgreSQL backend's
        if major < settings.POSTGRESQL_MIN_VERSION:
            errors.append(Error(
                f"Database {alias!r} is PostgreSQL {major}; cloudbill needs {settings.POSTGRESQL_MIN_VERSION} or newer.",
                id="core.E002",
            ))
    return errors
