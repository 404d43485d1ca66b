"""Emails payments sends besides dunning's: a charge waiting for the customer's
confirmation, and a provider refusing our request (to staff). Sent by tasks, after commit."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.urls import reverse

from core.money import format_money
from payments.models import Flow, Payment, PaymentStatus


def confirm_url(payment: Payment) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("payments:confirm", args=[payment.pk])


def action_required_email(*, payment_id: int) -> int:
    """Tell the customer their bank wants them to confirm an automatic charge, with the
    link to the portal page that does it. Nothing is sent once the payment moved on."""
    from credits.notify import recipients

    payment = Payment.objects.select_related("organization", "invoice").get(pk=payment_id)
    if payment.status != PaymentStatus.REQUIRES_ACTION or payment.flow != Flow.OFF_SESSION:
        return 0
    to = recipients(payment.organization)
    if not to:
        return 0
    amount = format_money(payment.amount, payment.currency)
    invoice = payment.invoice
    what = f"invoice {invoice.number or invoice.pk}" if invoice is not None else "your credit top-up"
    body = (f"Your bank asks you to confirm the automatic payment of {amount} for {what} "
            f"with {payment.payment_method or 'your saved card'}. Nothing has been charged yet.\n\n"
            f"Confirm it here: {confirm_url(payment)}\n\n"
            "Until you do, the payment waits; it does not count as a failed payment.")
    return send_mail(f"[{settings.PORTAL_BRAND}] Please confirm your payment of {amount}", body,
                     settings.DEFAULT_FROM_EMAIL, to)


def provider_error_staff_email(*, payment_id: int, provider_code: str) -> None:
    payment = Payment.objects.select_related("organization").get(pk=payment_id)
    mail_admins(f"{payment.get_provider_display()} refused our request for payment {payment.pk}",
                f"{payment.get_provider_display()} refused a request for payment {payment.pk} of "
                f"{payment.organization} ({format_money(payment.amount, payment.currency)}) as malformed: {provider_code}. "
                "This is a bug or misconfiguration on our side, not a decline: the payment was left as it was "
                "and the customer was not told of a failure. See the server log and the payment's audit trail.")
