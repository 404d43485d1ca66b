"""One error format for every 4xx: {"error": {"code", "message", "fields"}}; a 403 for a
missing scope adds `required_scope` (the scope's name, for programs to act on), read
from the exception's `required_scope` (accounts.api.permissions.ScopeRequired)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import DomainError


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request body."


class IdempotencyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed."


def _flatten(detail: Any) -> Any:
    """ErrorDetail trees → plain strings, keeping the nesting of fields."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _dotted(detail: dict, prefix: str = "") -> dict[str, list[str]]:
    """Nested field errors as one level of dotted paths ({"tiers.0.lower": [...]}), the
    documented shape of `fields`: a list serializer's errors are a list per item (an
    empty one for a valid item), a list field's a dict keyed by index."""
    out: dict[str, list[str]] = {}
    for key, value in detail.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_dotted(value, f"{path}."))
        elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    out.update(_dotted(item, f"{path}.{i}."))
                elif isinstance(item, list):
                    out.update(_dotted({str(i): item}, f"{path}."))
                elif item:
                    out.setdefault(path, []).append(item)
        else:
            out[path] = value if isinstance(value, list) else [value]
    return out


def error_body(code: str, message: str, fields: dict | None = None, *, required_scope: str | None = None) -> dict:
    error: dict = {"code": code, "message": message, "fields": fields or {}}
    if required_scope is not None:
        error["required_scope"] = required_scope
    return {"error": error}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        fields = {exc.field: [exc.message]} if exc.field else {}
        return Response(error_body(exc.code, exc.message, fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            fields = {k: [m for e in v for m in e.messages] for k, v in exc.error_dict.items()}
            exc = exceptions.ValidationError(fields)
        else:
            exc = exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        detail = _flatten(exc.detail)
        if isinstance(detail, dict):
            detail = _dotted(detail)
            non_field = detail.pop("non_field_errors", [])
            message = "; ".join(non_field) if non_field else "Invalid input."
            if detail and not non_field:
                first = next(iter(detail))
                first_msg = detail[first][0] if isinstance(detail[first], list) and detail[first] else ""
                if isinstance(first_msg, str) and first_msg:
                    message = f"Invalid input: {first}: {first_msg}"
            fields = detail
            if non_field:
                fields = {**detail, "non_field_errors": non_field}
        else:
            items = detail if isinstance(detail, list) else [detail]
            message = "; ".join(str(i) for i in items) or "Invalid input."
            fields = {}
        response.data = error_body("validation_error", message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
        response.data = error_body(code, str(_flatten(detail)),
                                   required_scope=getattr(exc, "required_scope", None))
    return response
