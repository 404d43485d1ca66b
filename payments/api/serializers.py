from rest_framework import serializers

from core.api.serializers import MoneyField, StrictSerializer
from payments.models import Payment, Refund


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "payment", "organization", "amount", "currency", "reason", "status", "provider_refund_id",
                  "failure_message", "created_at", "succeeded_at"]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    refunds = RefundSerializer(many=True, read_only=True)
    payment_method = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = ["id", "organization", "purpose", "invoice", "provider", "flow", "status", "amount", "currency",
                  "amount_refunded", "provider_payment_id", "payment_method", "failure_code", "failure_message",
                  "disputed_at", "created_at", "succeeded_at", "failed_at", "refunds"]
        read_only_fields = fields

    def get_payment_method(self, payment: Payment) -> str | None:
        return str(payment.payment_method) if payment.payment_method_id else None


class RefundCreateSerializer(StrictSerializer):
    amount = MoneyField(max_digits=30, decimal_places=12, required=False, min_value=0,
                                      help_text="Default: all that is still refundable.")
    reason = serializers.CharField(max_length=2000, help_text="Why the money is returned (audited).")
