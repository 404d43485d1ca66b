from decimal import Decimal

from rest_framework import serializers

from core.api.serializers import MoneyField, StrictSerializer
from credits.models import AutoTopUpSettings, CreditEvent, LedgerEntry, PromoGrant, TopUp
from usage.labels import MAX_SLUG_LENGTH, SLUG

AMOUNT = {"max_digits": 20, "decimal_places": 6}
EXACT = {"max_digits": 30, "decimal_places": 12}  # stored amounts, every place kept


class BalanceSerializer(serializers.Serializer):
    organization = serializers.IntegerField(source="organization.pk")
    currency = serializers.CharField()
    balance = serializers.DecimalField(max_digits=30, decimal_places=12)
    paid = serializers.DecimalField(max_digits=30, decimal_places=12)
    promotional = serializers.DecimalField(max_digits=30, decimal_places=12, source="promo")
    burn_rate_per_hour = serializers.DecimalField(max_digits=30, decimal_places=12)
    runway_hours = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    runway_text = serializers.CharField()
    hibernated = serializers.BooleanField()
    prepaid = serializers.BooleanField()


class LedgerEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = ["id", "organization", "currency", "kind", "amount", "promo_amount", "balance_after", "reason",
                  "reference", "actor", "metering_run_id", "usage_first_id", "usage_last_id", "usage_rows",
                  "period_start", "period_end", "promo_grant", "reverses", "created_at"]

    def get_actor(self, obj) -> dict:
        if obj.actor_id:
            return {"type": "user", "id": obj.actor_id, "email": obj.actor.email}
        if obj.actor_api_key_id:
            return {"type": "api_key", "id": obj.actor_api_key_id, "prefix": obj.actor_api_key.display_prefix}
        return {"type": "system"}


class AdjustmentCreateSerializer(StrictSerializer):
    organization = serializers.IntegerField(required=False)
    amount = serializers.DecimalField(**AMOUNT)
    reason = serializers.CharField(max_length=2000)
    reference = serializers.CharField(max_length=200, required=False, default="")


class PromoGrantCreateSerializer(StrictSerializer):
    organization = serializers.IntegerField(required=False)
    amount = serializers.DecimalField(**AMOUNT, min_value=Decimal("0.000001"))
    reason = serializers.CharField(max_length=2000)
    expires_at = serializers.DateTimeField()


class PromoGrantSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromoGrant
        fields = ["id", "organization", "currency", "amount", "remaining", "expires_at", "reason", "created_at",
                  "expired_at"]


class TopUpCreateSerializer(StrictSerializer):
    organization = serializers.IntegerField(required=False)
    amount = MoneyField(max_digits=20, decimal_places=2, min_value=Decimal("0.01"))


class TopUpSerializer(serializers.ModelSerializer):
    class Meta:
        model = TopUp
        fields = ["id", "organization", "source", "status", "amount", "currency", "attempts", "next_attempt_at",
                  "last_error", "ledger_entry", "created_at", "completed_at"]


class AutoTopUpSerializer(StrictSerializer):
    enabled = serializers.BooleanField()
    threshold = serializers.DecimalField(**AMOUNT, min_value=Decimal("0"))
    amount = serializers.DecimalField(**AMOUNT, min_value=Decimal("0"))
    monthly_cap = serializers.DecimalField(**AMOUNT, min_value=Decimal("0"), allow_null=True, required=False,
                                           default=None)


class AutoTopUpSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = AutoTopUpSettings
        fields = ["organization", "enabled", "threshold", "amount", "monthly_cap", "updated_at"]
        # null while the organisation has never configured auto top-up (defaults are shown).
        extra_kwargs = {"updated_at": {"allow_null": True}}


class CreditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditEvent
        fields = ["id", "organization", "kind", "message", "data", "created_at"]


class AdmissionRequestSerializer(StrictSerializer):
    organization = serializers.IntegerField(min_value=1, help_text="The organisation that wants to start it.")
    product = serializers.SlugField(max_length=60, help_text="The product's code, e.g. gpu-h100-8x.")
    quantity = serializers.IntegerField(min_value=1, max_value=10_000, default=1,
                                        help_text="How many to start at once (their rates add up).")
    project = serializers.RegexField(
        SLUG, max_length=MAX_SLUG_LENGTH, required=False, allow_null=True,
        help_text="The slug of the project the start would be in (as its `created` event will say); "
                  "a project budget's hard cap refuses starts in its project only. Omitted: in no project.")


class AdmissionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.ChoiceField(
        choices=["no_credit", "insufficient_runway", "credit_limit_reached", "insufficient_credit_limit", "no_price",
                 "product_inactive", "organization_inactive", "budget_cap_reached"], allow_null=True,
        help_text="Why it was refused (stable codes); null when allowed.")
    message = serializers.CharField(help_text="The answer in words, for people.")
    organization = serializers.IntegerField(source="organization_id")
    product = serializers.CharField()
    quantity = serializers.IntegerField()
    currency = serializers.CharField()
    billing_mode = serializers.CharField()
    funds = serializers.DecimalField(**EXACT, help_text="Prepaid: the balance (promotional credit included). "
                                                        "Postpaid with a limit: what the limit leaves.")
    burn_rate_per_hour = serializers.DecimalField(**EXACT, help_text="Now, as metering charges it every minute.")
    added_per_hour = serializers.DecimalField(**EXACT, help_text="What the start would add per hour.")
    burn_rate_after = serializers.DecimalField(**EXACT)
    runway_hours_after = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True,
                                                  help_text="Hours the funds last at the new rate; null: unlimited.")
    min_runway_hours = serializers.DecimalField(max_digits=8, decimal_places=2)
    checked = serializers.BooleanField(help_text="False: the organisation's policy turns the check off.")
