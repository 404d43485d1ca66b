from rest_framework import serializers

from core.api.serializers import MoneyField, StrictSerializer
from invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine

MONEY = {"max_digits": 30, "decimal_places": 12}


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["position", "kind", "group", "description", "product_code", "resource_id", "state", "service_start",
                  "service_end", "quantity", "unit", "unit_price", "amount", "tax_rate", "tax_amount"]
        read_only_fields = fields


class CreditNoteLineSerializer(serializers.ModelSerializer):
    invoice_line = serializers.IntegerField(source="invoice_line.position", allow_null=True, read_only=True,
                                            help_text="Position of the invoice line credited.")

    class Meta:
        model = CreditNoteLine
        fields = ["position", "invoice_line", "description", "quantity", "unit", "unit_price", "amount", "tax_rate",
                  "tax_amount"]
        read_only_fields = fields


class CreditNoteSerializer(serializers.ModelSerializer):
    """A credit note with its lines: subtotal = Σ line amounts, tax_total = Σ line taxes."""

    lines = CreditNoteLineSerializer(many=True, read_only=True)

    class Meta:
        model = CreditNote
        fields = ["id", "number", "invoice", "organization", "currency", "reason", "subtotal", "tax_total", "total",
                  "issued_at", "lines"]
        read_only_fields = fields


class CreditNoteListSerializer(CreditNoteSerializer):
    class Meta(CreditNoteSerializer.Meta):
        fields = [f for f in CreditNoteSerializer.Meta.fields if f != "lines"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)
    credit_notes = CreditNoteListSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = ["id", "organization", "number", "status", "is_statement", "period_start", "period_end", "currency",
                  "subtotal", "discount_total", "tax_total", "total", "credit_applied", "balance_forward",
                  "amount_due", "amount_paid", "tax_note", "issued_at", "due_at", "paid_at", "voided_at",
                  "billing_details", "lines", "credit_notes"]
        read_only_fields = fields


class InvoiceListSerializer(InvoiceSerializer):
    class Meta(InvoiceSerializer.Meta):
        fields = [f for f in InvoiceSerializer.Meta.fields if f not in ("lines", "credit_notes", "billing_details")]
        read_only_fields = fields


class InterimLineSerializer(serializers.Serializer):
    kind = serializers.CharField()
    group = serializers.CharField()
    description = serializers.CharField()
    product_code = serializers.CharField()
    resource_id = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()
    service_start = serializers.DateTimeField(allow_null=True)
    service_end = serializers.DateTimeField(allow_null=True)
    quantity = serializers.DecimalField(**MONEY)
    unit = serializers.CharField()
    unit_price = serializers.DecimalField(**MONEY)
    amount = serializers.DecimalField(**MONEY)
    tax_rate = serializers.DecimalField(max_digits=7, decimal_places=4)
    tax_amount = serializers.DecimalField(**MONEY)


class InterimSerializer(serializers.Serializer):
    organization = serializers.IntegerField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    until = serializers.DateTimeField()
    currency = serializers.CharField()
    subtotal = serializers.DecimalField(**MONEY)
    discount_total = serializers.DecimalField(**MONEY)
    tax_total = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    credit_applied = serializers.DecimalField(**MONEY)
    balance_forward = serializers.DecimalField(**MONEY)
    amount_due = serializers.DecimalField(**MONEY)
    tax_note = serializers.CharField()
    lines = InterimLineSerializer(many=True)


class InterimQuerySerializer(StrictSerializer):
    until = serializers.DateTimeField(required=False)
    organization = serializers.IntegerField(required=False)


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000)


class CreditNoteLineCreateSerializer(StrictSerializer):
    line = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="Position of the invoice line.")
    quantity = MoneyField(max_digits=30, decimal_places=12, required=False,
                          help_text="Of the line's unit; the amount is quantity × unit price, rounded once.")
    amount = MoneyField(max_digits=30, decimal_places=12, required=False, help_text="Before tax.")

    def validate(self, attrs):
        if "quantity" in attrs and "amount" in attrs:
            raise serializers.ValidationError({"amount": ["Give a quantity or an amount for a line, not both."]})
        return attrs


class CreditNoteCreateSerializer(StrictSerializer):
    """Neither `lines` nor `amount`: everything left. `lines`: chosen invoice lines (all
    that is left of each, a quantity, or an amount before tax). `amount`: an amount before
    tax spread over the lines in proportion to what is left of each (largest remainder)."""

    reason = serializers.CharField(max_length=2000)
    amount = MoneyField(max_digits=30, decimal_places=12, required=False, help_text="Before tax.")
    lines = CreditNoteLineCreateSerializer(many=True, required=False, allow_empty=False, max_length=1000)

    def validate(self, attrs):
        if "lines" in attrs and "amount" in attrs:
            raise serializers.ValidationError({"amount": ["Give lines or an amount, not both."]})
        return attrs
