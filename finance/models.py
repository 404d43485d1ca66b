"""The journal: a chart of accounts and balanced double-entry entries built from the
money movements other apps record (credit ledger, invoices, credit notes, payments).

Invariants:
- Every `JournalEntry` has one currency and its lines sum to exactly zero. Line amounts
  are signed (debit positive, credit negative) and always at the currency's minor unit.
- Entries are written only by `finance.journal.journal_build_day`, a day at a time, in
  the transaction that inserts that day's `JournalDay`; a day is never rebuilt, so a
  rerun writes nothing and a crash leaves the day unbuilt (nothing half-written).
- `LedgerDayClose` keeps, per organisation, currency and built day, the ledger's running
  sums at 12 places: the carry that turns 12-place ledger amounts into cents (see
  docs/finance.md, "From 12 places to cents").
- `JournalDayTotal` is, per built day, currency, account and movement, the sum of that
  day's lines, written with them in the same transaction: what reports read instead of
  every line (`check_journal` proves it equals the lines).
- `JournalOrgMonth` is, per organisation, currency and month, the usage recognised (the
  usage entries' counter lines) and the ledger's top-ups of the month's built days,
  added to by `journal_build_day` in the same transaction: what the revenue report reads
  for whole months instead of the rows.
- Nothing here is read by the apps it reads from; only the URLconf, the console and the
  beat schedule know this app.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.money import currency_field, money_field


class AccountType(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    INCOME = "income", "Income"
    EXPENSE = "expense", "Expense"


class AccountRole(models.TextChoices):
    """What the journal uses an account for. Roles with a qualifier (a provider, a
    product group, a tax country and rate) have one account per qualifier; the others
    have exactly one account."""

    PROVIDER_CLEARING = "provider_clearing", "Payment provider clearing (per provider)"
    CUSTOMER_CREDIT = "customer_credit", "Customer credit held (prepaid)"
    PROMO_CREDIT = "promo_credit", "Promotional credit held (not cash)"
    RECEIVABLES = "receivables", "Receivables (postpaid)"
    DEFERRED_REVENUE = "deferred_revenue", "Deferred revenue"
    USAGE_REVENUE = "usage_revenue", "Usage revenue, consumed (before it is invoiced by product group)"
    REVENUE = "revenue", "Revenue (per product group)"
    TAX_PAYABLE = "tax_payable", "Tax payable (per country and rate)"
    DISCOUNTS = "discounts", "Discounts and coupons"
    REFUNDS = "refunds", "Refunds and disputes lost"
    BAD_DEBT = "bad_debt", "Bad debt (write-offs)"
    ALLOWANCE = "allowance", "Allowance for written-off receivables"
    PROMO_EXPENSE = "promo_expense", "Promotional credit expense"
    BREAKAGE = "breakage", "Breakage income (expired credit)"
    ADJUSTMENTS = "adjustments", "Staff credit adjustments"
    SUSPENSE = "suspense", "Suspense (movements whose origin is not known)"


class Account(models.Model):
    """One account of the chart (SKR03-style numbers, as DATEV expects them). Edited in
    the console, every change audited; an account with lines is never deleted."""

    number = models.CharField(max_length=9, unique=True, help_text="DATEV account number, 4 to 8 digits.")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=AccountType.choices)
    role = models.CharField(max_length=20, choices=AccountRole.choices)
    # Qualifiers: which provider, product group or tax the account is for (empty: the
    # role's default, used when nothing more specific exists).
    provider = models.CharField(max_length=10, blank=True, help_text="payments' provider code, for clearing accounts.")
    product_group = models.ForeignKey("pricing.ProductGroup", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")
    tax_country = models.CharField(max_length=2, blank=True)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True, help_text="Percent.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["role", "provider", "product_group", "tax_country", "tax_rate"],
                                    nulls_distinct=False, name="finance_account_one_per_qualifier"),
            models.CheckConstraint(condition=Q(number__regex=r"^[0-9]{4,8}$"), name="finance_account_number_digits"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class Movement(models.TextChoices):
    """Every kind of money movement the journal books."""

    TOPUP = "topup", "Top-up received"
    USAGE = "usage", "Usage consumed (per organisation and day)"
    PROMO_GRANT = "promo_grant", "Promotional credit granted"
    PROMO_EXPIRY = "promo_expiry", "Promotional credit expired"
    ADJUSTMENT = "adjustment", "Staff credit adjustment"
    INVOICE = "invoice", "Invoice finalised"
    INVOICE_VOID = "invoice_void", "Invoice voided"
    CREDIT_NOTE = "credit_note", "Credit note"
    INVOICE_PAYMENT = "invoice_payment", "Invoice payment received"
    REFUND = "refund", "Refund or dispute lost"
    WRITE_OFF = "write_off", "Invoice written off"
    OTHER = "other", "Other ledger movement"


class MovementAccount(models.Model):
    """The mapping of each kind of movement to the account on the other side of the
    customer's account (the counter account). Movements whose counter side depends on
    the movement (a provider, product groups, tax) resolve it from the chart by role and
    qualifier instead and have no row here; docs/finance.md has the full table."""

    movement = models.CharField(max_length=20, choices=Movement.choices, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["movement"]

    def __str__(self) -> str:
        return f"{self.get_movement_display()} → {self.account}"


class JournalDay(models.Model):
    """A built day (UTC). Its row is inserted in the transaction that writes the day's
    entries, first, so a concurrent builder waits on it and then finds the day built."""

    date = models.DateField(primary_key=True)
    built_at = models.DateTimeField(default=timezone.now)
    entries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d}"


class JournalEntry(models.Model):
    """A balanced booking in one currency. Never changed after its day is built."""

    date = models.DateField(db_index=True)
    currency = currency_field()
    movement = models.CharField(max_length=20, choices=Movement.choices)
    # What caused it, unique: "ledger:<id>", "usage:<org>:<currency>:<date>", "invoice:<id>",
    # "invoice:<id>:void", "credit_note:<id>", "write_off:<audit id>".
    source = models.CharField(max_length=120, unique=True)
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    document = models.CharField(max_length=36, blank=True, help_text="Invoice, credit note or payment number.")
    text = models.CharField(max_length=200)
    payment_id = models.BigIntegerField(null=True, blank=True, help_text="payments.Payment this money came with.")
    refund_id = models.BigIntegerField(null=True, blank=True, help_text="payments.Refund this money left with.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "journal entries"
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["payment_id"], condition=Q(payment_id__isnull=False), name="finance_entry_payment"),
                   models.Index(fields=["refund_id"], condition=Q(refund_id__isnull=False), name="finance_entry_refund")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.get_movement_display()} {self.document or self.source}"


class JournalLine(models.Model):
    """One side of an entry: signed, debit positive, at the currency's minor unit."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    amount = money_field(help_text="Debit positive, credit negative; at the currency's minor unit.")
    # Customer-side lines name the organisation (receivables and credit per customer).
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", db_index=False)

    class Meta:
        indexes = [models.Index(fields=["organization"], condition=Q(organization__isnull=False),
                                name="finance_line_org")]

    def __str__(self) -> str:
        return f"{self.account.number} {self.amount}"


class LedgerDayClose(models.Model):
    """The credit ledger's running sums (12 places) for one organisation and currency at
    the end of a built day on which it moved: the carry of the cents rounding."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)
    currency = currency_field()
    date = models.DateField()
    amount = money_field(help_text="Sum of every ledger entry up to the end of the day.")
    promo_amount = money_field(help_text="Sum of their promotional parts.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "currency", "date"],
                                               name="finance_close_org_currency_date_uniq")]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.currency} {self.date}"


class JournalDayTotal(models.Model):
    """The sum of a built day's journal lines per currency, account and movement (a few
    dozen rows a day). Written by `journal_build_day` with the lines, in the same
    transaction; never changed after, as the lines are not."""

    date = models.DateField()
    currency = currency_field()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    movement = models.CharField(max_length=20, choices=Movement.choices)
    amount = money_field(help_text="Sum of the lines: debit positive, credit negative; whole minor units.")
    lines = models.PositiveIntegerField(help_text="How many lines it sums.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["date", "currency", "account", "movement"],
                                               name="finance_daytotal_uniq")]
        indexes = [models.Index(fields=["account", "currency", "date"], name="finance_daytotal_account")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.currency} {self.account_id} {self.movement} {self.amount}"


class JournalOrgMonth(models.Model):
    """Per organisation, currency and calendar month, what the revenue report reads of the
    built days of that month instead of their rows: the usage the journal recognised (its
    usage entries' counter lines, negated: revenue positive, whole minor units) and the
    credit ledger's top-ups (12 places). Written by `journal_build_day` with the day's
    lines, in the same transaction (`ORG_MONTH_SQL`), adding the day to its month; never
    changed otherwise, as the days it sums are not (`test_journal_org_month`)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)
    currency = currency_field()
    month = models.DateField(help_text="The month's first day.")
    usage = money_field(help_text="Usage recognised on the month's built days (revenue positive).")
    topups = money_field(help_text="Top-ups in the credit ledger on the month's built days.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "currency", "organization"],
                                               name="finance_orgmonth_uniq")]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.currency} {self.month:%Y-%m}"
