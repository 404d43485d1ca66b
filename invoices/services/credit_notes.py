"""Credit notes: a numbered correction of an issued invoice, built line by line like it.

Every credit note line credits part or all of one invoice line: an amount before tax,
rounded to the currency's minor unit, and its tax at that line's rate, rounded once per
line as the invoice did (`round_money(amount × rate / 100)`). A credit note's totals are
sums of its rounded lines. What is left to credit is tracked per invoice line (its amount
and tax less what earlier credit notes took of it), so crediting everything left, in one
credit note or several, gives back exactly the invoice's total, never a cent more or less.

Three ways to say what is credited (`credit_note_create`):

- everything left (neither `lines` nor `amount`): each line's remaining amount and tax;
- chosen lines (`lines`): per invoice line (by position) all that is left of it, a
  quantity of its unit (amount = quantity × unit price, rounded once) or an amount before
  tax;
- an amount before tax spread over the lines (`amount`): in proportion to each line's
  remaining amount before tax, by largest remainder in minor units (each line gets the
  whole cents of its share; the cents still missing go one each to the lines with the
  largest fractions, earlier lines first on ties), so the parts add up to the amount.
  Only lines with something left before tax share it; an amount equal to all that is
  left before tax credits everything left.

A line's tax is its amount × rate rounded once, except where that would give back more
tax than is left on the invoice line, and when a line is credited to its end: then the
tax is exactly what is left of the line's tax (the cent the earlier roundings kept).

A credit first reduces what is still owed on the invoice (settling it when nothing
remains); the whole credit, tax included, is posted to the credit ledger, so what was
not owed becomes credit. An invoice is never credited beyond its total.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, User
from core.errors import Conflict, DomainError
from core.money import ZERO, format_money, minor_unit_exponent, round_money
from credits.services import ledger_post
from invoices import numbering, selectors
from invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceStatus
from invoices.services.lifecycle import _settle, seller_snapshot

HUNDRED = Decimal(100)
CREDITABLE = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)


@dataclass(frozen=True)
class LineCredit:
    """What to credit of one invoice line (by its position): `quantity` of its unit, or
    `amount` before tax, or (neither) all that is left of it."""

    position: int
    quantity: Decimal | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class LineLeft:
    """What is left to credit of one invoice line. `quantity` is zero when it is not
    known (the line was credited by an amount), and the line is then not credited by
    quantity."""

    line: InvoiceLine
    amount: Decimal
    tax: Decimal
    quantity: Decimal

    @property
    def gross(self) -> Decimal:
        return self.amount + self.tax


@dataclass(frozen=True)
class _Part:
    left: LineLeft
    amount: Decimal
    tax: Decimal
    quantity: Decimal | None


def spread(total: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """`total` (whole minor units, ≥ 0) split in proportion to `weights` (≥ 0, not all
    zero) by largest remainder: each part is its share's whole minor units, and the units
    still missing go one each to the largest fractions (earlier first on ties). The parts
    add up to `total` exactly; when `total` ≤ Σ weights no part exceeds its weight."""
    unit = Decimal(1).scaleb(-minor_unit_exponent(currency))
    units = int(total / unit)
    if Decimal(units) * unit != total or units < 0:
        raise ValueError(f"{total} is not a whole number of {currency} minor units")
    fractions = [Fraction(w) for w in weights]
    whole = sum(fractions, Fraction(0))
    if whole <= 0 or any(f < 0 for f in fractions):
        raise ValueError("weights must be non-negative and not all zero")
    shares = [units * f / whole for f in fractions]
    parts = [s.numerator // s.denominator for s in shares]
    missing = units - sum(parts)
    by_fraction = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in by_fraction[:missing]:
        parts[i] += 1
    return [Decimal(p) * unit for p in parts]


def credit_left(invoice: Invoice) -> list[LineLeft]:
    """Each invoice line with what is left to credit of it, in line order.

    Credit notes issued before notes were kept per line (one line, no invoice line) are
    taken off the lines by the spread rule: their amount before tax in proportion to the
    lines' remaining amounts, their tax in proportion to the remaining taxes."""
    lines = list(invoice.lines.order_by("position"))
    taken: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    # Lines credited by an amount (no quantity): what is left of their quantity is unknown.
    by_amount: set[int] = set()
    legacy_amount = legacy_tax = ZERO
    for cl in CreditNoteLine.objects.filter(credit_note__invoice=invoice).order_by("credit_note_id", "position", "id"):
        if cl.invoice_line_id is None:
            legacy_amount += cl.amount
            legacy_tax += cl.tax_amount
            continue
        row = taken[cl.invoice_line_id]
        row[0] += cl.amount
        row[1] += cl.tax_amount
        if cl.quantity is None:
            by_amount.add(cl.invoice_line_id)
        else:
            row[2] += cl.quantity
    amounts = [ln.amount - taken[ln.pk][0] for ln in lines]
    taxes = [ln.tax_amount - taken[ln.pk][1] for ln in lines]
    for values, legacy in ((amounts, legacy_amount), (taxes, legacy_tax)):
        weights = [max(v, ZERO) for v in values]
        if legacy > ZERO and sum(weights, ZERO) > ZERO:
            for i, part in enumerate(spread(min(legacy, sum(weights, ZERO)), weights, invoice.currency)):
                values[i] -= part
    if legacy_amount or legacy_tax:
        by_amount.update(ln.pk for ln in lines)
    return [LineLeft(line=ln, amount=amounts[i], tax=taxes[i],
                     quantity=ZERO if ln.pk in by_amount else ln.quantity - taken[ln.pk][2])
            for i, ln in enumerate(lines)]


def _tax_for(left: LineLeft, amount: Decimal, currency: str) -> Decimal:
    """The tax of crediting `amount` of a line: rounded once at the line's rate, but never
    more than is left of the line's tax, and all of it when the line is credited to its end."""
    if amount == left.amount:
        return left.tax
    tax = round_money(amount * left.line.tax_rate / HUNDRED, currency)
    if left.tax >= ZERO:
        return min(max(tax, ZERO), left.tax)
    return max(min(tax, ZERO), left.tax)


def _same_sign_within(amount: Decimal, limit: Decimal) -> bool:
    return amount != ZERO and (ZERO < amount <= limit or limit <= amount < ZERO)


def _whole_minor_units(value: Decimal, currency: str) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value == round_money(value, currency)


def _everything(lefts: list[LineLeft]) -> list[_Part]:
    return [_Part(left=lf, amount=lf.amount, tax=lf.tax, quantity=lf.quantity if lf.quantity > ZERO else None)
            for lf in lefts if lf.amount != ZERO or lf.tax != ZERO]


def _chosen(lefts: list[LineLeft], wanted: Sequence[LineCredit], currency: str) -> list[_Part]:
    by_position = {lf.line.position: lf for lf in lefts}
    seen: set[int] = set()
    parts = []
    for want in wanted:
        field = f"lines.{want.position}"
        left = by_position.get(want.position)
        if left is None:
            raise DomainError(f"The invoice has no line {want.position}.", field=field)
        if want.position in seen:
            raise DomainError(f"Line {want.position} is named twice.", field=field)
        seen.add(want.position)
        if want.quantity is not None and want.amount is not None:
            raise DomainError("Give a quantity or an amount for a line, not both.", field=field)
        quantity = None
        if want.quantity is not None:
            if not (isinstance(want.quantity, Decimal) and want.quantity.is_finite() and want.quantity > ZERO):
                raise DomainError("A quantity to credit is a positive number.", field=f"{field}.quantity")
            if left.quantity <= ZERO or want.quantity > left.quantity:
                raise Conflict(f"At most {left.quantity.normalize():f} {left.line.unit} of line {want.position} "
                               "is left to credit.", field=f"{field}.quantity")
            quantity = want.quantity
            amount = (left.amount if want.quantity == left.quantity
                      else round_money(want.quantity * left.line.unit_price, currency))
            if abs(amount) > abs(left.amount):
                amount = left.amount  # its price rounds above what is left of the line
            if amount == ZERO:
                raise DomainError(f"{want.quantity.normalize():f} {left.line.unit} of line {want.position} "
                                  "comes to less than the currency's smallest unit.", field=f"{field}.quantity")
        elif want.amount is not None:
            if not _whole_minor_units(want.amount, currency):
                raise DomainError("An amount is in whole minor units of the currency.", field=f"{field}.amount")
            if not _same_sign_within(want.amount, left.amount):
                raise Conflict(f"At most {format_money(left.amount, currency)} (before tax) of line {want.position} "
                               "is left to credit.", field=f"{field}.amount")
            amount = want.amount
        else:
            amount = left.amount
            quantity = left.quantity if left.quantity > ZERO else None
        if amount == ZERO and left.tax == ZERO:
            raise Conflict(f"Nothing is left to credit of line {want.position}.", field=field)
        parts.append(_Part(left=left, amount=amount, tax=_tax_for(left, amount, currency), quantity=quantity))
    return parts


def _spread_amount(lefts: list[LineLeft], amount: Decimal, currency: str) -> list[_Part]:
    if not _whole_minor_units(amount, currency) or amount <= ZERO:
        raise DomainError("A credit is a positive amount in whole minor units.", field="amount")
    net_left = sum((lf.amount for lf in lefts), ZERO)
    if amount > net_left:
        raise Conflict(f"At most {format_money(max(net_left, ZERO), currency)} (before tax) is left to credit.",
                       field="amount")
    if amount == net_left:
        return _everything(lefts)
    sharing = [lf for lf in lefts if lf.amount > ZERO]
    parts = []
    for left, share in zip(sharing, spread(amount, [lf.amount for lf in sharing], currency), strict=True):
        if share != ZERO:
            parts.append(_Part(left=left, amount=share, tax=_tax_for(left, share, currency), quantity=None))
    return parts


def credit_note_create(
    *, invoice: Invoice, reason: str, amount: Decimal | None = None, lines: Sequence[LineCredit] | None = None,
    actor: User | None = None, api_key: ApiKey | None = None, now: datetime | None = None, send: bool = True,
) -> CreditNote:
    """Credit an issued invoice: everything left (no `amount`, no `lines`), chosen
    `lines`, or an `amount` before tax spread over the lines (see the module docstring).
    It first reduces what is still owed on the invoice; the whole credit is posted to the
    customer's credit ledger. The PDF and the email follow after commit (`send`)."""
    if not reason.strip():
        raise DomainError("Say why the invoice is credited.", field="reason")
    if amount is not None and lines is not None:
        raise DomainError("Give lines or an amount, not both.", field="amount")
    if lines is not None and not lines:
        raise DomainError("Name at least one line to credit.", field="lines")
    now = now or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice.pk)
        if inv.status not in CREDITABLE:
            raise Conflict("Only issued invoices are credited; void a draft instead.")
        lefts = credit_left(inv)
        credited = selectors.credited_total(inv)
        left = inv.total - credited
        if amount is not None:
            parts = _spread_amount(lefts, amount, inv.currency)
        elif lines is not None:
            parts = _chosen(lefts, lines, inv.currency)
        else:
            parts = _everything(lefts)
        if not parts:
            raise Conflict(f"Nothing is left to credit on the lines of {inv.number}.", field="amount")
        subtotal = sum((p.amount for p in parts), ZERO)
        tax = sum((p.tax for p in parts), ZERO)
        total = subtotal + tax
        if total <= ZERO or total > left:
            what = "Nothing is" if left <= ZERO else f"At most {format_money(left, inv.currency)} (tax included) is"
            raise Conflict(f"{what} left to credit on {inv.number}; this credit would be "
                           f"{format_money(total, inv.currency)}.", field="amount")
        note = CreditNote.objects.create(
            invoice=inv, organization=inv.organization,
            number=numbering.next_number(numbering.CREDIT_NOTE_SERIES, now.year),
            currency=inv.currency, reason=reason, subtotal=subtotal, tax_total=tax, total=total, issued_at=now,
            issued_by=actor if actor is not None and actor.is_authenticated else None,
            billing_details=inv.billing_details, seller_details=inv.seller_details or seller_snapshot(),
        )
        CreditNoteLine.objects.bulk_create([
            CreditNoteLine(
                credit_note=note, invoice_line=p.left.line, position=i, description=p.left.line.description,
                quantity=p.quantity, unit=p.left.line.unit if p.quantity is not None else "",
                unit_price=p.left.line.unit_price if p.quantity is not None else None,
                amount=p.amount, tax_rate=p.left.line.tax_rate, tax_amount=p.tax,
            )
            for i, p in enumerate(parts, start=1)
        ])
        owed = max(inv.amount_due - inv.amount_paid - credited, ZERO) if inv.carried_to_id is None else ZERO
        applied = min(owed, total)
        if inv.status != InvoiceStatus.PAID and applied == owed and owed > ZERO:
            _settle(inv, now)
            inv.save(update_fields=["status", "paid_at", "updated_at"])
        # The ledger is the account: the whole credit goes to it. The part that settled
        # what was owed on the invoice brings a negative balance back; the rest is credit.
        ledger_post(
            organization=inv.organization, amount=total, kind="adjustment",
            reference=f"credit_note:{note.pk}", reason=f"Credit note {note.number} on {inv.number}",
        )
        audit_record("invoice.credit_note_issued", actor=actor, api_key=api_key, organization=inv.organization,
                     obj=inv, reason=reason, changes={"credit_note": note.number, "total": total,
                                                      "lines": len(parts)})
        if send:
            from core import outbox

            outbox.enqueue("invoices.credit_note_email", note.pk)
    return note
