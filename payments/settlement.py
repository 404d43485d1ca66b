"""What a payment or a refund does to the books, in one place.

Called only inside the transaction that moves the payment to `succeeded` (or the refund
to `succeeded`), with the payment row locked, so each runs once. Each call is also
idempotent on its reference at the receiving end (`payment:{id}`, `refund:{id}`), so
even a second call could not double anything.
"""

from __future__ import annotations

from payments.models import Payment, Purpose, Refund


def payment_reference(payment: Payment) -> str:
    return f"payment:{payment.pk}"


def apply_payment(payment: Payment) -> None:
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
        from invoices.services import invoice_record_payment

        invoice_record_payment(invoice=payment.invoice, amount=payment.amount, reference=payment_reference(payment))


def reverse_refund(refund: Refund) -> None:
    """Money going back: a refunded top-up leaves the credit balance; a refunded invoice
    payment is reversed on the invoice (it is owed again; invoices gives the ledger back
    what the payment put in)."""
    payment = refund.payment
    if payment.purpose == Purpose.INVOICE:
        from invoices.services import invoice_reverse_payment

        invoice_reverse_payment(invoice=payment.invoice, amount=refund.amount, reference=f"refund:{refund.pk}",
                                payment_reference=payment_reference(payment), reason=refund.reason,
                                actor=refund.requested_by)
        return
    from credits.models import EntryKind
    from credits.services import ledger_post

    ledger_post(
        organization=payment.organization, amount=-refund.amount, currency=refund.currency, kind=EntryKind.REFUND,
        reason=f"Refund #{refund.pk} of payment #{payment.pk}: {refund.reason}"[:500],
        reference=f"refund:{refund.pk}", actor=refund.requested_by,
    )
