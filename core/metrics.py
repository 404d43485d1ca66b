"""Every Prometheus metric cloudbill exports, defined here and nowhere else.

`GET /metrics` (core.views.metrics) answers Prometheus' text format to a scraper holding
`METRICS_TOKEN` (`Authorization: Bearer …`) or calling from `METRICS_ALLOWED_NETWORKS`.
Names follow Prometheus' conventions: the `cloudbill_` prefix, `_total` on counters and
only there, base units (`_seconds`, amounts in the currency's major unit), and never an
organisation id as a label (labels are bounded: currency, kind, status, queue, provider).
core/tests/test_metrics_names.py lints every definition below.

Two kinds, chosen per metric:

- **Events** (counters and histograms, "process" below): incremented where the thing
  happens, in whichever process does it: web, Celery worker, beat. With
  `PROMETHEUS_MULTIPROC_DIR` set (`make run` and gunicorn.conf.py set it up) each process
  writes its values to files there and a scrape sums them, so a ledger post in a Celery
  worker shows in the web's `/metrics`. Counters only move after the transaction that did
  the work commits (`transaction.on_commit`): a rolled-back post counts nothing.
- **State of the world** (gauges, "scrape" below): read from the database (or the broker)
  at scrape time by `StateCollector`, from the functions `METRICS_STATE_SOURCES` names (one
  per app, so core imports nothing to its right). They are right whichever process or host
  did the work, survive restarts, and cost a few indexed queries per scrape. A source that
  fails (the database is down) is reported as `cloudbill_metrics_source_up{source} 0`, never
  a failed scrape.

| name | type | labels | kind | what |
| --- | --- | --- | --- | --- |
| `cloudbill_usage_events_total` | counter | `status` (accepted, duplicate, rejected) | process | usage events ingested (API and imports), per item |
| `cloudbill_usage_events_rejected_total` | counter | `reason` (the field at fault: id, type, timestamp, quantity, resource, …; `other`) | process | rejected events by reason |
| `cloudbill_ledger_postings_total` | counter | `currency`, `kind` | process | ledger entries written (single posts, bulk posts, the metering sync) |
| `cloudbill_ledger_amount_total` | counter | `currency`, `direction` (credit, debit) | process | absolute amount posted, in the currency's major unit |
| `cloudbill_webhook_deliveries_total` | counter | `outcome` (delivered, failed, gave_up) | process | outbound webhook delivery attempts (`webhook_delivered`) |
| `cloudbill_provider_calls_total` | counter | `provider` (stripe, paypal), `outcome` (ok, client_error, rate_limited, server_error, no_answer) | process | HTTP calls to the payment providers |
| `cloudbill_provider_call_duration_seconds` | histogram | `provider` | process | their latency, answer or not |
| `cloudbill_metering_lag_seconds` | gauge | | scrape | now − the watermark of the chunk furthest behind (every minute below it is metered); absent before the first metering |
| `cloudbill_organizations_low_runway` | gauge | `currency` | scrape | prepaid organisations burning credit that lasts under 24 h (a used-up balance still burning included) |
| `cloudbill_topups_open` | gauge | `status` (pending, failed) | scrape | top-ups not yet succeeded nor abandoned |
| `cloudbill_topup_oldest_open_age_seconds` | gauge | | scrape | age of the oldest open top-up (0 when none) |
| `cloudbill_invoice_run_organizations` | gauge | `status` (pending, invoiced, skipped, failed) | scrape | organisations of the latest monthly run by state: done = invoiced + skipped, total = the sum |
| `cloudbill_invoice_run_period_start_timestamp_seconds` | gauge | | scrape | the month that run bills (Unix time of its first instant) |
| `cloudbill_invoice_run_running` | gauge | | scrape | 1 while that run is running, else 0 |
| `cloudbill_celery_queue_length` | gauge | `queue` (billing_site/celery_queues.py) | scrape | messages waiting in each queue (Redis LLEN; absent with the filesystem broker) |
| `cloudbill_metrics_source_up` | gauge | `source` | scrape | 1 if the state source answered this scrape, 0 if it failed |

Request metrics (`django_http_*`) come from django-prometheus' middleware, under its own
names.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

PREFIX = "cloudbill_"
# Seconds. Stripe and PayPal answer in 0.2-2 s; the timeout is PAYMENTS_PROVIDER_TIMEOUT (10 s).
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- events: counters and histograms, per process -------------------------------------------------
# No `_created` gauge beside every counter (a second series each, which the multiprocess mode
# does not export anyway): every process exports the same families.
disable_created_metrics()
# prometheus_client names a counter without its `_total`; it adds it on the way out.

USAGE_EVENTS = Counter("cloudbill_usage_events", "Usage events ingested, per item, by result.", ["status"])
USAGE_EVENTS_REJECTED = Counter("cloudbill_usage_events_rejected", "Rejected usage events by reason.", ["reason"])
LEDGER_POSTINGS = Counter("cloudbill_ledger_postings", "Ledger entries written.", ["currency", "kind"])
LEDGER_AMOUNT = Counter("cloudbill_ledger_amount",
                        "Absolute amount posted to the ledger, in the currency's major unit.", ["currency", "direction"])
WEBHOOK_DELIVERIES = Counter("cloudbill_webhook_deliveries", "Outbound webhook delivery attempts by outcome.",
                             ["outcome"])
PROVIDER_CALLS = Counter("cloudbill_provider_calls", "HTTP calls to a payment provider by outcome.",
                         ["provider", "outcome"])
PROVIDER_DURATION = Histogram("cloudbill_provider_call_duration_seconds",
                              "Latency of HTTP calls to a payment provider, answered or not.", ["provider"],
                              buckets=PROVIDER_BUCKETS)

EVENT_METRICS = (USAGE_EVENTS, USAGE_EVENTS_REJECTED, LEDGER_POSTINGS, LEDGER_AMOUNT, WEBHOOK_DELIVERIES,
                 PROVIDER_CALLS, PROVIDER_DURATION)

WEBHOOK_OUTCOMES = ("delivered", "failed", "gave_up")
PROVIDERS = ("stripe", "paypal")
CALL_OUTCOMES = ("ok", "client_error", "rate_limited", "server_error", "no_answer")
# Known label values start at 0, so a rate() over a fresh process is 0, not absent.
for _status in ("accepted", "duplicate", "rejected"):
    USAGE_EVENTS.labels(status=_status)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)
for _provider in PROVIDERS:
    PROVIDER_DURATION.labels(provider=_provider)
    for _outcome in CALL_OUTCOMES:
        PROVIDER_CALLS.labels(provider=_provider, outcome=_outcome)
# The field an ingest rejection names first ("quantity: not a number." → quantity).
REJECTION_REASONS = frozenset({"id", "type", "timestamp", "organization", "kind", "quantity", "resource", "product",
                               "metric", "event", "state", "reason"})


def _after_commit(fn: Callable[[], None]) -> None:
    from django.db import transaction

    transaction.on_commit(fn, robust=True)


def rejection_reason(message: str) -> str:
    """A bounded label for an ingest rejection: the field it names, else `other`."""
    head, sep, rest = message.partition(":")
    if sep and head.strip() in REJECTION_REASONS:
        return head.strip()
    if sep and rest.strip().startswith("unknown field"):
        return "unknown_field"
    return "other"


def usage_events_counted(results: Iterable[dict]) -> None:
    """usage.ingest: count one batch's per-item results once it commits."""
    statuses: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        if r["status"] == "rejected":
            reason = rejection_reason(r.get("reason", ""))
            reasons[reason] = reasons.get(reason, 0) + 1

    def count() -> None:
        for status, n in statuses.items():
            USAGE_EVENTS.labels(status=status).inc(n)
        for reason, n in reasons.items():
            USAGE_EVENTS_REJECTED.labels(reason=reason).inc(n)

    _after_commit(count)


def ledger_posted(entries: Iterable[tuple[str, str, Decimal]]) -> None:
    """credits' ledger: count (currency, kind, amount) entries once they commit."""
    postings: dict[tuple[str, str], int] = {}
    amounts: dict[tuple[str, str], Decimal] = {}
    for currency, kind, amount in entries:
        postings[(currency, kind)] = postings.get((currency, kind), 0) + 1
        key = (currency, "credit" if amount > 0 else "debit")
        amounts[key] = amounts.get(key, Decimal(0)) + abs(amount)
    if not postings:
        return

    def count() -> None:
        for (currency, kind), n in postings.items():
            LEDGER_POSTINGS.labels(currency=currency, kind=kind).inc(n)
        for (currency, direction), amount in amounts.items():
            # A sample for Prometheus (float64); the ledger keeps the exact Decimal.
            LEDGER_AMOUNT.labels(currency=currency, direction=direction).inc(float(amount))

    _after_commit(count)


def webhook_delivered(outcome: str) -> None:
    """Outbound webhooks: one delivery attempt. `delivered` (a 2xx), `failed` (an error or
    a non-2xx; retried later) or `gave_up` (the last attempt failed; the endpoint is
    disabled). Call it outside the delivery's transaction, once per attempt."""
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"webhook outcome {outcome!r} is not one of {WEBHOOK_OUTCOMES}")
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


def call_outcome(status: int | None) -> str:
    if status is None:
        return "no_answer"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


def _status_of(exc: BaseException | None) -> int | None:
    """The HTTP status the provider answered, as the SDK's exception (or the one it was
    raised from) carries it: Stripe's `http_status`, PayPal's `response_code`. Not
    `status_code`: our own errors carry the status *we* answer with."""
    seen = 0
    while exc is not None and seen < 5:
        for attr in ("http_status", "response_code"):
            value = getattr(exc, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


@dataclass
class ProviderCall:
    status: int | None = None


@contextmanager
def provider_call(provider: str) -> Iterator[ProviderCall]:
    """Time one HTTP call to a provider and count it by outcome. Set `.status` from the
    answer; an exception's status is read from it (or its cause), none = no answer."""
    call = ProviderCall()
    started = time.perf_counter()
    try:
        yield call
    except BaseException as exc:
        call.status = call.status or _status_of(exc)
        raise
    finally:
        PROVIDER_DURATION.labels(provider=provider).observe(time.perf_counter() - started)
        PROVIDER_CALLS.labels(provider=provider, outcome=call_outcome(call.status)).inc()


P = ParamSpec("P")
R = TypeVar("R")


def timed_provider_call(provider: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`provider_call` as a decorator: a return is `ok`, an exception goes by its status."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with provider_call(provider) as call:
                result = fn(*args, **kwargs)
                call.status = 200
                return result

        return wrapper

    return decorate


# --- state of the world: gauges read at scrape time ------------------------------------------------


@dataclass(frozen=True)
class State:
    name: str
    help: str
    labels: tuple[str, ...] = ()


STATE_METRICS: tuple[State, ...] = (
    State("cloudbill_metering_lag_seconds",
          "Seconds between now and the watermark of the metering chunk furthest behind."),
    State("cloudbill_organizations_low_runway",
          "Prepaid organisations burning credit that lasts under 24 hours.", ("currency",)),
    State("cloudbill_topups_open", "Top-ups neither succeeded nor abandoned.", ("status",)),
    State("cloudbill_topup_oldest_open_age_seconds", "Age of the oldest open top-up (0 when none)."),
    State("cloudbill_invoice_run_organizations", "Organisations of the latest invoice run by state.", ("status",)),
    State("cloudbill_invoice_run_period_start_timestamp_seconds", "Start of the month the latest invoice run bills."),
    State("cloudbill_invoice_run_running", "1 while the latest invoice run is running."),
    State("cloudbill_celery_queue_length", "Messages waiting in a Celery queue.", ("queue",)),
    State("cloudbill_metrics_source_up", "1 if the state source answered this scrape.", ("source",)),
)
STATES = {s.name: s for s in STATE_METRICS}


@dataclass(frozen=True)
class Sample:
    """One value a state source reports: a name of STATE_METRICS, its labels, the value."""

    name: str
    value: int | float | Decimal
    labels: dict[str, str] = field(default_factory=dict)


class StateCollector(Collector):
    """Calls every source in `METRICS_STATE_SOURCES` and turns its samples into gauges."""

    def __init__(self, sources: Iterable[str] | None = None):
        self.sources = sources

    def describe(self) -> Iterable[Metric]:
        return []  # no database work when the collector is registered

    def collect(self) -> Iterable[Metric]:
        from django.conf import settings
        from django.utils.module_loading import import_string

        families = {s.name: GaugeMetricFamily(s.name, s.help, labels=s.labels) for s in STATE_METRICS}
        up = families["cloudbill_metrics_source_up"]
        for path in self.sources if self.sources is not None else settings.METRICS_STATE_SOURCES:
            try:
                samples = list(import_string(path)())
                for sample in samples:
                    state = STATES[sample.name]  # KeyError: a source reported an undefined metric
                    if set(sample.labels) != set(state.labels):
                        raise ValueError(f"{sample.name} takes labels {state.labels}, got {sorted(sample.labels)}")
                    # A sample for Prometheus (float64), never read back as money.
                    families[sample.name].add_metric([sample.labels[n] for n in state.labels], float(sample.value))
            except Exception:  # noqa: BLE001 - a failing source must not fail the scrape
                log.exception("metrics source %s failed", path)
                up.add_metric([path], 0)
            else:
                up.add_metric([path], 1)
        return list(families.values())


def celery_queue_lengths() -> Iterator[Sample]:
    """LLEN of every queue of billing_site/celery_queues.py on the Redis broker (kombu's
    priority sub-queues included); nothing with the filesystem broker."""
    import redis
    from django.conf import settings

    from billing_site.celery_queues import QUEUES_BY_KIND

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES_BY_KIND:
                # kombu's Redis transport: priority 0 is the queue's own key, 3/6/9 "queue\x06\x16N".
                for key in (queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))):
                    pipe.llen(key)
            lengths = pipe.execute()
    finally:
        client.close()
    for i, queue in enumerate(QUEUES_BY_KIND):
        yield Sample("cloudbill_celery_queue_length", sum(lengths[i * 4:i * 4 + 4]), {"queue": queue})


# --- exposition -----------------------------------------------------------------------------------


class _ThisProcess(Collector):
    """The default registry's metrics, when every process keeps its own (no multiprocess dir)."""

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import REGISTRY

        return REGISTRY.collect()


def exposition() -> tuple[bytes, str]:
    """The text a scrape answers, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(StateCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def scrape_refusal(request: Any) -> int | None:
    """None when the caller may scrape; 401 (no token offered) or 403 (a wrong one)."""
    import hmac
    import ipaddress

    from django.conf import settings

    from core.net import client_address

    header = request.META.get("HTTP_AUTHORIZATION", "")
    token = settings.METRICS_TOKEN
    if header:
        scheme, _, offered = header.partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
            return None
        return 403
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return 401
    if any(address in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_NETWORKS):
        return None
    return 401


# --- multiprocess mode ----------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fresh_multiprocess_dir(path: str | Path) -> str:
    """Create PROMETHEUS_MULTIPROC_DIR, or empty it of the files of processes that are gone
    (a previous run's): their counters would otherwise be summed into this run's. Files of
    live processes stay, so a gunicorn restarted beside running Celery workers keeps their
    counts. Call it before starting the processes that write there."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for file in directory.glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid))):
            file.unlink(missing_ok=True)
    return str(directory)


def process_exited(pid: int) -> None:
    """gunicorn's child_exit: drop a dead worker's live gauges (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
