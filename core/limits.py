"""Request size limits answered by Django, in the one error format.

Django raises RequestDataTooBig only when a view reads the body, and DRF turned that into
a 500 (its error page in HTML). This middleware looks at Content-Length first: a body over
DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, in the API's error format under /api/ or for a JSON
post, a short HTML page otherwise."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from core.api.exceptions import error_body
from core.views import API_PREFIX


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX) or "json" in request.META.get("CONTENT_TYPE", "")


def limit_response(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body(code, message), status=status)
    html = render_to_string("error.html", {"status": status, "message": message})
    return HttpResponse(html, status=status)


class RequestLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return limit_response(request, 400, "bad_request", "Content-Length is not a number.")
        if limit is not None and length > limit:
            return limit_response(
                request, 413, "request_too_large", f"The request body is larger than {limit} bytes."
            )
        return self.get_response(request)
