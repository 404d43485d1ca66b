"""Each kind of work has its own queue, and every task is routed to one (issue 14, item 3)."""

from __future__ import annotations

from django.conf import settings

from billing_site.celery import app
from billing_site.celery_queues import QUEUES_BY_KIND
from core import launcher


def _our_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_has_a_queue_and_every_queue_entry_is_a_task():
    routed = {task for tasks in QUEUES_BY_KIND.values() for task in tasks}
    assert _our_tasks() - routed == set(), "a task without a queue (billing_site/celery_queues.py)"
    assert routed - _our_tasks() == set(), "a queue entry naming no task"
    assert sum(len(tasks) for tasks in QUEUES_BY_KIND.values()) == len(routed), "a task in two queues"


def test_the_router_sends_each_kind_to_its_queue_whoever_publishes_it():
    router = app.amqp.router
    for queue, tasks in QUEUES_BY_KIND.items():
        for task in tasks:
            assert router.route({}, task)["queue"].name == queue, task
    assert settings.CELERY_TASK_DEFAULT_QUEUE in QUEUES_BY_KIND


def test_the_minutes_metering_shares_no_queue_with_invoices_documents_or_payments():
    metering = set(QUEUES_BY_KIND["metering"])
    assert {"usage.meter", "usage.rollup", "credits.sync_pending"} <= metering
    for other in ("invoicing", "documents", "payments"):
        assert metering.isdisjoint(QUEUES_BY_KIND[other])
    assert "invoices.render_pdf" in QUEUES_BY_KIND["documents"]


def test_the_demo_worker_consumes_every_queue():
    worker = launcher.processes("8000")["worker"]
    assert worker[worker.index("-Q") + 1].split(",") == list(QUEUES_BY_KIND)


def test_every_beat_entry_lands_on_a_queue_a_worker_takes():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert app.amqp.router.route({}, entry["task"])["queue"].name in QUEUES_BY_KIND, name
