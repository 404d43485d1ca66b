from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from core.errors import DomainError
from credits import services
from credits.models import LedgerEntry, PromoGrant
from credits.selectors import ledger_differences

pytestmark = pytest.mark.django_db


def test_usage_consumes_promotional_credit_before_paid_credit(org, credit, balance_of):
    credit("30")
    services.promo_grant(organization=org, amount=Decimal("10"), reason="welcome",
                         expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    usage = services.ledger_post(organization=org, amount=Decimal("-12.50"), kind="usage", reason="usage")
    balance = balance_of(org)
    assert usage.promo_amount == Decimal("-10")
    assert balance.amount == Decimal("27.50")
    assert balance.promo_amount == Decimal("0") and balance.paid_amount == Decimal("27.50")
    assert PromoGrant.objects.get().remaining == Decimal("0")


def test_the_earliest_expiring_grant_is_consumed_first(org):
    late = services.promo_grant(organization=org, amount=Decimal("5"), reason="late",
                                expires_at=datetime(2031, 1, 1, tzinfo=UTC))
    soon = services.promo_grant(organization=org, amount=Decimal("5"), reason="soon",
                                expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    services.ledger_post(organization=org, amount=Decimal("-6"), kind="usage", reason="usage")
    soon.refresh_from_db()
    late.refresh_from_db()
    assert (soon.remaining, late.remaining) == (Decimal("0"), Decimal("4"))


def test_a_staff_debit_does_not_eat_promotional_credit(org, credit, balance_of):
    credit("10")
    services.promo_grant(organization=org, amount=Decimal("5"), reason="x", expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    services.credit_adjust(organization=org, amount=Decimal("-4"), reason="correction")
    assert balance_of(org).promo_amount == Decimal("5")


def test_leftover_promotional_credit_expires_at_its_expiry_once(org, credit, balance_of):
    # Granted on leap day, expiring at the end of February a year later.
    expires = datetime(2029, 3, 1, tzinfo=UTC)
    with time_machine.travel(datetime(2028, 2, 29, 12, tzinfo=UTC), tick=False):
        credit("20")
        grant = services.promo_grant(organization=org, amount=Decimal("15"), reason="leap day promo",
                                     expires_at=expires)
        services.ledger_post(organization=org, amount=Decimal("-4.25"), kind="usage", reason="usage")
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        assert services.promo_expire_due() == 0
    with time_machine.travel(expires + timedelta(minutes=7), tick=False):
        assert services.promo_expire_due() == 1
        assert services.promo_expire(grant_id=grant.pk) is None  # a second run does nothing
    entry = LedgerEntry.objects.get(kind="promo_expiry")
    assert entry.amount == Decimal("-10.75") and entry.created_at == expires + timedelta(minutes=7)
    balance = balance_of(org)
    assert balance.amount == Decimal("20") and balance.promo_amount == Decimal("0")
    grant.refresh_from_db()
    assert grant.remaining == Decimal("0") and grant.expired_at is not None
    assert ledger_differences() == (1, [])


def test_a_fully_used_grant_expires_without_an_entry(org):
    grant = services.promo_grant(organization=org, amount=Decimal("1"), reason="x",
                                 expires_at=datetime(2030, 1, 31, 23, 59, tzinfo=UTC))
    services.ledger_post(organization=org, amount=Decimal("-3"), kind="usage", reason="usage")
    with time_machine.travel(datetime(2030, 2, 1, tzinfo=UTC), tick=False):
        assert services.promo_expire(grant_id=grant.pk) is None
    assert not LedgerEntry.objects.filter(kind="promo_expiry").exists()
    grant.refresh_from_db()
    assert grant.expired_at is not None


def test_a_grant_must_expire_in_the_future(org):
    with pytest.raises(DomainError) as exc:
        services.promo_grant(organization=org, amount=Decimal("1"), reason="x",
                             expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert exc.value.field == "expires_at"
