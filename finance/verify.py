"""`check_journal`: the built journal proved against its sources, from scratch.

For every built day it checks, each with a problem line naming the day and the difference:

1. every entry, and every day per currency, adds up to zero, at the currency's minor unit;
2. the credit ledger: recomputed from its rows, each organisation's running sums at the
   end of each day equal the carry the journal kept (`LedgerDayClose`, to the 12th
   place), and the customer-side accounts of the journal equal `cents()` of them, cent
   for cent, paid and promotional credit apart;
3. the invoices and credit notes: each issued one has its entry, whose revenue, discount
   and tax lines are its subtotal, discounts and tax exactly;
4. the payments and refunds: what each succeeded payment brought in, and each succeeded
   refund took out, is on the provider's clearing account exactly;
5. the daily totals the reports read (`JournalDayTotal`) equal the lines they sum, per
   day, currency, account and movement, amount and count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum

from core.money import minor_unit_exponent
from finance.journal import built_until, cents, day_bounds
from finance.models import AccountRole, JournalDay, JournalEntry, JournalLine, LedgerDayClose, Movement

ZERO = Decimal("0")
CUSTOMER_ROLES = (AccountRole.CUSTOMER_CREDIT, AccountRole.RECEIVABLES, AccountRole.PROMO_CREDIT)


@dataclass(frozen=True)
class Report:
    days: int
    entries: int
    problems: list[str]


def _shown(amount: Decimal, currency: str) -> str:
    """An amount as people read it: at the currency's minor unit when it is exact there,
    else every place (a 12-place ledger figure)."""
    quantum = Decimal(1).scaleb(-minor_unit_exponent(currency))
    return f"{amount.quantize(quantum):f}" if amount == amount.quantize(quantum) else f"{amount:f}"


def journal_check() -> Report:
    last = built_until()
    if last is None:
        return Report(0, 0, [])
    _start, end = day_bounds(last)
    problems = _balances() + _ledger(end) + _documents(end) + _payments(end) + _day_totals()
    return Report(JournalDay.objects.count(), JournalEntry.objects.count(), problems)


def _balances() -> list[str]:
    problems = []
    off = (JournalLine.objects.values("entry_id", "entry__date", "entry__currency", "entry__source")
           .annotate(s=Sum("amount")).exclude(s=ZERO))
    for row in off:
        problems.append(f"{row['entry__date']:%Y-%m-%d}: entry {row['entry__source']} does not balance: "
                        f"difference {_shown(row['s'], row['entry__currency'])} {row['entry__currency']}")
    days = (JournalLine.objects.values("entry__date", "entry__currency").annotate(s=Sum("amount")).exclude(s=ZERO))
    for day in days:
        problems.append(f"{day['entry__date']:%Y-%m-%d}: {day['entry__currency']} does not balance to zero: "
                        f"difference {_shown(day['s'], day['entry__currency'])}")
    for line in JournalLine.objects.select_related("entry").only("amount", "entry__currency", "entry__date",
                                                                   "entry__source").iterator(chunk_size=2000):
        exp = minor_unit_exponent(line.entry.currency)
        if line.amount != line.amount.quantize(Decimal(1).scaleb(-exp)):
            problems.append(f"{line.entry.date:%Y-%m-%d}: entry {line.entry.source} has {line.amount:f}, "
                            f"finer than the {line.entry.currency} minor unit")
    return problems


_DAY_TOTALS_SQL = """
SELECT COALESCE(l.date, t.date), COALESCE(l.currency, t.currency), a.number, COALESCE(l.movement, t.movement),
       COALESCE(l.amount, 0), COALESCE(l.lines, 0), COALESCE(t.amount, 0), COALESCE(t.lines, 0)
FROM (SELECT e.date, e.currency, jl.account_id, e.movement, SUM(jl.amount) AS amount, COUNT(*) AS lines
      FROM finance_journalline jl JOIN finance_journalentry e ON e.id = jl.entry_id GROUP BY 1, 2, 3, 4) l
FULL JOIN finance_journaldaytotal t
     ON t.date = l.date AND t.currency = l.currency AND t.account_id = l.account_id AND t.movement = l.movement
JOIN finance_account a ON a.id = COALESCE(l.account_id, t.account_id)
WHERE l.amount IS DISTINCT FROM t.amount OR l.lines IS DISTINCT FROM t.lines
ORDER BY 1, 2, 3, 4
"""


def _day_totals() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(_DAY_TOTALS_SQL)
        rows = cursor.fetchall()
    return [f"{day:%Y-%m-%d}: {cur} account {number} {movement}: the lines sum to {_shown(lines, cur)} in {n} "
            f"line(s), the daily total says {_shown(total, cur)} in {m}"
            for day, cur, number, movement, lines, n, total, m in rows]


def _ledger(end: datetime) -> list[str]:
    """The ledger's sums per organisation, currency and UTC day, recomputed in one
    GROUP BY, against the journal's carry and its customer accounts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT organization_id, currency, (created_at AT TIME ZONE 'UTC')::date AS day,"
            " SUM(amount), SUM(promo_amount) FROM credits_ledgerentry WHERE created_at < %s"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", [end])
        ledger: list[tuple[int, str, date, Decimal, Decimal]] = cursor.fetchall()
    closes = {(c.organization_id, c.currency, c.date): c for c in LedgerDayClose.objects.all()}
    booked: dict[tuple[int, str, date], tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    rows = (JournalLine.objects.filter(account__role__in=CUSTOMER_ROLES, organization__isnull=False)
            .values("organization_id", "entry__currency", "entry__date", "account__role").annotate(s=Sum("amount")))
    for row in rows:
        key = (row["organization_id"], row["entry__currency"], row["entry__date"])
        total, promo = booked[key]
        # On the books, credit held is a credit: the negative of the ledger's sign.
        total -= row["s"]
        if row["account__role"] == AccountRole.PROMO_CREDIT:
            promo -= row["s"]
        booked[key] = (total, promo)

    problems = []
    seen = set()
    reported: dict[tuple[int, str], tuple[Decimal, Decimal]] = {}
    running: dict[tuple[int, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO])
    days = sorted({(org, cur, day) for org, cur, day, _a, _p in ledger} | set(booked))
    sums = {(org, cur, day): (a, p) for org, cur, day, a, p in ledger}
    for org, cur, day in days:
        seen.add((org, cur, day))
        r = running[(org, cur)]  # ledger amount, ledger promo, journal amount, journal promo
        a, p = sums.get((org, cur, day), (ZERO, ZERO))
        ja, jp = booked.get((org, cur, day), (ZERO, ZERO))
        r[0] += a
        r[1] += p
        r[2] += ja
        r[3] += jp
        close = closes.get((org, cur, day))
        if (a, p) != (ZERO, ZERO) or close is not None:
            if close is None:
                problems.append(f"{day:%Y-%m-%d}: organisation {org} {cur}: the ledger moved {a:f} but the journal "
                                "has no carry for the day")
            elif (close.amount, close.promo_amount) != (r[0], r[1]):
                # A tampered row shifts every later day by the same difference: named once,
                # at its day, and again only where the difference changes.
                diff = (r[0] - close.amount, r[1] - close.promo_amount)
                if reported.get((org, cur)) != diff:
                    reported[(org, cur)] = diff
                    problems.append(f"{day:%Y-%m-%d}: organisation {org} {cur}: ledger sum {r[0]:f}, journal "
                                    f"carried {close.amount:f}, difference {diff[0]:f}"
                                    + (f"; promotional {r[1]:f} against {close.promo_amount:f}" if diff[1] else ""))
        if r[2] != cents(r[0], cur):
            problems.append(f"{day:%Y-%m-%d}: organisation {org} {cur}: customer accounts {r[2]:f}, ledger {r[0]:f} "
                            f"in cents {cents(r[0], cur):f}, difference {cents(r[0], cur) - r[2]:f}")
        if r[3] != cents(r[1], cur):
            problems.append(f"{day:%Y-%m-%d}: organisation {org} {cur}: promotional credit {r[3]:f}, ledger "
                            f"{r[1]:f} in cents {cents(r[1], cur):f}, difference {cents(r[1], cur) - r[3]:f}")
    for org, cur, day in set(closes) - seen:
        problems.append(f"{day:%Y-%m-%d}: organisation {org} {cur}: the journal carried a day the ledger has no rows for")
    return problems


def _documents(end: datetime) -> list[str]:
    from invoices.models import CreditNote, Invoice

    problems = []
    sums = _entry_sums()
    for inv in Invoice.objects.filter(issued_at__lt=end).only("pk", "number", "issued_at", "subtotal",
                                                               "discount_total", "tax_total", "currency"):
        got = sums.get(f"invoice:{inv.pk}", {})
        expected = {"revenue": -(inv.subtotal + inv.discount_total), "tax": -inv.tax_total}
        for what, amount in expected.items():
            if got.get(what, ZERO) != amount:
                c = inv.currency
                problems.append(f"{inv.issued_at:%Y-%m-%d}: invoice {inv.number}: {what} {_shown(amount, c)} {c}, "
                                f"journal {_shown(got.get(what, ZERO), c)}, "
                                f"difference {_shown(amount - got.get(what, ZERO), c)}")
    for note in CreditNote.objects.filter(issued_at__lt=end).only("pk", "number", "issued_at", "subtotal",
                                                                   "tax_total", "currency"):
        got = sums.get(f"credit_note:{note.pk}", {})
        for what, amount in {"revenue": note.subtotal, "tax": note.tax_total}.items():
            if got.get(what, ZERO) != amount:
                c = note.currency
                problems.append(f"{note.issued_at:%Y-%m-%d}: credit note {note.number}: {what} {_shown(amount, c)} "
                                f"{c}, journal {_shown(got.get(what, ZERO), c)}, "
                                f"difference {_shown(amount - got.get(what, ZERO), c)}")
    return problems


def _entry_sums() -> dict[str, dict[str, Decimal]]:
    rows = (JournalLine.objects.filter(entry__movement__in=(Movement.INVOICE, Movement.CREDIT_NOTE))
            .values("entry__source", "account__role").annotate(s=Sum("amount")))
    out: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for row in rows:
        role = row["account__role"]
        what = ("revenue" if role in (AccountRole.REVENUE, AccountRole.DISCOUNTS)
                else "tax" if role == AccountRole.TAX_PAYABLE else None)
        if what:
            out[row["entry__source"]][what] = out[row["entry__source"]].get(what, ZERO) + row["s"]
    return out


def _payments(end: datetime) -> list[str]:
    from payments.models import Payment, PaymentStatus, Refund, RefundStatus

    problems = []
    clearing = Q(account__role=AccountRole.PROVIDER_CLEARING)
    brought = dict(JournalLine.objects.filter(clearing, entry__payment_id__isnull=False, entry__refund_id__isnull=True)
                   .values("entry__payment_id").annotate(s=Sum("amount")).values_list("entry__payment_id", "s"))
    for p in Payment.objects.filter(status__in=(PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED),
                                    succeeded_at__lt=end).only("pk", "amount", "currency", "succeeded_at"):
        got = brought.get(p.pk, ZERO)
        if got != p.amount:
            c = p.currency
            problems.append(f"{p.succeeded_at:%Y-%m-%d}: payment {p.pk}: {_shown(p.amount, c)} {c} received, "
                            f"journal {_shown(got, c)}, difference {_shown(p.amount - got, c)}")
    taken = dict(JournalLine.objects.filter(clearing, entry__refund_id__isnull=False)
                 .values("entry__refund_id").annotate(s=Sum("amount")).values_list("entry__refund_id", "s"))
    for r in Refund.objects.filter(status=RefundStatus.SUCCEEDED, succeeded_at__lt=end).only(
            "pk", "amount", "currency", "succeeded_at"):
        got = -taken.get(r.pk, ZERO)
        if got != r.amount:
            c = r.currency
            problems.append(f"{r.succeeded_at:%Y-%m-%d}: refund {r.pk}: {_shown(r.amount, c)} {c} refunded, "
                            f"journal {_shown(got, c)}, difference {_shown(r.amount - got, c)}")
    return problems
