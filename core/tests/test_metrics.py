"""/metrics: who may scrape, and that a scrape after real work moved by exactly that work."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing_site.celery import app as celery_app
from credits import services as credits
from credits.models import LedgerEntry
from payments.gateways.stripe_gateway import StripeGateway
from payments.tests.conftest import fake_paypal, fake_stripe  # noqa: F401 - the fake providers
from usage import metering
from usage.tests.conftest import at, clock, few_chunks  # noqa: F401 - frozen clock, two chunks
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db

TOKEN = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) → value, parsed by prometheus_client."""
    response = client.get("/metrics", **TOKEN)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def moved(before, after, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- who may scrape --------------------------------------------------------------------------------


def test_a_scrape_without_a_token_is_a_401_that_asks_for_a_bearer_token(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"cloudbill_" not in response.content


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Bearer ", "Basic dGVzdC1tZXRyaWNzLXRva2Vu",
                                    "test-metrics-token"])
def test_a_wrong_token_is_a_403(client, header):
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 403
    assert b"cloudbill_" not in response.content


def test_no_token_configured_refuses_every_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403
    assert client.get("/metrics").status_code == 401


def test_the_right_token_scrapes(client):
    response = client.get("/metrics", **TOKEN)
    assert response.status_code == 200
    assert b"# TYPE cloudbill_ledger_postings_total counter" in response.content


def test_an_allowed_network_scrapes_without_a_token_and_others_do_not(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 401


def test_behind_a_trusted_proxy_the_allow_list_reads_the_forwarded_address(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    settings.TRUSTED_PROXY_COUNT = 1
    # The balancer (127.0.0.1) appends the address it saw; what the client wrote before it is a claim.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.0.9, 192.0.2.7").status_code == 401
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="192.0.2.7, 10.1.0.9").status_code == 200


def test_metrics_refuses_writes(client):
    assert client.post("/metrics", **TOKEN).status_code == 405


# --- the values move by what was done ---------------------------------------------------------------


def test_a_scrape_after_real_work_moved_by_exactly_that_work(
        client, org, platform_api, clock, fake_stripe, django_capture_on_commit_callbacks):  # noqa: F811
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    before = scrape(client)

    # Ingest: 2 accepted, 1 duplicate (an id repeated in the batch), 2 rejected.
    with django_capture_on_commit_callbacks(execute=True):
        response = platform_api.post("/api/v1/events", {"events": [
            {"id": "m1", "type": "created", "resource": "srv-1", "timestamp": "2026-03-10T10:00:00Z",
             "organization": org.pk, "product": "cpu-4", "name": "web"},
            {"id": "m2", "type": "started", "resource": "srv-1", "timestamp": "2026-03-10T10:00:00Z"},
            {"id": "m2", "type": "started", "resource": "srv-1", "timestamp": "2026-03-10T10:00:00Z"},
            {"id": "m3", "type": "started", "resource": "srv-1"},
            {"id": "m4", "type": "metered", "resource": "srv-1", "timestamp": "2026-03-10T10:05:00Z",
             "metric": "gb", "quantity": "-1"},
        ]}, format="json")
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 2), body

    # A metering tick: 10:00 → 12:00 at $1.20/hour is $2.40, settled to the balance.
    with django_capture_on_commit_callbacks(execute=True):
        metering.meter_pass(until=at(12, 0))
    usage_entries = LedgerEntry.objects.filter(organization=org, kind="usage")
    usage_total = -sum(e.amount for e in usage_entries)
    assert usage_total == Decimal("2.40")

    # A ledger post: a staff credit of $25.50.
    with django_capture_on_commit_callbacks(execute=True):
        credits.credit_adjust(organization=org, amount=Decimal("25.50"), reason="goodwill")

    # A Stripe call against the fake: the customer is created there (one POST).
    stripe_before = len(fake_stripe.requests)
    StripeGateway().customer_id(org)
    stripe_calls = len(fake_stripe.requests) - stripe_before
    # And one the fake fails with a 500 (no SDK retries in tests).
    fake_stripe.fail_next("/v1/customers", 500)
    with pytest.raises(Exception):  # noqa: B017 - the gateway's own error type is not the point
        StripeGateway().customer_id(type(org).objects.create(name="Other", currency="USD"))

    after = scrape(client)

    assert moved(before, after, "cloudbill_usage_events_total", status="accepted") == 2
    assert moved(before, after, "cloudbill_usage_events_total", status="duplicate") == 1
    assert moved(before, after, "cloudbill_usage_events_total", status="rejected") == 2
    assert moved(before, after, "cloudbill_usage_events_rejected_total", reason="timestamp") == 1
    assert moved(before, after, "cloudbill_usage_events_rejected_total", reason="quantity") + moved(
        before, after, "cloudbill_usage_events_rejected_total", reason="metric") == 1

    assert moved(before, after, "cloudbill_ledger_postings_total", currency="USD", kind="usage") == usage_entries.count()
    assert moved(before, after, "cloudbill_ledger_postings_total", currency="USD", kind="adjustment") == 1
    # Prometheus keeps float64: equal to the cent, not to the last binary digit of a running sum.
    assert moved(before, after, "cloudbill_ledger_amount_total", currency="USD", direction="debit") == pytest.approx(
        2.40, abs=1e-9)
    assert moved(before, after, "cloudbill_ledger_amount_total", currency="USD", direction="credit") == pytest.approx(
        25.50, abs=1e-9)

    assert stripe_calls >= 1
    assert moved(before, after, "cloudbill_provider_calls_total", provider="stripe", outcome="ok") == stripe_calls
    assert moved(before, after, "cloudbill_provider_calls_total", provider="stripe", outcome="server_error") == 1
    assert moved(before, after, "cloudbill_provider_call_duration_seconds_count", provider="stripe") == stripe_calls + 1

    # The clock is frozen at 23:00; both chunks are metered up to 12:00: eleven hours behind.
    assert value(after, "cloudbill_metering_lag_seconds") == 11 * 3600
    for source in ("core.metrics.celery_queue_lengths", "usage.metrics.state", "credits.metrics.state",
                   "invoices.metrics.state"):
        assert value(after, "cloudbill_metrics_source_up", source=source) == 1


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # send_task publishes: what we want
def test_the_queue_depth_is_each_queues_length_on_the_broker(client):
    before = scrape(client)
    with celery_app.connection_for_write() as conn:
        celery_app.send_task("invoices.render_pdf", args=[0], queue="documents", connection=conn)
        celery_app.send_task("invoices.render_pdf", args=[0], queue="documents", connection=conn)
        celery_app.send_task("credits.runway", queue="maintenance", connection=conn)
    try:
        after = scrape(client)
    finally:
        with celery_app.connection_for_write() as conn:
            for queue in ("documents", "maintenance"):
                conn.default_channel.client.delete(queue)
    assert moved(before, after, "cloudbill_celery_queue_length", queue="documents") == 2
    assert moved(before, after, "cloudbill_celery_queue_length", queue="maintenance") == 1
    assert value(after, "cloudbill_celery_queue_length", queue="metering") == 0


def test_runway_top_ups_and_the_invoice_run_are_read_from_the_database_at_scrape_time(client):
    from datetime import UTC, datetime, timedelta

    import time_machine

    from accounts.models import BillingMode
    from accounts.tests.factories import OrganizationFactory
    from credits.models import Balance, TopUp
    from invoices.models import InvoiceRun, InvoiceRunItem

    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

    def balance(amount: str, burn: str, *, currency="USD", mode=BillingMode.PREPAID):
        org = OrganizationFactory(currency=currency, billing_mode=mode)
        Balance.objects.create(organization=org, currency=currency, amount=Decimal(amount),
                               burn_rate_per_hour=Decimal(burn))
        return org

    short = balance("23.99", "1")        # 23.99 h left
    balance("24.00", "1")                # exactly 24 h: not under
    balance("-3", "0.5")                 # used up and still burning
    balance("0", "0")                    # nothing left, nothing running: no runway to speak of
    balance("5", "1", mode=BillingMode.POSTPAID)  # postpaid: no runway
    balance("100", "10", currency="EUR")  # 10 h
    TopUp.objects.create(organization=short, source="manual", amount=Decimal("50"), currency="USD",
                         created_at=now - timedelta(minutes=90))
    TopUp.objects.create(organization=short, source="auto", amount=Decimal("50"), currency="USD", status="failed",
                         created_at=now - timedelta(minutes=20))
    TopUp.objects.create(organization=short, source="manual", amount=Decimal("50"), currency="USD",
                         status="succeeded", created_at=now - timedelta(days=3))
    run = InvoiceRun.objects.create(period_start=datetime(2026, 11, 1, tzinfo=UTC),
                                    period_end=datetime(2026, 12, 1, tzinfo=UTC), started_at=now)
    orgs = list(type(short).objects.order_by("id"))
    for org, status in zip(orgs, ["invoiced", "invoiced", "skipped", "failed", "pending", "pending"], strict=True):
        InvoiceRunItem.objects.create(run=run, organization=org, status=status)

    with time_machine.travel(now, tick=False):
        samples = scrape(client)

    assert value(samples, "cloudbill_organizations_low_runway", currency="USD") == 2
    assert value(samples, "cloudbill_organizations_low_runway", currency="EUR") == 1
    assert value(samples, "cloudbill_topups_open", status="pending") == 1
    assert value(samples, "cloudbill_topups_open", status="failed") == 1
    assert value(samples, "cloudbill_topup_oldest_open_age_seconds") == 90 * 60
    assert {s: value(samples, "cloudbill_invoice_run_organizations", status=s)
            for s in ("pending", "invoiced", "skipped", "failed")} == {"pending": 2, "invoiced": 2, "skipped": 1,
                                                                       "failed": 1}
    assert value(samples, "cloudbill_invoice_run_period_start_timestamp_seconds") == run.period_start.timestamp()
    assert value(samples, "cloudbill_invoice_run_running") == 1


def test_a_failing_state_source_is_reported_and_the_scrape_still_answers(client, settings, caplog):
    settings.METRICS_STATE_SOURCES = [*settings.METRICS_STATE_SOURCES, "core.tests.test_metrics.broken_source"]
    samples = scrape(client)
    assert value(samples, "cloudbill_metrics_source_up", source="core.tests.test_metrics.broken_source") == 0
    assert value(samples, "cloudbill_metrics_source_up", source="usage.metrics.state") == 1
    assert "metrics source core.tests.test_metrics.broken_source failed" in caplog.text


def broken_source():
    raise ConnectionError("the database went away")


def test_webhook_deliveries_count_by_outcome_and_refuse_an_unknown_one(client):
    from core import metrics

    before = scrape(client)
    metrics.webhook_delivered("delivered")
    metrics.webhook_delivered("failed")
    metrics.webhook_delivered("failed")
    with pytest.raises(ValueError):
        metrics.webhook_delivered("timeout")
    after = scrape(client)
    assert moved(before, after, "cloudbill_webhook_deliveries_total", outcome="delivered") == 1
    assert moved(before, after, "cloudbill_webhook_deliveries_total", outcome="failed") == 2


def test_a_rolled_back_post_counts_nothing(client, org):
    from django.db import transaction

    before = scrape(client)
    with pytest.raises(RuntimeError), transaction.atomic():
        credits.credit_adjust(organization=org, amount=Decimal("7"), reason="goodwill")
        raise RuntimeError("rolled back")
    after = scrape(client)
    assert moved(before, after, "cloudbill_ledger_postings_total", currency="USD", kind="adjustment") == 0


def test_paypal_calls_are_counted_by_outcome(client, org, fake_paypal):  # noqa: F811
    from payments.gateways.base import GatewayError
    from payments.gateways.paypal_gateway import PayPalGateway

    before = scrape(client)
    fake_paypal.fail_next("/v2/payments/refunds/", 503)
    with pytest.raises(GatewayError):
        PayPalGateway().refund_by_id("RF-1")
    fake_paypal.fail_next("/v2/payments/refunds/", 422)
    with pytest.raises(GatewayError):
        PayPalGateway().refund_by_id("RF-2")
    after = scrape(client)
    assert fake_paypal.count("GET", "/v2/payments/refunds/") == 2
    assert moved(before, after, "cloudbill_provider_calls_total", provider="paypal", outcome="server_error") == 1
    assert moved(before, after, "cloudbill_provider_calls_total", provider="paypal", outcome="client_error") == 1
    assert moved(before, after, "cloudbill_provider_call_duration_seconds_count", provider="paypal") == 2


# --- several processes ------------------------------------------------------------------------------


def _count_in_a_process_of_its_own(directory, outcome: str, times: int) -> None:
    import subprocess
    import sys

    from django.conf import settings

    code = ("from core import metrics\n"
            f"for _ in range({times}): metrics.webhook_delivered({outcome!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=settings.BASE_DIR,
                   env={"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(directory)}, timeout=60)


def test_in_multiprocess_mode_a_scrape_sums_what_every_process_counted(client, tmp_path, monkeypatch):
    from core.metrics import fresh_multiprocess_dir

    _count_in_a_process_of_its_own(tmp_path, "delivered", 3)  # a gunicorn worker, say
    _count_in_a_process_of_its_own(tmp_path, "delivered", 4)  # a Celery worker
    _count_in_a_process_of_its_own(tmp_path, "gave_up", 1)
    assert len(list(tmp_path.glob("counter_*.db"))) == 3
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    samples = scrape(client)
    assert value(samples, "cloudbill_webhook_deliveries_total", outcome="delivered") == 7
    assert value(samples, "cloudbill_webhook_deliveries_total", outcome="gave_up") == 1
    assert value(samples, "cloudbill_metrics_source_up", source="usage.metrics.state") == 1  # gauges still read

    # The next start clears what processes that are gone left behind; a live one's file stays.
    (tmp_path / f"counter_{os.getpid()}.db").write_bytes((tmp_path / next(tmp_path.iterdir()).name).read_bytes())
    fresh_multiprocess_dir(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"counter_{os.getpid()}.db"]


def test_gunicorn_clears_the_directory_at_start_and_forgets_a_dead_workers_live_gauges(tmp_path, monkeypatch):
    import runpy

    from django.conf import settings

    hooks = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prometheus"))
    hooks["on_starting"](None)
    assert (tmp_path / "prometheus").is_dir()
    (tmp_path / "prometheus" / "gauge_livesum_999999.db").write_bytes(b"")
    (tmp_path / "prometheus" / "counter_999999.db").write_bytes(b"")

    hooks["child_exit"](None, type("Worker", (), {"pid": 999999})())

    # Live gauges go with their process; its counters stay (they are totals so far).
    assert sorted(p.name for p in (tmp_path / "prometheus").iterdir()) == ["counter_999999.db"]
    assert {"wsgi_app", "limit_request_line"} <= set(hooks)


def test_known_label_values_are_exported_from_zero(client):
    samples = scrape(client)
    for status in ("accepted", "duplicate", "rejected"):
        assert ("cloudbill_usage_events_total", (("status", status),)) in samples
    for outcome in ("delivered", "failed", "gave_up"):
        assert ("cloudbill_webhook_deliveries_total", (("outcome", outcome),)) in samples
    assert ("cloudbill_provider_calls_total", (("outcome", "no_answer"), ("provider", "paypal"))) in samples


def test_a_stripe_call_that_gets_no_answer_is_counted_as_such(client, org, fake_stripe, settings):  # noqa: F811
    settings.PAYMENTS_PROVIDER_TIMEOUT = 0.5
    before = scrape(client)
    fake_stripe.stall_next("/v1/customers", 1.5)  # Stripe acts, its answer never arrives in time
    with pytest.raises(Exception):  # noqa: B017 - GatewayUnavailable; the count is the point
        StripeGateway().customer_id(org)
    after = scrape(client)
    assert moved(before, after, "cloudbill_provider_calls_total", provider="stripe", outcome="no_answer") == 1
    assert moved(before, after, "cloudbill_provider_calls_total", provider="stripe", outcome="ok") == 0
