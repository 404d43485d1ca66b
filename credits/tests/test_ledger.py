from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import AuditLog
from core.errors import Conflict, DomainError
from credits import services
from credits.models import Balance, LedgerEntry

pytestmark = pytest.mark.django_db


def test_posting_moves_the_balance_and_records_balance_after(org, balance_of):
    first = services.ledger_post(organization=org, amount=Decimal("100.00"), kind="topup", reason="card",
                                 reference="pay_1")
    second = services.ledger_post(organization=org, amount=Decimal("-0.034333333333"), kind="usage", reason="minute")
    assert first.balance_after == Decimal("100.00")
    assert second.balance_after == Decimal("99.965666666667")
    assert balance_of(org).amount == Decimal("99.965666666667")
    assert second.actor_display == "system"


def test_replaying_a_reference_is_a_no_op(org, balance_of):
    first = services.ledger_post(organization=org, amount=Decimal("50"), kind="topup", reason="card", reference="pay_1")
    again = services.ledger_post(organization=org, amount=Decimal("50"), kind="topup", reason="card", reference="pay_1")
    assert again.pk == first.pk
    assert LedgerEntry.objects.count() == 1
    assert balance_of(org).amount == Decimal("50")


def test_the_same_reference_in_another_organization_is_its_own_entry(org, other_org):
    services.ledger_post(organization=org, amount=Decimal("5"), kind="topup", reason="x", reference="r")
    services.ledger_post(organization=other_org, amount=Decimal("5"), kind="topup", reason="x", reference="r")
    assert LedgerEntry.objects.count() == 2


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_entry_without_a_reason_is_refused(org, reason):
    with pytest.raises(DomainError) as exc:
        services.ledger_post(organization=org, amount=Decimal("5"), kind="adjustment", reason=reason)
    assert exc.value.field == "reason"
    assert not LedgerEntry.objects.exists()


def test_zero_and_float_amounts_are_refused(org):
    with pytest.raises(DomainError):
        services.ledger_post(organization=org, amount=Decimal("0"), kind="adjustment", reason="x")
    with pytest.raises(TypeError):
        services.ledger_post(organization=org, amount=1.5, kind="adjustment", reason="x")


def test_update_of_a_ledger_row_is_refused_by_the_database(org):
    entry = services.ledger_post(organization=org, amount=Decimal("5"), kind="topup", reason="x")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE credits_ledgerentry SET amount = 500 WHERE id = %s", [entry.pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(reason="edited")
    entry.refresh_from_db()
    assert entry.amount == Decimal("5") and entry.reason == "x"


def test_delete_of_a_ledger_row_is_refused_by_the_database(org):
    entry = services.ledger_post(organization=org, amount=Decimal("5"), kind="topup", reason="x")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM credits_ledgerentry WHERE id = %s", [entry.pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        entry.delete()
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_a_reversal_appends_the_mirror_entry_once(org, owner, balance_of):
    entry = services.credit_adjust(organization=org, amount=Decimal("20"), reason="goodwill", actor=owner)
    reversal = services.ledger_reverse(entry=entry, reason="granted to the wrong customer", actor=owner)
    assert reversal.amount == Decimal("-20") and reversal.reverses == entry
    assert balance_of(org).amount == Decimal("0")
    with pytest.raises(Conflict):
        services.ledger_reverse(entry=entry, reason="again", actor=owner)
    assert AuditLog.objects.filter(action="credits.entry_reversed", reason="granted to the wrong customer").exists()


def test_staff_adjustment_is_audited_with_its_reason(org, owner):
    entry = services.credit_adjust(organization=org, amount=Decimal("-3.50"), reason="duplicate top-up",
                                   actor=owner)
    log = AuditLog.objects.get(action="credits.adjusted")
    assert log.actor == owner and log.reason == "duplicate top-up" and log.object_id == str(entry.pk)
    assert entry.actor_display == owner.email


def test_check_ledger_passes_when_balances_equal_their_ledgers(org, other_org, capsys):
    services.ledger_post(organization=org, amount=Decimal("10"), kind="topup", reason="x")
    services.promo_grant(organization=other_org, amount=Decimal("7"), reason="welcome",
                         expires_at=timezone.now() + timedelta(days=3))
    call_command("check_ledger")
    assert "2 balances" in capsys.readouterr().out


def test_check_ledger_exits_non_zero_and_names_a_tampered_balance(org, capsys):
    services.ledger_post(organization=org, amount=Decimal("10"), kind="topup", reason="x")
    Balance.objects.filter(organization=org).update(amount=Decimal("11"))
    with pytest.raises(CommandError, match="1 of 1 balances differ"):
        call_command("check_ledger")
    assert f"organisation {org.pk} USD: balance 11" in capsys.readouterr().err
