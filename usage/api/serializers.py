from rest_framework import serializers

from core.api.serializers import StrictSerializer
from core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS
from usage.ingest import MAX_BATCH
from usage.labels import MAX_KEY_LENGTH, LabelError, check_key
from usage.models import Project, Resource, StateInterval
from usage.selectors import GRANULARITIES
from usage.spend import GROUPINGS, INTERVALS, range_error, spend_zone


def _money(**kwargs):
    return serializers.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs)


class EventBatchSerializer(StrictSerializer):
    """Only the envelope is checked here: each event is checked on its own by
    `usage.ingest`, so one bad event is rejected alone instead of failing the batch."""

    events = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=MAX_BATCH,
        help_text=("Lifecycle events {id, type, resource, timestamp, …} and metered quantities "
                   "{id, type: 'metered', resource, timestamp, metric, quantity}."),
    )


class EventResultSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    source = serializers.CharField(required=False, allow_null=True,
                                   help_text="A CloudEvent's source (only in the answer to CloudEvents).")
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    reason = serializers.CharField(required=False)


class EventBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventResultSerializer(many=True)


class ResourceSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="code", read_only=True)
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True,
                                           help_text="The project's slug; null: no project.")
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True), read_only=True,
                                   help_text="Free-form labels, key → value.")

    class Meta:
        model = Resource
        fields = ["id", "organization", "external_id", "kind", "name", "product", "project", "labels", "state",
                  "state_since", "created_at", "deleted_at"]
        read_only_fields = fields


class ProjectSerializer(serializers.ModelSerializer):
    resources = serializers.IntegerField(source="resource_count", read_only=True,
                                         help_text="How many resources are in it (deleted ones included).")

    class Meta:
        model = Project
        fields = ["id", "organization", "slug", "name", "created_at", "resources"]
        read_only_fields = fields


class StateIntervalSerializer(serializers.ModelSerializer):
    state = serializers.CharField(source="eff_state")
    product = serializers.SlugRelatedField(source="eff_product", slug_field="code", read_only=True)
    start = serializers.DateTimeField(source="started_at")
    end = serializers.SerializerMethodField()

    class Meta:
        model = StateInterval
        fields = ["id", "start", "end", "state", "product", "source", "reason"]
        read_only_fields = fields

    def get_end(self, obj) -> str | None:
        from usage.models import from_minute

        return None if obj.end_minute is None else from_minute(obj.end_minute).isoformat().replace("+00:00", "Z")


class UsageQuerySerializer(StrictSerializer):
    start = serializers.DateTimeField(help_text="Inclusive, ISO 8601.")
    end = serializers.DateTimeField(help_text="Exclusive, ISO 8601.")
    granularity = serializers.ChoiceField(choices=GRANULARITIES, default="day")
    resource = serializers.IntegerField(required=False, min_value=1)
    product = serializers.SlugField(required=False)
    organization = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        from usage.selectors import MAX_POINTS

        span = attrs["end"] - attrs["start"]
        unit = {"minute": 60, "hour": 3600, "day": 86400}[attrs["granularity"]]
        if span.total_seconds() / unit > MAX_POINTS[attrs["granularity"]]:
            raise serializers.ValidationError(
                {"granularity": [f"At most {MAX_POINTS[attrs['granularity']]} periods; pick a coarser granularity."]})
        return attrs


class UsagePointSerializer(serializers.Serializer):
    period = serializers.DateTimeField()
    resource = serializers.IntegerField()
    product = serializers.IntegerField()
    state = serializers.CharField()
    minutes = serializers.IntegerField()
    amount = _money()
    currency = serializers.CharField()


class UsageSeriesSerializer(serializers.Serializer):
    """The answer of `GET /usage`: the series with its granularity and the organisation's
    currency (the schema used to document a bare list, the answer was always this object)."""

    granularity = serializers.ChoiceField(choices=GRANULARITIES)
    currency = serializers.CharField()
    results = UsagePointSerializer(many=True)


class MonthToDateSerializer(serializers.Serializer):
    month = serializers.DateField()
    amount = _money(help_text="The interim invoice's total so far, tax included: the figure every page shows.")
    subtotal = _money(help_text="Its lines before discounts and tax.")
    tax_total = _money()
    currency = serializers.CharField()
    as_of = serializers.DateTimeField(allow_null=True, help_text=(
        "The cut-off: charges up to this minute (exclusive), where usage is metered and rolled up. "
        "null: nothing metered yet."))
    metered_until = serializers.DateTimeField(allow_null=True, help_text="The same as as_of (kept for old clients).")
    by_product = serializers.DictField(child=_money(), help_text="Product code → its lines' amounts before tax.")


class SpendQuerySerializer(StrictSerializer):
    start = serializers.DateField(help_text="First day, included (ISO 8601 date, UTC).")
    end = serializers.DateField(help_text="Day after the last one: the range is [start, end).")
    group_by = serializers.ChoiceField(choices=list(GROUPINGS), default="product")
    interval = serializers.ChoiceField(choices=INTERVALS, default="day")
    label_key = serializers.CharField(required=False, max_length=MAX_KEY_LENGTH, help_text=(
        "With group_by=label: the label whose values group the spend (resources without it: key \"\")."))
    organization = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs):
        from django.utils import timezone

        if attrs["group_by"] == "label":
            try:
                check_key(attrs.get("label_key"))
            except LabelError as exc:
                raise serializers.ValidationError({"label_key": [f"Grouping by label: {exc}"]}) from None
        elif "label_key" in attrs:
            raise serializers.ValidationError({"label_key": ["Only with group_by=label."]})

        problem = range_error(attrs["start"], attrs["end"], today=timezone.now().astimezone(spend_zone()).date())
        if problem:
            raise serializers.ValidationError({problem[0]: [problem[1]]})
        return attrs


class SpendGroupSerializer(serializers.Serializer):
    key = serializers.CharField(help_text=("Product code, the resource's external id, the project's slug (\"\": no "
                                           "project) or the label's value (\"\": not labelled)."))
    name = serializers.CharField()
    total = _money()


class SpendAmountSerializer(serializers.Serializer):
    group = serializers.CharField(help_text="The group's key.")
    amount = _money()


class SpendPeriodSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField(help_text="Exclusive; a period is clipped to the range.")
    total = _money()
    amounts = SpendAmountSerializer(many=True, help_text="Groups with spend in the period, in the groups' order.")


class SpendSerializer(serializers.Serializer):
    """Spend in whole minor units: per invoice line, the line's rounded amount split over its
    days, so every grouping adds up to the same total and a month to its invoice's usage."""

    start = serializers.DateField()
    end = serializers.DateField()
    interval = serializers.ChoiceField(choices=INTERVALS)
    group_by = serializers.ChoiceField(choices=list(GROUPINGS))
    label_key = serializers.CharField(help_text="With group_by=label: the label's key; otherwise empty.")
    time_zone = serializers.CharField(help_text="The zone days are taken in (UTC).")
    currency = serializers.CharField()
    as_of = serializers.DateTimeField(allow_null=True, help_text="Spend up to this instant (exclusive); null: "
                                                                 "nothing metered yet.")
    total = _money()
    groups = SpendGroupSerializer(many=True, help_text="Largest first.")
    periods = SpendPeriodSerializer(many=True)


class SpendForecastResourceSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    month_to_date = _money()
    hourly_rate = _money()
    forecast = _money()


class SpendForecastSerializer(serializers.Serializer):
    """An estimate: month to date (this month's usage lines so far, before tax) plus what
    runs now at its current hourly rate for the hours from `as_of` to month end."""

    month = serializers.DateField()
    as_of = serializers.DateTimeField(allow_null=True)
    currency = serializers.CharField()
    month_to_date = _money()
    hourly_rate = _money(help_text="The live resources' burn rate now, per hour.")
    hours_left = serializers.DecimalField(max_digits=8, decimal_places=4)
    forecast = _money()
    method = serializers.CharField()
    resources = SpendForecastResourceSerializer(many=True)


class BillableQuerySerializer(StrictSerializer):
    month = serializers.RegexField(r"^\d{4}-\d{2}$", required=False, help_text="YYYY-MM (UTC); this month if omitted.")
    organization = serializers.IntegerField(required=False, help_text="Platform keys and staff: the organisation.")


class BillableStateSerializer(serializers.Serializer):
    state = serializers.CharField()
    measured_minutes = serializers.IntegerField(help_text="Minutes the platform reported in this state.")
    billable_minutes = serializers.IntegerField(help_text="Of those, minutes billed (minimum time not included).")
    excluded_minutes = serializers.IntegerField()
    amount = _money(help_text="What the rated spans in this state cost, minimum time included (12 places).")
    reason = serializers.CharField(help_text="Why minutes were excluded; empty when none were.")


class BillableAddonSerializer(serializers.Serializer):
    product = serializers.CharField(source="product.code")
    attached_minutes = serializers.IntegerField(help_text="Attached while the server existed.")
    billable_minutes = serializers.IntegerField()
    amount = _money()
    cap_saved = _money()


class MeasuredBillableSerializer(serializers.Serializer):
    resource = serializers.IntegerField(source="resource.pk")
    month = serializers.DateField(help_text="First day of the month.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="The month's end, or the cut-off up to which usage is rated.")
    complete = serializers.BooleanField(help_text="The whole month is rated and rolled up.")
    currency = serializers.CharField()
    measured_minutes = serializers.IntegerField()
    billable_minutes = serializers.IntegerField()
    excluded_minutes = serializers.IntegerField()
    minimum_minutes = serializers.IntegerField(help_text="Minutes minimum billable time added.")
    minimum_amount = _money()
    cap_saved = _money(help_text="What monthly caps took off, server and add-ons.")
    amount = _money(help_text="Server and add-ons, 12 places (the invoice rounds each line once).")
    states = BillableStateSerializer(many=True)
    addons = BillableAddonSerializer(many=True)
    notes = serializers.ListField(child=serializers.CharField())
