"""Building the journal, one UTC day at a time, from what the other apps recorded.

The credit ledger is every organisation's running account, so its entries drive almost
everything: each becomes one journal entry whose customer side is the ledger movement in
cents and whose other side is what caused it (a payment's provider, an invoice's lines, a
credit note's lines, a grant, an expiry). Usage is the exception in volume: its entries
(one per organisation per metering run) are summed per organisation and day into one
entry. Documents that move no credit (an invoice wholly settled by metering, its void)
and write-offs (an audit row) are read on their own.

From 12 places to cents (docs/finance.md proves it): the journal books, for each
organisation and currency, `cents(S_after) − cents(S_before)`, where S is the ledger's
running sum and `cents(x) = floor(x + ½ minor unit)`. The sums telescope, so the journal's
customer accounts after any built day equal `cents(ledger sum)` exactly, and since
`cents(x + a) = cents(x) + a` for any whole-cent a, a whole-cent movement (a top-up, an
invoice draw, a payment) is booked at exactly its amount, whatever fraction the usage
before it left. The running sums are kept per built day in `LedgerDayClose`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Min, Sum
from django.utils import timezone

from core.money import format_rate, minor_unit_exponent
from finance.chart import Chart, JournalError
from finance.models import (
    Account,
    AccountRole,
    JournalDay,
    JournalEntry,
    JournalLine,
    LedgerDayClose,
    Movement,
)

if TYPE_CHECKING:
    from invoices.models import Invoice

ZERO = Decimal("0")
# A day is built once it ended this long ago: the transactions that were open at
# midnight (a metering run, an invoice chunk) have committed by then.
SETTLE_AFTER = timedelta(hours=1)
# Buchungstext in DATEV is at most 60 characters; our own text may be longer.
TEXT_MAX = 200

_REF = re.compile(r"^(?P<kind>[a-z_-]+):(?P<id>\d+)(?::(?P<tail>[a-z]+))?$")


def cents(amount: Decimal, currency: str) -> Decimal:
    """The journal's carry rounding: half a minor unit up, towards +∞ (floor(x + ½)).
    Unlike half-up away from zero it commutes with adding whole minor units, which is
    what makes a whole-cent movement book at exactly its amount (module docstring)."""
    quantum = Decimal(1).scaleb(-minor_unit_exponent(currency))
    return (amount + quantum / 2).quantize(quantum, rounding=ROUND_FLOOR)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def last_closed_day(now: datetime) -> date:
    return (now - SETTLE_AFTER).astimezone(UTC).date() - timedelta(days=1)


@dataclass
class _Entry:
    movement: str
    source: str
    currency: str
    text: str
    organization_id: int | None = None
    document: str = ""
    payment_id: int | None = None
    refund_id: int | None = None
    lines: list[tuple[Account, Decimal, int | None]] = field(default_factory=list)

    def add(self, account: Account, amount: Decimal, organization_id: int | None = None) -> None:
        if amount != ZERO:
            self.lines.append((account, amount, organization_id))


@dataclass
class _Running:
    """One organisation's ledger running sums in one currency (12 places)."""

    amount: Decimal = ZERO
    promo: Decimal = ZERO


# --- The watermark --------------------------------------------------------------------------


def first_day() -> date | None:
    """The first day anything moved money: the earliest ledger entry or issued invoice."""
    from credits.models import LedgerEntry
    from invoices.models import Invoice

    firsts = [LedgerEntry.objects.aggregate(d=Min("created_at"))["d"],
              Invoice.objects.filter(issued_at__isnull=False).aggregate(d=Min("issued_at"))["d"]]
    known = [d.astimezone(UTC).date() for d in firsts if d is not None]
    return min(known) if known else None


def built_until() -> date | None:
    return JournalDay.objects.aggregate(d=Max("date"))["d"]


def journal_build(*, until: date | None = None, now: datetime | None = None) -> list[date]:
    """Build every day after the last built one up to `until` (default and at most: the
    last day that ended `SETTLE_AFTER` ago), each day in its own transaction, in order.
    A crash keeps the days committed before it; the rerun carries on after them."""
    limit = last_closed_day(now or timezone.now())
    if until is not None and until > limit:
        raise JournalError(f"{until:%Y-%m-%d} has not closed yet: the last day that can be built is {limit:%Y-%m-%d}.")
    until = until or limit
    last = built_until()
    start = last + timedelta(days=1) if last else first_day()
    built = []
    day = start
    while day is not None and day <= until:
        if journal_build_day(day):
            built.append(day)
        day += timedelta(days=1)
    return built


def journal_build_day(day: date) -> bool:
    """Build one day; False when it was built already (a rerun, a concurrent builder)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                marker = JournalDay.objects.create(date=day)
        except IntegrityError:
            return False  # built by someone else; their transaction has committed
        previous = JournalDay.objects.filter(date__lt=day).aggregate(d=Max("date"))["d"]
        if previous is not None and previous != day - timedelta(days=1):
            raise JournalError(f"{day:%Y-%m-%d} follows a day not built yet ({previous + timedelta(days=1):%Y-%m-%d}).")
        entries, closes = _DayBuilder(day).build()
        _write(day, entries)
        LedgerDayClose.objects.bulk_create(closes)
        with connection.cursor() as cursor:
            cursor.execute(DAY_TOTALS_SQL, {"start": day, "end": day + timedelta(days=1)})
            cursor.execute(ORG_MONTH_SQL, org_month_args(day, day + timedelta(days=1)))
        marker.entries = len(entries)
        marker.save(update_fields=["entries"])
    return True


# The lines of the built days in [start, end) summed per day, currency, account and
# movement: run by `journal_build_day` for its day, after its lines, in its transaction
# (and by `benchmark reports` over its year; migration 0003 backfilled the days before).
DAY_TOTALS_SQL = """
INSERT INTO finance_journaldaytotal (date, currency, account_id, movement, amount, lines)
SELECT e.date, e.currency, l.account_id, e.movement, SUM(l.amount), COUNT(*)
FROM finance_journalline l JOIN finance_journalentry e ON e.id = l.entry_id
WHERE e.date >= %(start)s AND e.date < %(end)s
GROUP BY 1, 2, 3, 4
"""


# What the revenue report reads of the built days in [start, end) (whole UTC days), per
# organisation, currency and month, added to `finance_journalorgmonth`: the usage entries'
# counter lines negated (the report's usage recognised on built days) and the ledger's
# top-ups. Run by `journal_build_day` for its day, after its lines, in its transaction
# (and by migration 0004 and `benchmark reports` over the days built). Keys in order, so
# two writers would lock them in the same order.
ORG_MONTH_SQL = """
INSERT INTO finance_journalorgmonth (organization_id, currency, month, usage, topups)
SELECT org, currency, month, SUM(u), SUM(t) FROM (
    SELECT e.organization_id AS org, e.currency, date_trunc('month', e.date)::date AS month,
           -SUM(l.amount) AS u, 0 AS t
    FROM finance_journalline l JOIN finance_journalentry e ON e.id = l.entry_id
    WHERE e.movement = 'usage' AND l.organization_id IS NULL AND e.date >= %(start)s AND e.date < %(end)s
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT organization_id, currency, date_trunc('month', created_at AT TIME ZONE 'UTC')::date, 0, SUM(amount)
    FROM credits_ledgerentry
    WHERE kind = 'topup' AND created_at >= %(start_ts)s AND created_at < %(end_ts)s
    GROUP BY 1, 2, 3
) x
WHERE org IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY 3, 2, 1
ON CONFLICT (month, currency, organization_id) DO UPDATE
SET usage = finance_journalorgmonth.usage + EXCLUDED.usage, topups = finance_journalorgmonth.topups + EXCLUDED.topups
"""


def org_month_args(start: date, end: date) -> dict[str, Any]:
    return {"start": start, "end": end, "start_ts": day_bounds(start)[0], "end_ts": day_bounds(end)[0]}


def _write(day: date, entries: list[_Entry]) -> None:
    for e in entries:
        total = sum((amount for _a, amount, _o in e.lines), ZERO)
        if total != ZERO:
            raise JournalError(f"{e.source} does not balance: its lines add up to {format_rate(total, e.currency)}.")
    rows = JournalEntry.objects.bulk_create([
        JournalEntry(date=day, currency=e.currency, movement=e.movement, source=e.source, text=e.text[:TEXT_MAX],
                     organization_id=e.organization_id, document=e.document[:36], payment_id=e.payment_id,
                     refund_id=e.refund_id)
        for e in entries
    ])
    JournalLine.objects.bulk_create([
        JournalLine(entry=row, account=account, amount=amount, organization_id=org)
        for row, e in zip(rows, entries, strict=True) for account, amount, org in e.lines
    ])


# --- One day ------------------------------------------------------------------------------------


class _DayBuilder:
    def __init__(self, day: date) -> None:
        self.day = day
        self.start, self.end = day_bounds(day)
        self.chart = Chart()

    def build(self) -> tuple[list[_Entry], list[LedgerDayClose]]:
        from accounts.models import Organization
        from credits.models import EntryKind, LedgerEntry

        in_day = LedgerEntry.objects.filter(created_at__gte=self.start, created_at__lt=self.end)
        others = list(in_day.exclude(kind=EntryKind.USAGE).order_by("created_at", "id")
                      .values("id", "organization_id", "currency", "kind", "amount", "promo_amount", "reference",
                              "reason"))
        usage = list(in_day.filter(kind=EntryKind.USAGE).values("organization_id", "currency")
                     .annotate(day_total=Sum("amount"), day_promo=Sum("promo_amount")).order_by("organization_id", "currency"))
        keys = {(r["organization_id"], r["currency"]) for r in others} | {
            (r["organization_id"], r["currency"]) for r in usage}
        running = self._running_before(keys)
        org_ids = {org for org, _cur in keys}
        self.prepaid: dict[int | None, str] = dict(Organization.objects.filter(pk__in=org_ids).values_list("pk", "billing_mode"))
        self.sources = _Sources(others)
        self._load_documents(others)

        entries: list[_Entry] = []
        for row in others:
            key = (row["organization_id"], row["currency"])
            entry = self._ledger_entry(row, running[key])
            if entry is not None:
                entries.append(entry)
        for agg in usage:
            key = (agg["organization_id"], agg["currency"])
            entry = _Entry(Movement.USAGE, f"usage:{key[0]}:{key[1]}:{self.day:%Y-%m-%d}", key[1],
                           f"Usage {self.day:%d.%m.%Y}", organization_id=key[0])
            booked = self._customer_side(entry, running[key], agg["day_total"], agg["day_promo"])
            entry.add(self.chart.counter(Movement.USAGE), booked)
            if entry.lines:
                entries.append(entry)
        entries += self._documents_without_ledger()
        entries += self._write_offs()
        closes = [LedgerDayClose(organization_id=org, currency=cur, date=self.day, amount=r.amount, promo_amount=r.promo)
                  for (org, cur), r in sorted(running.items())]
        return entries, closes

    def _load_documents(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Every invoice and credit note the day books, with their lines and the lines'
        product groups, in a few queries (not a few per document: the 1st of a month
        issues one invoice per organisation)."""
        from invoices.models import CreditNote, Invoice

        refs = [m for row in rows if (m := _REF.match(row["reference"] or ""))]
        self.issued = list(Invoice.objects.filter(issued_at__gte=self.start, issued_at__lt=self.end)
                           .values_list("pk", flat=True))
        self.voided = list(Invoice.objects.filter(voided_at__gte=self.start, voided_at__lt=self.end,
                                                  issued_at__isnull=False).values_list("pk", flat=True))
        invoice_ids = {int(m["id"]) for m in refs if m["kind"] == "invoice"} | set(self.issued) | set(self.voided)
        note_ids = {int(m["id"]) for m in refs if m["kind"] == "credit_note"}
        self.invoices = {inv.pk: inv for inv in Invoice.objects.filter(pk__in=invoice_ids)
                         .select_related("organization").prefetch_related("lines")}
        self.notes = {note.pk: note for note in CreditNote.objects.filter(pk__in=note_ids)
                      .select_related("invoice__organization").prefetch_related("lines__invoice_line")}
        self.groups = _product_groups(
            [ln.product_id for inv in self.invoices.values() for ln in inv.lines.all()]
            + [ln.invoice_line.product_id for note in self.notes.values() for ln in note.lines.all() if ln.invoice_line])

    def _running_before(self, keys: set[tuple[int, str]]) -> dict[tuple[int, str], _Running]:
        running = {key: _Running() for key in keys}
        if not keys:
            return running
        orgs = sorted({org for org, _cur in keys})
        closes = (LedgerDayClose.objects.filter(organization_id__in=orgs, date__lt=self.day)
                  .order_by("organization_id", "currency", "-date").distinct("organization_id", "currency")
                  .values_list("organization_id", "currency", "amount", "promo_amount"))
        for org, cur, amount, promo in closes:
            if (org, cur) in running:
                running[(org, cur)] = _Running(amount, promo)
        return running

    def _customer_side(self, entry: _Entry, run: _Running, amount: Decimal, promo: Decimal) -> Decimal:
        """Book a ledger movement on the customer's accounts, in cents by the carry rule;
        returns the booked total (the other side takes its negative)."""
        cur = entry.currency
        total = cents(run.amount + amount, cur) - cents(run.amount, cur)
        promo_booked = cents(run.promo + promo, cur) - cents(run.promo, cur)
        run.amount += amount
        run.promo += promo
        org = entry.organization_id
        prepaid = self.prepaid.get(org) == "prepaid"
        # The ledger counts credit positive; on the books credit held is a credit (negative).
        entry.add(self.chart.customer(prepaid=prepaid), -(total - promo_booked), org)
        entry.add(self.chart.default(AccountRole.PROMO_CREDIT), -promo_booked, org)
        return total

    def _ledger_entry(self, row: Mapping[str, Any], run: _Running) -> _Entry | None:
        from credits.models import EntryKind

        ref = _REF.match(row["reference"] or "")
        kind, ident, tail = (ref["kind"], int(ref["id"]), ref["tail"]) if ref else ("", 0, None)
        org, cur = row["organization_id"], row["currency"]
        entry = _Entry(Movement.OTHER, f"ledger:{row['id']}", cur, row["reason"], organization_id=org)
        if kind == "invoice" and tail in (None, "void"):
            return self._invoice_entry(ident, void=tail == "void", row=row, run=run)
        if kind == "credit_note":
            return self._credit_note_entry(ident, row=row, run=run)
        booked = self._customer_side(entry, run, row["amount"], row["promo_amount"])
        payment = self.sources.payment_of(kind, ident)
        refund = self.sources.refund_of(kind, ident)
        if kind == "invoice_payment":
            entry.movement = Movement.INVOICE_PAYMENT
            entry.add(self._clearing(payment), booked)
        elif row["kind"] == EntryKind.TOPUP:
            entry.movement = Movement.TOPUP
            entry.add(self._clearing(payment) if payment else self.chart.counter(Movement.OTHER), booked)
        elif row["kind"] == EntryKind.REFUND:
            entry.movement = Movement.REFUND
            entry.add(self._clearing(payment) if payment else self.chart.counter(Movement.OTHER), booked)
        elif row["kind"] == EntryKind.PROMO_GRANT:
            entry.movement = Movement.PROMO_GRANT
            entry.add(self.chart.counter(Movement.PROMO_GRANT), booked)
        elif row["kind"] == EntryKind.PROMO_EXPIRY:
            entry.movement = Movement.PROMO_EXPIRY
            entry.add(self.chart.counter(Movement.PROMO_EXPIRY), booked)
        elif row["kind"] == EntryKind.ADJUSTMENT:
            entry.movement = Movement.ADJUSTMENT
            entry.add(self.chart.counter(Movement.ADJUSTMENT), booked)
        else:
            entry.add(self.chart.counter(Movement.OTHER), booked)
        if payment is not None:
            entry.payment_id = payment["id"]
            entry.document = f"P{payment['id']}"
        if refund is not None:
            entry.refund_id = refund["id"]
            entry.document = f"R{refund['id']}"
        return entry if entry.lines else None

    def _clearing(self, payment: Mapping[str, Any] | None) -> Account:
        # A payment staff recorded on an invoice without a provider payment: the bank.
        return self.chart.clearing(payment["provider"] if payment else "manual")

    # --- Invoices and credit notes --------------------------------------------------------

    def _invoice_entry(self, invoice_id: int, *, void: bool, row: Mapping[str, Any] | None, run: _Running | None) -> _Entry:

        inv = self.invoices[invoice_id]
        sign = Decimal(-1) if void else Decimal(1)
        entry = _Entry(Movement.INVOICE_VOID if void else Movement.INVOICE,
                       f"invoice:{inv.pk}{':void' if void else ''}", inv.currency,
                       f"{'Void of ' if void else ''}{'Statement' if inv.is_statement else 'Invoice'} {inv.number}",
                       organization_id=inv.organization_id, document=inv.number or "")
        if row is not None and run is not None:
            self._customer_side(entry, run, row["amount"], row["promo_amount"])
        country = (inv.billing_details or {}).get("country") or inv.organization.country
        metered = ZERO
        for ln in inv.lines.all():
            entry.add(self._line_account(ln.kind, self.groups.get(ln.product_id)), -sign * ln.amount)
            entry.add(self.chart.tax(country, ln.tax_rate), -sign * ln.tax_amount)
            if ln.settled_by_metering:
                metered += ln.amount
        # Metered usage was booked as consumed day by day; the invoice moves it to its
        # product groups' revenue.
        entry.add(self.chart.counter(Movement.USAGE), sign * metered)
        self._balanced(entry, f"invoice {inv.number or inv.pk}")
        return entry

    def _line_account(self, kind: str, group_id: int | None) -> Account:
        from invoices.models import LineKind

        if kind == LineKind.DISCOUNT:
            return self.chart.default(AccountRole.DISCOUNTS)
        return self.chart.revenue(group_id)

    def _credit_note_entry(self, note_id: int, *, row: Mapping[str, Any], run: _Running) -> _Entry:

        note = self.notes[note_id]
        inv = note.invoice
        entry = _Entry(Movement.CREDIT_NOTE, f"credit_note:{note.pk}", note.currency,
                       f"Credit note {note.number} on {inv.number}", organization_id=note.organization_id,
                       document=note.number)
        self._customer_side(entry, run, row["amount"], row["promo_amount"])
        country = (inv.billing_details or {}).get("country") or inv.organization.country
        for ln in note.lines.all():
            il = ln.invoice_line
            group = self.groups.get(il.product_id) if il else None
            entry.add(self._line_account(il.kind if il else "", group), ln.amount)
            entry.add(self.chart.tax(country, ln.tax_rate), ln.tax_amount)
        self._balanced(entry, f"credit note {note.number}")
        return entry

    def _balanced(self, entry: _Entry, what: str) -> None:
        off = sum((amount for _a, amount, _o in entry.lines), ZERO)
        if off != ZERO:
            raise JournalError(f"{what}: the credit ledger moved {off} {entry.currency} more than its lines say.")

    def _documents_without_ledger(self) -> list[_Entry]:
        """Invoices issued (or voided) today that drew nothing from the ledger (wholly
        settled by metering, no tax): their lines still move usage to revenue."""
        from credits.models import LedgerEntry

        issued, voided = self.issued, self.voided
        refs = [f"invoice:{pk}" for pk in issued] + [f"invoice:{pk}:void" for pk in voided]
        drawn = set(LedgerEntry.objects.filter(reference__in=refs).values_list("reference", flat=True))
        out = [self._invoice_entry(pk, void=False, row=None, run=None) for pk in issued if f"invoice:{pk}" not in drawn]
        out += [self._invoice_entry(pk, void=True, row=None, run=None)
                for pk in voided if f"invoice:{pk}:void" not in drawn]
        return [e for e in out if e.lines]

    def _write_offs(self) -> list[_Entry]:
        """An invoice marked uncollectible: what it still owed then goes to bad debt,
        against the allowance (the receivable itself stays as the ledger has it)."""
        from accounts.models import AuditLog
        from invoices.models import Invoice

        out = []
        audits = AuditLog.objects.filter(action="invoice.marked_uncollectible", object_type="invoices.Invoice",
                                         created_at__gte=self.start, created_at__lt=self.end).order_by("id")
        for audit in audits:
            inv = Invoice.objects.get(pk=int(audit.object_id))
            owed = _owed_at(inv, audit.created_at)
            if owed <= ZERO:
                continue
            entry = _Entry(Movement.WRITE_OFF, f"write_off:{audit.pk}", inv.currency, f"Write-off {inv.number}",
                           organization_id=inv.organization_id, document=inv.number or "")
            entry.add(self.chart.counter(Movement.WRITE_OFF), owed)
            entry.add(self.chart.default(AccountRole.ALLOWANCE), -owed, inv.organization_id)
            out.append(entry)
        return out


def _owed_at(inv: Invoice, at: datetime) -> Decimal:
    received = inv.payments.filter(received_at__lte=at).aggregate(s=Sum("amount", default=ZERO))["s"]
    reversed_ = inv.payment_reversals.filter(reversed_at__lte=at).aggregate(s=Sum("amount", default=ZERO))["s"]
    credited = inv.credit_notes.filter(issued_at__lte=at).aggregate(s=Sum("total", default=ZERO))["s"]
    return inv.amount_due - received + reversed_ - credited


def _product_groups(product_ids: Iterable[int | None]) -> dict[int | None, int]:
    from pricing.models import Product

    ids = {pid for pid in product_ids if pid is not None}
    return {pk: group for pk, group in Product.objects.filter(pk__in=ids).values_list("pk", "group_id")} if ids else {}


class _Sources:
    """The payments and refunds behind a day's ledger references, read in a few queries."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        from invoices.models import InvoicePayment, InvoicePaymentReversal
        from payments.models import Payment, PaymentStatus, Refund

        ids: dict[str, set[int]] = defaultdict(set)
        for row in rows:
            m = _REF.match(row["reference"] or "")
            if m:
                ids[m["kind"]].add(int(m["id"]))
        self.invoice_payments = dict(InvoicePayment.objects.filter(pk__in=ids["invoice_payment"])
                                     .values_list("pk", "reference"))
        self.reversals = {r.pk: r for r in InvoicePaymentReversal.objects.filter(pk__in=ids["invoice_payment_reversal"])
                          .select_related("payment")}
        payment_ids = set(ids["payment"])
        refund_ids = set(ids["refund"])
        for ref in self.invoice_payments.values():
            payment_ids |= _ids_of(ref, "payment")
        for rev in self.reversals.values():
            refund_ids |= _ids_of(rev.reference, "refund")
            payment_ids |= _ids_of(rev.payment.reference, "payment")
        self.refunds = {r["id"]: r for r in Refund.objects.filter(pk__in=refund_ids).values("id", "payment_id")}
        payment_ids |= {r["payment_id"] for r in self.refunds.values()}
        settled = (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
        self.topup_payments = {
            p["credits_topup_id"]: p for p in Payment.objects.filter(credits_topup_id__in=ids["topup"], status__in=settled)
            .values("id", "provider", "credits_topup_id")}
        self.payments = {p["id"]: p for p in Payment.objects.filter(pk__in=payment_ids).values("id", "provider")}

    def payment_of(self, kind: str, ident: int) -> Mapping[str, Any] | None:
        if kind == "payment":
            return self.payments.get(ident)
        if kind == "topup":
            return self.topup_payments.get(ident)
        if kind == "invoice_payment":
            ref = self.invoice_payments.get(ident, "")
            return next((self.payments.get(i) for i in _ids_of(ref, "payment")), None)
        refund = self.refund_of(kind, ident)
        if refund is not None:
            return self.payments.get(refund["payment_id"])
        if kind == "invoice_payment_reversal" and ident in self.reversals:
            return next((self.payments.get(i) for i in _ids_of(self.reversals[ident].payment.reference, "payment")), None)
        return None

    def refund_of(self, kind: str, ident: int) -> Mapping[str, Any] | None:
        if kind == "refund":
            return self.refunds.get(ident)
        if kind == "invoice_payment_reversal" and ident in self.reversals:
            return next((self.refunds.get(i) for i in _ids_of(self.reversals[ident].reference, "refund")), None)
        return None


def _ids_of(reference: str, kind: str) -> set[int]:
    m = _REF.match(reference or "")
    return {int(m["id"])} if m and m["kind"] == kind else set()
