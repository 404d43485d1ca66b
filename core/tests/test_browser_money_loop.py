"""The demo's money loop, clicked through in chromium as a customer would, with the
README's screenshots (docs/screenshots/loop-*.png and dashboard-desktop.png when
`make screenshots` sets SCREENSHOTS_DIR).

As the owner of Acme AI (prepaid, a saved sandbox card): top up 250 through the sandbox
checkout and see the balance rise by it; start a server in the sandbox panel and, after
the metering tick has rated ninety minutes of it, see the balance fall by exactly their
price; set auto top-up above the balance and see the saved card charged at once; then
switch to Nordlicht Render (postpaid) and pay its open invoice through the sandbox
checkout. Ninety minutes pass in an instant (time-machine moves the clock, the live
server's too) and the test runs the periodic tasks the demo's worker would have run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from core.tests.browser import shot

GPU_HOURLY = Decimal("24.00")  # 0.40 a minute
METERED_MINUTES = 90


@dataclass
class LoopWorld:
    owner: object
    nordlicht_invoice: object


@pytest.fixture
def loop_world(settings) -> LoopWorld:
    from accounts.models import BillingMode, Organization
    from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
    from core.tests.browser_world import issued_invoice
    from credits import services as credits
    from payments.tests.factories import PaymentMethodFactory
    from pricing.tests.factories import ProductFactory
    from usage.tests.factories import add_price

    settings.USAGE_SANDBOX_PROVISIONING = True
    acme = OrganizationFactory(name="Acme AI")
    owner = MembershipFactory(organization=acme, role="owner",
                              user=UserFactory(email="ada@acme.example", full_name="Ada Lovelace")).user
    credits.ledger_post(organization=acme, amount=Decimal("100.00"), kind="adjustment", reason="Welcome credit")
    PaymentMethodFactory(organization=acme, brand="Sandbox Visa")
    for code, name, hourly in (("gpu-h100-8x", "GPU H100 × 8", GPU_HOURLY), ("cpu-16", "CPU 16 vCPU", Decimal("0.68"))):
        add_price(ProductFactory(code=code, name=name), str(hourly),
                  valid_from=acme.created_at - timedelta(days=60), currency=acme.currency)
    _usage_history(acme, days=29)
    nordlicht = OrganizationFactory(name="Nordlicht Render", legal_name="Nordlicht Render AS",
                                    address_line1="Kanalgata 12", postal_code="5003", city="Bergen", country="NO")
    Organization.objects.filter(pk=nordlicht.pk).update(billing_mode=BillingMode.POSTPAID)
    MembershipFactory(organization=nordlicht, role="owner", user=owner)
    nordlicht.refresh_from_db()
    invoice = issued_invoice(nordlicht, year=acme.created_at.year - 1, month=11, tax_rate="0")
    return LoopWorld(owner=owner, nordlicht_invoice=invoice)


def _usage_history(org, *, days: int) -> None:
    """Daily usage of the weeks before (of servers stopped since), so the Usage chart has a past."""
    from django.utils import timezone

    from pricing.models import Product, ResourceState
    from usage.models import UsageDaily
    from usage.tests.factories import ResourceFactory

    today = timezone.now().date()
    for code, base in (("gpu-h100-8x", Decimal("96.00")), ("cpu-16", Decimal("16.32"))):
        product = Product.objects.get(code=code)
        # Stopped since now: metering starts at the oldest state interval, and these days are rolled up already.
        resource = ResourceFactory(organization=org, product=product, name=f"{code}-1", state=ResourceState.STOPPED,
                                   state_since=timezone.now())
        UsageDaily.objects.bulk_create([
            UsageDaily(organization=org, resource=resource, product=product, state=ResourceState.RUNNING,
                       currency=org.currency, minutes=240 + 60 * (d % 4), day=today - timedelta(days=d),
                       amount=base * (4 + d % 4) / 4) for d in range(1, days + 1) if d % 7 not in (2, 3)])


def _amount(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text.replace("−", "-")))


def _balance(page) -> Decimal:
    page.goto(reverse("credits:index"))
    return _amount(page.locator(".stat").first.inner_text())


def _pay_on_the_sandbox_checkout(page, screenshot: str | None = None) -> None:
    page.wait_for_url(re.compile(r".*/payments/sandbox/checkout/\d+"))
    if screenshot:
        shot(page, screenshot)
    with page.expect_navigation():
        page.click("button[name=outcome][value=pay]")


def test_top_up_run_a_server_fall_auto_top_up_and_pay_an_invoice(portal_page, loop_world, time_machine, settings):
    from credits.models import TopUp
    from credits.tasks import credits_runway_task
    from usage.models import Resource
    from usage.tasks import meter_task, rollup_task

    page = portal_page(loop_world.owner)
    start = _balance(page)

    # 1. Top up 250 through the sandbox checkout.
    page.goto(reverse("payments:index"))
    page.get_by_label(re.compile(r"^Amount")).first.fill("250")
    page.get_by_label("Sandbox — no real money").check()  # the hosted checkout, not the saved card
    shot(page, "loop-1-top-up")
    page.get_by_role("button", name="Continue", exact=True).click()
    _pay_on_the_sandbox_checkout(page, "loop-2-sandbox-checkout")
    topped = _balance(page)
    assert topped == start + Decimal("250.00")
    shot(page, "loop-3-balance-risen")

    # 2. Start a server; the metering tick rates ninety minutes of it; the balance falls by their price.
    page.goto(reverse("usage:index"))
    flavour = next(t for t in page.locator("#id_product option").all_inner_texts() if "H100" in t)
    page.select_option("#id_product", label=flavour)
    page.fill("#id_name", "loop-h100")
    with page.expect_navigation():
        page.get_by_role("button", name="Start server").click()
    assert page.locator("table.data", has_text="loop-h100").is_visible()
    shot(page, "loop-4-server-running")
    server = Resource.objects.get(name="loop-h100")
    # Ninety minutes later (for the live server too: the clock moves on, then ticks), the
    # periodic tasks the demo's worker runs: metering, the rollups, the burn rate.
    time_machine.move_to(server.state_since + timedelta(minutes=METERED_MINUTES) + settings.USAGE_METERING_GRACE,
                         tick=True)
    meter_task()
    rollup_task()
    credits_runway_task()
    fallen = _balance(page)
    assert fallen == topped - GPU_HOURLY * METERED_MINUTES / 60
    shot(page, "loop-5-balance-falling")
    page.goto(reverse("portal:dashboard"))
    shot(page, "dashboard-desktop")

    # 3. Auto top-up with a threshold above the balance: the saved card is charged at once.
    page.goto(reverse("credits:index"))
    auto = page.locator(f"form[action='{reverse('credits:auto_topup')}']")
    auto.locator("input[name=auto-enabled]").check()
    auto.locator("input[name=auto-threshold]").fill(str((fallen + 100).quantize(Decimal(1))))
    auto.locator("input[name=auto-amount]").fill("500")
    auto.locator("input[name=auto-monthly_cap]").fill("2000")
    with page.expect_navigation():
        auto.get_by_role("button", name="Save").click()
    refilled = _balance(page)
    assert refilled == fallen + Decimal("500.00")
    assert TopUp.objects.filter(source="auto", amount=Decimal("500.00")).count() == 1
    shot(page, "loop-6-auto-top-up")

    # 4. As Nordlicht Render (postpaid): pay the open invoice through the sandbox checkout.
    invoice = loop_world.nordlicht_invoice
    with page.expect_navigation():
        page.select_option("#org-switch", label="Nordlicht Render")
    page.goto(reverse("payments:index"))
    row = page.locator("table.data tr", has_text=invoice.number)
    assert row.is_visible()
    shot(page, "loop-7-open-invoice")
    row.get_by_role("button", name="Pay (sandbox)").click()
    _pay_on_the_sandbox_checkout(page)
    page.goto(reverse("invoices:detail", args=[invoice.pk]))
    assert page.locator(".page-head .badge").inner_text().strip() == "paid"
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    shot(page, "loop-8-invoice-paid")
    assert page.js_errors == []
