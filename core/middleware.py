"""Under /api/ every 404 is the API's error format, DEBUG or not.

With DEBUG on, Django answers an unmatched URL with its HTML debug page (listing every
URL pattern) and never calls `handler404`; an integrator trying the demo would get HTML.
This turns any HTML 404 under /api/ into the JSON body `core.views` sends in production.
It sits outside CommonMiddleware, so APPEND_SLASH redirects still happen first."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.views import API_PREFIX, api_not_found_body


class ApiNotFoundMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (response.status_code == 404 and request.path.startswith(API_PREFIX)
                and not response.get("Content-Type", "").startswith("application/json")):
            return JsonResponse(api_not_found_body(), status=404)
        return response
