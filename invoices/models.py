"""Invoices, their lines, credit notes, numbering, taxes, coupons and the monthly run.

Invariants:
- One invoice per organisation and billing period (`invoice_org_period_uniq`).
- Money columns of an invoice, its lines and its number never change once the invoice
  left `draft`; the database refuses it (triggers in migration 0002), not only the ORM.
- Every line amount is rounded once, half-up, to the currency's minor unit; invoice totals
  are sums of rounded lines (`core.money.round_money`).
- Numbers come from `NumberSequence` rows, taken under a row lock at finalization, so they
  are sequential per series and year without gaps.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from accounts.models import Organization
from core.money import ZERO, currency_field, format_money, money_field


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


# The allowed transitions, checked in one place (`invoices.services.lifecycle._transition`).
TRANSITIONS: dict[str, frozenset[str]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.OPEN, InvoiceStatus.VOID}),
    InvoiceStatus.OPEN: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}),
    InvoiceStatus.UNCOLLECTIBLE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    # A paid invoice opens again only when a payment on it is reversed (a refund or a
    # lost dispute): the money is owed again.
    InvoiceStatus.PAID: frozenset({InvoiceStatus.OPEN}),
    InvoiceStatus.VOID: frozenset(),
}
FINALIZED_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)


class Invoice(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invoices")
    # The billed calendar month, half-open [period_start, period_end) in UTC.
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=14, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    currency = currency_field()
    # Prepaid organisations get a statement: the charges were covered by credit.
    is_statement = models.BooleanField(default=False)
    # All amounts are sums of rounded lines (see module docstring).
    subtotal = money_field(default=ZERO, help_text="Charges before discounts and tax.")
    discount_total = money_field(default=ZERO, help_text="Negative or zero.")
    tax_total = money_field(default=ZERO)
    total = money_field(default=ZERO, help_text="subtotal + discount_total + tax_total")
    credit_applied = money_field(default=ZERO, help_text="Part of the total covered by credit.")
    balance_forward = money_field(default=ZERO, help_text="Unpaid amount of earlier invoices carried to this one.")
    amount_due = money_field(default=ZERO, help_text="total − credit_applied + balance_forward")
    amount_paid = money_field(default=ZERO)
    tax_note = models.CharField(max_length=200, blank=True, help_text="e.g. reverse charge or exemption wording.")
    # Snapshots taken at finalization: editing the organisation never changes an issued invoice.
    billing_details = models.JSONField(default=dict, blank=True)
    seller_details = models.JSONField(default=dict, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    carried_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="carried_from",
        help_text="The later invoice whose amount due includes this one's unpaid balance.",
    )
    pdf = models.FileField(upload_to="invoices/%Y/%m/", blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "period_start"], name="invoice_org_period_uniq"),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="invoice_period_ordered"),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(status="void", number__isnull=True) | Q(number__isnull=False),
                name="invoice_finalized_has_number",
            ),
        ]
        indexes = [models.Index(fields=["organization", "status"]), models.Index(fields=["status", "period_start"])]
        permissions = [
            ("finalize_invoice", "Finalize (issue) invoices"),
            ("void_invoice", "Void invoices"),
            ("credit_invoice", "Issue credit notes"),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft {self.pk} ({self.organization_id}, {self.period_start:%Y-%m})"

    @property
    def is_finalized(self) -> bool:
        return self.status in FINALIZED_STATUSES or (self.status == InvoiceStatus.VOID and self.number is not None)

    @property
    def amount_remaining(self) -> Decimal:
        return self.amount_due - self.amount_paid

    @property
    def period_last_day(self) -> date:
        """The last day of the half-open period, for people ("1–31 Oct")."""
        return (self.period_end - timedelta(microseconds=1)).date()

    @property
    def period_label(self) -> str:
        return f"{self.period_start:%B %Y}"


class LineKind(models.TextChoices):
    RECURRING = "recurring", "Monthly fee"
    USAGE = "usage", "Usage"
    ADDON = "addon", "Add-on"
    OVERAGE = "overage", "Metered overage"
    MINIMUM = "minimum", "Contract minimum true-up"
    DISCOUNT = "discount", "Discount"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=LineKind.choices)
    # What the PDF groups lines under: the resource's name, else the product's.
    group = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=300)
    # References to the price book and the fleet; plain ids so a line outlives them.
    product_code = models.CharField(max_length=64, blank=True)
    product_id = models.BigIntegerField(null=True, blank=True)
    resource_id = models.BigIntegerField(null=True, blank=True)
    price_id = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=20, blank=True)
    coupon_redemption = models.ForeignKey(
        "CouponRedemption", null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )
    service_start = models.DateTimeField(null=True, blank=True)
    service_end = models.DateTimeField(null=True, blank=True)
    quantity = money_field(default=ZERO)
    unit = models.CharField(max_length=20, blank=True)
    unit_price = money_field(default=ZERO, help_text="Unrounded rate.")
    amount = money_field(help_text="quantity × unit_price, rounded once to the minor unit.")
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=ZERO, help_text="Percent.")
    tax_amount = money_field(default=ZERO, help_text="amount × tax_rate, rounded once per line.")
    settled_by_metering = models.BooleanField(
        default=False, help_text="Prepaid usage already drawn from the credit balance minute by minute."
    )

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_uniq")]

    def __str__(self) -> str:
        return self.description


class NumberSequence(models.Model):
    """The last number used per series and year. Locked by an UPDATE for the
    few milliseconds of a finalization; never read with Max()+1."""

    series = models.CharField(max_length=8)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="number_sequence_series_year_uniq")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class CreditNote(models.Model):
    """A correction of an issued invoice, built line by line like the invoice: each of its
    lines credits part or all of one invoice line. Issued and numbered at once (its own
    gapless `CN` series); its money is never edited (migration 0002's triggers). Totals are
    sums of its rounded lines: subtotal = Σ line amounts, tax_total = Σ line taxes."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=32, unique=True)
    currency = currency_field()
    reason = models.TextField()
    subtotal = money_field()
    tax_total = money_field()
    total = money_field()
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    billing_details = models.JSONField(default=dict, blank=True)
    seller_details = models.JSONField(default=dict, blank=True)
    pdf = models.FileField(upload_to="credit-notes/%Y/%m/", blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(total__gt=0), name="credit_note_total_positive")]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(models.Model):
    """What one credit note gives back of one invoice line: `amount` before tax (rounded
    to the minor unit) and its tax at the invoice line's rate, rounded once per line.
    Lines of notes issued before credit notes were built per line have no invoice line."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(InvoiceLine, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="credit_note_lines")
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=300)
    quantity = money_field(null=True, blank=True, help_text="Of the invoice line's unit; empty when an amount is credited.")
    unit = models.CharField(max_length=20, blank=True)
    unit_price = money_field(null=True, blank=True, help_text="The invoice line's unrounded rate.")
    amount = money_field()
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=ZERO)
    tax_amount = money_field(default=ZERO)

    class Meta:
        ordering = ["credit_note", "position", "id"]

    def __str__(self) -> str:
        return self.description


class InvoicePayment(models.Model):
    """A payment recorded against an invoice (by payments, or staff). `reference` makes
    recording idempotent."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = money_field(validators=[MinValueValidator(Decimal("0"))])
    currency = currency_field()
    reference = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="invoice_payment_reference_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {format_money(self.amount, self.currency)}"


class InvoicePaymentReversal(models.Model):
    """Money of a recorded payment given back (a refund, a lost dispute). It takes the
    amount off `Invoice.amount_paid`, and a paid invoice is open again. `reference`
    makes reversing idempotent; together the reversals of a payment never exceed it."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payment_reversals")
    payment = models.ForeignKey(InvoicePayment, on_delete=models.PROTECT, related_name="reversals")
    amount = money_field(validators=[MinValueValidator(Decimal("0"))])
    currency = currency_field()
    reference = models.CharField(max_length=200)
    reversed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reversed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="invoice_payment_reversal_reference_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_payment_reversal_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: −{format_money(self.amount, self.currency)}"


class TaxRate(models.Model):
    """The tax of a customer country, effective-dated. Staff keep these in the console."""

    country = models.CharField(max_length=2, help_text="ISO 3166 code, e.g. DE.")
    name = models.CharField(max_length=40, default="VAT")
    rate = models.DecimalField(
        max_digits=7, decimal_places=4, validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("100"))],
        help_text="Percent, e.g. 19.0000.",
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Exclusive; empty = until further notice.")

    class Meta:
        ordering = ["country", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["country", "valid_from"], name="tax_rate_country_from_uniq"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")), name="tax_rate_dates"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.name} {self.rate.normalize()}%"


class CouponKind(models.TextChoices):
    PERCENT = "percent", "Percentage off"
    FIXED = "fixed", "Fixed amount off"


class Coupon(models.Model):
    """A staff-defined discount, redeemed by organisations, for a number of periods."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=CouponKind.choices)
    percent_off = models.DecimalField(
        max_digits=7, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("100"))],
    )
    amount_off = money_field(null=True, blank=True, validators=[MinValueValidator(ZERO)])
    currency = currency_field(blank=True, help_text="Fixed-amount coupons only.")
    duration_periods = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="How many monthly invoices it applies to; empty = forever."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="percent", percent_off__isnull=False, amount_off__isnull=True)
                           | Q(kind="fixed", amount_off__isnull=False, percent_off__isnull=True) & ~Q(currency="")),
                name="coupon_kind_fields",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class CouponRedemption(models.Model):
    """A coupon applied to an organisation. Periods used are counted from the finalized
    invoices that carry its discount line, so there is no counter to drift."""

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="coupon_redemptions")
    starts_at = models.DateTimeField(help_text="Applies from the billing period that contains this time.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["coupon", "organization"], name="coupon_redemption_uniq")]

    def __str__(self) -> str:
        return f"{self.coupon.code} → {self.organization}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Some organisations failed"


class InvoiceRun(models.Model):
    """One monthly run of the scheduled engine; one per period (a rerun reuses it)."""

    period_start = models.DateTimeField(unique=True)
    period_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"Run {self.period_start:%Y-%m}"


class RunItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    INVOICED = "invoiced", "Invoiced"
    SKIPPED = "skipped", "No charges"
    FAILED = "failed", "Failed"


class InvoiceRunItem(models.Model):
    """The state of one organisation in a run: what failed is visible and retried."""

    run = models.ForeignKey(InvoiceRun, on_delete=models.CASCADE, related_name="items")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=RunItemStatus.choices, default=RunItemStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "organization_id"]
        constraints = [models.UniqueConstraint(fields=["run", "organization"], name="invoice_run_item_uniq")]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.run} · {self.organization_id}: {self.status}"
