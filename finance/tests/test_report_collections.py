"""The collections report against figures worked out by hand.

November 2026, EUR unless said:

- Stripe: B pays 1.00 of its invoice I1 by card on 2 Nov; autopay of the rest fails on 3 Nov (a dunning case opens), its
  retry succeeds on 6 Nov (dunning recovered 100.00); A's top-up of 50.00 on 10 Nov,
  refunded 20.00 on 12 Nov (a second refund of 5.00 failed, a third of 3.00 is pending:
  neither moved money).
- PayPal: A's top-up of 80.00 on 15 Nov, disputed on 20 Nov, the dispute lost on 25 Nov
  (the provider took 80.00 back).
- Manual: bank transfers of 200.00 (I2, 18 Nov) and 10.00 (I3, 26 Nov).
- I3 (60.00) is written off on 28 Nov owing 50.00; 5.00 more arrive on 30 Nov (the
  write-off stays at what it owed then).
- Not November or not EUR: a Stripe payment at 31 Oct 23:59, a failure at 1 Dec 00:00, a
  USD payment of 999.00 and a USD write-off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from finance.reports.base import ReportError, ReportParams
from finance.reports.collections import SPEC, compute
from finance.reports.registry import reports
from finance.tests.test_report_recurring import issue
from invoices import services as invoice_services
from invoices.models import LineKind
from invoices.pipeline import Line
from payments.models import DunningCase, DunningStatus, PaymentStatus, Provider, Purpose, Refund, RefundStatus
from payments.tests.factories import PaymentFactory

D = Decimal
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def at(day: int, hour: int = 12, month: int = 11, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def charge(amount: str) -> list[Line]:
    return [Line(kind=LineKind.RECURRING, description="Plan", amount=D(amount), quantity=D(1), unit="month",
                 unit_price=D(amount))]


@pytest.fixture
def story(db, time_machine):
    time_machine.move_to(at(1, 3), tick=False)
    a = OrganizationFactory(name="A", currency="EUR", billing_mode=BillingMode.PREPAID)
    b = OrganizationFactory(name="B", currency="EUR", billing_mode=BillingMode.POSTPAID)
    u = OrganizationFactory(name="U", currency="USD", billing_mode=BillingMode.POSTPAID)
    i1 = issue(b, 2026, 9, charge("100.00"))
    i2 = issue(b, 2026, 10, charge("200.00"))
    i3 = issue(b, 2026, 8, charge("60.00"))
    iu = issue(u, 2026, 10, charge("70.00"), currency="USD")

    def pay(org, amount, provider, status=PaymentStatus.SUCCEEDED, invoice=None, **kw):
        return PaymentFactory(organization=org, amount=D(amount), provider=provider, status=status, invoice=invoice,
                              purpose=Purpose.INVOICE if invoice else Purpose.TOPUP, **kw)

    pay(b, "1.00", Provider.STRIPE, invoice=i1, succeeded_at=at(2))  # before dunning: not recovered by it
    pay(b, "100.00", Provider.STRIPE, PaymentStatus.FAILED, i1, failed_at=at(3))
    DunningCase.objects.create(organization=b, invoice=i1, status=DunningStatus.RECOVERED, first_failed_at=at(3),
                               retries_done=1, closed_at=at(6))
    pay(b, "100.00", Provider.STRIPE, invoice=i1, succeeded_at=at(6))
    topup = pay(a, "50.00", Provider.STRIPE, succeeded_at=at(10))
    Refund.objects.create(payment=topup, organization=a, amount=D("20.00"), currency="EUR", reason="asked",
                          status=RefundStatus.SUCCEEDED, succeeded_at=at(12))
    Refund.objects.create(payment=topup, organization=a, amount=D("5.00"), currency="EUR", reason="asked again",
                          status=RefundStatus.FAILED)
    Refund.objects.create(payment=topup, organization=a, amount=D("3.00"), currency="EUR", reason="pending",
                          status=RefundStatus.PENDING)
    disputed = pay(a, "80.00", Provider.PAYPAL, PaymentStatus.REFUNDED, succeeded_at=at(15), disputed_at=at(20),
                   dispute_reason="fraud", amount_refunded=D("80.00"))
    Refund.objects.create(payment=disputed, organization=a, amount=D("80.00"), currency="EUR", reason="Dispute lost",
                          provider_refund_id="dispute:PP-D-1", status=RefundStatus.SUCCEEDED, succeeded_at=at(25))
    pay(b, "200.00", Provider.MANUAL, invoice=i2, succeeded_at=at(18))
    partial = pay(b, "10.00", Provider.MANUAL, invoice=i3, succeeded_at=at(26))
    time_machine.move_to(at(26), tick=False)
    invoice_services.invoice_record_payment(invoice=i3, amount=D("10.00"), reference=f"payment:{partial.pk}")
    time_machine.move_to(at(28), tick=False)
    invoice_services.invoice_mark_uncollectible(invoice=i3, reason="gone")
    late = pay(b, "5.00", Provider.MANUAL, invoice=i3, succeeded_at=at(30))
    time_machine.move_to(at(30), tick=False)
    invoice_services.invoice_record_payment(invoice=i3, amount=D("5.00"), reference=f"payment:{late.pk}")
    invoice_services.invoice_mark_uncollectible(invoice=iu, reason="gone")
    pay(a, "7.00", Provider.STRIPE, succeeded_at=at(31, 23, month=10, minute=59))
    pay(a, "9.00", Provider.STRIPE, PaymentStatus.FAILED, failed_at=at(1, 0, month=12))
    pay(u, "999.00", Provider.STRIPE, succeeded_at=at(5))
    time_machine.move_to(NOW, tick=False)
    return {"a": a, "b": b}


def params(start=date(2026, 11, 1), end=date(2026, 12, 1), currency="EUR", **kw) -> ReportParams:
    return ReportParams(start=start, end=end, currency=currency, **kw)


FIGURES = ("succeeded_count", "succeeded", "failed_count", "failed", "refunded_count", "refunded", "disputed_count",
           "disputed", "dispute_lost_count", "dispute_lost", "dunning_recovered_count", "dunning_recovered", "net")


def figures(row) -> tuple:
    return tuple(row[k] for k in FIGURES)


def test_payments_by_provider_and_outcome(story):
    report = compute(params())
    rows = {(r["period"], r["provider"]): figures(r) for r in report.rows}
    nov = date(2026, 11, 1)
    assert rows == {
        (nov, "stripe"): (3, D("151.00"), 1, D("100.00"), 1, D("20.00"), 0, D("0"), 0, D("0"), 1, D("100.00"),
                          D("131.00")),
        (nov, "paypal"): (1, D("80.00"), 0, D("0"), 0, D("0"), 1, D("80.00"), 1, D("80.00"), 0, D("0"), D("0.00")),
        (nov, "manual"): (3, D("215.00"), 0, D("0"), 0, D("0"), 0, D("0"), 0, D("0"), 0, D("0"), D("215.00")),
    }
    assert [r["provider"] for r in report.rows] == ["stripe", "paypal", "manual"]  # Provider's order
    assert "written_off" not in {c.key for c in report.columns}
    assert report.totals is not None and report.totals["succeeded"] == D("446.00")
    assert report.totals["net"] == D("346.00")
    assert report.chart is not None and report.chart.kind == "stacked-bar"
    assert {s.label: s.values for s in report.chart.series} == {
        "Succeeded, Stripe": [D("151.00")], "Succeeded, PayPal": [D("80.00")],
        "Succeeded, Manual (bank transfer)": [D("215.00")]}


def test_totals_put_write_offs_beside_dunning_recoveries(story):
    (row,) = compute(params(group_by="total")).rows
    assert figures(row) == (7, D("446.00"), 1, D("100.00"), 1, D("20.00"), 1, D("80.00"), 1, D("80.00"), 1,
                            D("100.00"), D("346.00"))
    # I3: 60.00 due − 10.00 received before it was marked; the 5.00 after does not change it
    assert (row["written_off_count"], row["written_off"]) == (1, D("50.00"))
    series = {s.label: s.values for s in compute(params(group_by="total")).chart.series}
    assert series["Written off"] == [D("50.00")] and series["Dunning recovered"] == [D("100.00")]


def test_currencies_are_never_mixed(story):
    (row,) = compute(params(currency="USD", group_by="total")).rows
    assert (row["succeeded"], row["written_off"], row["failed"]) == (D("999.00"), D("70.00"), D("0"))


def test_by_day_every_day_has_its_row(story):
    rows = compute(params(start=date(2026, 11, 10), end=date(2026, 11, 13), grain="day", group_by="total")).rows
    assert [(r["period"], r["succeeded"], r["refunded"], r["net"]) for r in rows] == [
        (date(2026, 11, 10), D("50.00"), D("0"), D("50.00")),
        (date(2026, 11, 11), D("0"), D("0"), D("0")),
        (date(2026, 11, 12), D("0"), D("20.00"), D("-20.00")),
    ]


def test_the_range_is_half_open(story):
    rows = compute(params(start=date(2026, 10, 31), end=date(2026, 12, 2), grain="day", group_by="total")).rows
    assert rows[0]["succeeded"] == D("7.00") and rows[-1]["failed"] == D("9.00")
    assert compute(params(group_by="total")).rows[0]["succeeded"] == D("446.00")  # neither is November's


def test_one_organisation(story):
    (row,) = compute(params(organization_id=story["a"].pk, group_by="total")).rows
    assert (row["succeeded"], row["refunded"], row["dispute_lost"], row["written_off"]) == (
        D("130.00"), D("20.00"), D("80.00"), D("0"))


def test_baseline_reads_the_same_figures(story):
    payments, write_offs = SPEC.baseline(params())
    assert sorted(r[1] for r in payments) == ["manual", "paypal", "stripe"]
    assert [(r[1], r[2]) for r in write_offs] == [(1, D("50.00"))]


def test_it_is_registered():
    assert reports()["collections"] is SPEC and SPEC.group_by == ("provider", "total")


@pytest.mark.parametrize("bad", [
    dict(grain="week"), dict(start=date(2026, 12, 1)), dict(currency="eur"), dict(group_by="customer"),
])
def test_bad_parameters_are_a_report_error(db, bad):
    with pytest.raises(ReportError):
        compute(params(**bad))


def test_it_agrees_with_the_journal_on_the_journal_world(world):
    """The journal's world (finance/tests/world.py): its write-off, refund and payments
    are booked by the journal; the report reads the same sources and says the same."""
    from django.db.models import Sum

    from finance.journal import journal_build
    from finance.models import AccountRole, JournalLine, Movement

    journal_build(now=NOW)
    nov, dec = compute(params(start=date(2026, 11, 1), end=date(2026, 12, 3), group_by="total")).rows

    def booked(movement: str, role: str) -> Decimal:
        return JournalLine.objects.filter(entry__movement=movement, account__role=role).aggregate(
            s=Sum("amount"))["s"]

    # B's invoice: 38.50 due, a credit note of 11.90 and 20.00 paid before it was written off
    assert dec["written_off"] == booked(Movement.WRITE_OFF, AccountRole.BAD_DEBT) == D("6.60")
    # the 5.00 refund succeeded; the failed 7.00 and the pending 3.00 moved nothing
    assert dec["refunded"] == -booked(Movement.REFUND, AccountRole.PROVIDER_CLEARING) == D("5.00")
    assert (nov["succeeded"], dec["succeeded"]) == (D("100.00"), D("20.00"))
