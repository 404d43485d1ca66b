from decimal import Decimal

from rest_framework import serializers

from accounts.models import Organization
from core.api.serializers import StrictSerializer
from core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS
from pricing.models import (
    QUANTITY_DECIMAL_PLACES,
    QUANTITY_MAX_DIGITS,
    BillingModel,
    Contract,
    ContractPrice,
    OverrideKind,
    Price,
    PriceTier,
    PriceUnit,
    PricingModel,
    Product,
    ProductGroup,
    ProductKind,
    ResourceState,
)


def money(**kwargs):
    return serializers.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs)


def quantity(**kwargs):
    return serializers.DecimalField(max_digits=QUANTITY_MAX_DIGITS, decimal_places=QUANTITY_DECIMAL_PLACES, **kwargs)


class ProductSerializer(serializers.ModelSerializer):
    group = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Product
        fields = ["id", "code", "name", "description", "group", "kind", "billing_model", "unit_label", "vcpus",
                  "ram_gb", "gpu_model", "gpu_count", "local_disk_gb", "is_active"]
        read_only_fields = fields


SMALLINT_MAX = 32_767
INTEGER_MAX = 2_147_483_647


class ProductWriteSerializer(StrictSerializer):
    code = serializers.SlugField(max_length=60)
    name = serializers.CharField(max_length=150)
    description = serializers.CharField(required=False, allow_blank=True)
    group = serializers.SlugRelatedField(slug_field="slug", queryset=ProductGroup.objects.all())
    kind = serializers.ChoiceField(choices=ProductKind.choices)
    billing_model = serializers.ChoiceField(choices=BillingModel.choices)
    unit_label = serializers.CharField(max_length=30, required=False, allow_blank=True)
    # Bounded by their columns (smallint, integer): beyond them PostgreSQL refused the
    # INSERT and the API answered 500.
    vcpus = serializers.IntegerField(min_value=1, max_value=SMALLINT_MAX, required=False, allow_null=True)
    ram_gb = serializers.IntegerField(min_value=0, max_value=INTEGER_MAX, required=False, allow_null=True)
    gpu_model = serializers.CharField(max_length=40, required=False, allow_blank=True)
    gpu_count = serializers.IntegerField(min_value=0, max_value=SMALLINT_MAX, required=False)
    local_disk_gb = serializers.IntegerField(min_value=0, max_value=INTEGER_MAX, required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


class ProductUpdateSerializer(ProductWriteSerializer):
    """Everything but the code, which the platform refers to."""

    code = None


TIER_UP_TO_HELP = ("Inclusive, as Stripe's and Lago's tiers: this tier holds the quantities above the previous "
                   "tier's up_to (from 0 for the first) up to and including this one, so 10,000 units under a "
                   "volume tier up to 10,000 pay that tier's price. null on the last tier only: no upper bound.")


class TierSerializer(StrictSerializer):
    up_to = quantity(min_value=0, allow_null=True, help_text=TIER_UP_TO_HELP)
    unit_amount = money(min_value=0, required=False, default=Decimal("0"))
    flat_amount = money(min_value=0, required=False, default=Decimal("0"))


class TierReadSerializer(serializers.ModelSerializer):
    class Meta:
        model = PriceTier
        fields = ["up_to", "unit_amount", "flat_amount"]
        read_only_fields = fields
        extra_kwargs = {"up_to": {"help_text": TIER_UP_TO_HELP}}


class PriceSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="code", read_only=True)
    tiers = TierReadSerializer(many=True, read_only=True)

    class Meta:
        model = Price
        fields = ["id", "product", "currency", "state", "unit", "pricing_model", "amount", "package_size",
                  "included_quantity", "monthly_cap", "min_billable_minutes", "valid_from", "valid_to", "note",
                  "tiers", "created_at"]
        read_only_fields = fields


class PriceCreateSerializer(StrictSerializer):
    product = serializers.SlugRelatedField(slug_field="code", queryset=Product.objects.all())
    currency = serializers.CharField(max_length=3)
    state = serializers.ChoiceField(choices=ResourceState.choices, default=ResourceState.RUNNING)
    unit = serializers.ChoiceField(choices=PriceUnit.choices, required=False)
    pricing_model = serializers.ChoiceField(choices=PricingModel.choices, default=PricingModel.PER_UNIT)
    amount = money(required=False, default=Decimal("0"))
    tiers = TierSerializer(many=True, required=False, default=list)
    package_size = quantity(required=False, allow_null=True)
    included_quantity = quantity(required=False, default=Decimal("0"))
    monthly_cap = money(required=False, allow_null=True)
    min_billable_minutes = serializers.IntegerField(min_value=0, required=False, default=0)
    valid_from = serializers.DateTimeField()
    valid_to = serializers.DateTimeField(required=False, allow_null=True)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class PriceEndSerializer(StrictSerializer):
    valid_to = serializers.DateTimeField()


class EveryStateChoiceField(serializers.ChoiceField):
    """A contract override's state; a blank one (every state of the product) reads as null,
    since "" is no state the schema's enum could name."""

    def to_representation(self, value):
        return None if value == "" else super().to_representation(value)


class ContractPriceSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="code", read_only=True)
    state = EveryStateChoiceField(choices=ResourceState.choices, allow_null=True, read_only=True,
                                  help_text="null: the override applies in every state of the product.")

    class Meta:
        model = ContractPrice
        fields = ["product", "state", "kind", "amount", "discount_percent", "monthly_cap"]
        read_only_fields = fields


class ContractSerializer(serializers.ModelSerializer):
    prices = ContractPriceSerializer(many=True, read_only=True)

    class Meta:
        model = Contract
        fields = ["id", "organization", "name", "currency", "valid_from", "valid_to", "committed_monthly_minimum",
                  "note", "prices", "created_at"]
        read_only_fields = fields


class OverrideSerializer(StrictSerializer):
    product = serializers.SlugRelatedField(slug_field="code", queryset=Product.objects.all())
    state = serializers.ChoiceField(choices=ResourceState.choices, required=False, default="")
    kind = serializers.ChoiceField(choices=OverrideKind.choices)
    amount = money(required=False, allow_null=True)
    discount_percent = serializers.DecimalField(max_digits=7, decimal_places=4, required=False, allow_null=True)
    monthly_cap = money(required=False, allow_null=True)


class ContractCreateSerializer(StrictSerializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())
    name = serializers.CharField(max_length=150)
    valid_from = serializers.DateTimeField()
    valid_to = serializers.DateTimeField(required=False, allow_null=True)
    committed_monthly_minimum = money(required=False, default=Decimal("0"))
    note = serializers.CharField()
    prices = OverrideSerializer(many=True)


class ContractEndSerializer(StrictSerializer):
    valid_to = serializers.DateTimeField()
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class QuoteRequestSerializer(StrictSerializer):
    product = serializers.SlugRelatedField(slug_field="code", queryset=Product.objects.all())
    state = serializers.ChoiceField(choices=ResourceState.choices, default=ResourceState.RUNNING)
    quantity = quantity(required=False, allow_null=True, min_value=0)
    duration_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=60 * 24 * 3660)
    at = serializers.DateTimeField(required=False, help_text="Default: now.")
    organization = serializers.IntegerField(required=False, help_text="Platform callers name the organisation.")
    parent_billing_model = serializers.ChoiceField(choices=[("hourly", "hourly"), ("monthly", "monthly")],
                                                   required=False, help_text="Add-ons: how the parent is billed.")

    def validate(self, attrs):
        if attrs.get("quantity") is None and attrs.get("duration_minutes") is None:
            raise serializers.ValidationError("Give a quantity, a duration_minutes, or both.")
        return attrs


class BreakdownLineSerializer(serializers.Serializer):
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=40, decimal_places=12)
    unit_amount = money()
    flat_amount = money()
    amount = serializers.DecimalField(max_digits=40, decimal_places=12)


class QuoteSerializer(serializers.Serializer):
    organization = serializers.IntegerField()
    product = serializers.CharField()
    state = serializers.CharField()
    at = serializers.DateTimeField()
    currency = serializers.CharField()
    unit = serializers.CharField()
    rate = serializers.DecimalField(max_digits=40, decimal_places=12)
    billing_model = serializers.CharField()
    pricing_model = serializers.CharField()
    source = serializers.CharField()
    price_id = serializers.IntegerField(allow_null=True)
    contract_id = serializers.IntegerField(allow_null=True)
    amount = serializers.DecimalField(max_digits=40, decimal_places=12)
    rounded_amount = serializers.CharField(help_text="Rounded half-up to the currency's minor unit, as on an invoice line.")
    breakdown = BreakdownLineSerializer(many=True)


class EffectivePriceSerializer(serializers.Serializer):
    product = serializers.CharField(source="product.code")
    state = serializers.CharField()
    unit = serializers.CharField(source="price.unit")
    rate = serializers.DecimalField(source="price.amount", max_digits=40, decimal_places=12)
    list_rate = serializers.DecimalField(source="price.list_amount", max_digits=40, decimal_places=12)
    currency = serializers.CharField(source="price.currency")
    billing_model = serializers.CharField(source="price.billing_model")
    pricing_model = serializers.CharField(source="price.pricing_model")
    monthly_cap = money(source="price.monthly_cap", allow_null=True)
    source = serializers.CharField(source="price.source")
    contract_id = serializers.IntegerField(source="price.contract_id", allow_null=True)
    valid_to = serializers.DateTimeField(source="price.valid_to", allow_null=True)
