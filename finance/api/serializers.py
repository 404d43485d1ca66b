"""What the reports:read API answers, as drf-spectacular documents it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.money import CurrencyError, validate_currency
from finance.exports import CSV_COLUMNS, journal_line_row
from finance.models import JournalLine
from finance.reporting import FIRST_DAY, LAST_DAY
from finance.reports.base import ChartKind, ColumnKind

COLUMN_KINDS: tuple[str, ...] = ColumnKind.__args__  # type: ignore[attr-defined]
CHART_KINDS: tuple[str, ...] = ChartKind.__args__  # type: ignore[attr-defined]


class ColumnSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The key of this column in each row of `results` and in `totals`.")
    label = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=COLUMN_KINDS,
        help_text="money: a decimal string at the currency's places; rate: a decimal string at 12 places; "
                  "quantity, percent: decimal strings; count, days: integers (days may be a decimal string); "
                  "date: YYYY-MM-DD; month: YYYY-MM; text: a string.")


class SeriesSerializer(serializers.Serializer):
    label = serializers.CharField()
    values = serializers.ListField(child=serializers.CharField(), help_text="Decimal strings, one per label.")
    kind = serializers.ChoiceField(choices=["bar", "line"], allow_null=True,
                                   help_text="How this series is drawn when not as the chart's kind (a line over "
                                             "bars, not stacked with them); null: the chart's kind.")


class ChartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CHART_KINDS)
    labels = serializers.ListField(child=serializers.CharField(), help_text="Periods (YYYY-MM, YYYY-MM-DD) or categories.")
    unit = serializers.CharField(allow_blank=True, help_text="The currency code, or GPU-hours, days, …")
    series = SeriesSerializer(many=True)


class ReportSerializer(serializers.Serializer):
    """A report over one currency and a range of UTC days, its rows paginated."""

    name = serializers.CharField()
    title = serializers.CharField()
    currency = serializers.CharField()
    start = serializers.DateField(help_text="The first day (from).")
    end = serializers.DateField(help_text="The last day (to), inclusive.")
    grain = serializers.ChoiceField(choices=["day", "month"])
    group_by = serializers.CharField(allow_null=True)
    organization = serializers.IntegerField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True)
    columns = ColumnSerializer(many=True)
    count = serializers.IntegerField(help_text="Rows in the whole report.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = serializers.ListField(
        child=serializers.DictField(), help_text="This page's rows, each keyed by `columns[].key`.")
    totals = serializers.DictField(allow_null=True, help_text="The totals row, keyed like the rows (summable "
                                                               "columns only); null when the report has none.")
    chart = ChartSerializer(allow_null=True, help_text="What the console's chart draws (the whole range, not "
                                                       "just this page).")
    notes = serializers.ListField(child=serializers.CharField(), help_text="What a reader must know.")


class JournalLineSerializer(serializers.Serializer):
    """One journal line, as the console's journal CSV writes it (same columns, same cells)."""

    date = serializers.DateField()
    entry = serializers.IntegerField()
    movement = serializers.CharField()
    document = serializers.CharField(allow_blank=True)
    text = serializers.CharField(allow_blank=True)
    currency = serializers.CharField()
    account = serializers.CharField()
    account_name = serializers.CharField()
    debit = serializers.DecimalField(max_digits=30, decimal_places=12, allow_null=True,
                                     help_text="At the currency's places; null on a credit line.")
    credit = serializers.DecimalField(max_digits=30, decimal_places=12, allow_null=True,
                                      help_text="At the currency's places; null on a debit line.")
    organization_id = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()

    def to_representation(self, instance: JournalLine) -> dict[str, Any]:
        row = dict(zip(CSV_COLUMNS, journal_line_row(instance), strict=True))
        for key in ("debit", "credit", "organization_id"):
            if row[key] == "":
                row[key] = None
        for key in ("debit", "credit"):
            if row[key] is not None:
                row[key] = str(row[key])
        return row


class JournalQuerySerializer(serializers.Serializer):
    from_ = serializers.DateField(help_text="The first day, YYYY-MM-DD.")
    to = serializers.DateField(help_text="The last day, inclusive.")
    currency = serializers.CharField(required=False, help_text="One ISO 4217 currency; empty: every currency.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def validate_currency(self, value: str) -> str:
        try:
            return validate_currency(value)
        except CurrencyError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for key in ("from", "to"):
            if not FIRST_DAY <= attrs[key] <= LAST_DAY:
                raise serializers.ValidationError(
                    {key: f"Give a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}."})
        if attrs["to"] < attrs["from"]:
            raise serializers.ValidationError({"to": "The range ends before it starts."})
        return attrs
