"""A broker outage strands nothing: work dispatched after commit waits in the outbox and
reaches the broker exactly once when it is back (core.outbox).

The outage is real: a redis-server of the test's own, on its own port, is the broker; it
is down when the requests are made and started before the relay runs."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.core import mail
from django.utils import timezone

from billing_site.celery import app
from billing_site.celery_queues import QUEUES_BY_KIND
from core import outbox
from core.models import OutboxMessage
from credits.models import CreditEvent, EventKind, TopUp, TopUpSource, TopUpStatus
from credits.tasks import credits_topup_retry_task

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A redis-server on a port of its own, started and stopped by the test."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def messages(self) -> list[dict]:
        """What is queued, on every queue (each kind of work has its own), as (task,
        args, task id)."""
        client = redis.Redis.from_url(self.url)
        out = []
        for raw in [raw for queue in QUEUES_BY_KIND for raw in client.lrange(queue, 0, -1)]:
            envelope = json.loads(raw)
            args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
            out.append({"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs,
                        "id": envelope["headers"]["id"]})
        return out


@pytest.fixture
def broker(monkeypatch):
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    broker = Broker()
    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = broker.url, False
    app._pool, app.amqp._producer_pool = None, None
    yield broker
    broker.stop()
    app.conf.broker_url, app.conf.task_always_eager = saved
    app._pool, app.amqp._producer_pool = None, None


def test_work_requested_while_the_broker_is_down_is_sent_once_when_it_is_back(
    broker, org, org_api, owner, django_capture_on_commit_callbacks, settings,
):
    from credits import hibernation, services
    from credits.models import Balance
    from invoices.services import invoice_resend
    from invoices.tests.factories import make_invoice
    from usage.tests.factories import ResourceFactory

    org.billing_email = "billing@example.com"
    org.save(update_fields=["billing_email"])
    invoice = make_invoice(org)
    services.ledger_post(organization=org, amount=Decimal("-5"), kind="usage", reason="usage")
    Balance.objects.filter(organization=org).update(depleted_at=timezone.now() - timedelta(hours=1))
    server = ResourceFactory(organization=org, state="running")
    OutboxMessage.objects.all().delete()  # the set-up's own messages
    with django_capture_on_commit_callbacks(execute=True):
        topup = org_api.post("/api/v1/credits/topups", {"amount": "100.00"}, format="json")
        invoice_resend(invoice=invoice, actor=owner)
        provisioning = hibernation.hibernate(balance_id=Balance.objects.get(organization=org).pk)
    assert provisioning is not None
    # The customer's answer is the usual one, not a 500; nothing is lost.
    assert topup.status_code == 201, topup.content
    topup_id = topup.json()["id"]
    waiting = OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id")
    hibernated_event = CreditEvent.objects.get(kind=EventKind.HIBERNATED).pk
    expected = sorted([
        ("credits.topup_dispatch", (topup_id,)), ("invoices.email", (invoice.pk,)),
        ("credits.provisioning_deliver", (provisioning.pk,)), ("credits.email_event", (hibernated_event,)),
    ])
    assert sorted((m.task, tuple(m.args)) for m in waiting) == expected
    assert all(m.attempts == 1 and "Error" in m.last_error for m in waiting)
    assert outbox.relay() == 0  # still down: the relay keeps them

    broker.start()
    assert outbox.relay() == 4
    assert outbox.relay() == 0  # a second pass (or a second relay) sends nothing again
    queued = broker.messages()
    assert sorted((m["task"], tuple(m["args"])) for m in queued) == expected
    assert len({m["id"] for m in queued}) == 4
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0

    # A worker runs what it received: each effect happens once.
    mail.outbox.clear()
    for message in queued:
        app.tasks[message["task"]].apply(message["args"], message["kwargs"])
    assert TopUp.objects.get(pk=topup_id).attempts == 1
    provisioning.refresh_from_db()
    assert provisioning.attempts == 1 and provisioning.payload["resource_ids"] == [server.pk]
    subjects = sorted(m.subject for m in mail.outbox)
    assert len(subjects) == 2, subjects
    assert any(invoice.number in s for s in subjects) and any("Resources hibernated" in s for s in subjects)


def test_a_message_whose_sender_died_after_claiming_it_is_sent_after_the_lease(broker):
    broker.start()
    msg = OutboxMessage.objects.create(task="credits.topup_retry", claimed_until=timezone.now() + outbox.LEASE)
    assert outbox.relay() == 0  # another sender holds it
    OutboxMessage.objects.filter(pk=msg.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert outbox.relay() == 1
    assert [m["task"] for m in broker.messages()] == ["credits.topup_retry"]


def test_an_unknown_task_fails_where_it_is_enqueued():
    with pytest.raises(KeyError):
        outbox.enqueue("credits.no_such_task", 1)


def test_a_top_up_stranded_before_the_outbox_is_dispatched_once_by_the_retry_pass(org, django_capture_on_commit_callbacks):
    """Rows an outage left as pending with no attempt (the outside tester's case)."""
    stranded = TopUp.objects.create(organization=org, source=TopUpSource.MANUAL, amount=Decimal("50.00"),
                                    currency=org.currency, created_at=timezone.now() - timedelta(hours=3))
    fresh = TopUp.objects.create(organization=org, source=TopUpSource.MANUAL, amount=Decimal("10.00"),
                                 currency=org.currency)
    with django_capture_on_commit_callbacks(execute=True):
        credits_topup_retry_task()
    with django_capture_on_commit_callbacks(execute=True):
        credits_topup_retry_task()
    stranded.refresh_from_db()
    fresh.refresh_from_db()
    assert stranded.attempts == 1 and stranded.status == TopUpStatus.SUCCEEDED
    assert fresh.attempts == 0  # not yet overdue: its own dispatch may still be on its way
