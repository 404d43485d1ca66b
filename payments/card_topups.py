"""Credits' top-up handler (`settings.CREDITS_TOPUP_HANDLER` / `CREDITS_AUTO_TOPUP_HANDLER`;
the contract is in credits/topup_contract.py): charge the organisation's saved card off-session.

Without provider keys the SANDBOX gateway charges (no money moves), with the saved
sandbox card if there is one, else standing in for one.

One payment per top-up while its outcome is open: a call that timed out is retried on
the same payment, hence with the same idempotency key (`payment:{id}`), so the provider
charges once however often credits retries. Only after a payment definitely failed does
a later attempt start a new one.

A provider that did not answer or asks us to wait (a timeout, 409 another request with
this key in progress, 429, 5xx) has not declined anything: payments retries the charge
itself (`payments.payment_charge`, backoff, the same key) and credits sees no failure.
A charge the bank holds for authentication waits for the customer (`requires_action`,
emailed a link); credits hears of it only when it succeeds or is declined.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Organization
from payments import services
from payments.gateways import card_provider
from payments.gateways.base import GatewayUnavailable
from payments.gateways.currencies import ProviderAmountError
from payments.models import SETTLED_STATUSES, Flow, Payment, PaymentStatus, Provider, Purpose


def _live_payment(topup_id: int) -> Payment | None:
    return (Payment.objects.filter(credits_topup_id=topup_id)
            .exclude(status__in=[PaymentStatus.FAILED, PaymentStatus.CANCELED]).first())


def charge_topup(topup_id: int) -> None:
    from credits.models import TopUp
    from credits.services import auto_topup_failed

    topup = TopUp.objects.select_related("organization").get(pk=topup_id)
    payment = _live_payment(topup.pk)
    if payment is None:
        provider = card_provider()
        method = services.default_method(topup.organization, provider)
        if method is None and provider != Provider.SANDBOX:
            auto_topup_failed(topup_id=topup.pk, retryable=False,
                              error="No saved card to charge: add one on the Payments page.")
            return
        try:
            payment = services.payment_create(
                organization=topup.organization, purpose=Purpose.TOPUP, provider=provider, flow=Flow.OFF_SESSION,
                amount=topup.amount, payment_method=method, credits_topup_id=topup.pk,
            )
        except ProviderAmountError as exc:  # the card provider cannot take this amount: no retry helps
            auto_topup_failed(topup_id=topup.pk, retryable=False, error=exc.message)
            return
        except IntegrityError:  # a concurrent call created it first
            payment = _live_payment(topup.pk)
            if payment is None:
                raise
    if payment.status in SETTLED_STATUSES:
        return
    try:
        services.payment_charge_saved_method(payment_id=payment.pk)
    except GatewayUnavailable:
        # Not a failed top-up: the same payment, hence the same key, is charged again
        # with backoff. An error of ours (GatewayIntegrationError) still reaches credits
        # as a retryable failure, with the message that says staff were told.
        with transaction.atomic():
            services.lifecycle._after_commit("payments.tasks.payment_charge_task", payment.pk)


# Credits' contract: top-ups move no money while cards go to the sandbox gateway.
charge_topup.sandboxed = lambda: card_provider() == Provider.SANDBOX  # type: ignore[attr-defined]  # contract marker


def _charged_method(organization: Organization) -> str:
    """What an auto top-up would charge, for credits' console confirmation (contract marker)."""
    provider = card_provider()
    method = services.default_method(organization, provider)
    if method is not None:
        return f"saved card {method}"
    return "the sandbox gateway (no money moves)" if provider == Provider.SANDBOX else "no saved card (it would fail)"


charge_topup.charged_method = _charged_method  # type: ignore[attr-defined]  # contract marker
