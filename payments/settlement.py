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
    payment = refund.payment
    if payment.purpose == Purpose.INVOICE:
        from invoices import services as invoice_services

        reverse = getattr(invoice_services, "invoice_reverse_payment", None)
        if reverse is not None:
            reverse(invoice=payment.invoice, amount=refund.amount, reference=f"refund:{refund.pk}",
                    payment_reference=payment_reference(payment))
            return
        # invoices offers no reversal yet. Its payments post to the credit ledger (the
        # organisation's account), so the money going back is taken from there: the
        # balance lacks it again and the next invoice asks for it. The refunded invoice
        # itself still reads paid; staff see this entry.
        from accounts.audit import audit_record

        audit_record("refund.invoice_not_reopened", organization=payment.organization, obj=refund,
                     reason="Invoice payment refunded; the amount is owed again on the account.",
                     changes={"invoice": payment.invoice_id, "amount": refund.amount})
    from credits.models import EntryKind
    from credits.services import ledger_post

    ledger_post(
        organization=payment.organization, amount=-refund.amount, currency=refund.currency, kind=EntryKind.REFUND,
        reason=f"Refund #{refund.pk} of payment #{payment.pk}: {refund.reason}"[:500],
        reference=f"refund:{refund.pk}", actor=refund.requested_by,
    )
