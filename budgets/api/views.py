"""/api/v1/budgets: an organisation's budgets. Reading needs `billing:read`, changing
`billing:write`; another organisation's budget is a 404."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts.api.permissions import OrganizationScopedMixin
from budgets import services
from budgets.api.serializers import BudgetCreateSerializer, BudgetSerializer, BudgetUpdateSerializer
from budgets.models import Budget


class BudgetViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                    mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = Budget.objects.select_related("project").prefetch_related("alerts").order_by("id")
    serializer_class = BudgetSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_scopes = {"list": "billing:read", "retrieve": "billing:read", "create": "billing:write",
                       "partial_update": "billing:write", "destroy": "billing:write"}

    @extend_schema(request=BudgetCreateSerializer, responses={201: BudgetSerializer})
    def create(self, request, *args, **kwargs):
        """A budget for the caller's organisation (platform callers name one), in its currency:
        of the whole organisation, or of one of its projects (`project`, a slug)."""
        body = BudgetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        organization = self.caller.target_organization(values.pop("organization", None))
        budget = services.budget_create(organization=organization, actor=self.caller.user,
                                        api_key=self.caller.api_key, **values)
        return Response(BudgetSerializer(budget).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=BudgetUpdateSerializer, responses=BudgetSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Change a budget. Raising `amount` re-arms the alerts it lifts the spend below;
        raising `cap_amount` above the spend (or null) resumes what the cap hibernated."""
        budget = self.get_object()
        body = BudgetUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        budget = services.budget_update(budget=budget, actor=self.caller.user, api_key=self.caller.api_key,
                                        **body.validated_data)
        budget = self.get_queryset().get(pk=budget.pk)
        return Response(BudgetSerializer(budget).data)

    def perform_destroy(self, instance):
        services.budget_delete(budget=instance, actor=self.caller.user, api_key=self.caller.api_key)
