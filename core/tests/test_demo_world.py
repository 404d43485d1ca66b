"""The demo as one world: `seed_demo` once (as of 3 December 2026, 09:00 UTC), then what each
app promises of it. Seeding the demo takes half a minute; the tests that need it whole
share one seeding in this module (committed, on one pytest worker: the xdist group), each
in its own transaction rolled back, the browser test last (it reads through a live server
and ends by emptying the database, as the module's teardown does after it).

- invoices: last month is billed once for the demo organisations (a second seed bills nothing);
- credits: TinyML ran out of credit about three days before, and is on the zero-balance ladder
  (its banner and the console show the next notice and the deletion date);
- finance: three closed months of history before last month (finance/demo.py) and the journal
  built up to the last settled day; `check_journal` agrees with the ledger and the invoices
  and names the day when a ledger row is tampered with; the DATEV batch of the last complete
  month validates against the format's field rules; each report has something to say over
  the history; a second `seed_demo` adds nothing;
- every report page over the history in chromium at 1366 px: each draws its chart with no
  JavaScript error, nothing runs off the page, the WCAG 2.1 AA scan passes. With
  SCREENSHOTS_DIR set they are docs/finance.md's screenshots
  (docs/screenshots/console-report-<name>.png).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection

from accounts.staff import BILLING_ADMIN
from accounts.tests.factories import UserFactory
from core.tests.browser import axe_violations, overflowing, shot
from core.tests.flush import empty_database
from credits.models import LedgerEntry
from finance.demo import history_months
from finance.exports import journal_datev, parse_datev
from finance.journal import built_until
from finance.models import JournalEntry
from finance.reports.base import ReportParams
from finance.reports.registry import reports
from finance.tests.chart_seed import ensure_chart_of_accounts
from finance.tests.datev_rules import validate
from invoices.models import Invoice
from payments.models import Payment
from usage.models import Resource

pytestmark = pytest.mark.xdist_group("demo")

D = Decimal
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
HISTORY = {"start": date(2026, 8, 1), "end": date(2026, 12, 1)}  # the history and last month
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)


def seed() -> None:
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=io.StringIO())


@pytest.fixture(scope="module")
def demo_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ensure_chart_of_accounts()
        seed()
        yield
        empty_database("default")  # as a transactional test leaves it
        emit_post_migrate_signal(verbosity=0, interactive=False, db="default")


@pytest.fixture
def demo(demo_world, db):
    """The seeded demo, inside this test's transaction (rolled back after it)."""


@pytest.fixture
def demo_staff(demo_world, transactional_db):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    return user


def test_seed_demo_bills_last_month_once_and_places_acme_s_servers_in_projects(demo, client):
    november = Invoice.objects.filter(period_start=NOVEMBER)
    first = sorted(november.values_list("organization__slug", "number", "status"))
    all_invoices = Invoice.objects.count()
    tagged = list(Resource.objects.order_by("id").values_list("id", "project_id", "labels", "tags_at"))
    seed()
    assert sorted(november.values_list("organization__slug", "number", "status")) == first
    assert Invoice.objects.count() == all_invoices
    # usage.demo.PROJECTS: Acme's servers in two projects with labels, set once.
    assert list(Resource.objects.order_by("id").values_list("id", "project_id", "labels", "tags_at")) == tagged
    placed = dict(Resource.objects.filter(organization__slug="acme-ai", project__isnull=False)
                  .values_list("external_id", "project__slug"))
    assert placed == {"acme-h100-01": "ml-research", "acme-a100-02": "ml-research", "acme-cpu-web": "platform",
                      "acme-cpu-ci": "platform"}
    assert Resource.objects.get(external_id="acme-cpu-ci").labels == {"team": "web", "env": "ci"}
    assert [slug for slug, _, _ in first] == ["acme-ai", "nordlicht", "tinyml"]
    acme = november.get(organization__slug="acme-ai")
    # A prepaid statement: November's usage of each server (the legacy fleet's imported, the
    # seeded one's metered), hibernated hours apart, the backup add-on, the bastion (at its cap) and two IPv4 addresses' fees.
    assert acme.is_statement and acme.lines.count() == 16
    assert acme.amount_due == acme.total - acme.credit_applied  # what the prepaid balance lacked
    _measured_vs_billable_has_figures()

    # budgets.demo: Acme's organisation budget and its "ML research" project's, each past an alert.
    from budgets.models import Budget

    org_budget = Budget.objects.get(organization__slug="acme-ai", name="Monthly cloud budget")
    project_budget = Budget.objects.get(organization__slug="acme-ai", name="ML research GPUs")
    assert org_budget.project is None and {"actual:50", "actual:80"} <= set(org_budget.alerts_sent)
    assert project_budget.project.slug == "ml-research" and "actual:50" in project_budget.alerts_sent
    assert "actual:80" not in project_budget.alerts_sent
    # ... and the "Platform" project's, capped: its running server hibernated through the
    # signed provisioning outbox, once (the second seed above added nothing).
    from credits.models import ProvisioningRequest

    capped = Budget.objects.get(organization__slug="acme-ai", name="Platform (hard cap)")
    web = Resource.objects.get(external_id="acme-cpu-web")
    assert capped.project.slug == "platform" and capped.capped_at is not None and capped.actual >= capped.cap_amount
    assert capped.capped_resources == [web.pk] and web.state == "hibernated"
    assert Resource.objects.get(external_id="acme-h100-01").state == "running"  # another project: untouched
    (request,) = ProvisioningRequest.objects.filter(organization__slug="acme-ai", action="hibernate")
    assert request.payload["resource_ids"] == [web.pk] and request.payload["reason"].startswith("Budget cap reached")

    with time_machine.travel(NOW, tick=False):
        _tinyml_ladder_is_shown(client)


def _measured_vs_billable_has_figures():
    """usage.demo's bastion hit its product's monthly cap in November, and the three-minute
    A100 test run pays the ten-minute minimum (issue 19, item 5, in the demo)."""
    from usage.billable import measured_vs_billable

    bastion = Resource.objects.get(external_id="acme-cpu-bastion")
    november = measured_vs_billable(resource=bastion, month=date(2026, 11, 1), now=NOW)
    [running] = november.states
    assert (running.measured_minutes, running.billable_minutes) == (720 * 60, 720 * 60)
    assert running.amount == D("19.99") and november.cap_saved == 720 * D("0.0298") - D("19.99") == D("1.466")
    trial = Resource.objects.get(external_id="acme-a100-try")
    december = measured_vs_billable(resource=trial, month=date(2026, 12, 1), now=NOW)
    by_state = {line.state: line for line in december.states}
    assert by_state["running"].measured_minutes == 3 and by_state["provisioning"].billable_minutes == 0
    assert by_state["provisioning"].reason == "Transitional state: not billed."
    assert december.minimum_minutes == 7 and december.minimum_amount == (D("1.79") * 7 / 60).quantize(D("1e-12"))
    assert by_state["running"].amount == (D("1.79") * 10 / 60).quantize(D("1e-12"))  # the ten-minute minimum


def _tinyml_ladder_is_shown(client):
    """credits.demo.seed_ladder: TinyML Studio's $90.00 ran out about three days before
    the demo's now; metering with a moving clock hibernated it at the minute after (its
    balance then at or just below zero), the day-1 notice went out a day later, and the
    dashboard banner and the console show the next notice (day 7) and the deletion
    (day 14). Checked after the second seed_demo: once only."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import User
    from accounts.staff import BILLING_ADMIN, sync_staff_groups
    from accounts.tests.factories import UserFactory
    from core.formatting import format_datetime
    from credits.models import CreditEvent, EventKind, HibernationLadder

    ladder = HibernationLadder.objects.get(organization__slug="tinyml")  # one, whatever the reruns
    since = ladder.hibernated_at
    assert timedelta(days=2) < timezone.now() - since < timedelta(days=4)
    assert (ladder.status, ladder.started_at, ladder.notices_done) == ("active", since, [1])
    assert ladder.deletion_due_at == since + timedelta(days=14)
    events = list(CreditEvent.objects.filter(organization=ladder.organization,
                                             kind__in=[EventKind.HIBERNATED, EventKind.DELETION_NOTICE])
                  .order_by("created_at").values_list("kind", "created_at", "message"))
    assert [(k, at) for k, at, _ in events] == [(EventKind.HIBERNATED, since),
                                                (EventKind.DELETION_NOTICE, since + timedelta(days=1))]
    assert "credit exhausted (-$0.0" in events[0][2]  # hibernated within a minute of running out
    client.force_login(User.objects.get(email="owner@tinyml.example"))
    page = client.get("/").content.decode()
    banner = page[page.index("ladder-banner"):page.index("</section>", page.index("ladder-banner"))]
    assert "Resources hibernated: credit ran out" in banner
    for label, at in (("Hibernated since", since), ("Next notice", since + timedelta(days=7)),
                      ("Deletion scheduled on", since + timedelta(days=14))):
        assert label in banner and format_datetime(at) in banner, (label, banner)
    sync_staff_groups()
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name=BILLING_ADMIN))
    client.force_login(staff)
    console = client.get("/console/credits/hibernationladder/").content.decode()
    assert (f"Day 3: day-1 notice sent; next: day-7 notice on {format_datetime(since + timedelta(days=7))}; "
            f"deletion on {format_datetime(since + timedelta(days=14))}") in console


def report(name: str, currency: str, **kwargs):
    return reports()[name].compute(ReportParams(currency=currency, grain="month", **HISTORY, **kwargs))


def test_the_demo_journal_agrees_fails_when_tampered_and_exports_datev(demo, capsys):
    assert history_months(NOW) == [(datetime(2026, m, 1, tzinfo=UTC), datetime(2026, m + 1, 1, tzinfo=UTC))
                                   for m in (8, 9, 10)]
    assert built_until() == date(2026, 12, 2)  # the last day settled at 09:00 on the 3rd
    counts = (JournalEntry.objects.count(), LedgerEntry.objects.count(), Invoice.objects.count(),
              Payment.objects.count())
    seed()
    assert (JournalEntry.objects.count(), LedgerEntry.objects.count(), Invoice.objects.count(),
            Payment.objects.count()) == counts  # idempotent: the history is not written twice

    call_command("check_journal")
    agrees = capsys.readouterr().out
    assert agrees.startswith("journal agrees days=124 ")  # 1 August to 2 December

    # The demo's last complete month, in each currency it bills in: a valid DATEV batch.
    for currency in ("EUR", "USD"):
        content = journal_datev(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30), currency=currency,
                                now=NOW)
        assert validate(content) == [], currency
        rows = parse_datev(content)
        assert rows[0][0] == "EXTF" and rows[0][21] == currency
        assert len(rows) > 2, f"no bookings in {currency}"
    eur = parse_datev(journal_datev(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30), currency="EUR",
                                    now=NOW))
    accounts = {(r[6], r[7]) for r in eur[2:]}
    # Nordlicht's October invoice issued on 1 November (receivable against revenue and
    # 19 % VAT), the bank transfer in dunning, and the write-off.
    assert ("1400", "8201") in accounts and any(counter == "1776" for _, counter in accounts)
    assert ("1200", "1400") in accounts and ("2400", "0998") in accounts

    # A ledger row changed behind the append-only trigger's back (as the journal tests do).
    row = LedgerEntry.objects.filter(kind="usage", reference__startswith="demo-finance-history:usage:",
                                     organization__slug="acme-ai").order_by("created_at").first()
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # the append-only trigger sleeps
        cur.execute("UPDATE credits_ledgerentry SET amount = amount - 0.01 WHERE id = %s", [row.pk])
        cur.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(CommandError, match="journal disagrees"):
        call_command("check_journal")
    err = capsys.readouterr().err
    assert f"{row.created_at.date()}: organisation {row.organization_id} USD: ledger sum" in err
    assert "difference -0.010000000000" in err


def test_every_report_has_something_to_say_over_the_demo_history(demo):
    usage = report("usage", "USD")
    assert {r["product"] for r in usage.rows} >= {"gpu-h100-8x", "cpu-16-64", "gpu-l40s-1x"}
    assert len({r["period"] for r in usage.rows}) == 4

    recognised: dict = {}
    for r in report("revenue", "USD").rows:
        recognised[r["period"]] = recognised.get(r["period"], D(0)) + r["recognised"]
    assert all(recognised[date(2026, m, 1)] > 0 for m in (8, 9, 10, 11)), recognised

    credit = {r["period"]: r for r in report("credit-held", "USD").rows}
    assert all(credit[m]["topups"] > 0 for m in ("2026-08", "2026-09", "2026-10"))
    assert credit["2026-11"]["refunds"] == D("-50.00")
    assert all(r["opening"] + r["topups"] + r["consumed"] + r["refunds"] + r["adjustments"] + r["other"]
               == r["closing"] for r in credit.values())

    recurring = {r["month"]: r for r in report("recurring", "USD").rows}
    assert recurring[date(2026, 8, 1)]["new"] == D("3.00")
    assert recurring[date(2026, 9, 1)]["new"] == D("3.00")  # TinyML's fee starts…
    assert recurring[date(2026, 10, 1)]["churn"] == D("-3.00")  # …and ends
    assert recurring[date(2026, 10, 1)]["expansion"] == D("3.00")  # Acme's second address
    # November, billed by the engine from usage.demo's fleet: the same two addresses, no churn.
    assert (recurring[date(2026, 11, 1)]["churn"], recurring[date(2026, 11, 1)]["mrr"]) == (D("0"), D("6.00"))
    eur_mrr = {r["month"]: r for r in report("recurring", "EUR").rows}
    assert eur_mrr[date(2026, 10, 1)]["contraction"] == D("-2.76")
    assert (eur_mrr[date(2026, 11, 1)]["churn"], eur_mrr[date(2026, 11, 1)]["mrr"]) == (D("0"), D("2.76"))

    receivables = report("receivables", "EUR").rows
    assert [r["customer"] for r in receivables] == ["Nordlicht Render"]
    [nordlicht] = receivables
    # As of 1 December: the September invoice's rest is 31 days past due (31–60), the
    # October invoice is due that day (current); the August one was written off.
    assert nordlicht["d31_60"] > 0 and nordlicht["current"] > 0 and nordlicht["d1_30"] == 0

    collections = {r["period"]: r for r in report("collections", "EUR", group_by="total").rows}
    assert collections[date(2026, 10, 1)]["failed_count"] == 1
    assert collections[date(2026, 11, 1)]["dunning_recovered"] > 0
    assert collections[date(2026, 11, 1)]["written_off"] > 0
    usd = {(r["period"], r["provider"]): r for r in report("collections", "USD").rows}
    assert usd[(date(2026, 9, 1), "paypal")]["failed_count"] == 1  # TinyML's declined top-up
    assert usd[(date(2026, 11, 1), "stripe")]["refunded"] == D("50.00")


RANGE = "from=2026-08-01&to=2026-11-30&grain=month"
# Each report in the currency where the demo gives it most to say: credit is held by the
# prepaid USD customers, receivables are the postpaid EUR customer's.
PAGES = {
    "revenue": "currency=USD",
    "credit-held": "currency=USD",
    "receivables": "currency=EUR",
    "recurring": "currency=USD",
    "collections": "currency=EUR&group_by=total",
    "usage": "currency=USD",
}



@pytest.mark.browser
def test_every_report_page_over_the_demo_history(portal_page, demo_staff):
    assert set(PAGES) >= set(reports()), "a report without a demo page"
    page = portal_page(demo_staff, viewport="laptop")
    for name, query in PAGES.items():
        if name not in reports():
            continue
        page.goto(f"/console/finance/reports/{name}/?{RANGE}&{query}")
        page.wait_for_function("() => { const c = document.getElementById('report-chart'); "
                               "return c && c.width > 0 && window.Chart && Chart.getChart(c) }")
        chart = page.evaluate("() => { const c = Chart.getChart(document.getElementById('report-chart'));"
                              " return c.data.datasets.map(d => [d.label, d.type || c.config.type,"
                              " d.data.some(v => v !== 0)]) }")
        assert any(drawn for _, _, drawn in chart), f"{name}: the chart draws nothing"
        assert page.locator(".cb-report-table tbody tr").count() >= 1
        assert "Nothing in this range." not in page.locator(".cb-report-table").inner_text()
        if name == "recurring":
            kinds = {label: kind for label, kind, _ in chart}
            assert kinds["Closing MRR"] == "line" and kinds["New"] == "bar"
        # Money on the axis as the table writes it.
        ticks = page.evaluate("() => Chart.getChart(document.getElementById('report-chart'))"
                              ".scales.y.ticks.map(t => t.label)")
        if "currency=USD" in query and name != "usage":
            assert any(str(t).startswith("$") for t in ticks), (name, ticks)
        if "currency=EUR" in query:
            assert any(str(t).startswith("€") for t in ticks), (name, ticks)
        assert page.js_errors == []
        shot(page, f"console-report-{name}")
        assert overflowing(page) == [], name
        assert axe_violations(page) == [], name
