"""Credit notes: a numbered correction of an issued invoice.

A credit first reduces what is still owed on the invoice (settling it when nothing
remains); the whole credit, tax included, is posted to the credit ledger, so what was
not owed becomes credit. An invoice is never credited beyond its total.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, User
from core.errors import Conflict, DomainError
from core.money import ZERO, round_money
from credits.services import ledger_post
from invoices import numbering, selectors
from invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceStatus
from invoices.services.lifecycle import _settle

HUNDRED = Decimal(100)


def credit_note_create(
    *, invoice: Invoice, reason: str, amount: Decimal | None = None, actor: User | None = None,
    api_key: ApiKey | None = None, now: datetime | None = None,
) -> CreditNote:
    """A correction of an issued invoice: `amount` before tax (default: all that is left
    to credit). It first reduces what is still owed on the invoice; the rest goes to the
    customer's credit balance (the whole credit is posted to the ledger)."""
    if not reason.strip():
        raise DomainError("Say why the invoice is credited.", field="reason")
    now = now or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice.pk)
        if inv.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE):
            raise Conflict("Only issued invoices are credited; void a draft instead.")
        credited = selectors.credited_total(inv)
        left = inv.total - credited
        lines = list(inv.lines.all())
        rate = lines[0].tax_rate if lines else ZERO
        if amount is None:
            net = round_money(left * HUNDRED / (HUNDRED + rate), inv.currency)
        else:
            if not isinstance(amount, Decimal) or amount <= ZERO or amount != round_money(amount, inv.currency):
                raise DomainError("A credit is a positive amount in whole minor units.", field="amount")
            net = amount
        tax = round_money(net * rate / HUNDRED, inv.currency)
        total = net + tax
        if total <= ZERO or total > left:
            raise Conflict(f"At most {left} {inv.currency} (tax included) is left to credit on {inv.number}.",
                           field="amount")
        note = CreditNote.objects.create(
            invoice=inv, organization=inv.organization, number=numbering.next_number(numbering.CREDIT_NOTE_SERIES, now.year),
            currency=inv.currency, reason=reason, subtotal=net, tax_total=tax, total=total, issued_at=now,
            issued_by=actor if actor is not None and actor.is_authenticated else None,
            billing_details=inv.billing_details,
        )
        CreditNoteLine.objects.create(
            credit_note=note, description=f"Credit on {inv.number}: {reason}"[:300], amount=net, tax_rate=rate,
            tax_amount=tax,
        )
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
                     obj=inv, reason=reason, changes={"credit_note": note.number, "total": total})
    return note
