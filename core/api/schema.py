"""What the OpenAPI schema says beyond drf-spectacular's defaults, so that it tells the
truth clients (and the schema fuzzer) rely on:

- strict input serializers refuse unknown fields: `additionalProperties: false`;
- POSTs wrapped in `@idempotent` take the `Idempotency-Key` header;
- every operation documents its 4xx answers in the one error format;
- every operation is tagged with its area (the app that serves it), and platform-only
  ones also with "Platform".
"""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from core.api.idempotency import HEADER, MAX_KEY_LENGTH

ERROR_SCHEMA = {
    "type": "object",
    "description": "The body of every 4xx answer.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string", "example": "Invalid input: name: This field is required."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "example": {"name": ["This field is required."]},
                },
                "required_scope": {
                    "type": "string",
                    "description": "403 only, when the key or role lacks a scope: the scope the operation needs.",
                    "example": "invoices:write",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}

ERROR_RESPONSES = {
    "400": "Malformed JSON, unknown or read-only fields, wrong types, missing fields, or a broken rule.",
    "401": "No API key, or an unknown or revoked one.",
    "403": (
        "The key or role lacks the scope the operation needs: `error.required_scope` names it and the message "
        "says whose it is (e.g. \"This key lacks the scope invoices:write.\")."
    ),
    "404": "No such object, or it belongs to another organisation.",
}
WRITE_ERROR_RESPONSES = {
    "409": "The object's state forbids this (e.g. removing the last owner).",
}
IDEMPOTENT_ERROR_RESPONSES = {
    "422": "This Idempotency-Key was used with a different body.",
}


class StrictSerializerExtension(OpenApiSerializerExtension):
    target_class = "core.api.serializers.StrictFieldsMixin"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


def area_tag(view) -> str:
    """The tag of an operation: its app's `api_tag` (e.g. "Invoices"). An app that serves
    API operations without one fails the schema, rather than putting them under a
    tag named after the URL prefix as drf-spectacular would ("v1", for all of them)."""
    config = apps.get_containing_app_config(type(view).__module__)
    tag = getattr(config, "api_tag", None)
    if not tag:
        raise ImproperlyConfigured(f"{type(view).__module__} serves API operations but its AppConfig has no api_tag.")
    return tag


def api_tags() -> list[dict[str, str]]:
    """The schema's top-level tags, in app order, with each app's `api_tag_description`."""
    return [{"name": config.api_tag, "description": getattr(config, "api_tag_description", "")}
            for config in apps.get_app_configs() if getattr(config, "api_tag", None)]


class AutoSchema(openapi.AutoSchema):
    def _view_method(self):
        action = getattr(self.view, "action", None)
        return getattr(self.view, action or self.method.lower(), None)

    def required_scope(self) -> str | None:
        """The scope the operation needs, as the view declares it for its permission check
        (`required_scopes`, keyed by action or HTTP method)."""
        required = getattr(self.view, "required_scopes", None) or {}
        action = getattr(self.view, "action", None)
        return (required.get(action) if action else None) or required.get(self.method.upper())

    def get_tags(self) -> list[str]:
        return [area_tag(self.view)]

    def get_extensions(self):
        extensions = dict(super().get_extensions())
        scope = self.required_scope()
        if scope:
            extensions["x-required-scope"] = scope
        return extensions

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if getattr(self._view_method(), "idempotent", False):
            parameters.append(OpenApiParameter(
                HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                description=(
                    f"Up to {MAX_KEY_LENGTH} printable characters. Repeating a request with the same key and body "
                    f"within 24 hours returns the first answer (header `Idempotent-Replayed: true`) and does "
                    f"nothing again; the same key with another body is a 422."
                ),
            ))
        return parameters


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: the Error component and the 4xx answers of every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            documented = dict(ERROR_RESPONSES)
            if method in ("post", "put", "patch", "delete"):
                documented |= WRITE_ERROR_RESPONSES
            if any(p.get("name") == HEADER for p in operation.get("parameters", [])):
                documented |= IDEMPOTENT_ERROR_RESPONSES
            for status, description in documented.items():
                declared = operation["responses"].setdefault(status, {"description": description})
                # A view may declare an error status with its own description (what the 409
                # means there); the body is the one error format all the same.
                declared.setdefault("content", {"application/json": {"schema": ref}})
    return result
