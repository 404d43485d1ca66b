"""Payments, refunds, saved payment methods, provider webhook events and dunning.

Invariants:
- Card numbers never reach these tables: a saved method is the provider's token plus the
  brand, last four digits and expiry the provider shows us.
- A payment's idempotency key at the provider is derived from our own row id
  (`payment:{id}`), so any retry of any call about it, by anybody, is one charge.
- A payment's effect (credit on the ledger, payment recorded on the invoice) is applied in
  the same transaction as its move to `succeeded`, under its row lock, exactly once; a
  refund's reversal likewise with its move to `succeeded`.
- Each provider event is stored once (unique provider + event id) and processed once.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization
from core.errors import Conflict
from core.money import currency_field, format_money, money_field


class Provider(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    PAYPAL = "paypal", "PayPal"
    SANDBOX = "sandbox", "Sandbox (no real money)"
    MANUAL = "manual", "Manual (bank transfer)"


class Purpose(models.TextChoices):
    TOPUP = "topup", "Credit top-up"
    INVOICE = "invoice", "Invoice payment"


class Flow(models.TextChoices):
    CHECKOUT = "checkout", "Hosted checkout"
    OFF_SESSION = "off_session", "Saved method, customer not present"
    BANK_TRANSFER = "bank_transfer", "Bank transfer recorded by staff"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # our row exists; the provider may not know it yet
    REQUIRES_ACTION = "requires_action", "Awaiting customer"  # hosted checkout open / approval pending
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    REFUNDED = "refunded", "Refunded"  # fully; partial refunds keep `succeeded`


S = PaymentStatus
# The one table of legal moves. A failed attempt may still succeed: a customer can try
# another card in the same hosted checkout, and a PaymentIntent can be confirmed again.
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.REQUIRES_ACTION, S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED}),
    S.REQUIRES_ACTION: frozenset({S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED}),
    S.PROCESSING: frozenset({S.REQUIRES_ACTION, S.SUCCEEDED, S.FAILED}),
    # A failed checkout may still be paid with another card, until a newer checkout
    # supersedes it: its page is expired at the provider and it is canceled.
    S.FAILED: frozenset({S.REQUIRES_ACTION, S.PROCESSING, S.SUCCEEDED, S.CANCELED}),
    S.SUCCEEDED: frozenset({S.REFUNDED}),
    S.CANCELED: frozenset(),
    S.REFUNDED: frozenset(),
}
SETTLED_STATUSES = frozenset({S.SUCCEEDED, S.REFUNDED})


class PaymentMethod(models.Model):
    """A card saved at the provider through its hosted flow. Holds no card number."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="payment_methods")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    provider_method_id = models.CharField(max_length=255, help_text="e.g. pm_… at Stripe.")
    provider_customer_id = models.CharField(max_length=255, blank=True)
    brand = models.CharField(max_length=30, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    detached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_method_id"], name="payment_method_provider_id_uniq"),
            models.UniqueConstraint(
                fields=["organization"], condition=Q(is_default=True, detached_at__isnull=True),
                name="payment_method_one_default_per_org",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand or self.provider} ····{self.last4}" if self.last4 else self.provider_method_id

    @property
    def is_active(self) -> bool:
        return self.detached_at is None


class ProviderCustomer(models.Model):
    """The organisation's customer record at a provider (Stripe `cus_…`)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="provider_customers")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    customer_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "provider"], name="provider_customer_org_uniq"),
            models.UniqueConstraint(fields=["provider", "customer_id"], name="provider_customer_id_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.customer_id}"


class Payment(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="payments")
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    provider = models.CharField(max_length=10, choices=Provider.choices)
    flow = models.CharField(max_length=15, choices=Flow.choices, default=Flow.CHECKOUT)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    # Rounded to the currency's minor unit when created; converted to the provider's units
    # only at the provider boundary (payments.gateways.currencies).
    amount = money_field()
    currency = currency_field()
    amount_refunded = money_field(default=Decimal("0"))
    invoice = models.ForeignKey(
        "invoices.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="payment_attempts"
    )
    # Stripe: Checkout Session id / PaymentIntent id / Charge id. PayPal: order id / capture id.
    provider_checkout_id = models.CharField(max_length=255, blank=True)
    provider_payment_id = models.CharField(max_length=255, blank=True)
    provider_charge_id = models.CharField(max_length=255, blank=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # The credits top-up request (manual via API, or auto top-up) this payment carries out.
    credits_topup = models.ForeignKey(
        "credits.TopUp", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    dunning_case = models.ForeignKey(
        "payments.DunningCase", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    dunning_attempt = models.PositiveSmallIntegerField(null=True, blank=True, help_text="0: the charge on the due date.")
    reference = models.CharField(max_length=200, blank=True, help_text="Bank transfer reference, for manual payments.")
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_reason = models.CharField(max_length=100, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("record_manual_payment", "Record a bank transfer against an invoice"),
            ("refund_payment", "Refund a payment"),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=models.F("amount")),
                name="payment_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(purpose="topup", invoice__isnull=True) | Q(purpose="invoice", invoice__isnull=False),
                name="payment_purpose_matches_invoice",
            ),
            # One automatic charge per invoice and attempt (0 on the due date, then each
            # dunning retry), however often the scheduler runs.
            models.UniqueConstraint(
                fields=["invoice", "dunning_attempt"], condition=Q(flow="off_session", invoice__isnull=False),
                name="payment_one_autopay_per_invoice_attempt",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_checkout_id"], condition=~Q(provider_checkout_id=""),
                name="payment_provider_checkout_uniq",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"], condition=~Q(provider_payment_id=""),
                name="payment_provider_payment_uniq",
            ),
            # While a top-up's payment may still succeed, no second payment for it exists:
            # an unanswered charge is retried with its own key, never replaced.
            models.UniqueConstraint(
                fields=["credits_topup"], condition=~Q(status__in=["failed", "canceled"]),
                name="payment_one_live_per_topup",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.pk}: {format_money(self.amount, self.currency)} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        """The key every provider call about this payment carries."""
        if self.pk is None:
            raise ValueError("A payment needs its row id before it can reach a provider.")
        return f"payment:{self.pk}"

    @property
    def refundable_amount(self) -> Decimal:
        return self.amount - self.amount_refunded

    def check_transition(self, to: str) -> None:
        """The one check of the payment state machine."""
        if to not in PAYMENT_TRANSITIONS[self.status]:
            raise InvalidTransition(f"A {self.get_status_display().lower()} payment cannot become {to}.")


class RefundStatus(models.TextChoices):
    """Stripe's refund states; PayPal's PENDING/COMPLETED/FAILED/CANCELLED map onto them."""

    PENDING = "pending", "Pending"
    REQUIRES_ACTION = "requires_action", "Needs action at the provider"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


R = RefundStatus
# The one table of a refund's legal moves. `succeeded` is final: its reversal has run.
# `failed` and `canceled` are final too, with one exception: the provider's own record of
# this very refund (its provider id, or our id in its metadata while we know no provider
# id) later saying `succeeded`. The money left, so it is recorded and reversed then, once
# (we can have believed it failed when a repeated create was refused, or a dashboard
# cancel raced its success). Anything else arriving for a final refund changes nothing.
REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    R.PENDING: frozenset({R.REQUIRES_ACTION, R.SUCCEEDED, R.FAILED, R.CANCELED}),
    R.REQUIRES_ACTION: frozenset({R.PENDING, R.SUCCEEDED, R.FAILED, R.CANCELED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset({R.SUCCEEDED}),
    R.CANCELED: frozenset({R.SUCCEEDED}),
}
# Refunds the provider may still pay: their amount is spoken for.
OPEN_REFUND_STATUSES = frozenset({R.PENDING, R.REQUIRES_ACTION})


class Refund(models.Model):
    """Money returned for a payment. Its reversal (ledger debit or invoice payment
    reversal) is applied once, when it becomes `succeeded`."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="refunds")
    amount = money_field()
    currency = currency_field()
    reason = models.TextField()
    status = models.CharField(max_length=20, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    provider_refund_id = models.CharField(max_length=255, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # Set when the machine cannot decide and a person must (e.g. the create's answer was
    # lost, the provider's key has expired and the provider shows no such refund).
    needs_attention = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["payment", "provider_refund_id"], condition=~Q(provider_refund_id=""),
                name="refund_provider_id_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.pk} of payment {self.payment_id}: {format_money(self.amount, self.currency)}"

    @property
    def idempotency_key(self) -> str:
        return f"refund:{self.pk}"


class WebhookStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (type not handled)"
    FAILED = "failed", "Failed (will be retried)"


class WebhookEvent(models.Model):
    """A verified provider event, stored once. `processed_at` is set in the same
    transaction as the event's effects, under this row's lock."""

    provider = models.CharField(max_length=10, choices=Provider.choices)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=WebhookStatus.choices, default=WebhookStatus.RECEIVED)
    deliveries = models.PositiveIntegerField(default=1, help_text="How many times the provider sent it.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class DunningStatus(models.TextChoices):
    ACTIVE = "active", "Retrying"
    RECOVERED = "recovered", "Recovered (paid)"
    EXHAUSTED = "exhausted", "Exhausted (final action taken)"
    CLOSED = "closed", "Closed (invoice settled otherwise)"


class DunningCase(models.Model):
    """Retries of a failed automatic invoice charge, on the schedule in
    `settings.PAYMENTS_DUNNING_RETRY_DAYS` (days after the first failure)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="dunning_cases")
    invoice = models.OneToOneField("invoices.Invoice", on_delete=models.PROTECT, related_name="dunning_case")
    status = models.CharField(max_length=10, choices=DunningStatus.choices, default=DunningStatus.ACTIVE)
    retries_done = models.PositiveSmallIntegerField(default=0)
    first_failed_at = models.DateTimeField()
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_failure = models.CharField(max_length=500, blank=True)
    final_action = models.CharField(max_length=20, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Dunning of invoice {self.invoice_id} ({self.status})"


class Receipt(models.Model):
    """What a customer paid: one per succeeded payment, a credit top-up or an invoice
    payment, numbered in its own gapless series (`RCT-2026-000001`, taken in the
    transaction that recorded the payment). Never edited once issued: amount, payer and
    seller are snapshots. For prepaid customers receipts are the documents of what they
    paid; their monthly statement is not one."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="receipt")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="receipts")
    # Not "number": payments models keep no field that could pass for a card number.
    receipt_number = models.CharField(max_length=32, unique=True)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    amount = money_field(help_text="What was received, as charged (a whole number of minor units).")
    currency = currency_field()
    paid_at = models.DateTimeField()
    method = models.CharField(max_length=100, help_text='How it was paid, e.g. "Visa ····4242", "PayPal".')
    invoice_number = models.CharField(max_length=32, blank=True, help_text="The invoice paid, if any.")
    billing_details = models.JSONField(default=dict, blank=True)
    seller_details = models.JSONField(default=dict, blank=True)
    issued_at = models.DateTimeField()
    pdf = models.FileField(upload_to="receipts/%Y/%m/", blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="receipt_amount_positive")]

    def __str__(self) -> str:
        return self.receipt_number
