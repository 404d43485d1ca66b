"""Reads of the invoices app that are more than a one-liner."""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Case, Count, DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest

from accounts.models import Organization
from core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, ZERO
from invoices.models import FINALIZED_STATUSES, CouponRedemption, CreditNote, Invoice, InvoiceStatus


def active_redemptions(org_ids: list[int], period_start: datetime, period_end: datetime) -> dict[int, list[CouponRedemption]]:
    """Coupons that still have periods left for `period_start`. Periods used are counted
    from finalized invoices of earlier periods that carry the coupon's discount line."""
    qs = (
        CouponRedemption.objects.filter(
            organization_id__in=org_ids, coupon__is_active=True, starts_at__lt=period_end
        )
        .select_related("coupon")
        .annotate(
            used=Count(
                "lines__invoice",
                filter=Q(lines__invoice__status__in=FINALIZED_STATUSES, lines__invoice__period_start__lt=period_start),
                distinct=True,
            )
        )
        .order_by("created_at", "id")
    )
    out: dict[int, list[CouponRedemption]] = defaultdict(list)
    for r in qs:
        if r.coupon.duration_periods is None or r.used < r.coupon.duration_periods:
            out[r.organization_id].append(r)
    return out


def unpaid_before(org_ids: list[int], period_start: datetime) -> dict[int, list[tuple[int, Decimal]]]:
    """Open invoices of earlier periods, not yet carried to a later one: (id, remaining)."""
    rows = (
        Invoice.objects.filter(
            organization_id__in=org_ids,
            status__in=(InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE),
            period_start__lt=period_start,
            carried_to__isnull=True,
        )
        .annotate(credited=Sum("credit_notes__total", default=ZERO))
        .annotate(remaining=F("amount_due") - F("amount_paid") - F("credited"))
        .filter(remaining__gt=0)
        .values_list("organization_id", "id", "remaining")
        .order_by("period_start")
    )
    out: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    for org_id, inv_id, remaining in rows:
        out[org_id].append((inv_id, remaining))
    return out


def credited_total(invoice: Invoice) -> Decimal:
    return invoice.credit_notes.aggregate(t=Sum("total", default=ZERO))["t"]


def with_still_due(qs: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Annotate `still_due`: what an invoice still asks for after its payments and credit
    notes (zero once paid, and zero when its balance was carried to a later invoice),
    the same figure as `invoices.rendering.settlement`."""
    credited = Subquery(
        CreditNote.objects.filter(invoice=OuterRef("pk")).values("invoice").annotate(t=Sum("total")).values("t")[:1]
    )
    open_amount = Greatest(F("amount_due") - F("amount_paid") - Coalesce(credited, Value(ZERO)), Value(ZERO))
    return qs.annotate(still_due=Case(When(carried_to__isnull=False, then=Value(ZERO)), default=open_amount,
                                      output_field=DecimalField(max_digits=AMOUNT_MAX_DIGITS,
                                                                decimal_places=AMOUNT_DECIMAL_PLACES)))


_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name} | {
    name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_PERIOD = re.compile(r"^(?:(?P<year>\d{4})(?:-(?P<month>\d{1,2}))?|(?P<name>[a-z]+)\.?(?:\s+(?P<year2>\d{4}))?)$")


def invoices_search(qs: QuerySet[Invoice], text: str) -> QuerySet[Invoice]:
    """Invoices whose number contains `text`, or whose period it names: '2026-03',
    'March 2026', 'mar', '2026' (periods are months in UTC, keyed by their start)."""
    text = " ".join(text.split())
    if not text:
        return qs
    by_number = Q(number__icontains=text)
    match = _PERIOD.match(text.lower())
    if match is None:
        return qs.filter(by_number)
    year = match["year"] or match["year2"]
    month = int(match["month"]) if match["month"] else _MONTHS.get(match["name"] or "")
    if match["name"] and month is None:
        return qs.filter(by_number)
    period = Q()
    if year:
        period &= Q(period_start__year=int(year))
    if month:
        period &= Q(period_start__month=month)
    return qs.filter(by_number | period)


def invoice_years(qs: QuerySet[Invoice]) -> list[int]:
    """The years (of the period, UTC) the organisation has invoices for, newest first."""
    return sorted({d.year for d in qs.datetimes("period_start", "year", tzinfo=UTC)}, reverse=True)


def portal_invoices(organization: Organization) -> QuerySet[Invoice]:
    """What the portal shows an organisation: its invoices, drafts never."""
    return Invoice.objects.filter(organization=organization).exclude(status=InvoiceStatus.DRAFT)


def open_invoices_total(*, organization_id: int) -> tuple[int, Decimal]:
    """(how many, how much) of the organisation's open invoices still ask for, in its
    currency: credits' postpaid pages show it (`settings.CREDITS_OPEN_INVOICES`)."""
    qs = with_still_due(Invoice.objects.filter(organization_id=organization_id, status=InvoiceStatus.OPEN))
    rows = [due for due in (inv.still_due for inv in qs) if due > 0]  # type: ignore[attr-defined]  # annotated
    return len(rows), sum(rows, ZERO)
