"""The price book over the API: read for every caller, write for staff and platform keys
holding `prices:write`; quotes for anyone who may read their organisation."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import OrganizationScopedMixin, get_caller
from core.api.idempotency import idempotent
from core.errors import NotFound
from pricing import selectors, services
from pricing.api import serializers as s
from pricing.models import Contract, Price, Product
from pricing.quantity_pricing import Tier
from pricing.quotes import quote_price
from pricing.resolver import resolve_price
from pricing.services import OverrideSpec, PriceSpec

PUBLIC_PRICE_BOOK = "The list price book is public: every customer reads the same products and list prices."


class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                     mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """The catalogue. `GET /products/{code}`."""

    tenant_isolation_exempt = PUBLIC_PRICE_BOOK
    queryset = Product.objects.select_related("group").order_by("group__position", "position", "code")
    serializer_class = s.ProductSerializer
    lookup_field = "code"
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = ["kind", "billing_model", "is_active"]
    required_scopes = {"list": "account:read", "retrieve": "account:read", "create": "prices:write",
                       "partial_update": "prices:write"}

    @extend_schema(request=s.ProductWriteSerializer, responses={201: s.ProductSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = s.ProductWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        caller = get_caller(request)
        product = services.product_create(actor=caller.user, api_key=caller.api_key, **data.validated_data)
        return Response(s.ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProductUpdateSerializer, responses=s.ProductSerializer)
    def partial_update(self, request, *args, **kwargs):
        data = s.ProductUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        caller = get_caller(request)
        product = services.product_update(product=self.get_object(), actor=caller.user, api_key=caller.api_key,
                                          **data.validated_data)
        return Response(s.ProductSerializer(product).data)


class PriceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                   mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """List prices, effective-dated. `?product=<code>&currency=&state=&at=<time>` filter;
    `at` keeps the prices in force at that instant. DELETE cancels a price that has not
    started; `POST /prices/{id}/end` ends one from a time on."""

    tenant_isolation_exempt = PUBLIC_PRICE_BOOK
    queryset = Price.objects.select_related("product").prefetch_related("tiers").order_by("product__code", "id")
    serializer_class = s.PriceSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    required_scopes = {"list": "account:read", "retrieve": "account:read", "create": "prices:write",
                       "destroy": "prices:write", "end": "prices:write", "effective": "account:read"}

    def get_queryset(self):
        qs = super().get_queryset()
        params = self.request.query_params
        if params.get("product"):
            qs = qs.filter(product__code=params["product"])
        for name in ("currency", "state", "unit"):
            if params.get(name):
                qs = qs.filter(**{name: params[name]})
        if params.get("at"):
            at = s.serializers.DateTimeField().to_internal_value(params["at"])
            qs = qs.filter(valid_from__lte=at).exclude(valid_to__lte=at)
        return qs

    @extend_schema(request=s.PriceCreateSerializer, responses={201: s.PriceSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = s.PriceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields["tiers"] = [Tier(t["up_to"], t["unit_amount"], t["flat_amount"])
                           for t in fields["tiers"]]
        caller = get_caller(request)
        price = services.price_create(spec=PriceSpec(**fields), actor=caller.user, api_key=caller.api_key)
        return Response(s.PriceSerializer(price).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        caller = get_caller(request)
        services.price_cancel(price=self.get_object(), actor=caller.user, api_key=caller.api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.PriceEndSerializer, responses=s.PriceSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request, *args, **kwargs):
        data = s.PriceEndSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        caller = get_caller(request)
        price = services.price_end(price=self.get_object(), at=data.validated_data["valid_to"], actor=caller.user,
                                   api_key=caller.api_key)
        return Response(s.PriceSerializer(price).data)

    # One row per product, state and currency: a plain list, not paginated (the schema says so too).
    @extend_schema(responses=s.EffectivePriceSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None)
    def effective(self, request, *args, **kwargs):
        """What the caller's organisation pays now (or `?at=`), contract prices applied: the
        whole list, not paginated."""
        caller = get_caller(request)
        org_param = request.query_params.get("organization")
        organization = caller.target_organization(int(org_param) if org_param and org_param.isdigit() else None)
        at = (s.serializers.DateTimeField().to_internal_value(request.query_params["at"])
              if request.query_params.get("at") else timezone.now())
        rows = selectors.effective_price_list(organization=organization, at=at)
        return Response(s.EffectivePriceSerializer(rows, many=True).data)


class ContractViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Contracts: customers read their own; staff and platform keys create and end them."""

    queryset = Contract.objects.select_related("organization").prefetch_related("prices__product").order_by("-valid_from")
    serializer_class = s.ContractSerializer
    http_method_names = ["get", "post", "head", "options"]
    required_scopes = {"list": "billing:read", "retrieve": "billing:read", "create": "prices:write",
                       "end": "prices:write"}

    @extend_schema(request=s.ContractCreateSerializer, responses={201: s.ContractSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = s.ContractCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields["prices"] = [OverrideSpec(**o) for o in fields["prices"]]
        caller = get_caller(request)
        contract = services.contract_create(actor=caller.user, api_key=caller.api_key, **fields)
        return Response(s.ContractSerializer(contract).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ContractEndSerializer, responses=s.ContractSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request, *args, **kwargs):
        data = s.ContractEndSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        caller = get_caller(request)
        contract = services.contract_end(contract=self.get_object(), at=data.validated_data["valid_to"],
                                         reason=data.validated_data["reason"], actor=caller.user,
                                         api_key=caller.api_key)
        return Response(s.ContractSerializer(contract).data)


class QuoteView(APIView):
    """`POST /quotes`: what a quantity or duration of a product costs the organisation.
    Nothing is stored; repeating it is harmless, so it takes no Idempotency-Key."""

    required_scopes = {"POST": "account:read"}

    @extend_schema(request=s.QuoteRequestSerializer, responses=s.QuoteSerializer)
    def post(self, request):
        data = s.QuoteRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        caller = get_caller(request)
        organization = caller.target_organization(v.get("organization"))
        at = v.get("at") or timezone.now()
        product = v["product"]
        if not product.is_active and not caller.platform:
            raise NotFound("No such product.", field="product")
        price = resolve_price(organization=organization, product=product, state=v["state"], at=at,
                              parent_billing_model=v.get("parent_billing_model"))
        quote = quote_price(price=price, at=at, quantity=v.get("quantity"), duration_minutes=v.get("duration_minutes"))
        body = {
            "organization": organization.pk, "product": product.code, "state": v["state"], "at": at,
            "currency": price.currency, "unit": price.unit, "rate": price.amount,
            "billing_model": price.billing_model, "pricing_model": price.pricing_model, "source": price.source,
            "price_id": price.price_id, "contract_id": price.contract_id, "amount": quote.amount,
            "rounded_amount": str(quote.rounded_amount), "breakdown": [line.__dict__ for line in quote.breakdown],
        }
        return Response(s.QuoteSerializer(body).data)
