from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.models import ApiKey
from accounts.tenancy import ANONYMOUS, Caller, caller_for


def get_caller(request) -> Caller:
    """The caller of a DRF request, computed once per request."""
    cached = getattr(request, "_cloudbill_caller", None)
    if cached is not None:
        return cached
    if not request.user or not request.user.is_authenticated:
        caller = ANONYMOUS
    else:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        user = None if api_key is not None else request.user
        caller = caller_for(user, api_key, request._request)
    request._cloudbill_caller = caller
    return caller


class HasScope(BasePermission):
    """Views declare `required_scopes`, keyed by viewset action or HTTP method. A
    method without an entry is refused: a forgotten declaration fails closed."""

    message = "Your key or role does not allow this."

    def has_permission(self, request, view) -> bool:
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            return True  # no handler: DRF answers 405 Method Not Allowed
        required = getattr(view, "required_scopes", None)
        if required is None:
            return False
        if not request.user or not request.user.is_authenticated:
            return False
        action = getattr(view, "action", None)
        scope = required.get(action) if action else None
        if scope is None:
            scope = required.get(request.method)
        if scope is None and request.method == "HEAD":
            scope = required.get("GET") or (required.get("retrieve") if action else None)
        if scope is None:
            return False
        if scope == "authenticated":
            return True
        return get_caller(request).can(scope)


class OrganizationScopedMixin:
    """For viewsets over rows that belong to an organisation: the queryset is cut to the
    caller's organisation, so another organisation's id is a 404, never a 403."""

    organization_field = "organization"

    @property
    def caller(self) -> Caller:
        return get_caller(self.request)

    def get_queryset(self):
        qs = super().get_queryset()
        qs = self.caller.scope_queryset(qs, self.organization_field)
        org_param = self.request.query_params.get("organization")
        if self.caller.platform and org_param:
            if not org_param.isdigit():
                return qs.none()
            qs = qs.filter(**{self.organization_field: int(org_param)})
        return qs
