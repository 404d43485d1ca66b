"""SANDBOX: a stand-in provider for the demo and development, used when no Stripe or
PayPal keys are configured. No money moves. Its checkout and card pages live in our own
portal and are labelled "Sandbox — no real money"; they complete payments through the
same exactly-once event path as the real providers' webhooks.

A saved sandbox card whose id starts with `DECLINING_PREFIX` declines every charge, so
dunning and failed auto top-ups can be tried in the demo.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.urls import reverse

from payments.gateways.base import CheckoutStarted, PaymentSnapshot, RefundSnapshot
from payments.models import Payment, PaymentMethod, PaymentStatus, Provider, Refund, RefundStatus

if TYPE_CHECKING:
    from accounts.models import Organization

DECLINING_PREFIX = "sbx_pm_declining_"


class SandboxGateway:
    provider = Provider.SANDBOX
    refund_key_lifetime = timedelta(days=36500)  # no state, no keys: a refund is always answered the same

    def start_checkout(self, payment: Payment, *, description: str, success_url: str, cancel_url: str) -> CheckoutStarted:
        return CheckoutStarted(
            checkout_id=f"sbx_cs_{payment.pk}_{secrets.token_hex(6)}",
            redirect_url=reverse("payments:sandbox_checkout", args=[payment.pk]),
        )

    def start_setup(self, organization: Organization, *, success_url: str, cancel_url: str) -> CheckoutStarted:
        return CheckoutStarted(checkout_id="", redirect_url=reverse("payments:sandbox_add_card"))

    def charge_saved_method(self, payment: Payment) -> PaymentSnapshot:
        """Without a saved sandbox card the sandbox stands in for one, so the demo's
        auto top-up works before anyone saves a card."""
        method = payment.payment_method
        if method is not None and method.provider_method_id.startswith(DECLINING_PREFIX):
            return PaymentSnapshot(status=PaymentStatus.FAILED, provider_payment_id=f"sbx_pay_{payment.pk}",
                                   failure_code="card_declined", failure_message="The sandbox card declined.")
        return PaymentSnapshot(status=PaymentStatus.SUCCEEDED, provider_payment_id=f"sbx_pay_{payment.pk}",
                               amount=payment.amount, currency=payment.currency)

    def expire_checkout(self, payment: Payment) -> PaymentSnapshot:
        """The sandbox's checkout page pays only an open payment: canceling ours ends it."""
        return PaymentSnapshot(status=PaymentStatus.CANCELED)

    def snapshot(self, payment: Payment) -> PaymentSnapshot | None:
        return None  # the sandbox keeps no state of its own

    def refund(self, refund: Refund) -> RefundSnapshot:
        return RefundSnapshot(provider_refund_id=f"sbx_re_{refund.pk}", status=RefundStatus.SUCCEEDED,
                              amount=refund.amount, currency=refund.currency, our_refund_id=refund.pk)

    def refund_lookup(self, refund: Refund) -> RefundSnapshot | None:
        return self.refund(refund)

    def detach(self, method: PaymentMethod) -> None:
        return None
