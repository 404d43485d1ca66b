from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from core.errors import Conflict
from credits import services
from credits.models import CreditEvent, LedgerEntry, TopUp
from credits.tasks import credits_topup_dispatch_task, credits_topup_retry_task

pytestmark = pytest.mark.django_db


def _failing_handler(topup_id):
    raise ConnectionError("card declined by issuer")


@pytest.fixture
def auto(org):
    def _auto(threshold="20", amount="50", cap=None):
        return services.auto_topup_configure(organization=org, enabled=True, threshold=Decimal(threshold),
                                             amount=Decimal(amount), monthly_cap=Decimal(cap) if cap else None)

    return _auto


def test_a_requested_top_up_is_credited_by_the_sandbox_handler_once(org, owner, balance_of,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        topup = services.topup_request(organization=org, amount=Decimal("75.00"), actor=owner)
    topup.refresh_from_db()
    assert topup.status == "succeeded" and topup.attempts == 1
    assert balance_of(org).amount == Decimal("75.00")
    # The handler (or a provider webhook) reporting success again changes nothing.
    services.credit_topup(organization=org, amount=Decimal("75.00"), currency="USD", reference="ignored",
                          topup_id=topup.pk)
    credits_topup_dispatch_task(topup.pk)
    assert LedgerEntry.objects.filter(kind="topup").count() == 1
    assert balance_of(org).amount == Decimal("75.00")


def test_credit_topup_refuses_another_amount_or_currency(org):
    topup = TopUp.objects.create(organization=org, source="manual", amount=Decimal("10"), currency="USD")
    with pytest.raises(Conflict):
        services.credit_topup(organization=org, amount=Decimal("11"), currency="USD", reference="x",
                              topup_id=topup.pk)


def test_a_resubmitted_portal_form_requests_one_top_up(org, owner):
    a = services.topup_request(organization=org, amount=Decimal("10"), actor=owner, request_key="k1")
    b = services.topup_request(organization=org, amount=Decimal("10"), actor=owner, request_key="k1")
    assert a.pk == b.pk and TopUp.objects.count() == 1


def test_falling_below_the_threshold_starts_one_auto_top_up_per_crossing(org, credit, auto, balance_of,
                                                                          django_capture_on_commit_callbacks):
    credit("30")
    auto()
    with django_capture_on_commit_callbacks(execute=True):
        services.ledger_post(organization=org, amount=Decimal("-15"), kind="usage", reason="usage")
        # Still below the threshold on the next minutes: the same crossing, no second attempt.
        services.ledger_post(organization=org, amount=Decimal("-1"), kind="usage", reason="usage")
        services.auto_topup_check(organization_id=org.pk, currency="USD")
    assert TopUp.objects.filter(source="auto").count() == 1
    assert balance_of(org).amount == Decimal("64")  # 30 - 16 + 50 (sandbox)
    # Credit re-armed it: the next fall below the threshold is a new crossing.
    with django_capture_on_commit_callbacks(execute=True):
        services.ledger_post(organization=org, amount=Decimal("-50"), kind="usage", reason="usage")
    assert TopUp.objects.filter(source="auto", status="succeeded").count() == 2
    assert balance_of(org).amount == Decimal("64")


def test_a_top_up_too_small_to_lift_the_balance_does_not_start_another_in_the_same_crossing(
        org, credit, auto, balance_of, django_capture_on_commit_callbacks):
    credit("30")
    auto(threshold="100", amount="50")
    with django_capture_on_commit_callbacks(execute=True):
        services.ledger_post(organization=org, amount=Decimal("-40"), kind="usage", reason="usage")  # -10
    assert balance_of(org).amount == Decimal("40")  # 30 - 40 + 50: still below 100
    assert [e.message for e in CreditEvent.objects.order_by("id")][-2:] == [
        "Balance -$10.00 fell below $100.00: topping up $50.00.", "Auto top-up of $50.00 credited."]
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):  # the next minutes' usage, each followed by a check
            services.ledger_post(organization=org, amount=Decimal("-1"), kind="usage", reason="usage")
            services.auto_topup_check(organization_id=org.pk, currency="USD")
    assert TopUp.objects.filter(source="auto").count() == 1
    # Saving the settings again (say, a higher threshold) starts afresh.
    with django_capture_on_commit_callbacks(execute=True):
        auto(threshold="120", amount="50")
    assert TopUp.objects.filter(source="auto").count() == 2
    assert balance_of(org).amount == Decimal("85")
    # A manual top-up lifts it above the threshold: the next fall is a new crossing.
    with django_capture_on_commit_callbacks(execute=True):
        services.ledger_post(organization=org, amount=Decimal("100"), kind="topup", reason="manual")  # 185
        services.ledger_post(organization=org, amount=Decimal("-70"), kind="usage", reason="usage")  # 115
    assert TopUp.objects.filter(source="auto", status="succeeded").count() == 3
    assert balance_of(org).amount == Decimal("165")


def test_concurrent_checks_of_one_crossing_start_one_top_up(org, credit, auto):
    credit("5")
    auto()
    first = services.auto_topup_check(organization_id=org.pk, currency="USD")
    second = services.auto_topup_check(organization_id=org.pk, currency="USD")
    assert first is not None and second is None
    assert TopUp.objects.count() == 1


def test_a_failed_auto_top_up_is_reported_and_retried_with_backoff(org, credit, auto, settings, balance_of,
                                                                   django_capture_on_commit_callbacks):
    settings.CREDITS_AUTO_TOPUP_HANDLER = "credits.tests.test_topups._failing_handler"
    org.billing_email = "ap@example.com"
    org.save()
    credit("30")
    auto()
    start = datetime(2030, 5, 31, 23, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        services.ledger_post(organization=org, amount=Decimal("-20"), kind="usage", reason="usage")
    topup = TopUp.objects.get()
    assert (topup.status, topup.attempts) == ("failed", 1)
    assert topup.next_attempt_at == start + timedelta(minutes=5)
    assert "card declined" in topup.last_error
    assert CreditEvent.objects.filter(kind="credits.topup_failed").count() == 1
    assert mail.outbox and "card declined" in mail.outbox[0].body
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        assert credits_topup_retry_task() == 0
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        assert credits_topup_retry_task() == 1
    topup.refresh_from_db()
    assert (topup.attempts, topup.next_attempt_at) == (2, start + timedelta(minutes=5) + timedelta(minutes=20))
    settings.CREDITS_AUTO_TOPUP_HANDLER = "credits.topup_contract.sandbox_handler"
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        credits_topup_retry_task()
    topup.refresh_from_db()
    assert (topup.status, topup.attempts) == ("succeeded", 3)
    assert balance_of(org).amount == Decimal("60")


def test_a_failed_top_up_is_abandoned_after_the_last_attempt(org, settings):
    settings.CREDITS_TOPUP_MAX_ATTEMPTS = 2
    topup = TopUp.objects.create(organization=org, source="auto", amount=Decimal("10"), currency="USD", attempts=2)
    services.auto_topup_failed(topup_id=topup.pk, error="insufficient funds")
    topup.refresh_from_db()
    assert topup.status == "abandoned" and topup.next_attempt_at is None


def test_the_monthly_cap_stops_auto_top_ups(org, credit, auto, django_capture_on_commit_callbacks):
    credit("30")
    auto(threshold="20", amount="50", cap="60")
    with time_machine.travel(datetime(2030, 2, 28, 12, tzinfo=UTC), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            services.ledger_post(organization=org, amount=Decimal("-15"), kind="usage", reason="usage")
        with django_capture_on_commit_callbacks(execute=True):
            services.ledger_post(organization=org, amount=Decimal("-60"), kind="usage", reason="usage")
    statuses = list(TopUp.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["succeeded", "abandoned"]
    assert CreditEvent.objects.filter(kind="credits.auto_topup_capped").count() == 1
    # A new month has a fresh cap.
    with time_machine.travel(datetime(2030, 3, 1, 0, 5, tzinfo=UTC), tick=False), \
            django_capture_on_commit_callbacks(execute=True):
        services.credit_adjust(organization=org, amount=Decimal("1"), reason="still below the threshold")
        services.ledger_post(organization=org, amount=Decimal("-1"), kind="usage", reason="usage")
    assert TopUp.objects.filter(status="succeeded").count() == 2
