"""The recurring revenue report against figures worked out by hand.

The story (EUR unless said; invoices issued on the 1st after each month):

- A: 10.00 IPv4 in September; in October it adds a 3.50 monthly add-on (expansion
  +3.50), and keeps both in November.
- B: 20.00 + 5.00 in September; releases the 5.00 on 15 October (its line ends then:
  contraction −5.00), 20.00 after.
- C: new on 20 October, a 12.00 fee prorated on the invoice (4.65) but held at the
  month's end: new +12.00 at its full rate; also hourly usage (not a fee).
- D: 8.00 in September and October, its resource deleted at 1 November 00:00 sharp:
  October counts it (held to the end), November has no invoice: churn −8.00 in November.
- F: 4.00 in September, nothing in October (churn −4.00), 4.00 again in November
  (reactivation +4.00).
- G: a 99.00 fee on a draft invoice: never counted.
- E (USD): 30.00 in October, never in the EUR figures.

October: opening 47.00 (10 + 25 + 8 + 4) + new 12.00 + expansion 3.50 − contraction 5.00
− churn 4.00 = closing 53.50. November: 53.50 − churn 8.00 + reactivation 4.00 = 49.50.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from finance.reports.base import ReportError, ReportParams
from finance.reports.recurring import SPEC, compute
from finance.reports.registry import reports
from invoices import services as invoice_services
from invoices.models import LineKind
from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line, month_bounds
from pricing.models import Price, Product, ProductGroup
from usage.models import Resource, UsageDaily

D = Decimal
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def issue(org, year: int, month: int, lines: list[Line], *, currency: str = "EUR", finalize: bool = True):
    start, end = month_bounds(year, month)
    bill = Bill(organization=org, currency=currency)
    for line in lines:
        bill.add(line)
    bill.subtotal = sum((ln.amount for ln in bill.lines), D(0))
    bill.total = bill.amount_due = bill.subtotal
    ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start, span_end=end,
                         organization_ids=[org.pk], now=end)
    draft = invoice_services.invoice_store_draft(bill=bill, ctx=ctx)
    return invoice_services.invoice_finalize(invoice=draft, render_pdf=False, now=end) if finalize else draft


def fee(rate: str, *, resource: int, start: datetime | None = None, end: datetime | None = None,
        amount: str | None = None, kind: str = LineKind.RECURRING) -> Line:
    return Line(kind=kind, description="fee", amount=D(amount or rate), quantity=D(1), unit="month",
                unit_price=D(rate), resource_id=resource, product_id=resource, service_start=start, service_end=end)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) if month <= 12 else datetime(2027, month - 12, day, tzinfo=UTC)


@pytest.fixture
def story(db, time_machine):
    time_machine.move_to(NOW, tick=False)
    orgs = {name: OrganizationFactory(name=name, currency="USD" if name == "E" else "EUR", country="DE",
                                      billing_mode=BillingMode.POSTPAID) for name in "ABCDEFG"}
    a, b, c, d, e, f, g = orgs.values()
    issue(a, 2026, 9, [fee("10.00", resource=1)])
    issue(a, 2026, 10, [fee("10.00", resource=1), fee("3.50", resource=2, kind=LineKind.ADDON,
                                                    start=at(10, 10), end=at(11, 1), amount="2.48")])
    issue(a, 2026, 11, [fee("10.00", resource=1), fee("3.50", resource=2, kind=LineKind.ADDON)])
    issue(b, 2026, 9, [fee("20.00", resource=3), fee("5.00", resource=4)])
    issue(b, 2026, 10, [fee("20.00", resource=3), fee("5.00", resource=4, start=at(10, 1), end=at(10, 15),
                                                     amount="2.26")])
    issue(b, 2026, 11, [fee("20.00", resource=3)])
    issue(c, 2026, 10, [fee("12.00", resource=5, start=at(10, 20), end=at(11, 1), amount="4.65"),
                        Line(kind=LineKind.USAGE, description="A100", amount=D("40.00"), quantity=D(10), unit="hour",
                             unit_price=D("4.00"))])
    issue(c, 2026, 11, [fee("12.00", resource=5)])
    issue(d, 2026, 9, [fee("8.00", resource=6)])
    issue(d, 2026, 10, [fee("8.00", resource=6, start=at(10, 1), end=at(11, 1))])
    issue(e, 2026, 10, [fee("30.00", resource=7)], currency="USD")
    issue(f, 2026, 9, [fee("4.00", resource=8)])
    issue(f, 2026, 11, [fee("4.00", resource=8)])
    issue(g, 2026, 11, [fee("99.00", resource=9)], finalize=False)
    return orgs


def params(start=date(2026, 10, 1), end=date(2026, 12, 1), currency="EUR", **kw) -> ReportParams:
    return ReportParams(start=start, end=end, currency=currency, **kw)


def rows_by_month(report):
    return {row["month"]: row for row in report.rows}


def test_mrr_movements_add_up_month_by_month(story):
    report = compute(params())
    october, november = report.rows
    assert october["month"] == date(2026, 10, 1) and november["month"] == date(2026, 11, 1)
    assert {k: october[k] for k in ("opening_mrr", "new", "expansion", "contraction", "churn", "reactivation",
                                    "mrr", "arr")} == {
        "opening_mrr": D("47.00"), "new": D("12.00"), "expansion": D("3.50"), "contraction": D("-5.00"),
        "churn": D("-4.00"), "reactivation": D("0"), "mrr": D("53.50"), "arr": D("642.00")}
    assert {k: november[k] for k in ("opening_mrr", "new", "expansion", "contraction", "churn", "reactivation",
                                     "mrr", "arr")} == {
        "opening_mrr": D("53.50"), "new": D("0"), "expansion": D("0"), "contraction": D("0"),
        "churn": D("-8.00"), "reactivation": D("4.00"), "mrr": D("49.50"), "arr": D("594.00")}
    for row in report.rows:
        assert row["opening_mrr"] + row["new"] + row["expansion"] + row["contraction"] + row["churn"] \
            + row["reactivation"] == row["mrr"]
    assert (october["customers"], october["new_customers"], october["churned_customers"],
            october["reactivated_customers"]) == (4, 1, 1, 0)
    assert (november["customers"], november["new_customers"], november["churned_customers"],
            november["reactivated_customers"]) == (4, 0, 1, 1)
    assert report.totals is not None and report.totals["churn"] == D("-12.00")
    assert report.totals["new_customers"] == 1


def test_the_next_month_opens_where_the_last_closed(story):
    november = compute(params(start=date(2026, 11, 1))).rows[0]
    assert november["opening_mrr"] == D("53.50")
    assert november["reactivation"] == D("4.00")  # F had MRR before the range: not new


def test_currencies_are_never_mixed(story):
    usd = compute(params(currency="USD")).rows
    assert [(r["new"], r["mrr"], r["churn"]) for r in usd] == [(D("30.00"), D("30.00"), D("0")),
                                                               (D("0"), D("0"), D("-30.00"))]


def test_one_organisation(story):
    rows = compute(params(organization_id=story["B"].pk)).rows
    assert [(r["opening_mrr"], r["contraction"], r["mrr"]) for r in rows] == [
        (D("25.00"), D("-5.00"), D("20.00")), (D("20.00"), D("0"), D("20.00"))]


def test_mrr_is_rounded_once_per_organisation_and_month(db, time_machine):
    time_machine.move_to(NOW, tick=False)
    org = OrganizationFactory(currency="EUR", billing_mode=BillingMode.POSTPAID)
    issue(org, 2026, 11, [fee("3.333335", resource=1, amount="3.33"), fee("3.333335", resource=2, amount="3.33")])
    (row,) = compute(params(start=date(2026, 11, 1))).rows
    assert row["new"] == row["mrr"] == D("6.67")  # 6.66667 once, not 3.33 + 3.33


def test_a_month_not_ended_is_left_out_and_said(story):
    report = compute(params(end=date(2027, 1, 1)))
    assert [r["month"] for r in report.rows] == [date(2026, 10, 1), date(2026, 11, 1)]
    assert any("not ended" in note for note in report.notes)


def test_usage_run_rate_is_the_last_30_days_times_365_over_360(db, time_machine):
    time_machine.move_to(NOW, tick=False)
    org = OrganizationFactory(currency="EUR", billing_mode=BillingMode.POSTPAID)
    group = ProductGroup.objects.create(slug="servers", name="Servers")
    gpu = Product.objects.create(group=group, code="gpu", name="GPU", kind="server", billing_model="hourly")
    ipv4 = Product.objects.create(group=group, code="ipv4", name="IPv4", kind="ip_address", billing_model="monthly")
    hourly = Price.objects.create(product=gpu, currency="EUR", unit="hour", amount=D("1.00"), valid_from=at(1, 1))
    monthly = Price.objects.create(product=ipv4, currency="EUR", unit="month", amount=D("10.00"), valid_from=at(1, 1))
    usd = Price.objects.create(product=gpu, currency="USD", unit="hour", amount=D("1.00"), valid_from=at(1, 1))
    res = Resource.objects.create(organization=org, external_id="r1", product=gpu, state_since=at(1, 1))

    def daily(day: date, amount: str, price=hourly, product=gpu, currency="EUR") -> None:
        UsageDaily.objects.create(organization=org, resource=res, product=product, state="running",
                                  price_id=price.pk, currency=currency, day=day, minutes=60, amount=D(amount))

    daily(date(2026, 10, 1), "100.00")  # October's window is 2–31 October: outside both
    daily(date(2026, 10, 31), "1.50")
    daily(date(2026, 11, 1), "6.00")
    daily(date(2026, 11, 30), "3.00")
    daily(date(2026, 11, 15), "0.33", price=monthly, product=ipv4)  # a monthly fee: MRR's
    daily(date(2026, 11, 10), "50.00", price=usd, currency="USD")
    rows = rows_by_month(compute(params()))
    assert (rows[date(2026, 10, 1)]["usage_30d"], rows[date(2026, 10, 1)]["usage_run_rate"]) == (D("1.50"), D("1.52"))
    # 9.00 × 365 / 360 = 9.125 exactly, half-up to 9.13
    assert (rows[date(2026, 11, 1)]["usage_30d"], rows[date(2026, 11, 1)]["usage_run_rate"]) == (D("9.00"), D("9.13"))


def test_chart_stacks_the_movements_and_draws_mrr(story):
    report = compute(params())
    assert report.chart is not None and report.chart.labels == ["2026-10", "2026-11"]
    series = {s.label: s.values for s in report.chart.series}
    assert series["Churn"] == [D("-4.00"), D("-8.00")]
    assert series["Closing MRR"] == [D("53.50"), D("49.50")]
    # The closing MRR is drawn as a line over the stacked movement bars, the movements as the chart's kind.
    kinds = {s.label: s.kind for s in report.chart.series}
    assert kinds["Closing MRR"] == "line" and kinds["Churn"] is None and report.chart.kind == "stacked-bar"


def test_baseline_reads_the_same_figures(story):
    mrr_rows, _ = SPEC.baseline(params())
    assert [(r[0], r[7]) for r in sorted(mrr_rows)] == [(date(2026, 10, 1), D("53.50")), (date(2026, 11, 1), D("49.50"))]


def test_it_is_registered():
    assert reports()["recurring"] is SPEC and SPEC.grains == ("month",)


@pytest.mark.parametrize("bad", [
    dict(grain="day"), dict(start=date(2026, 12, 1), end=date(2026, 12, 1)), dict(currency="EURO"),
    dict(group_by="customer"),
])
def test_bad_parameters_are_a_report_error(db, bad):
    with pytest.raises(ReportError):
        compute(params(**bad))


def test_the_journal_world_has_one_plan_and_a_credit_note_does_not_change_it(world):
    """finance/tests/world.py: B's November invoice has a 20.00 support plan (a fee line
    without service dates), half credited on 1 December, then written off; A's
    statement has only usage."""
    (november,) = compute(params(start=date(2026, 11, 1))).rows
    assert (november["opening_mrr"], november["new"], november["mrr"], november["arr"], november["customers"]) == (
        D("0"), D("20.00"), D("20.00"), D("240.00"), 1)
