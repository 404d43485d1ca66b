"""`ledger_post_many` (a chunk of invoices drawing from their ledgers at once) leaves
every entry and balance exactly as `ledger_post` one by one would."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from core.models import OutboxMessage
from credits import services
from credits.models import AutoTopUpSettings, Balance, LedgerEntry

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def _world():
    """Five organisations, each in a situation a post must respect: a plain debit, a
    debit below the auto top-up threshold, a credit after warnings were sent, a balance
    with promotional credit to consume first, a reference already posted, and one with
    no balance row yet."""
    orgs = [OrganizationFactory(billing_mode=BillingMode.POSTPAID) for _ in range(6)]
    plain, topup, credited, promo, replay, fresh = orgs
    for org in orgs[:5]:
        services.ledger_post(organization=org, amount=Decimal("20"), kind="topup", reason="card",
                             reference=f"pay:{org.pk}", at=NOW)
    AutoTopUpSettings.objects.create(organization=topup, enabled=True, threshold=Decimal("10"), amount=Decimal("50"))
    Balance.objects.filter(organization=credited).update(warnings_sent=["balance:10", "balance:25"])
    services.promo_grant(organization=promo, amount=Decimal("3"), expires_at=NOW + timedelta(days=30),
                         reason="welcome", now=NOW)
    services.ledger_post(organization=replay, amount=Decimal("-4"), kind="invoice_settlement", reason="Invoice",
                         reference="invoice:replay", at=NOW)
    posts = [
        (plain, Decimal("-7.25"), "invoice:1"), (topup, Decimal("-15"), "invoice:2"),
        (credited, Decimal("2.50"), "invoice:3"), (promo, Decimal("-5"), "invoice:4"),
        (replay, Decimal("-4"), "invoice:replay"), (fresh, Decimal("-1.10"), "invoice:6"),
    ]
    return orgs, posts


def _state(orgs):
    entries = [list(LedgerEntry.objects.filter(organization=o).order_by("id").values_list(
        "kind", "amount", "promo_amount", "balance_after", "reference")) for o in orgs]
    balances = [Balance.objects.filter(organization=o).values_list(
        "amount", "promo_amount", "warnings_sent").first() for o in orgs]
    depleted = [Balance.objects.filter(organization=o, depleted_at__isnull=False).exists() for o in orgs]
    topups = [i for i, o in enumerate(orgs)
              if OutboxMessage.objects.filter(task="credits.auto_topup_check", args__0=o.pk).exists()]
    return entries, balances, depleted, topups


def test_many_posts_at_once_equal_the_same_posts_one_by_one():
    one_orgs, one_posts = _world()
    for org, amount, ref in one_posts:
        services.ledger_post(organization=org, amount=amount, kind="invoice_settlement", reason="Invoice",
                             reference=ref.replace("invoice:", f"invoice:{org.pk}:") if ref != "invoice:replay" else ref,
                             at=NOW)
    one = _state(one_orgs)
    # The situations are what they say: a top-up check for the one below its threshold,
    # promotional credit consumed first, a warning re-armed by the credit, the replay skipped.
    assert one[3] == [1]
    assert one[0][3][-1][2] == Decimal("-3")
    assert one[1][2][2] != ["balance:10", "balance:25"]
    assert len(one[0][4]) == 2
    OutboxMessage.objects.all().delete()

    many_orgs, many_posts = _world()
    with CaptureQueriesContext(connection) as ctx:
        services.ledger_post_many([
            services.Post(organization=org, amount=amount, kind="invoice_settlement", reason="Invoice",
                          reference=ref.replace("invoice:", f"invoice:{org.pk}:") if ref != "invoice:replay" else ref)
            for org, amount, ref in many_posts
        ], at=NOW)
    many = _state(many_orgs)

    def strip(state):  # references name the organisation; compare the rest
        entries, *rest = state
        return [[e[:4] for e in es] for es in entries], *rest

    assert strip(many) == strip(one)
    # The plain debits (four of six: promo goes one by one, the replay is skipped) in one INSERT.
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "credits_ledgerentry"')]
    assert len(inserts) == 2  # the batch, then the promotional one through ledger_post
    assert OutboxMessage.objects.filter(task="credits.auto_topup_check", args=[many_orgs[1].pk, "USD"]).exists()
