"""Reads of credit that are more than a one-liner."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet

from accounts.models import Organization
from credits.models import ZERO, AutoTopUpSettings, Balance, CreditEvent, EventKind, LedgerEntry, PromoGrant
from credits.runway import crossed_keys, describe_runway, runway_hours

WARNING_KINDS = (EventKind.RUNWAY_WARNING, EventKind.BALANCE_WARNING, EventKind.TOPUP_FAILED,
                 EventKind.AUTO_TOPUP_CAPPED, EventKind.HIBERNATED)


@dataclass(frozen=True)
class PostpaidPosition:
    """A postpaid account in its own words: what may be owed, what is owed, what invoices
    ask for. The balance of a postpaid organisation is its ledger too (usage drawn every
    minute, invoices drawing the rest, payments putting money back), so what is owed is
    the balance below zero; nothing here is prepaid credit."""

    credit_limit: Decimal  # zero: none set
    owed: Decimal  # usage and invoices not yet paid (the balance below zero)
    open_invoices: int
    open_total: Decimal
    payment_terms_days: int

    @property
    def available(self) -> Decimal | None:
        return self.credit_limit - self.owed if self.credit_limit > 0 else None

    @property
    def over_limit(self) -> bool:
        return self.credit_limit > 0 and self.owed > self.credit_limit


def postpaid_position(organization: Organization, balance: Decimal) -> PostpaidPosition:
    from django.conf import settings
    from django.utils.module_loading import import_string

    count, total = import_string(settings.CREDITS_OPEN_INVOICES)(organization_id=organization.pk)
    return PostpaidPosition(credit_limit=organization.credit_limit, owed=max(-balance, ZERO), open_invoices=count,
                            open_total=total, payment_terms_days=organization.payment_terms_days)


@dataclass
class CreditSummary:
    organization: Organization
    currency: str
    balance: Decimal
    promo: Decimal
    burn_rate_per_hour: Decimal
    runway_hours: Decimal | None
    runway_text: str
    hibernated: bool
    prepaid: bool
    low: bool
    warnings: list = field(default_factory=list)
    promo_grants: list = field(default_factory=list)
    auto_topup: AutoTopUpSettings | None = None
    postpaid: PostpaidPosition | None = None  # set for postpaid organisations only

    @property
    def paid(self) -> Decimal:
        return self.balance - self.promo


def credit_summary(*, organization: Organization, warnings: int = 3) -> CreditSummary:
    balance = Balance.objects.filter(organization=organization, currency=organization.currency).first()
    amount = balance.amount if balance else ZERO
    burn = balance.burn_rate_per_hour if balance else ZERO
    hours = runway_hours(amount, burn)
    return CreditSummary(
        organization=organization,
        currency=organization.currency,
        balance=amount,
        promo=balance.promo_amount if balance else ZERO,
        burn_rate_per_hour=burn,
        runway_hours=hours,
        runway_text=describe_runway(hours),
        hibernated=bool(balance and balance.hibernated_at),
        prepaid=organization.is_prepaid,
        # "Low" is a prepaid word: a postpaid balance below zero is what invoices collect.
        low=organization.is_prepaid and bool(crossed_keys(amount, burn)),
        warnings=list(CreditEvent.objects.filter(organization=organization, kind__in=WARNING_KINDS)[:warnings]),
        promo_grants=list(PromoGrant.objects.filter(organization=organization, expired_at__isnull=True, remaining__gt=0)),
        auto_topup=AutoTopUpSettings.objects.filter(organization=organization).first(),
        postpaid=None if organization.is_prepaid else postpaid_position(organization, amount),
    )


def ledger_for(*, organization: Organization) -> QuerySet[LedgerEntry]:
    return (LedgerEntry.objects.filter(organization=organization)
            .select_related("actor", "actor_api_key").order_by("-created_at", "-id"))


LEDGER_CHECK_SQL = """
SELECT COALESCE(b.organization_id, l.organization_id), COALESCE(b.currency, l.currency),
       COALESCE(b.amount, 0), COALESCE(l.total, 0), COALESCE(b.promo_amount, 0), COALESCE(l.promo, 0),
       COALESCE(g.remaining, 0)
FROM credits_balance b
FULL OUTER JOIN (
    SELECT organization_id, currency, SUM(amount) AS total, SUM(promo_amount) AS promo
    FROM credits_ledgerentry GROUP BY organization_id, currency
) l ON l.organization_id = b.organization_id AND l.currency = b.currency
LEFT JOIN (
    SELECT organization_id, currency, SUM(remaining) AS remaining
    FROM credits_promogrant WHERE expired_at IS NULL GROUP BY organization_id, currency
) g ON g.organization_id = COALESCE(b.organization_id, l.organization_id)
   AND g.currency = COALESCE(b.currency, l.currency)
ORDER BY 1, 2
"""


def ledger_differences() -> tuple[int, list[dict]]:
    """(balances checked, differences): every balance must equal the sum of its entries,
    its promotional part the sum of their promotional parts and of the open grants. Exact:
    the columns are NUMERIC."""
    from django.db import connection

    checked, differences = 0, []
    with connection.cursor() as cursor:
        cursor.execute(LEDGER_CHECK_SQL)
        for org_id, currency, balance, total, promo_balance, promo_total, grants in cursor.fetchall():
            checked += 1
            if not (balance == total and promo_balance == promo_total and promo_balance == grants):
                differences.append({
                    "organization_id": org_id, "currency": currency, "balance": balance, "ledger": total,
                    "promo_balance": promo_balance, "promo_ledger": promo_total, "promo_grants": grants,
                })
    return checked, differences
