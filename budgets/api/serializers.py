from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.scopes import Role
from budgets.models import Budget, BudgetAlert
from core.api.serializers import StrictSerializer
from core.money import round_money
from usage.labels import MAX_SLUG_LENGTH, SLUG

MONEY = {"max_digits": 17, "decimal_places": 2, "min_value": Decimal("0.01"), "coerce_to_string": True}


class AlertSerializer(serializers.ModelSerializer):
    spend = serializers.SerializerMethodField()

    class Meta:
        model = BudgetAlert
        fields = ["id", "month", "kind", "threshold", "currency", "amount", "spend", "recipients", "created_at"]
        read_only_fields = fields

    def get_spend(self, obj: BudgetAlert) -> str:
        return str(round_money(obj.spend, obj.currency))


class BudgetSerializer(serializers.ModelSerializer):
    actual = serializers.SerializerMethodField(help_text="Month-to-date spend at the last evaluation; null before.")
    forecast = serializers.SerializerMethodField(help_text="Spend forecast to the month's end; null before.")
    percent_used = serializers.DecimalField(max_digits=8, decimal_places=1, read_only=True, coerce_to_string=True)
    capped = serializers.SerializerMethodField(help_text="True while the hard cap holds resources hibernated.")
    alerts = serializers.SerializerMethodField(help_text="The newest alerts sent (at most 20).")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True,
                                           help_text="Scope \"project\": the project's slug; null for the whole "
                                                     "organisation.")

    class Meta:
        model = Budget
        fields = ["id", "organization", "scope", "project", "name", "currency", "amount", "actual_thresholds",
                  "forecast_thresholds", "recipient_roles", "recipient_emails", "cap_amount", "actual", "forecast",
                  "percent_used", "as_of", "evaluated_at", "armed_month", "alerts_sent", "capped", "capped_at",
                  "capped_resources", "alerts", "created_at", "updated_at"]
        read_only_fields = fields

    def _rounded(self, value, currency: str) -> str | None:
        return None if value is None else str(round_money(value, currency))

    def get_actual(self, obj: Budget) -> str | None:
        return self._rounded(obj.actual, obj.currency)

    def get_forecast(self, obj: Budget) -> str | None:
        return self._rounded(obj.forecast, obj.currency)

    def get_capped(self, obj: Budget) -> bool:
        return obj.capped_at is not None

    @extend_schema_field(AlertSerializer(many=True))
    def get_alerts(self, obj: Budget) -> list[dict]:
        return AlertSerializer(obj.alerts.all()[:20], many=True).data


class _Fields(StrictSerializer):
    name = serializers.CharField(max_length=100)
    amount = serializers.DecimalField(**MONEY, help_text="Monthly amount in the organisation's currency.")
    actual_thresholds = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=1000),
                                              max_length=20, help_text="Percentages of the amount, e.g. [50, 80, 100].")
    forecast_thresholds = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=1000),
                                                max_length=20, help_text="Percentages for the forecast, e.g. [100].")
    recipient_roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), max_length=4)
    recipient_emails = serializers.ListField(child=serializers.EmailField(), max_length=20)
    cap_amount = serializers.DecimalField(**MONEY, allow_null=True,
                                          help_text="Hard cap: at this month-to-date spend running resources "
                                                    "hibernate; null for none.")


class BudgetCreateSerializer(_Fields):
    organization = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                            help_text="Platform keys and staff: the organisation. Others: their own.")
    project = serializers.RegexField(SLUG, max_length=MAX_SLUG_LENGTH, required=False, allow_null=True,
                                     help_text="A project budget: the slug of one of the organisation's projects "
                                               "(set once; scope becomes \"project\"). Omitted or null: the "
                                               "whole organisation.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("actual_thresholds", "forecast_thresholds", "recipient_roles", "recipient_emails",
                     "cap_amount"):
            self.fields[name].required = False


class BudgetUpdateSerializer(_Fields):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
