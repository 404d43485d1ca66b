from __future__ import annotations

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.models import ApiKey
from accounts.tenancy import ANONYMOUS, Caller, caller_for


class ScopeRequired(PermissionDenied):
    """The caller is authenticated but lacks the scope the operation needs; the error
    handler (core.api.exceptions) puts `required_scope` in the body beside the message."""

    def __init__(self, scope: str, message: str):
        super().__init__(detail=message, code="permission_denied")
        self.required_scope = scope


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
        caller = get_caller(request)
        if not caller.can(scope):
            # Raised rather than returned, so the 403 names what is missing.
            raise ScopeRequired(scope, missing_scope_message(caller, scope))
        return True


def missing_scope_message(caller: Caller, scope: str) -> str:
    """What a 403 says: which scope, and whose (the key's, its maker's or the role's)."""
    key = caller.api_key
    if key is not None:
        if scope in (key.scopes or []) and not caller.platform:
            return f"This key has the scope {scope}, but the member who made it no longer holds it."
        return f"This key lacks the scope {scope}."
    if caller.role:
        return f"Your role ({caller.role}) lacks the scope {scope}."
    return f"You lack the scope {scope}."


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
