"""Logging filters used by settings."""

from __future__ import annotations

import logging


class DropMessagesStartingWith(logging.Filter):
    """Drops records whose message starts with one of `prefixes`: a known, harmless line
    repeated on every call would bury what matters in the demo's terminal."""

    def __init__(self, prefixes: list[str] | tuple[str, ...] = ()):
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)
