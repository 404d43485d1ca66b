"""The usage invoices read: the daily rollup for whole days and the hourly rows of the
partial days at either edge (`invoices.sources.usage_rows`) give exactly what reading
every hourly row gave, on a metered history with partial days, month boundaries, a
price change, a resize, a hibernation, a monthly cap, minimum billable time, a late
correction and a monthly fee; so the invoices computed from it are the same, line for
line, with tiers, a coupon and taxes on top."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from invoices import engine, sources
from invoices.models import Coupon, CouponKind, CouponRedemption, TaxRate
from invoices.tests.helpers import utc
from pricing.models import BillingModel, Price, PriceTier, ProductKind, ResourceState
from pricing.tests.factories import ProductFactory
from usage import metering, services
from usage.ingest import events_ingest
from usage.models import Metric, StateSource, UsageDaily, UsageHourly
from usage.rollups import rollup_pending
from usage.tests.factories import add_price

pytestmark = pytest.mark.django_db
LONG_AGO = utc(2025, 1, 1)

# What invoices read before the daily rollup: every hourly row of [start, end), grouped.
# Kept here, as the oracle the new read must equal.
HOURLY_ONLY = """
SELECT u.organization_id, u.resource_id, r.name, u.product_id, p.code, p.name, u.state, p.billing_model, u.price_id,
       u.minutes, u.amount, u.first_hour, u.last_hour, pr.unit
FROM (SELECT organization_id, resource_id, product_id, state, price_id, SUM(minutes) AS minutes,
             SUM(amount) AS amount, MIN(hour) AS first_hour, MAX(hour) AS last_hour FROM usage_usagehourly
      WHERE organization_id = ANY(%s) AND hour >= %s AND hour < %s
      GROUP BY organization_id, resource_id, product_id, state, price_id) u
JOIN pricing_product p ON p.id = u.product_id
LEFT JOIN usage_resource r ON r.id = u.resource_id
LEFT JOIN pricing_price pr ON pr.id = u.price_id
"""


def usage_rows_from_every_hour(org_ids: list[int], start: datetime, end: datetime) -> dict[int, list[sources.UsageRow]]:
    with connection.cursor() as cur:
        cur.execute(HOURLY_ONLY, [org_ids, start, end])
        rows = cur.fetchall()
    out: dict[int, list[sources.UsageRow]] = defaultdict(list)
    for (org_id, resource_id, resource_name, product_id, product_code, product_name, state, billing_model, price_id,
         minutes, amount, first_hour, last_hour, price_unit) in rows:
        out[org_id].append(sources.UsageRow(
            resource_id=resource_id, group=resource_name or product_name, product_id=product_id,
            product_code=product_code, product_name=product_name, billing_model=billing_model,
            unit=price_unit or ("month" if billing_model == "monthly" else "hour"), state=state,
            price_id=price_id or None, minutes=minutes, amount=amount, start=max(first_hour, start),
            end=min(last_hour + sources.HOUR, end),
        ))
    return {org: sources.aggregate_usage(rs) for org, rs in out.items()}


def meter_to(until: datetime) -> None:
    with time_machine.travel(until + timedelta(minutes=1), tick=False):
        metering.meter_pass(until=until)
        rollup_pending()


def at(moment: datetime):
    return time_machine.travel(moment + timedelta(minutes=1), tick=False)


@pytest.fixture
def history(settings):
    """28 Oct 22:10 to 2 Nov 06:00, metered and rolled up as production does:
    web-1 (cpu-4 at 2.00/h, 2.50/h from 29 Oct 09:40, resized to cpu-8 on 30 Oct 12:30,
    hibernated 30 Oct 17:45, running again 31 Oct 22:05 into November); capped-1 (1.20/h
    capped at 40.00 a month, from 29 Oct); gpu-1 (6.00/h, one hour minimum: 13:17–13:27
    on 29 Oct, and 23:50 on 31 Oct to 00:20 on 1 Nov); late-1 (stopped at 11:30 on 30 Oct,
    reported after 14:00 had been metered); ip-1 (3.00 a month from 29 Oct 05:13); 1,500 GB
    of bandwidth on graduated tiers; a German customer (19 %) with a 10 % coupon."""
    settings.USAGE_METERING_CHUNKS = 1
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="DE", currency="USD")
    TaxRate.objects.create(country="DE", rate=Decimal("19"), valid_from=LONG_AGO.date())
    coupon = Coupon.objects.create(code="ten", name="Ten", kind=CouponKind.PERCENT, percent_off=Decimal(10))
    CouponRedemption.objects.create(coupon=coupon, organization=org, starts_at=LONG_AGO)
    cpu4 = ProductFactory(code="cpu-4", name="CPU 4")
    cpu8 = ProductFactory(code="cpu-8", name="CPU 8")
    capped = ProductFactory(code="capped", name="Capped")
    gpu = ProductFactory(code="gpu", name="GPU")
    ipv4 = ProductFactory(code="ipv4", name="IPv4", billing_model=BillingModel.MONTHLY)
    add_price(cpu4, "2.00", valid_from=LONG_AGO, valid_to=utc(2026, 10, 29, 9, 40))
    add_price(cpu4, "2.50", valid_from=utc(2026, 10, 29, 9, 40))
    add_price(cpu8, "4.00", valid_from=LONG_AGO)
    add_price(cpu8, "0.10", valid_from=LONG_AGO, state=ResourceState.HIBERNATED)
    add_price(capped, "1.20", valid_from=LONG_AGO, monthly_cap="40.00")
    add_price(gpu, "6.00", valid_from=LONG_AGO, min_billable_minutes=60)
    add_price(ipv4, "3.00", valid_from=LONG_AGO)
    bandwidth = ProductFactory(code="bandwidth", name="Bandwidth", kind=ProductKind.BANDWIDTH,
                               billing_model=BillingModel.OVERAGE, unit_label="GB")
    tiered = Price.objects.create(product=bandwidth, currency="USD", state="running", unit="gb",
                                  pricing_model="graduated", included_quantity=Decimal(100), valid_from=LONG_AGO)
    PriceTier.objects.create(price=tiered, up_to=Decimal(1000), unit_amount=Decimal("0.05"))
    PriceTier.objects.create(price=tiered, up_to=None, unit_amount=Decimal("0.02"))
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", unit="GB", aggregation="sum", product=bandwidth)

    def create(name, product, when):
        with at(when):
            resource = services.resource_create(organization=org, external_id=name, name=name, product=product,
                                                at=when, source=StateSource.EVENT)
            return change(resource, ResourceState.RUNNING, when)

    def change(resource, state, when):
        with at(when):
            return services.resource_change_state(resource=resource, state=state, at=when, source=StateSource.EVENT)

    def bandwidth_used(name, gb, when):
        with at(when):
            events_ingest(items=[{"id": name, "type": "metered", "resource": "web-1", "metric": "bandwidth_gb",
                                  "quantity": gb, "timestamp": when.isoformat()}])

    web = create("web-1", cpu4, utc(2026, 10, 28, 22, 10))
    create("capped-1", capped, utc(2026, 10, 29))
    gpu1 = create("gpu-1", gpu, utc(2026, 10, 29, 13, 17))
    change(gpu1, ResourceState.STOPPED, utc(2026, 10, 29, 13, 27))
    create("ip-1", ipv4, utc(2026, 10, 29, 5, 13))
    bandwidth_used("bw-1", "600", utc(2026, 10, 29, 8))
    late = create("late-1", cpu4, utc(2026, 10, 30, 10))
    meter_to(utc(2026, 10, 30, 14))
    change(late, ResourceState.STOPPED, utc(2026, 10, 30, 11, 30))  # late: 14:00 is metered
    with at(utc(2026, 10, 30, 14, 2)):
        metering.meter_pass(until=utc(2026, 10, 30, 14, 1))
    with at(utc(2026, 10, 30, 14, 2)):
        services.resource_resize(resource=web, product=cpu8, at=utc(2026, 10, 30, 12, 30))  # late too
    change(web, ResourceState.HIBERNATED, utc(2026, 10, 30, 17, 45))
    bandwidth_used("bw-2", "900", utc(2026, 10, 31, 9))
    change(web, ResourceState.RUNNING, utc(2026, 10, 31, 22, 5))
    change(gpu1, ResourceState.RUNNING, utc(2026, 10, 31, 23, 50))
    meter_to(utc(2026, 11, 1))
    change(gpu1, ResourceState.STOPPED, utc(2026, 11, 1, 0, 20))
    meter_to(utc(2026, 11, 2, 6))
    return org


SPANS = [
    (utc(2026, 10, 1), utc(2026, 11, 1)),  # the month
    (utc(2026, 10, 1), utc(2026, 10, 30, 13, 37)),  # to mid-hour
    (utc(2026, 10, 30, 13, 37), utc(2026, 11, 1)),  # from mid-hour to the month's end
    (utc(2026, 10, 29), utc(2026, 10, 29, 13, 20)),  # ends inside the one-hour minimum
    (utc(2026, 10, 29, 8), utc(2026, 10, 29, 20)),  # inside one day, across the price change
    (utc(2026, 10, 29, 11, 10), utc(2026, 10, 31, 0, 5)),  # a whole day between partial ones, the corrections
    (utc(2026, 10, 31, 23), utc(2026, 11, 1)),  # the last hour of the month
    (utc(2026, 11, 1), utc(2026, 11, 1, 6, 32)),  # November so far
    (utc(2026, 11, 1), utc(2026, 12, 1)),  # November, metered to the 2nd
    (utc(2026, 10, 28, 22, 40), utc(2026, 10, 29, 23, 30)),
]


def test_each_day_of_the_daily_rollup_is_exactly_the_sum_of_its_hours(history):
    hours: dict[tuple, tuple[Decimal, int, int]] = {}
    for h in UsageHourly.objects.all():
        key = (h.organization_id, h.resource_id, h.product_id, h.state, h.price_id, h.currency, h.hour.date())
        amount, minutes, n = hours.get(key, (Decimal(0), 0, 0))
        hours[key] = (amount + h.amount, minutes + h.minutes, n + 1)
    days = {(d.organization_id, d.resource_id, d.product_id, d.state, d.price_id, d.currency, d.day): (d.amount, d.minutes)
            for d in UsageDaily.objects.all()}
    assert {k: (a, m) for k, (a, m, _) in hours.items()} == days  # Decimal equality: to the last place
    assert len(days) > 20 and sum(n for _, _, n in hours.values()) > 100
    # Twelve decimal places are kept, and some amounts use them (the monthly fee per minute).
    assert any(d.amount != d.amount.quantize(Decimal("0.01")) for d in UsageDaily.objects.all())


def test_usage_read_from_the_daily_rollup_equals_usage_read_hour_by_hour(history):
    for start, end in SPANS:
        from_days = sources.usage_rows([history.pk], start, end)
        from_hours = usage_rows_from_every_hour([history.pk], start, end)
        assert from_days == from_hours, (start, end)
        assert from_hours[history.pk], (start, end)  # every span has usage to compare


def test_whole_days_are_the_midnights_inside_a_span_and_none_inside_one_day():
    assert sources.whole_days(utc(2026, 10, 15, 8), utc(2026, 10, 15, 20)) == (utc(2026, 10, 15, 20),) * 2
    assert sources.whole_days(utc(2026, 10, 10, 13, 37), utc(2026, 11, 1)) == (utc(2026, 10, 11), utc(2026, 11, 1))
    assert sources.whole_days(utc(2026, 10, 1), utc(2026, 10, 2)) == (utc(2026, 10, 1), utc(2026, 10, 2))


def test_invoices_from_the_daily_rollup_equal_invoices_from_every_hour_line_for_line(history, monkeypatch):
    def bill(start, end):
        _, b = engine.interim_bill(organization=history, since=start, until=end, now=end)
        assert b is not None
        return ([(ln.kind, ln.group, ln.description, ln.quantity, ln.unit_price, ln.amount, ln.tax_rate, ln.tax_amount,
                  ln.service_start, ln.service_end) for ln in b.lines],
                (b.subtotal, b.discount_total, b.tax_total, b.total, b.amount_due))

    new = {span: bill(*span) for span in SPANS}
    monkeypatch.setattr(sources, "usage_rows", usage_rows_from_every_hour)
    old = {span: bill(*span) for span in SPANS}
    assert new == old
    assert all(lines for lines, _ in new.values())


def test_the_month_from_the_daily_rollup_has_its_cap_minimum_fee_tiers_coupon_and_tax(history):
    _, bill = engine.interim_bill(organization=history, since=utc(2026, 10, 1), until=utc(2026, 11, 1),
                                  now=utc(2026, 11, 1))
    assert bill is not None
    amounts = {ln.description: ln.amount for ln in bill.lines}
    assert amounts["Capped"] == Decimal("40.00")  # the month's cap
    # 4,007 of the month's 44,640 minutes; the line starts at the first rolled-up hour.
    assert amounts["IPv4 monthly fee, 29 Oct 05:00–1 Nov 00:00"] == Decimal("0.27")
    gpu = [ln for ln in bill.lines if ln.group == "gpu-1"]
    # 29 Oct: 10 minutes run, 50 more to the one-hour minimum; 31 Oct: the 10 minutes before midnight.
    assert sum(ln.amount for ln in gpu) == Decimal("7.00")
    assert amounts["Bandwidth above 100 GB included"] == Decimal("58.00")  # 1,400 GB over: 1,000 at 0.05, 400 at 0.02
    assert any(ln.kind == "discount" for ln in bill.lines) and bill.tax_total > 0
