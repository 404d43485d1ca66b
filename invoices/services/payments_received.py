"""Money received against an invoice, and money given back (refunds, lost disputes).

Both are idempotent on their `reference`. A payment puts into the credit ledger what the
amount due lacked, and the invoice is paid when nothing remains; a reversal takes back
what the payment put in (paid credit only, never promotional) and opens a paid invoice
again, with every invoice it settled by carrying its balance. Payments in the payments
app arrive here through `payments.settlement`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, User
from core.errors import Conflict, DomainError
from core.money import ZERO, format_money, round_money
from credits.services import ledger_post
from invoices import selectors
from invoices.models import Invoice, InvoicePayment, InvoicePaymentReversal, InvoiceStatus
from invoices.services.lifecycle import LEDGER_KIND, _settle, _transition

# Money given back touches paid credit only, never promotional credit.
REVERSAL_LEDGER_KIND = "refund"


def invoice_record_payment(
    *, invoice: Invoice, amount: Decimal, reference: str, currency: str | None = None,
    received_at: datetime | None = None, actor: User | None = None, api_key: ApiKey | None = None,
) -> InvoicePayment:
    """Record a payment received for an invoice. Idempotent on `reference`: the same
    reference again returns the first payment and changes nothing. Partial payments add
    up; the invoice is paid when nothing remains."""
    if not isinstance(amount, Decimal) or amount <= ZERO:
        raise DomainError("A payment amount is a positive Decimal.", field="amount")
    if not reference:
        raise DomainError("A payment needs a reference.", field="reference")
    now = received_at or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice.pk)
        existing = InvoicePayment.objects.filter(reference=reference).first()
        if existing is not None:
            if existing.invoice_id != inv.pk or existing.amount != amount:
                raise Conflict("This payment reference was already used for another payment.", field="reference")
            return existing
        if currency is not None and currency != inv.currency:
            raise DomainError(f"This invoice is in {inv.currency}.", field="currency")
        if amount != round_money(amount, inv.currency):
            raise DomainError("A payment is a whole number of minor units.", field="amount")
        if inv.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            raise Conflict(f"A {inv.get_status_display().lower()} invoice takes no payments.")
        if inv.carried_to_id is not None:
            carried = Invoice.objects.get(pk=inv.carried_to_id)
            raise Conflict(f"This balance was carried to {carried.number or 'a later invoice'}; pay that one.")
        remaining = inv.amount_due - inv.amount_paid - selectors.credited_total(inv)
        if amount > remaining:
            raise Conflict(f"Only {format_money(remaining, inv.currency)} remains to be paid.", field="amount")
        payment = InvoicePayment.objects.create(
            invoice=inv, amount=amount, currency=inv.currency, reference=reference, received_at=now
        )
        inv.amount_paid += amount
        if amount == remaining:
            _settle(inv, now)
        inv.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
        # The amount due is what the ledger lacks: the payment puts it back.
        ledger_post(
            organization=inv.organization, amount=amount, kind=LEDGER_KIND,
            reference=f"invoice_payment:{payment.pk}", reason=f"Payment of {inv.number}",
        )
        audit_record("invoice.payment_recorded", actor=actor, api_key=api_key, organization=inv.organization,
                     obj=inv, changes={"amount": amount, "reference": reference, "status": inv.status})
    return payment


def _unsettle(inv: Invoice) -> None:
    """Open a paid invoice again, with every earlier invoice it settled by carrying its
    balance (those were paid only through this one)."""
    _transition(inv, InvoiceStatus.OPEN)
    inv.paid_at = None
    for earlier in Invoice.objects.select_for_update().filter(carried_to=inv, status=InvoiceStatus.PAID):
        _unsettle(earlier)
        earlier.save(update_fields=["status", "paid_at", "updated_at"])


def invoice_reverse_payment(
    *, invoice: Invoice, amount: Decimal, reference: str, payment_reference: str,
    reversed_at: datetime | None = None, reason: str = "", actor: User | None = None,
    api_key: ApiKey | None = None,
) -> InvoicePaymentReversal:
    """Give back `amount` of the payment recorded under `payment_reference` (a refund, a
    lost dispute). Idempotent on `reference`. The invoice's paid amount drops by it; a
    paid invoice is open again (and so is every invoice it settled by carrying its
    balance). The ledger gives back what `invoice_record_payment` put in, so the
    organisation's account lacks the amount again, once."""
    if not isinstance(amount, Decimal) or amount <= ZERO:
        raise DomainError("A reversal amount is a positive Decimal.", field="amount")
    if not reference:
        raise DomainError("A reversal needs a reference.", field="reference")
    now = reversed_at or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice.pk)
        existing = InvoicePaymentReversal.objects.filter(reference=reference).first()
        if existing is not None:
            if existing.invoice_id != inv.pk or existing.amount != amount:
                raise Conflict("This reversal reference was already used for another reversal.", field="reference")
            return existing
        payment = InvoicePayment.objects.filter(invoice=inv, reference=payment_reference).first()
        if payment is None:
            raise DomainError(f"{inv.number} has no payment {payment_reference}.", field="payment_reference")
        if amount != round_money(amount, inv.currency):
            raise DomainError("A reversal is a whole number of minor units.", field="amount")
        reversed_before = payment.reversals.aggregate(s=Sum("amount"))["s"] or ZERO
        if amount > payment.amount - reversed_before:
            raise Conflict(f"Only {format_money(payment.amount - reversed_before, inv.currency)} of {payment_reference} "
                           "is left to reverse.", field="amount")
        reversal = InvoicePaymentReversal.objects.create(
            invoice=inv, payment=payment, amount=amount, currency=inv.currency, reference=reference, reversed_at=now,
        )
        inv.amount_paid -= amount
        if inv.status == InvoiceStatus.PAID:
            _unsettle(inv)
        inv.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
        ledger_post(
            organization=inv.organization, amount=-amount, kind=REVERSAL_LEDGER_KIND,
            reference=f"invoice_payment_reversal:{reversal.pk}",
            reason=(f"Reversal of a payment of {inv.number}" + (f": {reason}" if reason else ""))[:500],
        )
        audit_record("invoice.payment_reversed", actor=actor, api_key=api_key, organization=inv.organization,
                     obj=inv, reason=reason, changes={"amount": amount, "reference": reference,
                                                      "payment": payment_reference, "status": inv.status})
    return reversal
