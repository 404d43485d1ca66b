"""A real Celery worker for the worker-crash test (core/tests/test_worker_crash.py).

Run as `python -m core.tests.crash_worker [slow]` with the test database in DATABASE_URL.
It is the project's worker (prefork pool as in production, one child, the project's
settings: late acks, reject on worker lost) with two test-only changes: unacknowledged messages become visible again
after 2 seconds instead of an hour, so a restarted worker picks up the killed one's task
quickly; and with `slow`, taking a chunk's invoice numbers takes three seconds (inside
the finalizing transaction, its drafts stored and its ledger drawn), so the test can
kill the worker in the middle of a chunk. (Not the solo pool: it blocks the event loop
while a task runs, so even an early ack would only be sent after the task — the test
could not tell late acks from early ones.)"""

from __future__ import annotations

import os
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_site.settings.test")
    django.setup()
    from django.conf import settings

    settings.CELERY_TASK_ALWAYS_EAGER = False
    from billing_site.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_transport_options = {"visibility_timeout": 2}
    if "slow" in sys.argv[1:]:
        from invoices import numbering

        issue = numbering.next_numbers

        def slow_issue(series: str, year: int, count: int) -> list[str]:
            time.sleep(3.0)
            return issue(series, year, count)

        numbering.next_numbers = slow_issue
    app.worker_main(["worker", "--pool=prefork", "--concurrency=1", "--loglevel=INFO", "--without-gossip",
                     "--without-mingle", "--without-heartbeat", "-Q", os.environ["CRASH_TEST_QUEUE"]])


if __name__ == "__main__":
    main()
