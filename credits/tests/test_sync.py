"""Credit sync after metering, and hibernate/resume, on real metering runs."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from credits import services, sync
from credits.models import Balance, CreditEvent, LedgerEntry, ProvisioningRequest, SettledRun
from credits.selectors import ledger_differences
from pricing.models import ResourceState
from pricing.tests.factories import ProductFactory
from usage import metering
from usage import services as usage_services
from usage.models import MeteringRun, RatedUsage, Resource, StateSource
from usage.tests.factories import add_price

pytestmark = pytest.mark.django_db


def at(hour, minute=0, day=10):
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def hooks(settings):
    settings.USAGE_METERING_CHUNKS = 2
    settings.USAGE_AFTER_METERING = ["credits.sync.after_metering"]
    settings.CREDITS_RESUME_MODE = "automatic"


@pytest.fixture
def flavour(db):
    product = ProductFactory(code="gpu-1")
    add_price(product, "1.20", valid_from=at(0, day=1))  # 0.02 a minute running
    add_price(product, "0.30", state=ResourceState.HIBERNATED, valid_from=at(0, day=1))  # 0.005 a minute
    return product


def running_server(org, product, since, external_id="srv-1"):
    resource = usage_services.resource_create(organization=org, external_id=external_id, product=product,
                                              at=since, source=StateSource.EVENT)
    return usage_services.resource_change_state(resource=resource, state=ResourceState.RUNNING, at=since,
                                                source=StateSource.EVENT)


def meter(until, capture):
    """One metering pass whose after-commit hooks (the credit sync) run."""
    with capture(execute=True):
        metering.meter_pass(until=until)


def test_each_run_is_deducted_once_with_one_entry_per_organization(org, other_org, flavour, credit,
                                                                  django_capture_on_commit_callbacks):
    credit("100")
    credit("100", organization=other_org)
    with time_machine.travel(at(12, 5), tick=False):
        running_server(org, flavour, at(10, 0))
        running_server(org, flavour, at(11, 0), external_id="srv-2")
        running_server(other_org, flavour, at(11, 30), external_id="srv-3")
        meter(at(12, 0), django_capture_on_commit_callbacks)
    # org: 120 + 60 minutes, other: 30 minutes, at 0.02.
    assert Balance.objects.get(organization=org).amount == Decimal("96.40")
    assert Balance.objects.get(organization=other_org).amount == Decimal("99.40")
    usage_entries = LedgerEntry.objects.filter(kind="usage")
    runs = set(RatedUsage.objects.values_list("run_id", flat=True))
    assert usage_entries.count() == len(set(RatedUsage.objects.values_list("run_id", "organization_id")))
    for entry in usage_entries:
        rated = RatedUsage.objects.filter(run_id=entry.metering_run_id, organization_id=entry.organization_id)
        assert entry.reference == f"usage-run:{entry.metering_run_id}"
        assert entry.amount == -sum(r.amount for r in rated)
        assert entry.usage_rows == rated.count()
        assert (entry.usage_first_id, entry.usage_last_id) == (min(r.id for r in rated), max(r.id for r in rated))
    # A rerun of every hook changes nothing.
    for run_id in runs:
        assert sync.after_metering(run_id).settled is False
    assert LedgerEntry.objects.filter(kind="usage").count() == usage_entries.count()
    assert ledger_differences() == (2, [])


def test_a_crash_between_metering_and_sync_is_swept_up_exactly_once(org, flavour, credit,
                                                                    django_capture_on_commit_callbacks):
    credit("50")
    with time_machine.travel(at(12, 5), tick=False):
        running_server(org, flavour, at(9, 0))
        metering.meter_pass(until=at(12, 0))  # hooks never ran: the process died after commit
        assert not LedgerEntry.objects.filter(kind="usage").exists()
        assert sync.sync_pending() == MeteringRun.objects.count()
        assert sync.sync_pending() == 0
    assert Balance.objects.get(organization=org).amount == Decimal("50") - Decimal("3.60")
    assert SettledRun.objects.count() == MeteringRun.objects.count()
    assert ledger_differences() == (1, [])


def test_usage_takes_promotional_credit_first_in_the_set_based_sync(org, flavour, credit,
                                                                     django_capture_on_commit_callbacks):
    credit("10")
    with time_machine.travel(at(8, 0), tick=False):
        soon = services.promo_grant(organization=org, amount=Decimal("1.00"), reason="a",
                                    expires_at=at(0, day=20))
        late = services.promo_grant(organization=org, amount=Decimal("1.00"), reason="b",
                                    expires_at=at(0, day=25))
    with time_machine.travel(at(12, 5), tick=False):
        running_server(org, flavour, at(11, 0))
        meter(at(12, 30), django_capture_on_commit_callbacks)
    # 90 minutes = 1.80: the sooner grant emptied, 0.80 of the later one used.
    soon.refresh_from_db()
    late.refresh_from_db()
    assert (soon.remaining, late.remaining) == (Decimal("0"), Decimal("0.20"))
    balance = Balance.objects.get(organization=org)
    assert (balance.amount, balance.promo_amount) == (Decimal("10.20"), Decimal("0.20"))
    assert ledger_differences() == (1, [])


def test_out_of_credit_mid_catch_up_hibernates_once_pays_the_hibernated_rate_and_resumes_after_a_top_up(
        org, flavour, credit, django_capture_on_commit_callbacks):
    credit("3.00")
    with time_machine.travel(at(17, 0), tick=False):
        server = running_server(org, flavour, at(17, 0))
    # Six hours of outage: the catch-up settles 7.20 in hourly slices; credit runs out at 19:30.
    with time_machine.travel(at(23, 0), tick=False):
        meter(at(23, 0), django_capture_on_commit_callbacks)
    server.refresh_from_db()
    assert server.state == ResourceState.HIBERNATED
    balance = Balance.objects.get(organization=org)
    assert balance.amount == Decimal("-4.20") and balance.hibernated_at == at(23, 0)
    assert CreditEvent.objects.filter(kind="credits.hibernated").count() == 1
    request = ProvisioningRequest.objects.get()
    assert request.action == "hibernate" and request.payload["resource_ids"] == [server.pk]
    assert request.status == "acknowledged"  # the logging backend in tests

    # Half an hour later: billed at the hibernated rate, and not hibernated again.
    with time_machine.travel(at(23, 30), tick=False):
        meter(at(23, 30), django_capture_on_commit_callbacks)
    assert Balance.objects.get(organization=org).amount == Decimal("-4.35")
    assert CreditEvent.objects.filter(kind="credits.hibernated").count() == 1

    # A top-up that restores the balance resumes the server.
    with time_machine.travel(at(23, 30), tick=False), django_capture_on_commit_callbacks(execute=True):
        services.credit_topup(organization=org, amount=Decimal("20"), currency="USD", reference="pi_123")
    server.refresh_from_db()
    assert server.state == ResourceState.RUNNING
    assert CreditEvent.objects.filter(kind="credits.resumed").count() == 1
    assert Balance.objects.get(organization=org).hibernated_at is None
    with time_machine.travel(at(23, 40), tick=False):
        meter(at(23, 40), django_capture_on_commit_callbacks)
    assert Balance.objects.get(organization=org).amount == Decimal("15.45")  # 10 minutes running again
    assert list(ProvisioningRequest.objects.order_by("id").values_list("action", flat=True)) == ["hibernate", "resume"]
    # The hour closes: its rated spans are stored (the open hour is charged per
    # organisation until then) and add up to what the balance moved by.
    with time_machine.travel(at(0, day=11), tick=False):
        meter(at(0, day=11), django_capture_on_commit_callbacks)
    hibernated = RatedUsage.objects.filter(state=ResourceState.HIBERNATED)
    assert sum(r.minutes for r in hibernated) == 30 and sum(r.amount for r in hibernated) == Decimal("0.15")
    assert Balance.objects.get(organization=org).amount == Decimal("15.05")  # 20 more minutes running
    assert ledger_differences() == (1, [])


def test_a_top_up_that_leaves_the_balance_negative_does_not_resume(org, flavour, credit,
                                                                    django_capture_on_commit_callbacks):
    credit("1.00")
    with time_machine.travel(at(17, 0), tick=False):
        running_server(org, flavour, at(17, 0))
    with time_machine.travel(at(19, 0), tick=False):
        meter(at(19, 0), django_capture_on_commit_callbacks)  # 2.40 used: -1.40
        with django_capture_on_commit_callbacks(execute=True):
            services.credit_topup(organization=org, amount=Decimal("1.00"), currency="USD", reference="pi_1")
    assert Resource.objects.get().state == ResourceState.HIBERNATED
    assert not CreditEvent.objects.filter(kind="credits.resumed").exists()


def test_manual_resume_waits_for_a_person(org, flavour, credit, settings, owner, django_capture_on_commit_callbacks):
    from credits import hibernation

    settings.CREDITS_RESUME_MODE = "manual"
    credit("1.00")
    with time_machine.travel(at(17, 0), tick=False):
        running_server(org, flavour, at(17, 0))
    with time_machine.travel(at(19, 0), tick=False):
        meter(at(19, 0), django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            services.credit_topup(organization=org, amount=Decimal("10"), currency="USD", reference="pi_2")
        assert Resource.objects.get().state == ResourceState.HIBERNATED
        hibernation.resume(organization_id=org.pk, actor=owner)
    assert Resource.objects.get().state == ResourceState.RUNNING


def test_postpaid_organizations_are_never_hibernated(org, flavour, django_capture_on_commit_callbacks):
    org.billing_mode = "postpaid"
    org.save()
    with time_machine.travel(at(17, 0), tick=False):
        running_server(org, flavour, at(17, 0))
    with time_machine.travel(at(19, 0), tick=False):
        meter(at(19, 0), django_capture_on_commit_callbacks)
    assert Balance.objects.get(organization=org).amount == Decimal("-2.40")
    assert Resource.objects.get().state == ResourceState.RUNNING
    assert not ProvisioningRequest.objects.exists()


def test_the_grace_period_delays_hibernation(org, flavour, credit, settings, django_capture_on_commit_callbacks):
    from credits import hibernation

    settings.CREDITS_HIBERNATE_GRACE_PERIOD = timedelta(minutes=30)
    credit("1.00")
    with time_machine.travel(at(17, 0), tick=False):
        running_server(org, flavour, at(17, 0))
    with time_machine.travel(at(18, 0), tick=False):
        meter(at(18, 0), django_capture_on_commit_callbacks)  # -0.20, depleted now
        assert Resource.objects.get().state == ResourceState.RUNNING
    with time_machine.travel(at(18, 29), tick=False):
        assert hibernation.hibernate_due() == 0
    with time_machine.travel(at(18, 30), tick=False):
        assert hibernation.hibernate_due() == 1
    assert Resource.objects.get().state == ResourceState.HIBERNATED


def test_the_sync_starts_one_auto_top_up_when_usage_crosses_the_threshold(org, flavour, credit,
                                                                         django_capture_on_commit_callbacks):
    from credits.models import TopUp

    credit("10.00")
    services.auto_topup_configure(organization=org, enabled=True, threshold=Decimal("5"), amount=Decimal("20"))
    with time_machine.travel(at(17, 0), tick=False):
        running_server(org, flavour, at(17, 0))
    with time_machine.travel(at(22, 0), tick=False):
        meter(at(22, 0), django_capture_on_commit_callbacks)  # 6.00 used over five hourly runs: 4.00 left
    assert TopUp.objects.filter(source="auto").count() == 1
    assert Balance.objects.get(organization=org).amount == Decimal("24.00")
    assert Resource.objects.get().state == ResourceState.RUNNING


def test_balances_move_every_minute_and_the_ledger_equals_the_rated_spans_once_the_hour_closes(
        org, flavour, credit, django_capture_on_commit_callbacks):
    """The open hour is charged per organisation every minute (nothing stored per
    resource); when it closes, the spans are stored and the closing run charges the
    difference: a late stop inside the open hour and a monthly cap reached mid-hour end
    exact to the last decimal."""
    credit("100")
    capped = ProductFactory(code="capped")
    add_price(capped, "1.20", valid_from=at(0, day=1), monthly_cap="1.50")  # reached at 10:15
    with time_machine.travel(at(10, 0), tick=False):
        running_server(org, capped, at(9, 0), external_id="capped")
        late = running_server(org, flavour, at(10, 0), external_id="late")
        meter(at(10, 0), django_capture_on_commit_callbacks)
    assert Balance.objects.get(organization=org).amount == Decimal("98.80")
    stored = RatedUsage.objects.count()
    amounts = []
    for minute in range(1, 31):
        with time_machine.travel(at(10, minute), tick=False):
            meter(at(10, minute), django_capture_on_commit_callbacks)
        amounts.append(Balance.objects.get(organization=org).amount)
    assert all(b < a for a, b in zip([Decimal("98.80"), *amounts], amounts, strict=False))  # every minute
    assert RatedUsage.objects.count() == stored  # nothing stored while the hour is open
    assert amounts[-1] == Decimal("98.80") - Decimal("0.04") * 30  # two servers accrued for 30 minutes

    with time_machine.travel(at(10, 30), tick=False):
        usage_services.resource_change_state(resource=late, state=ResourceState.STOPPED, at=at(10, 10),
                                             source=StateSource.EVENT)
    for minute in range(31, 61):
        when = at(10, 0) + timedelta(minutes=minute)
        with time_machine.travel(when, tick=False):
            meter(when, django_capture_on_commit_callbacks)

    # The capped server: 1.20 then 0.30 to its cap; `late`: 10 minutes, 0.20.
    assert sum(r.amount for r in RatedUsage.objects.all()) == Decimal("1.70")
    assert Balance.objects.get(organization=org).amount == Decimal("98.30")
    usage = LedgerEntry.objects.filter(kind="usage")
    assert sum(e.amount for e in usage) == -sum(r.amount for r in RatedUsage.objects.all())
    assert ledger_differences() == (1, [])


def test_staggered_chunks_read_their_burn_rates_after_closing_the_hour_and_the_ledger_still_ends_exact(
        org, other_org, credit, django_capture_on_commit_callbacks):
    """With staggered closes, chunk 1 of 2 closes its hour at :30. It accrues the first
    half hour of the next one at the burn rate it had (read once per chunk, right after
    each close, not by every chunk in the hour's first minute), so a price that doubles at
    noon is charged at the old rate from 12:00 to 12:30, and the close of the noon hour at
    13:30 charges the difference: the ledger equals the rated spans to the last decimal."""
    odd = org if org.pk % 2 else other_org  # chunk 1: closes each hour at :30
    credit("100", organization=odd)
    product = ProductFactory(code="doubling")
    add_price(product, "1.20", valid_from=at(0, day=1), valid_to=at(12))  # 0.02 a minute
    add_price(product, "2.40", valid_from=at(12))  # 0.04 a minute from noon
    with time_machine.travel(at(11), tick=False):
        running_server(odd, product, at(11))
        meter(at(11), django_capture_on_commit_callbacks)
    balances = {}
    for minute in range(1, 152):  # 11:01 -> 13:31, minute by minute as the beat task runs it
        when = at(11) + timedelta(minutes=minute)
        with time_machine.travel(when, tick=False), django_capture_on_commit_callbacks(execute=True):
            metering.meter_chunk(chunk=odd.pk % 2, until=metering.to_minute(when), stagger=True)
        balances[when] = sum(e.amount for e in LedgerEntry.objects.filter(organization=odd, kind="usage"))
    # 12:00-12:29 accrued at the old rate; the run at 12:30 closes 11:00-12:00, reads the
    # noon hour's rates and accrues its minute at the new one …
    assert balances[at(12, 29)] - balances[at(12, 0)] == Decimal("-0.58")
    assert balances[at(12, 30)] - balances[at(12, 29)] == Decimal("-0.04")
    # … and at the new one from there on.
    assert balances[at(12, 40)] - balances[at(12, 30)] == Decimal("-0.40")
    # The noon hour closed at 13:30 and charged what its spans say: 11:00-13:00 is
    # 1.20 + 2.40, and 13:00-13:31 is accrued at the new rate.
    spans = sum(r.amount for r in RatedUsage.objects.filter(organization=odd))
    assert spans == Decimal("3.60")
    assert balances[at(13, 31)] == -(spans + Decimal("0.04") * 31)
    assert ledger_differences() == (1, [])
