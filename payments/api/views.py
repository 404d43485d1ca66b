from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.permissions import OrganizationScopedMixin
from core.api.idempotency import idempotent
from payments import services
from payments.api.serializers import PaymentSerializer, RefundCreateSerializer, RefundSerializer
from payments.models import Payment, Refund


class PaymentViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     viewsets.GenericViewSet):
    """Payments of the caller's organisation (platform callers: all, `?organization=`)."""

    queryset = Payment.objects.select_related("payment_method").prefetch_related("refunds").order_by("-created_at", "-id")
    serializer_class = PaymentSerializer
    filterset_fields = ["status", "purpose", "provider", "invoice", "currency"]
    required_scopes = {"list": "billing:read", "retrieve": "billing:read", "refund": "payments:write"}

    @extend_schema(request=RefundCreateSerializer, responses={201: RefundSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def refund(self, request, pk=None):
        """Refund a succeeded payment, in full or in part, with a reason (staff)."""
        payment = self.get_object()
        body = RefundCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        refund = services.refund_request(payment=payment, amount=body.validated_data.get("amount"),
                                         reason=body.validated_data["reason"], actor=self.caller.user,
                                         api_key=self.caller.api_key)
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class RefundViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                    viewsets.GenericViewSet):
    queryset = Refund.objects.order_by("-created_at", "-id")
    serializer_class = RefundSerializer
    filterset_fields = ["status", "payment"]
    required_scopes = {"list": "billing:read", "retrieve": "billing:read"}
