"""What a payment or a refund does to the books, in one place.

Called only inside the transaction that moves the payment to `succeeded` (or the refund
to `succeeded`), with the payment row locked, so each runs once. Each call is also
idempotent on its reference at the receiving end (`payment:{id}`, `refund:{id}`), so
even a second call could not double anything.
"""

from __future__ import annotations

from decimal import Decimal

from core.money import ZERO
from payments.models import Payment, Purpose, Refund


def payment_reference(payment: Payment) -> str:
    return f"payment:{payment.pk}"


def apply_payment(payment: Payment) -> None:
    from payments.receipts import receipt_issue

    # Every payment received gets its receipt, numbered in this same transaction.
    receipt_issue(payment=payment)
    if payment.purpose == Purpose.TOPUP:
        from credits.services import credit_topup

        credit_topup(
            organization=payment.organization, amount=payment.amount, currency=payment.currency,
            reference=payment_reference(payment), topup_id=payment.credits_topup_id,
            provider_reference=payment.provider_payment_id or payment.provider_checkout_id,
            reason=f"Top-up, payment #{payment.pk} ({payment.get_provider_display()})",
            actor=payment.initiated_by,
        )
    else:
        _apply_invoice_payment(payment)


def _apply_invoice_payment(payment: Payment) -> None:
    """Money received for an invoice is never refused: the provider has it. What the
    invoice (or the later invoice its balance was carried to) still owes is recorded on
    it; anything beyond — the invoice was settled meanwhile by autopay, another checkout,
    a bank transfer or a credit note — is kept as the organisation's credit, with an
    audit entry for staff to refund if the customer wants it back."""
    from accounts.audit import audit_record
    from credits.models import EntryKind
    from credits.services import ledger_post
    from invoices.models import Invoice, InvoiceStatus
    from invoices.selectors import credited_total
    from invoices.services import invoice_record_payment

    if payment.invoice_id is None:  # purpose "invoice" has one (payment_purpose_matches_invoice)
        raise ValueError(f"Payment {payment.pk} is for an invoice but names none.")
    invoice = Invoice.objects.select_for_update().get(pk=payment.invoice_id)
    while invoice.carried_to_id is not None:
        invoice = Invoice.objects.select_for_update().get(pk=invoice.carried_to_id)
    owed = invoice.amount_due - invoice.amount_paid - credited_total(invoice)
    payable = invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) and owed > 0
    applied = min(payment.amount, owed) if payable else ZERO
    if applied > 0:
        invoice_record_payment(invoice=invoice, amount=applied, reference=payment_reference(payment))
    excess = payment.amount - applied
    if excess > 0:
        ledger_post(
            organization=payment.organization, amount=excess, currency=payment.currency, kind=EntryKind.TOPUP,
            reference=f"{payment_reference(payment)}:excess", actor=payment.initiated_by,
            reason=f"Payment #{payment.pk} exceeded what {invoice.number or invoice.pk} still owed: kept as credit",
        )
        audit_record("payment.excess_credited", organization=payment.organization, obj=payment,
                     changes={"invoice": invoice.pk, "applied": applied, "credited": excess})


def _invoice_part(payment: Payment) -> tuple[Decimal, Decimal]:
    """(recorded on the invoice, kept as credit) of an invoice payment."""
    from invoices.models import InvoicePayment

    recorded = (InvoicePayment.objects.filter(reference=payment_reference(payment))
                .values_list("amount", flat=True).first()) or ZERO
    return recorded, payment.amount - recorded


def reverse_refund(refund: Refund) -> None:
    """Money going back: a refunded top-up leaves the credit balance; a refunded invoice
    payment is reversed on the invoice (it is owed again; invoices gives the ledger back
    what the payment put in)."""
    payment = refund.payment
    from_credit = refund.amount
    if payment.purpose == Purpose.INVOICE:
        from invoices.models import InvoicePayment
        from invoices.services import invoice_reverse_payment

        # What was kept as credit goes back first (refunds run in order, each under the
        # payment's lock; `amount_refunded` is what earlier ones took).
        _recorded, kept = _invoice_part(payment)
        from_credit = min(refund.amount, max(kept - payment.amount_refunded, ZERO))
        from_invoice = refund.amount - from_credit
        if from_invoice > 0:
            recorded = InvoicePayment.objects.get(reference=payment_reference(payment))
            invoice_reverse_payment(invoice=recorded.invoice, amount=from_invoice, reference=f"refund:{refund.pk}",
                                    payment_reference=payment_reference(payment), reason=refund.reason,
                                    actor=refund.requested_by)
    if from_credit > 0:
        from credits.models import EntryKind
        from credits.services import ledger_post

        ledger_post(
            organization=payment.organization, amount=-from_credit, currency=refund.currency, kind=EntryKind.REFUND,
            reason=f"Refund #{refund.pk} of payment #{payment.pk}: {refund.reason}"[:500],
            reference=f"refund:{refund.pk}", actor=refund.requested_by,
        )
