"""The price book: products, effective-dated list prices with tiers, and contracts.

Invariants (enforced by `pricing.services`, and by the database where it can):
- A price is in force over the half-open period `[valid_from, valid_to)`; `valid_to` null
  means "until further notice". Prices start and end on whole minutes.
- For one product, currency, resource state and unit, list prices never overlap in time
  (PostgreSQL: an exclusion constraint; elsewhere: the service checks under a row lock).
- A price that has taken effect is never edited: it may only be ended, and a new price
  starts where it ends. What was charged under it stays explained by it.
- A contract belongs to one organisation; an organisation's contracts never overlap in
  time. While a contract is valid, its overrides win over list prices.
- Amounts and rates are `core.money.money_field` Decimals in the price's currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, overload

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from core.money import currency_field, format_rate, money_field

# Quantities (GB, hours, packages) are Decimals too: 18 places before the point, 6 after.
QUANTITY_MAX_DIGITS = 24
QUANTITY_DECIMAL_PLACES = 6


if TYPE_CHECKING:
    from core.money import DecimalColumn, NullableDecimalColumn


@overload
def quantity_field(*, null: Literal[False] = False, **kwargs: Any) -> DecimalColumn: ...
@overload
def quantity_field(*, null: Literal[True], **kwargs: Any) -> NullableDecimalColumn: ...
def quantity_field(*, null: bool = False, **kwargs: Any) -> DecimalColumn | NullableDecimalColumn:
    kwargs.setdefault("max_digits", QUANTITY_MAX_DIGITS)
    kwargs.setdefault("decimal_places", QUANTITY_DECIMAL_PLACES)
    return models.DecimalField(null=null, **kwargs)


class ProductKind(models.TextChoices):
    SERVER = "server", "Server flavour"
    STORAGE = "storage", "Block storage"
    BANDWIDTH = "bandwidth", "Bandwidth"
    IP_ADDRESS = "ip_address", "IP address"
    ADDON = "addon", "Add-on"


class BillingModel(models.TextChoices):
    HOURLY = "hourly", "Hourly (per minute at an hourly rate)"
    MONTHLY = "monthly", "Monthly (per calendar month, prorated by the minute)"
    ADDON = "addon", "Add-on (billed like the resource it is attached to)"
    OVERAGE = "overage", "Overage (per unit above an included allowance per month)"


class PricingModel(models.TextChoices):
    FLAT = "flat", "Flat amount"
    PER_UNIT = "per_unit", "Per unit"
    GRADUATED = "graduated", "Graduated tiers"
    VOLUME = "volume", "Volume tiers"
    PACKAGE = "package", "Package (per N units, started packages round up)"


TIERED_MODELS = frozenset({PricingModel.GRADUATED, PricingModel.VOLUME})


class PriceUnit(models.TextChoices):
    """What one `amount` of a price buys."""

    HOUR = "hour", "per hour"
    MONTH = "month", "per month"
    GB = "gb", "per GB"
    GB_MONTH = "gb_month", "per GB-month"
    UNIT = "unit", "per unit"


class ResourceState(models.TextChoices):
    """States a resource can be in. Usage records them; the price book prices them.

    Running, stopped and hibernated have their own rates (a hibernated server still pays
    for its disk and IP). The others are transitional or broken and cost nothing unless
    a price is set for them explicitly."""

    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    HIBERNATING = "hibernating", "Hibernating"
    HIBERNATED = "hibernated", "Hibernated"
    STARTING = "starting", "Starting"
    ERROR = "error", "Error"
    DELETED = "deleted", "Deleted"


BILLABLE_STATES = frozenset({ResourceState.RUNNING, ResourceState.STOPPED, ResourceState.HIBERNATED})
FREE_BY_DEFAULT_STATES = frozenset(set(ResourceState) - BILLABLE_STATES)
# Billable states in the order people read them, with their labels.
STATE_ORDER_LABELS = [(s.value, s.label) for s in (ResourceState.RUNNING, ResourceState.STOPPED,
                                                   ResourceState.HIBERNATED)]


class ProductGroup(models.Model):
    """A section of the catalogue ("GPU servers", "Storage", …)."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """Something we sell. Its prices live in `Price`; it is never deleted once priced."""

    code = models.SlugField(max_length=60, unique=True, help_text="Stable identifier used by the platform, e.g. gpu-h100-8x.")
    name = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    group = models.ForeignKey(ProductGroup, on_delete=models.PROTECT, related_name="products")
    kind = models.CharField(max_length=12, choices=ProductKind.choices)
    billing_model = models.CharField(max_length=10, choices=BillingModel.choices)
    # What a quantity of this product counts, for people ("GB", "IPv4 address").
    unit_label = models.CharField(max_length=30, blank=True)
    # Server flavour attributes (blank for other kinds).
    vcpus = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name="vCPUs")
    ram_gb = models.PositiveIntegerField(null=True, blank=True, verbose_name="RAM (GB)")
    gpu_model = models.CharField(max_length=40, blank=True, verbose_name="GPU model")
    gpu_count = models.PositiveSmallIntegerField(default=0, verbose_name="GPUs")
    local_disk_gb = models.PositiveIntegerField(null=True, blank=True, verbose_name="Local disk (GB)")
    is_active = models.BooleanField(default=True, help_text="Inactive products are hidden from the catalogue but keep their prices.")
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group__position", "position", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(billing_model="addon", kind="addon") | ~Q(billing_model="addon"),
                name="product_addon_billing_only_for_addons",
                violation_error_message="Only add-on products use the add-on billing model, and add-ons always do.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Price(models.Model):
    """A list price of a product in one currency and resource state, effective-dated.

    `amount` means, by `pricing_model`: flat → the whole amount; per unit → per `unit`;
    package → per package of `package_size` units; graduated/volume → unused (0), the
    tiers carry the amounts."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    currency = currency_field()
    state = models.CharField(max_length=12, choices=ResourceState.choices, default=ResourceState.RUNNING)
    unit = models.CharField(max_length=10, choices=PriceUnit.choices)
    pricing_model = models.CharField(max_length=10, choices=PricingModel.choices, default=PricingModel.PER_UNIT)
    amount = money_field(default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))])
    package_size = quantity_field(null=True, blank=True, help_text="Package pricing: units per package.")
    included_quantity = quantity_field(
        default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))],
        help_text="Overage: units per calendar month that cost nothing.",
    )
    monthly_cap = money_field(
        null=True, blank=True, validators=[MinValueValidator(Decimal("0"))],
        help_text="Hourly: a calendar month never costs more than this.",
    )
    min_billable_minutes = models.PositiveIntegerField(
        default=0, help_text="Hourly: a run shorter than this is billed as this many minutes."
    )
    valid_from = models.DateTimeField(help_text="In force from this minute (inclusive, UTC).")
    valid_to = models.DateTimeField(null=True, blank=True, help_text="Until this minute (exclusive); empty = open-ended.")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["product__code", "currency", "state", "valid_from"]
        indexes = [models.Index(fields=["product", "currency", "state", "valid_from"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="price_amount_nonneg",
                violation_error_message="Prices cannot be negative."),
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                                   name="price_valid_range",
                violation_error_message="A price must end after it starts."),
            models.CheckConstraint(condition=Q(monthly_cap__isnull=True) | Q(monthly_cap__gte=models.F("amount")),
                                   name="price_cap_at_least_rate",
                violation_error_message="The monthly cap cannot be below the hourly rate."),
            models.CheckConstraint(condition=~Q(pricing_model="package") | Q(package_size__gt=0),
                                   name="price_package_size_positive",
                violation_error_message="Package pricing needs a package size above 0."),
            # PostgreSQL also has `price_no_overlap` (EXCLUDE USING gist), see migration 0002.
        ]

    def __str__(self) -> str:
        end = f"{self.valid_to:%Y-%m-%d %H:%M}" if self.valid_to else "…"
        return f"{self.product.code} {self.state} {format_rate(self.amount, self.currency)}/{self.unit} [{self.valid_from:%Y-%m-%d %H:%M}, {end})"


class PriceTier(models.Model):
    """One band of a graduated or volume price, written as Stripe and Lago write tiers:
    it holds the quantities above the previous band's `up_to` (from 0 for the first) up to
    and including its own `up_to`. Only the last band is unbounded (`up_to` null).

    Until migration 0006 bands were stored as `[lower, upper)`; that migration rewrote them
    so that every quantity stays in its band (see `docs/pricing.md`)."""

    price = models.ForeignKey(Price, on_delete=models.CASCADE, related_name="tiers")
    up_to = quantity_field(null=True, blank=True, verbose_name="up to",
                           help_text="Inclusive: this tier holds quantities up to and including this one; "
                                     "empty = no upper bound (the last tier).")
    unit_amount = money_field(default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))])
    flat_amount = money_field(default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        ordering = ["price", models.F("up_to").asc(nulls_last=True)]
        constraints = [
            models.UniqueConstraint(fields=["price", "up_to"], name="price_tier_unique_up_to", nulls_distinct=False,
                                    violation_error_message="Two tiers go up to the same quantity."),
            models.CheckConstraint(condition=Q(up_to__isnull=True) | Q(up_to__gte=0), name="price_tier_up_to_nonneg",
                violation_error_message="A tier's up to cannot be negative."),
            models.CheckConstraint(condition=Q(unit_amount__gte=0, flat_amount__gte=0), name="price_tier_nonneg",
                violation_error_message="Tier amounts cannot be negative."),
        ]

    def __str__(self) -> str:
        bound = f"up to {self.up_to}" if self.up_to is not None else "unbounded"
        return f"{bound}: {self.unit_amount} + {self.flat_amount}"


class Contract(models.Model):
    """A customer's negotiated terms. Its overrides win over list prices while it is valid."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="contracts")
    name = models.CharField(max_length=150)
    currency = currency_field()
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    committed_monthly_minimum = money_field(
        default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))],
        help_text="Spend the customer commits to per calendar month; invoices top up to it.",
    )
    note = models.TextField(help_text="What was agreed, with whom, and where the signed copy is.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["organization__name", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                                   name="contract_valid_range",
                violation_error_message="A contract must end after it starts."),
            models.CheckConstraint(condition=Q(committed_monthly_minimum__gte=0), name="contract_minimum_nonneg",
                violation_error_message="The committed minimum cannot be negative."),
            # PostgreSQL also has `contract_no_overlap` (EXCLUDE USING gist), see migration 0002.
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.organization})"


class OverrideKind(models.TextChoices):
    ABSOLUTE = "absolute", "Absolute price"
    DISCOUNT = "discount", "Percentage off list price"


class ContractPrice(models.Model):
    """One product's override in a contract. `state` blank = every state of the product.

    The list price supplies the unit, billing and pricing model; the override replaces
    its rate (absolute; per-unit, flat and package prices only) or takes a percentage off
    every amount of it (discount, any pricing model)."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="prices")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="contract_prices")
    state = models.CharField(max_length=12, choices=ResourceState.choices, blank=True)
    kind = models.CharField(max_length=10, choices=OverrideKind.choices)
    amount = money_field(null=True, blank=True, validators=[MinValueValidator(Decimal("0"))])
    discount_percent = models.DecimalField(
        max_digits=7, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    monthly_cap = money_field(null=True, blank=True, validators=[MinValueValidator(Decimal("0"))],
                              help_text="Absolute overrides of hourly prices: the cap (empty = the list cap).")

    class Meta:
        ordering = ["contract", "product__code", "state"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "product", "state"], name="contract_price_unique",
                                    violation_error_message="This product is already overridden for this state."),
            models.CheckConstraint(
                condition=(Q(kind="absolute", amount__isnull=False, amount__gte=0, discount_percent__isnull=True)
                           | Q(kind="discount", amount__isnull=True, discount_percent__gte=0,
                               discount_percent__lte=100)),
                name="contract_price_kind_fields",
                violation_error_message="An absolute override needs an amount (and no discount); a discount needs a percentage from 0 to 100 (and no amount).",
            ),
        ]

    def __str__(self) -> str:
        what = f"{self.amount}" if self.kind == OverrideKind.ABSOLUTE else f"-{self.discount_percent}%"
        return f"{self.product.code} {self.state or 'all states'} {what}"


class EffectiveRate(models.Model):
    """Read-only rows of the view `pricing_effective_rate` (see `pricing.sql`), so Python
    code reads it with the ORM's type conversions on every database. Not a table: the
    view is created by migration 0002. `price_id` is not unique across organisations:
    read with `.values()` / `.values_list()`, never by primary key."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.DO_NOTHING, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.DO_NOTHING, related_name="+")
    state = models.CharField(max_length=12, choices=ResourceState.choices)
    currency = models.CharField(max_length=3)
    unit = models.CharField(max_length=10, choices=PriceUnit.choices)
    billing_model = models.CharField(max_length=10, choices=BillingModel.choices)
    rate = money_field()
    hourly_rate = money_field(null=True)
    monthly_cap = money_field(null=True)
    min_billable_minutes = models.IntegerField()
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True)
    source = models.CharField(max_length=8)
    # Declared the primary key only because Django needs one; see the docstring.
    price_id = models.BigIntegerField(primary_key=True)
    contract = models.ForeignKey(Contract, on_delete=models.DO_NOTHING, null=True, related_name="+")
    contract_price = models.ForeignKey(ContractPrice, on_delete=models.DO_NOTHING, null=True, related_name="+")

    class Meta:
        managed = False
        db_table = "pricing_effective_rate"
        ordering = ["organization_id", "product_id", "state", "unit", "valid_from"]

    def __str__(self) -> str:
        return f"org {self.organization_id} product {self.product_id} {self.state} {self.rate}/{self.unit} ({self.source})"
