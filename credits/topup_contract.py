"""The top-up handler contract, and a sandbox handler that completes top-ups without
payments (settings name payments' handler, `payments.card_topups.charge_topup`, in
`CREDITS_AUTO_TOPUP_HANDLER` / `CREDITS_TOPUP_HANDLER`).

Contract (see docs/ARCHITECTURE.md, "credits → payments"):

    handler(topup_id: int) -> None

- Called by `credits_topup_dispatch_task` after the `TopUp` row committed and after
  `topup_begin_attempt` counted the attempt (`TopUp.attempts`). Never inside a transaction
  that could still roll back.
- Charges `TopUp.amount` in `TopUp.currency` for `TopUp.organization` with a provider
  idempotency key built from our own row ids, so a redelivered task or a retry after a
  timeout never charges twice (payments keeps one payment per top-up while its outcome
  is open and reuses its key, `payment:{id}`).
- On success (now or later, e.g. from a provider webhook) calls
  `credits.services.credit_topup(organization=…, amount=topup.amount,
  currency=topup.currency, reference=topup.ledger_reference, topup_id=topup.id,
  provider_reference=<the provider's charge id>)`; it is idempotent, so a webhook and
  the synchronous path may both call it.
- On failure calls `credits.services.auto_topup_failed(topup_id=…, error=<readable>,
  retryable=<bool>)`; credits schedules the retry with backoff and tells the customer.
- Raising an exception counts as a retryable failure (the task records it).
- The handler may carry `handler.sandboxed() -> bool`: True while no money moves (the
  portal then labels top-ups "Sandbox"). Without it, money is taken to move.
- The handler may carry `handler.charged_method(organization) -> str`: what it would
  charge ("saved card Visa ····4242"), shown on the console's adjustment confirmation.
"""

from __future__ import annotations

from accounts.models import Organization
from credits import services
from credits.models import TopUp

SANDBOX_REFERENCE_PREFIX = "sandbox:"


def handler_is_sandboxed(path: str) -> bool:
    """Whether the handler at dotted `path` moves no money (see the contract above)."""
    from django.utils.module_loading import import_string

    sandboxed = getattr(import_string(path), "sandboxed", None)
    return bool(sandboxed()) if callable(sandboxed) else False


def sandbox_handler(topup_id: int) -> None:
    """SANDBOX: completes the top-up locally without moving any money. Demo only."""
    topup = TopUp.objects.select_related("organization").get(pk=topup_id)
    services.credit_topup(
        organization=topup.organization, amount=topup.amount, currency=topup.currency,
        reference=topup.ledger_reference, topup_id=topup.pk,
        provider_reference=f"{SANDBOX_REFERENCE_PREFIX}{topup.pk}:{topup.attempts}",
        reason=f"{'Auto top-up' if topup.source == 'auto' else 'Top-up'} (sandbox gateway: no money moved)",
    )


def handler_charged_method(path: str, organization: Organization) -> str:
    """What the handler at dotted `path` would charge for `organization` (see the contract)."""
    from django.utils.module_loading import import_string

    describe = getattr(import_string(path), "charged_method", None)
    return describe(organization) if callable(describe) else "the configured top-up handler"


sandbox_handler.sandboxed = lambda: True  # type: ignore[attr-defined]  # the contract's optional marker
sandbox_handler.charged_method = lambda organization: "the sandbox handler (no money moves)"  # type: ignore[attr-defined]
