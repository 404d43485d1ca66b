"""How the OpenAPI schema describes our authentication (loaded in AccountsConfig.ready)."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cb_<prefix>_<secret>",
            "description": "An organisation key (from the portal) or a platform key (integrators).",
        }


class PortalSessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.SessionAuthentication"
    name = "PortalSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The portal's session; unsafe methods also need the X-CSRFToken header.",
        }


PLATFORM_TAG = {
    "name": "Platform",
    "description": (
        "Operations only platform keys (integrators such as the provisioning system) and staff may call: "
        "each is also under its area's tag."
    ),
}


def tag_operations(result, generator, request, public):
    """Postprocessing hook: the top-level tags (each app's area, then Platform), and the
    Platform tag on every operation whose scope no organisation holds."""
    from accounts.scopes import ORGANIZATION_SCOPES
    from core.api.schema import api_tags

    result["tags"] = [*api_tags(), PLATFORM_TAG]
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            scope = operation.get("x-required-scope")
            if scope and scope != "authenticated" and scope not in ORGANIZATION_SCOPES:
                operation["tags"] = [*operation.get("tags", []), PLATFORM_TAG["name"]]
    return result
