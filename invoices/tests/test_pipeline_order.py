"""The pipeline's order is checked against what each step declares, at start-up and at
use, and the on-demand pipeline is the scheduled one without its side effects, derived
when it runs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from invoices import engine, pipeline
from invoices.models import LineKind
from invoices.pipeline import BillingContext, Line, step
from invoices.tests.helpers import hourly_rows, utc
from invoices.tests.test_pipeline import run_month

H = "invoices.handlers."
COUPONS, TAXES, TOTALS, BALANCE = (H + "discounts.Coupons", H + "taxes.Taxes", H + "totals.Totals",
                                   H + "balance.CreditsAndBalance")
SURCHARGE = "invoices.tests.test_pipeline_order.card_surcharge"


@step(requires={"discounts"}, provides={"lines"})
def card_surcharge(ctx: BillingContext) -> None:
    """A step added after the fact: 1 % on the discounted charges, taxed like any line."""
    for bill in ctx.bills.values():
        charges = sum((ln.amount for ln in bill.lines), Decimal(0))
        bill.add(Line(kind=LineKind.ADDON, group="Fees", description="Card processing (1 %)", quantity=Decimal(1),
                      unit_price=charges / 100, amount=charges / 100))


def undeclared(ctx: BillingContext) -> None:
    pass


def with_step(settings, path, *, before):
    scheduled = list(settings.BILLING_PIPELINES["scheduled"])
    scheduled.insert(scheduled.index(before), path)
    settings.BILLING_PIPELINES = {**settings.BILLING_PIPELINES, "scheduled": scheduled}


def swapped(settings, first, second):
    scheduled = list(settings.BILLING_PIPELINES["scheduled"])
    i, j = scheduled.index(first), scheduled.index(second)
    scheduled[i], scheduled[j] = scheduled[j], scheduled[i]
    settings.BILLING_PIPELINES = {**settings.BILLING_PIPELINES, "scheduled": scheduled}


def test_on_demand_is_the_scheduled_pipeline_without_finalize_and_notify(settings):
    scheduled = settings.BILLING_PIPELINES["scheduled"]
    assert pipeline.pipeline_paths(pipeline.ON_DEMAND) == [
        p for p in scheduled if p not in (H + "finalize.Finalize", H + "notify.Notify")]


@pytest.mark.django_db
def test_a_step_added_to_the_scheduled_pipeline_is_on_the_interim_invoice_too(fixture_pipeline, ledger, settings):
    with_step(settings, SURCHARGE, before=TAXES)
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, currency="USD", country="US")
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 11, 1), rate="1.00")}
    _, interim = engine.interim_bill(organization=org, until=utc(2026, 11, 1), now=utc(2026, 11, 1))
    monthly = run_month(org)
    assert [ln.description for ln in interim.lines][-1] == "Card processing (1 %)"
    assert interim.total == monthly.total == Decimal("751.44")  # 744 h at 1.00, plus 7.44


def test_the_pipelines_as_configured_pass_the_start_up_checks():
    call_command("check")


@pytest.mark.parametrize(("first", "second", "message"), [
    (TAXES, COUPONS, f"{TAXES} requires 'lines' complete, but {COUPONS} provides it later"),
    (TOTALS, TAXES, f"{TOTALS} requires 'taxes' complete, but {TAXES} provides it later"),
    (BALANCE, TOTALS, f"{BALANCE} requires 'totals' complete, but {TOTALS} provides it later"),
    (COUPONS, H + "minimum.ContractMinimum",
     f"{COUPONS} requires 'charges' complete, but {H}minimum.ContractMinimum provides it later"),
])
def test_a_pipeline_out_of_order_is_refused_at_start_up_and_at_use(settings, first, second, message):
    swapped(settings, second, first)
    with pytest.raises(SystemCheckError, match=r"invoices\.E004") as refused:
        call_command("check")
    assert message in str(refused.value)
    with pytest.raises(ImproperlyConfigured, match=message):
        pipeline.handlers(pipeline.SCHEDULED)


def test_a_step_before_anything_provides_what_it_requires_is_refused(settings):
    settings.BILLING_PIPELINES = {"scheduled": [TOTALS]}
    with pytest.raises(SystemCheckError, match=rf"{TOTALS} requires 'lines', which no step before it provides"):
        call_command("check")


@pytest.mark.parametrize(("path", "refusal"), [
    ("invoices.tests.test_pipeline_order.undeclared", r"invoices\.E003.*undeclared declares no requires or provides"),
    (H + "usage_lines.HourlyUsage", r"invoices\.E004.*HourlyUsage is listed twice"),
    (H + "taxes.Taxs", r"invoices\.E002.*Taxs"),
], ids=["declares nothing", "listed twice", "cannot be imported"])
def test_a_step_that_declares_nothing_is_listed_twice_or_cannot_be_imported_is_refused(settings, path, refusal):
    with_step(settings, path, before=TAXES)
    with pytest.raises(SystemCheckError, match=refusal):
        call_command("check")


def test_an_on_demand_pipeline_in_settings_is_refused_rather_than_left_to_drift(settings):
    settings.BILLING_PIPELINES = {**settings.BILLING_PIPELINES,
                                  "on_demand": settings.BILLING_PIPELINES["scheduled"][:-2]}
    with pytest.raises(SystemCheckError, match=r"invoices\.E002.*'on_demand'.* is derived from 'scheduled'"):
        call_command("check")
