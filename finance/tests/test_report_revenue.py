"""The revenue report against figures computed by hand, and against the journal.

The story (all 2026, times UTC):

- A, prepaid, EUR, Germany. 5 Oct: tops up 100.00. 10 Oct: three usage draws of
  0.333333333333 (1.00 recognised: 100 → 99.000000000001, the journal's cents 99.00).
  31 Oct 23:00: usage 2.004 (2.00; 0.004 carried). 1 Nov 00:30: usage 3.002 (3.01: 97.00 →
  93.99, the carried 0.004 and 0.002 make a cent) — the month boundary. Rollups: October
  GPU 2.004 and storage 1.000 (its October 3.00 splits 2.00 / 1.00); November GPU 1.501
  and storage 1.501 (3.01 splits 1.505 / 1.505, rounded 1.51 + 1.51 = 3.02, so the
  largest, GPU by id on a tie, takes −0.01: GPU 1.50, storage 1.51). 1 Nov 02:00: its
  October statement: GPU 2.00 and storage 1.00 settled by metering, support fee 10.00
  (tax 1.90), coupon −2.00 (tax −0.38).
- B, postpaid, EUR, France. 20 Oct: usage 12.345678901234 (12.35 recognised: the journal's
  cents of −12.345678901234 are −12.35). 1 Nov 02:00: its October invoice: GPU 12.35
  settled by metering (tax 2.35) and support fee 20.00 (tax 3.80). 15 Nov: a credit note
  of 10.00 (tax 1.90) on the support fee. 20 Nov: pays 20.00.
- C, prepaid, USD, United States. 5 Oct: tops up 50.00. 15 Oct: usage 1.00 (GPU rollup 1.00).

EUR, October: recognised 15.35 (GPU 2.00 + 12.35, storage 1.00); collected 100.00.
EUR, November: recognised 21.01 (GPU 1.50, storage 1.51, support 10.00 + 20.00 − 10.00,
coupon −2.00); invoiced 33.35 (A 11.00, B 32.35 − 10.00); collected 20.00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from credits.services import credit_topup, ledger_post
from finance.journal import journal_build
from finance.models import AccountRole, JournalLine
from finance.reports.base import ReportError, ReportParams, period_label
from finance.reports.registry import reports
from finance.reports.revenue import SPECIAL_LABELS, compute
from invoices import services as invoice_services
from invoices.models import LineKind
from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line, month_bounds
from invoices.services.credit_notes import LineCredit
from payments.models import PaymentStatus, Provider, Purpose
from payments.tests.factories import PaymentFactory
from pricing.models import Product, ProductGroup, ResourceState
from usage.models import UsageDaily
from usage.tests.factories import ResourceFactory

D = Decimal
OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def _invoice(org, currency: str, lines: list[Line], *, issued: datetime):
    start, end = month_bounds(2026, 10)
    bill = Bill(organization=org, currency=currency)
    for line in lines:
        bill.add(line)
    bill.subtotal = sum((ln.amount for ln in bill.lines if ln.kind != LineKind.DISCOUNT), D(0))
    bill.discount_total = sum((ln.amount for ln in bill.lines if ln.kind == LineKind.DISCOUNT), D(0))
    bill.tax_total = sum((ln.tax_amount for ln in bill.lines), D(0))
    bill.total = bill.amount_due = bill.subtotal + bill.discount_total + bill.tax_total
    ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start, span_end=end,
                         organization_ids=[org.pk], now=issued)
    draft = invoice_services.invoice_store_draft(bill=bill, ctx=ctx)
    return invoice_services.invoice_finalize(invoice=draft, render_pdf=False, now=issued)


@pytest.fixture
def shop(db, time_machine):
    gpu_group = ProductGroup.objects.create(slug="gpu-servers", name="GPU servers", position=1)
    storage_group = ProductGroup.objects.create(slug="storage", name="Storage", position=2)
    support_group = ProductGroup.objects.create(slug="support", name="Support", position=3)
    gpu = Product.objects.create(group=gpu_group, code="gpu-a100", name="A100", kind="server", billing_model="hourly")
    disk = Product.objects.create(group=storage_group, code="disk-ssd", name="SSD", kind="storage", billing_model="hourly")
    plan = Product.objects.create(group=support_group, code="support", name="Support plan", kind="addon",
                                  billing_model="monthly")
    a = OrganizationFactory(name="A", currency="EUR", country="DE", billing_mode=BillingMode.PREPAID)
    b = OrganizationFactory(name="B", currency="EUR", country="FR", billing_mode=BillingMode.POSTPAID)
    c = OrganizationFactory(name="C", currency="USD", country="US", billing_mode=BillingMode.PREPAID)

    def usage(org, amount: str, when: datetime) -> None:
        ledger_post(organization=org, amount=-D(amount), kind="usage", reason="Usage", at=when)

    def rollup(org, product, day: date, amount: str) -> None:
        resource = ResourceFactory(organization=org, product=product)
        UsageDaily.objects.create(organization=org, resource=resource, product=product, state=ResourceState.RUNNING,
                                  currency=org.currency, minutes=60, amount=D(amount), day=day)

    def topup(org, amount: str, when: datetime) -> None:
        time_machine.move_to(when, tick=False)
        pay = PaymentFactory(organization=org, purpose=Purpose.TOPUP, provider=Provider.SANDBOX, currency=org.currency,
                             status=PaymentStatus.SUCCEEDED, amount=D(amount), succeeded_at=when)
        credit_topup(organization=org, amount=D(amount), currency=org.currency, reference=f"payment:{pay.pk}")

    topup(a, "100.00", at(10, 5, 9))
    topup(c, "50.00", at(10, 5, 9))
    for hour in (10, 11, 12):
        usage(a, "0.333333333333", at(10, 10, hour))
    usage(a, "2.004", at(10, 31, 23))
    usage(a, "3.002", at(11, 1, 0, 30))
    usage(b, "12.345678901234", at(10, 20, 13))
    usage(c, "1.00", at(10, 15, 10))
    rollup(a, gpu, date(2026, 10, 10), "2.004")
    rollup(a, disk, date(2026, 10, 31), "1.000")
    rollup(a, gpu, date(2026, 11, 1), "1.501")
    rollup(a, disk, date(2026, 11, 1), "1.501")
    rollup(b, gpu, date(2026, 10, 20), "12.345678901234")
    rollup(c, gpu, date(2026, 10, 15), "1.00")

    time_machine.move_to(at(11, 1, 2), tick=False)
    _invoice(a, "EUR", [
        Line(kind=LineKind.USAGE, description="A100", amount=D("2.00"), product_id=gpu.pk, settled_by_metering=True),
        Line(kind=LineKind.USAGE, description="SSD", amount=D("1.00"), product_id=disk.pk, settled_by_metering=True),
        Line(kind=LineKind.RECURRING, description="Support plan", amount=D("10.00"), product_id=plan.pk,
             tax_rate=D(19), tax_amount=D("1.90")),
        Line(kind=LineKind.DISCOUNT, description="Coupon WELCOME", amount=D("-2.00"), tax_rate=D(19),
             tax_amount=D("-0.38")),
    ], issued=at(11, 1, 2))
    invoice = _invoice(b, "EUR", [
        Line(kind=LineKind.USAGE, description="A100", amount=D("12.35"), product_id=gpu.pk, settled_by_metering=True,
             tax_rate=D(19), tax_amount=D("2.35")),
        Line(kind=LineKind.RECURRING, description="Support plan", amount=D("20.00"), product_id=plan.pk,
             tax_rate=D(19), tax_amount=D("3.80")),
    ], issued=at(11, 1, 2))
    time_machine.move_to(at(11, 15, 12), tick=False)
    invoice_services.credit_note_create(invoice=invoice, reason="Support started late",
                                        lines=[LineCredit(position=2, amount=D("10.00"))], send=False)
    time_machine.move_to(at(11, 20, 10), tick=False)
    invoice_services.invoice_record_payment(invoice=invoice, amount=D("20.00"), reference="bank transfer 4711")
    time_machine.move_to(NOW, tick=False)
    return {"a": a, "b": b, "c": c, "gpu": gpu, "disk": disk, "plan": plan}


def run(group_by: str | None = None, *, start: date = OCT, end: date = DEC, currency: str = "EUR",
        grain: str = "month", **kw):
    return compute(ReportParams(start=start, end=end, currency=currency, grain=grain, group_by=group_by,  # type: ignore[arg-type]
                                **kw))


def table(report) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]]:
    return {(period_label(r["period"], report.params.grain), r["group"]): (r["recognised"], r["invoiced"], r["collected"])
            for r in report.rows}


PAYMENTS_ROW = SPECIAL_LABELS["~payments"]
DISCOUNTS_ROW = SPECIAL_LABELS["~discounts"]


def test_by_product_group(shop):
    report = run()
    assert table(report) == {
        ("2026-10", "GPU servers"): (D("14.35"), D("0.00"), D("0.00")),
        ("2026-10", "Storage"): (D("1.00"), D("0.00"), D("0.00")),
        ("2026-10", PAYMENTS_ROW): (D("0.00"), D("0.00"), D("100.00")),
        ("2026-11", "GPU servers"): (D("1.50"), D("14.35"), D("0.00")),
        ("2026-11", "Storage"): (D("1.51"), D("1.00"), D("0.00")),
        ("2026-11", "Support"): (D("20.00"), D("20.00"), D("0.00")),
        ("2026-11", DISCOUNTS_ROW): (D("-2.00"), D("-2.00"), D("0.00")),
        ("2026-11", PAYMENTS_ROW): (D("0.00"), D("0.00"), D("20.00")),
    }
    assert report.totals == {"recognised": D("36.36"), "invoiced": D("33.35"), "collected": D("120.00")}
    assert [r["period"] for r in report.rows] == sorted(r["period"] for r in report.rows)
    assert all(type(r["period"]) is date for r in report.rows)  # the first day of its period, as the columns' kind wants
    assert report.chart is not None and report.chart.kind == "stacked-bar"
    assert report.chart.labels == ["2026-10", "2026-11"]
    assert {s.label: s.values for s in report.chart.series} == {
        "GPU servers": [D("14.35"), D("1.50")], "Storage": [D("1.00"), D("1.51")], "Support": [D("0"), D("20.00")],
        DISCOUNTS_ROW: [D("0"), D("-2.00")]}
    assert report.chart.unit == "EUR"
    assert all(isinstance(v, Decimal) for r in report.rows for k, v in r.items() if k in ("recognised", "invoiced"))
    assert report.notes and any("credit note" in n for n in report.notes)


def test_by_product_splits_a_customers_usage_by_the_rollups_to_the_cent(shop):
    got = table(run("product"))
    assert got == {
        ("2026-10", "A100 (gpu-a100)"): (D("14.35"), D("0.00"), D("0.00")),
        ("2026-10", "SSD (disk-ssd)"): (D("1.00"), D("0.00"), D("0.00")),
        ("2026-10", PAYMENTS_ROW): (D("0.00"), D("0.00"), D("100.00")),
        ("2026-11", "A100 (gpu-a100)"): (D("1.50"), D("14.35"), D("0.00")),
        ("2026-11", "SSD (disk-ssd)"): (D("1.51"), D("1.00"), D("0.00")),
        ("2026-11", "Support plan (support)"): (D("20.00"), D("20.00"), D("0.00")),
        ("2026-11", DISCOUNTS_ROW): (D("-2.00"), D("-2.00"), D("0.00")),
        ("2026-11", PAYMENTS_ROW): (D("0.00"), D("0.00"), D("20.00")),
    }
    assert all(set(r) == {"period", "group", "recognised", "invoiced", "collected"} for r in run("product").rows)


def test_by_customer(shop):
    assert table(run("customer")) == {
        ("2026-10", "A"): (D("3.00"), D("0.00"), D("100.00")),
        ("2026-10", "B"): (D("12.35"), D("0.00"), D("0.00")),
        ("2026-11", "A"): (D("11.01"), D("11.00"), D("0.00")),
        ("2026-11", "B"): (D("10.00"), D("22.35"), D("20.00")),
    }


def test_by_country_of_the_billing_profile(shop):
    assert table(run("country")) == {
        ("2026-10", "DE"): (D("3.00"), D("0.00"), D("100.00")),
        ("2026-10", "FR"): (D("12.35"), D("0.00"), D("0.00")),
        ("2026-11", "DE"): (D("11.01"), D("11.00"), D("0.00")),
        ("2026-11", "FR"): (D("10.00"), D("22.35"), D("20.00")),
    }


def test_currencies_are_never_mixed(shop):
    usd = run("customer", currency="USD")
    assert table(usd) == {("2026-10", "C"): (D("1.00"), D("0.00"), D("50.00"))}
    assert usd.totals == {"recognised": D("1.00"), "invoiced": D("0.00"), "collected": D("50.00")}
    assert "C" not in {r["group"] for r in run("customer").rows}
    assert table(run(currency="JPY")) == {}


def test_by_day_across_the_month_boundary_carries_the_fraction_of_a_cent(shop):
    report = run("customer", start=date(2026, 10, 31), end=date(2026, 11, 2), grain="day")
    assert table(report) == {
        ("2026-10-31", "A"): (D("2.00"), D("0.00"), D("0.00")),
        ("2026-11-01", "A"): (D("11.01"), D("11.00"), D("0.00")),
        ("2026-11-01", "B"): (D("20.00"), D("32.35"), D("0.00")),
    }
    assert report.chart is not None and report.chart.labels == ["2026-10-31", "2026-11-01"]
    # A range starting on 1 Nov still starts from the ledger's sum before it (the carry).
    assert table(run("customer", start=NOV, end=date(2026, 11, 2), grain="day"))[("2026-11-01", "A")][0] == D("11.01")


def test_one_organisation(shop):
    got = table(run("customer", organization_id=shop["b"].pk))
    assert set(got) == {("2026-10", "B"), ("2026-11", "B")}


def _journal_revenue(start: date, end: date, currency: str) -> Decimal:
    """What the journal's revenue accounts (usage consumed, per product group, discounts)
    hold for the days [start, end), as revenue (credit positive)."""
    total = JournalLine.objects.filter(
        entry__date__gte=start, entry__date__lt=end, entry__currency=currency,
        account__role__in=[AccountRole.USAGE_REVENUE, AccountRole.REVENUE, AccountRole.DISCOUNTS],
    ).aggregate(s=Sum("amount"))["s"]
    return -(total or D(0))


@pytest.mark.parametrize("built_until", [None, date(2026, 10, 20), date(2026, 10, 31), date(2026, 11, 30)])
def test_recognised_revenue_agrees_with_the_journal_cent_for_cent(shop, built_until):
    """Built or not, partly or wholly: the report's figures are the same, and for the
    days the journal has built they are its revenue accounts' to the cent."""
    before = {g: run(g).rows for g in ("product_group", "product", "customer", "country")}
    journal_build(until=date(2026, 11, 30), now=NOW) if built_until == date(2026, 11, 30) else (
        journal_build(until=built_until, now=NOW) if built_until else None)
    after = {g: run(g).rows for g in before}
    assert after == before
    for start, end in [(OCT, NOV), (NOV, DEC), (OCT, DEC), (date(2026, 10, 31), date(2026, 11, 2))]:
        report = run(start=start, end=end, grain="day")
        if built_until and end <= date.fromordinal(built_until.toordinal() + 1):
            assert report.totals is not None
            assert report.totals["recognised"] == _journal_revenue(start, end, "EUR")
    journal_build(until=date(2026, 11, 30), now=NOW)
    assert run().totals["recognised"] == _journal_revenue(OCT, DEC, "EUR") == D("36.36")  # type: ignore[index]
    assert run(currency="USD").totals["recognised"] == _journal_revenue(OCT, DEC, "USD") == D("1.00")  # type: ignore[index]


@pytest.mark.parametrize("bad", [
    {"group_by": "planet"},
    {"grain": "week"},
    {"start": NOV, "end": NOV},
    {"start": DEC, "end": NOV},
])
def test_bad_params_raise_report_error(db, bad):
    params = {"start": OCT, "end": DEC, "currency": "EUR", "grain": "month", "group_by": None} | bad
    with pytest.raises(ReportError):
        compute(ReportParams(**params))


def test_registered_with_its_group_bys_and_baseline(shop):
    spec = reports()["revenue"]
    assert spec.group_by[0] == "product_group" and set(spec.group_by) == {"product_group", "product", "customer", "country"}
    assert spec.grains == ("month", "day")
    assert spec.baseline is not None
    rows = spec.baseline(ReportParams(start=OCT, end=DEC, currency="EUR"))
    assert isinstance(rows, list) and len(rows) == len(run().rows)


def test_a_void_takes_the_fee_back_on_its_day_as_the_journal_does(shop, time_machine):
    """D, postpaid, EUR: an invoice of a 7.00 fee issued 1 Nov and voided 3 Nov is 7.00 of
    revenue on 1 Nov and −7.00 on 3 Nov (invoiced alike), nothing over the month."""
    d = OrganizationFactory(name="D", currency="EUR", country="AT", billing_mode=BillingMode.POSTPAID)
    time_machine.move_to(at(11, 1, 3), tick=False)
    inv = _invoice(d, "EUR", [Line(kind=LineKind.RECURRING, description="Support plan", amount=D("7.00"),
                                   product_id=shop["plan"].pk)], issued=at(11, 1, 3))
    time_machine.move_to(at(11, 3, 9), tick=False)
    invoice_services.invoice_void(invoice=inv, reason="Billed by mistake")
    time_machine.move_to(NOW, tick=False)
    by_day = table(run("customer", start=NOV, end=date(2026, 11, 5), grain="day", organization_id=d.pk))
    assert by_day == {("2026-11-01", "D"): (D("7.00"), D("7.00"), D("0.00")),
                      ("2026-11-03", "D"): (D("-7.00"), D("-7.00"), D("0.00"))}
    assert table(run("customer", organization_id=d.pk)) == {}
    journal_build(until=date(2026, 11, 30), now=NOW)
    for start, end in [(NOV, date(2026, 11, 2)), (date(2026, 11, 3), date(2026, 11, 4)), (OCT, DEC)]:
        assert run(start=start, end=end).totals["recognised"] == _journal_revenue(start, end, "EUR")  # type: ignore[index]
