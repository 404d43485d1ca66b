"""The handlers over one month: lines, proration, taxes, coupons, interim = monthly."""

from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from invoices import engine
from invoices.models import Coupon, Invoice, TaxRate
from invoices.services import coupon_redeem
from invoices.sources import MeteredQuantity
from invoices.tax_rules import EXEMPT_NOTE, REVERSE_CHARGE_NOTE
from invoices.tests.helpers import hourly_rows, utc
from pricing.quantity_pricing import PriceTerms

pytestmark = pytest.mark.django_db

OCT = engine.period_for("2026-10")
NOV_2 = utc(2026, 11, 2, 2)


def run_month(org, period=OCT, now=NOV_2):
    run, todo = engine.invoice_run_start(period=period, org_ids=[org.pk], now=now, dispatch=False)
    engine.invoice_organization(run_id=run.pk, organization_id=org.pk, render_pdf=False, send_email=False, now=now)
    return Invoice.objects.get(organization=org, period_start=period[0])


def lines(invoice):
    return [(ln.group, ln.description, ln.quantity.normalize(), ln.unit, ln.amount) for ln in invoice.lines.all()]


@pytest.fixture
def postpaid_us():
    return OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="US", currency="USD", payment_terms_days=30)


def october_of_one_server(inputs, org):
    """web-1: 2.00/h to 15 Oct, 2.50/h after a price change, resized to cpu-8 on 20 Oct
    at 4.00/h, hibernated from 25 Oct at 0.10/h; 1,200 GB of bandwidth with 1,000 included."""
    inputs[org.pk] = {
        "usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 15), rate="2.00", price_id=1)
        + hourly_rows(start=utc(2026, 10, 15), end=utc(2026, 10, 20, 12, 30), rate="2.50", price_id=2)
        + hourly_rows(start=utc(2026, 10, 20, 12, 30), end=utc(2026, 10, 25), rate="4.00", product="cpu-8",
                      price_id=3)
        + hourly_rows(start=utc(2026, 10, 25), end=utc(2026, 11, 1), rate="0.10", product="cpu-8",
                      state="hibernated", price_id=4),
        "metered": [bandwidth([(utc(2026, 10, 3), Decimal(600)), (utc(2026, 10, 28), Decimal(600))])],
    }


def bandwidth(events):
    """Metered GB at given times, summed before and within the context's span."""

    def quantity(ctx):
        return MeteredQuantity(
            resource_id=None, group="Bandwidth", product_id=99, product_code="bandwidth", product_name="Bandwidth",
            unit="GB", included=Decimal(1000), price_id=5,
            price=PriceTerms(pricing_model="per_unit", amount=Decimal("0.01")),
            quantity_before=sum((q for at, q in events if ctx.period_start <= at < ctx.span_start), Decimal(0)),
            quantity=sum((q for at, q in events if ctx.span_start <= at < ctx.span_end), Decimal(0)),
        )

    return quantity


def test_a_month_with_a_price_change_a_resize_a_hibernation_and_bandwidth_overage(
    fixture_pipeline, ledger, postpaid_us
):
    october_of_one_server(fixture_pipeline, postpaid_us)
    ledger.draw(postpaid_us, Decimal("1450.05"))  # the usage; the 2.00 of overage is drawn at finalization
    invoice = run_month(postpaid_us)
    assert lines(invoice) == [
        ("web-1", "CPU-4", Decimal(336), "hour", Decimal("672.00")),
        ("web-1", "CPU-4", Decimal("132.5"), "hour", Decimal("331.25")),
        ("web-1", "CPU-8", Decimal("107.5"), "hour", Decimal("430.00")),
        ("web-1", "CPU-8 (hibernated)", Decimal(168), "hour", Decimal("16.80")),
        ("Bandwidth", "Bandwidth above 1000 GB included", Decimal(200), "GB", Decimal("2.00")),
    ]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (Decimal("1452.05"), Decimal(0), Decimal("1452.05"))
    assert invoice.amount_due == Decimal("1452.05")
    assert invoice.number == "INV-2026-000001"
    assert invoice.due_at == utc(2026, 12, 2, 2)


def test_an_interim_invoice_at_day_ten_plus_the_rest_of_the_month_is_the_monthly_invoice(
    fixture_pipeline, ledger, postpaid_us
):
    october_of_one_server(fixture_pipeline, postpaid_us)
    _, first = engine.interim_bill(organization=postpaid_us, until=utc(2026, 10, 10), now=utc(2026, 10, 10))
    _, rest = engine.interim_bill(organization=postpaid_us, since=utc(2026, 10, 10), until=utc(2026, 11, 1),
                                  now=utc(2026, 11, 1))
    monthly = run_month(postpaid_us)
    # 9 days × 24 h × 2.00; 600 GB so far is inside the 1,000 GB allowance.
    assert first.total == Decimal("432.00")
    assert [ln.description for ln in rest.lines][-1] == "Bandwidth above 1000 GB included"
    assert first.total + rest.total == monthly.total
    assert first.tax_total + rest.tax_total == monthly.tax_total
    assert Invoice.objects.count() == 1  # the interim invoices stored nothing


def test_a_monthly_fee_is_prorated_by_the_minute_across_a_leap_february(fixture_pipeline, ledger, postpaid_us):
    feb = engine.period_for("2028-02")
    fixture_pipeline[postpaid_us.pk] = {"usage": hourly_rows(
        start=utc(2028, 2, 15), end=utc(2028, 3, 1), rate="0", product="ipv4-block", billing_model="monthly",
        monthly_fee="290.00", group="Network",
    )}
    invoice = run_month(postpaid_us, period=feb, now=utc(2028, 3, 1, 2))
    [line] = invoice.lines.all()
    # 15 of February 2028's 29 days: 21,600 of 41,760 minutes.
    assert line.quantity == Decimal("0.517241379310")  # stored to 12 places
    assert line.amount == Decimal("150.00")
    assert line.description.startswith("IPV4-BLOCK monthly fee, 15 Feb 00:00")


def test_the_same_fortnight_in_a_common_february_costs_more(fixture_pipeline, ledger, postpaid_us):
    feb = engine.period_for("2027-02")
    fixture_pipeline[postpaid_us.pk] = {"usage": hourly_rows(
        start=utc(2027, 2, 14), end=utc(2027, 3, 1), rate="0", product="ipv4-block", billing_model="monthly",
        monthly_fee="290.00",
    )}
    invoice = run_month(postpaid_us, period=feb, now=utc(2027, 3, 1, 2))
    assert invoice.total == Decimal("155.36")  # 290 × 21,600 / 40,320 = 155.357…


@pytest.fixture
def dutch_vat():
    TaxRate.objects.create(country="NL", name="BTW", rate=Decimal("21"), valid_from=utc(2020, 1, 1).date())
    TaxRate.objects.create(country="DE", name="MwSt.", rate=Decimal("19"), valid_from=utc(2020, 1, 1).date())


def test_tax_is_computed_and_rounded_per_line(fixture_pipeline, ledger, dutch_vat):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="NL", currency="EUR")
    fixture_pipeline[org.pk] = {"usage": [
        *hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 1, 0, 2), rate="2.10", resource=1, group="a"),
        *hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 1, 0, 2), rate="2.10", resource=2, group="b"),
        *hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 1, 0, 2), rate="2.10", resource=3, group="c"),
    ]}
    invoice = run_month(org)
    # Each line is 0.07 (2 minutes at 2.10/h); 21 % of it is 0.0147 → 0.01 per line.
    assert [ln.tax_amount for ln in invoice.lines.all()] == [Decimal("0.01")] * 3
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (Decimal("0.21"), Decimal("0.03"), Decimal("0.24"))


def test_an_eu_business_in_another_member_state_is_reverse_charged(fixture_pipeline, ledger, dutch_vat):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="DE", currency="EUR", vat_id="DE811907980")
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 2), rate="1.00")}
    invoice = run_month(org)
    assert (invoice.tax_total, invoice.total, invoice.tax_note) == (Decimal(0), Decimal("24.00"), REVERSE_CHARGE_NOTE)


def test_a_german_customer_without_a_vat_id_pays_german_vat(fixture_pipeline, ledger, dutch_vat):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="DE", currency="EUR", vat_id="")
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 2), rate="1.00")}
    invoice = run_month(org)
    assert (invoice.tax_total, invoice.total, invoice.tax_note) == (Decimal("4.56"), Decimal("28.56"), "")


def test_a_tax_exempt_customer_pays_no_tax(fixture_pipeline, ledger, dutch_vat):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="NL", currency="EUR", tax_exempt=True)
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 2), rate="1.00")}
    invoice = run_month(org)
    assert (invoice.tax_total, invoice.total, invoice.tax_note) == (Decimal(0), Decimal("24.00"), EXEMPT_NOTE)


def test_a_percentage_coupon_applies_for_its_number_of_periods(fixture_pipeline, ledger, postpaid_us):
    coupon = Coupon.objects.create(code="launch", name="Launch", kind="percent", percent_off=Decimal("12.5"),
                                   duration_periods=1)
    coupon_redeem(organization=postpaid_us, coupon=coupon, starts_at=utc(2026, 9, 20))
    fixture_pipeline[postpaid_us.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 12, 1), rate="0.50")}
    october = run_month(postpaid_us)
    november = run_month(postpaid_us, period=engine.period_for("2026-11"), now=utc(2026, 12, 1, 2))
    assert (october.subtotal, october.discount_total, october.total) == (
        Decimal("372.00"), Decimal("-46.50"), Decimal("325.50"))
    assert (november.subtotal, november.discount_total) == (Decimal("360.00"), Decimal(0))


def test_a_contract_minimum_tops_up_the_month(fixture_pipeline, ledger, postpaid_us):
    from invoices.sources import Minimum

    fixture_pipeline[postpaid_us.pk] = {
        "usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 2), rate="1.00"),
        "minimum": Minimum(amount=Decimal("500.00"), currency="USD", contract_id=1),
    }
    invoice = run_month(postpaid_us)
    assert [ln.kind for ln in invoice.lines.all()] == ["usage", "minimum"]
    assert invoice.total == Decimal("500.00")
