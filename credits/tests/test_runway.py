from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from credits import runway, services
from credits.models import Balance, CreditEvent, LedgerEntry
from credits.services.ledger import _lock_balance

pytestmark = pytest.mark.django_db
T0 = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


def _post_usage(org, amount, start, minutes=1):
    """A usage entry covering [start, start+minutes), as the credit sync writes them."""
    with transaction.atomic():
        balance = _lock_balance(org.pk, org.currency)
        balance.amount -= Decimal(amount)
        LedgerEntry.objects.create(
            organization=org, currency=org.currency, kind="usage", amount=-Decimal(amount),
            balance_after=balance.amount, reason="usage", period_start=start,
            period_end=start + timedelta(minutes=minutes), created_at=start + timedelta(minutes=minutes),
        )
        balance.save()


def test_runway_text_reads_like_a_person_wrote_it():
    assert runway.describe_runway(Decimal("74.4")) == "about 3 days left at your current usage"
    assert runway.describe_runway(Decimal("5.6")) == "about 6 hours left at your current usage"
    assert runway.describe_runway(Decimal("0.5")) == "about 30 minutes left at your current usage"
    assert runway.describe_runway(None) == "nothing is running, so your credit is not being used"


def test_burn_rate_follows_the_last_hour_and_ignores_catch_up_spikes(org, credit):
    credit("100")
    # Six hours of catch-up settled in one entry: 6 × 2.00/hour.
    _post_usage(org, "12.00", T0 - timedelta(hours=6), minutes=360)
    with time_machine.travel(T0, tick=False):
        runway.compute_burn_rates()
    assert Balance.objects.get(organization=org).burn_rate_per_hour == Decimal("2")


def test_warnings_fire_once_per_crossing_and_rearm_after_a_top_up(org, credit, settings,
                                                                  django_capture_on_commit_callbacks):
    settings.CREDITS_LOW_BALANCE_WARNING = Decimal("5")
    org.billing_email = "ap@example.com"
    org.save()
    credit("100")
    # 60 minutes at 2.00/hour → burn 2/hour; balance 98 → 49 hours: crosses 72 only.
    for m in range(60):
        _post_usage(org, "0.0333333333333", T0 + timedelta(minutes=m))
    now = T0 + timedelta(hours=1)
    with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
        runway.compute_burn_rates()
        runway.send_warnings()
        runway.send_warnings()  # the next run of the task: nothing new
    events = list(CreditEvent.objects.filter(kind="credits.runway_warning"))
    assert len(events) == 1 and events[0].data["keys"] == ["runway:72"]
    assert len(mail.outbox) == 1 and "less than 72 hours" in mail.outbox[0].body
    # Spending down to 1.50: crosses 24 and 1 hours and the balance amount in one go: one warning.
    services.ledger_post(organization=org, amount=Decimal("-96.50000000002"), kind="usage", reason="big job")
    with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
        runway.send_warnings()
        runway.send_warnings()
    assert CreditEvent.objects.filter(kind="credits.runway_warning").count() == 2
    assert Balance.objects.get(organization=org).warnings_sent == ["runway:72", "runway:1", "runway:24", "balance:5"]
    # A top-up to 51.50 (25.75 hours) re-arms 24 h, 1 h and the balance warning, not 72 h.
    with django_capture_on_commit_callbacks(execute=True):
        services.credit_topup(organization=org, amount=Decimal("50"), currency="USD", reference="pay_1")
    assert Balance.objects.get(organization=org).warnings_sent == ["runway:72"]
    with time_machine.travel(now, tick=False):
        assert runway.send_warnings() == 0
    # Spending below 24 hours again warns again.
    services.ledger_post(organization=org, amount=Decimal("-10"), kind="usage", reason="usage")
    with time_machine.travel(now, tick=False):
        runway.send_warnings()
    assert CreditEvent.objects.filter(kind="credits.runway_warning").count() == 3


def test_postpaid_organizations_get_no_runway_warnings(org, credit):
    org.billing_mode = "postpaid"
    org.save()
    Balance.objects.create(organization=org, currency="USD", amount=Decimal("0"),
                           burn_rate_per_hour=Decimal("5"))
    assert runway.send_warnings() == 0
