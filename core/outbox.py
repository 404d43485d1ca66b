"""Transactional outbox: work handed to Celery survives a broker outage, once.

`enqueue(task_name, *args)` writes an `OutboxMessage` in the caller's transaction, so the
message exists if and only if the rows it is about committed. Right after commit it is
sent; if the broker is down the request still answers as usual and the message waits.
The relay (`core.outbox_relay`, beat every 30 s, and `manage.py outbox_relay`) sends
whatever is left once the broker is back.

A sender claims a message for `LEASE` before it publishes and marks it sent after. A
crash between publishing and marking sends it again when the lease runs out: delivery is
at least once, and every task the outbox sends is idempotent (ids in, state checked),
so the effect happens once. A publish that fails releases the claim at once.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from core.models import OutboxMessage

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
KEEP_SENT = timedelta(days=7)


class Sent(enum.Enum):
    SENT = "sent"
    TAKEN = "taken"  # sent already, or another sender holds it
    FAILED = "failed"  # the broker refused or could not be reached


def _unclaimed(now: datetime) -> QuerySet[OutboxMessage]:
    """Messages not sent yet that no sender holds."""
    return OutboxMessage.objects.filter(sent_at__isnull=True).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> OutboxMessage:
    """Record `task_name(*args, **kwargs)` in the current transaction; send after commit."""
    _task(task_name)  # an unknown name fails here, in the caller, not later in the relay
    msg = OutboxMessage.objects.create(task=task_name, args=list(args), kwargs=kwargs)
    pk = msg.pk
    transaction.on_commit(lambda: send(pk))
    return msg


def _task(name: str) -> Any:
    from billing_site.celery import app

    if name not in app.tasks:
        app.autodiscover_tasks(force=True)  # every app's tasks module, in processes that never loaded it
    return app.tasks[name]


def send(pk: int, connection: Any = None) -> Sent:
    """Claim message `pk`, publish it, mark it sent. A broker that cannot be reached
    fails fast (one connection try, 2 s), so a request never waits out an outage."""
    now = timezone.now()
    claimed = _unclaimed(now).filter(pk=pk).update(claimed_until=now + LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return Sent.TAKEN
    msg = OutboxMessage.objects.get(pk=pk)
    task = _task(msg.task)
    if task.app.conf.task_always_eager:
        # Tests and one-process runs: the task runs here and its errors propagate.
        task.apply_async(args=msg.args, kwargs=msg.kwargs)
    else:
        try:
            if connection is None:
                with _connect(task.app) as conn:
                    _publish(task, msg, conn)
            else:
                _publish(task, msg, connection)
        except Exception as exc:  # any publish failure: the relay tries again
            logger.warning("outbox %s (%s): broker unavailable, kept for the relay: %s", pk, msg.task, exc)
            OutboxMessage.objects.filter(pk=pk).update(
                claimed_until=None, last_error=f"{type(exc).__name__}: {exc}"[:500])
            return Sent.FAILED
    OutboxMessage.objects.filter(pk=pk).update(sent_at=timezone.now(), claimed_until=None, last_error="")
    return Sent.SENT


def _connect(app: Any) -> Any:
    conn = app.connection_for_write()
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception:
        conn.release()
        raise
    return conn


def _publish(task: Any, msg: OutboxMessage, conn: Any) -> None:
    task.apply_async(args=msg.args, kwargs=msg.kwargs, task_id=f"outbox-{msg.pk}", connection=conn, retry=False)


def relay(*, batch: int = 500) -> int:
    """Send messages still waiting, oldest first; stop at the first broker failure (it
    is down: the next run goes on). Forget sent messages after `KEEP_SENT`. Returns how
    many were sent."""
    now = timezone.now()
    waiting = list(_unclaimed(now).order_by("id").values_list("id", flat=True)[:batch])
    sent = 0
    if waiting:
        from billing_site.celery import app

        conn = None  # tasks run inline: no broker
        if not app.conf.task_always_eager:
            try:
                conn = _connect(app)
            except Exception as exc:
                logger.warning("outbox relay: broker unavailable, %s messages wait: %s", len(waiting), exc)
                return 0
        try:
            for pk in waiting:
                result = send(pk, conn)
                if result is Sent.FAILED:
                    break
                sent += result is Sent.SENT
        finally:
            if conn is not None:
                conn.release()
    OutboxMessage.objects.filter(sent_at__lt=now - KEEP_SENT).delete()
    return sent


def waiting_count() -> int:
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()
