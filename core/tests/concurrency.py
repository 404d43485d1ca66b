"""Two database sessions side by side, for lock-order tests."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections


def run_second_while_first_holds(
    first: Callable[[], object], second: Callable[[], object], held: threading.Event, *, timeout: float = 30
) -> list[Exception]:
    """Run `first` in one thread and, once it sets `held` (its locks are taken), `second`
    in another, each on its own connection; return what either raised (a deadlock is an
    OperationalError here)."""
    errors: list[Exception] = []

    def run(fn: Callable[[], object], wait: bool) -> None:
        try:
            if wait:
                held.wait(10)
            fn()
        except Exception as exc:  # reported to the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(first, False)), threading.Thread(target=run, args=(second, True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return errors
