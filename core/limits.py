"""Request size limits answered by Django, in the one error format.

Django raises RequestDataTooBig only when a view reads the body, and DRF turned that into
a 500 (its error page in HTML). This middleware looks at the request before any view does:
a request URI (path and query) over REQUEST_MAX_URI_BYTES is a 414, a header line
("Name: value") over REQUEST_MAX_HEADER_BYTES or more than REQUEST_MAX_HEADERS headers a 431,
a body over DATA_UPLOAD_MAX_MEMORY_SIZE (by Content-Length) a 413. Each is answered in the
API's error format under /api/ or for a JSON request, a short HTML page otherwise.

gunicorn has the same kind of limits and answers them with a bare text page, so
gunicorn.conf.py sets its limits at twice these: a client over ours gets our answer."""

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
        refused = self._check_uri(request) or self._check_headers(request) or self._check_body(request)
        return refused or self.get_response(request)

    @staticmethod
    def _check_uri(request: HttpRequest) -> HttpResponse | None:
        limit = settings.REQUEST_MAX_URI_BYTES
        # gunicorn gives the URI as sent (RAW_URI); elsewhere (runserver, the test client)
        # the path as it would be sent, percent-encoded, and the query string.
        uri = request.META.get("RAW_URI") or request.get_full_path()
        if len(uri) > limit:
            return limit_response(
                request, 414, "uri_too_long", f"The request URI is longer than {limit} bytes."
            )
        return None

    @staticmethod
    def _check_headers(request: HttpRequest) -> HttpResponse | None:
        size_limit, count_limit = settings.REQUEST_MAX_HEADER_BYTES, settings.REQUEST_MAX_HEADERS
        count = 0
        for key, value in request.META.items():
            if key.startswith("HTTP_"):
                name_length = len(key) - len("HTTP_")
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name_length = len(key)
            else:
                continue
            count += 1
            # WSGI values are latin-1 decoded: one character per byte sent.
            if name_length + len(": ") + len(str(value)) > size_limit:
                return limit_response(
                    request, 431, "header_too_large", f"A request header is longer than {size_limit} bytes."
                )
        if count > count_limit:
            return limit_response(
                request, 431, "too_many_headers", f"The request has more than {count_limit} headers."
            )
        return None

    @staticmethod
    def _check_body(request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return limit_response(request, 400, "bad_request", "Content-Length is not a number.")
        if limit is not None and length > limit:
            return limit_response(
                request, 413, "request_too_large", f"The request body is larger than {limit} bytes."
            )
        return None
