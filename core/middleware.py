"""Under /api/ every 404 is the API's error format, DEBUG or not.

With DEBUG on, Django answers an unmatched URL with its HTML debug page (listing every
URL pattern) and never calls `handler404`; an integrator trying the demo would get HTML.
This turns any HTML 404 under /api/ into the JSON body `core.views` sends in production.
It sits outside CommonMiddleware, so APPEND_SLASH redirects still happen first."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.views import API_PREFIX, api_not_found_body

logger = logging.getLogger(__name__)


class ApiNotFoundMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (response.status_code == 404 and request.path.startswith(API_PREFIX)
                and not response.get("Content-Type", "").startswith("application/json")):
            return JsonResponse(api_not_found_body(), status=404)
        return response


class RedisOutageMiddleware:
    """Redis down (the cache behind login throttling, the broker) is an outage, not a bug:
    a view that hits redis' ConnectionError or TimeoutError answers 503 with Retry-After,
    in the error format under /api/ and as an HTML page otherwise, instead of a 500."""

    RETRY_AFTER_SECONDS = 30

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if not isinstance(exception, RedisConnectionError | RedisTimeoutError):
            return None
        logger.error("Redis unavailable during %s %s: %s", request.method, request.path, exception)
        from core.limits import limit_response

        response = limit_response(request, 503, "service_unavailable",
                                  "A service this request needs is briefly unavailable. Try again shortly.")
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response
