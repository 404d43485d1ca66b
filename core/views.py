"""Liveness and readiness probes, and the error pages.

Under /api/ even Django's own 400, 403, 404 and 500 answer in the API's one error format,
so an integrator never has to parse an HTML page. Django answers a 400 itself for a
SuspiciousOperation (a Host not in ALLOWED_HOSTS, too many form fields) or a BadRequest
(a multipart body with a broken boundary)."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.api.exceptions import error_body

API_PREFIX = "/api/"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape (core/metrics.py): a bearer METRICS_TOKEN or an allowed network."""
    from core.metrics import exposition, scrape_refusal

    refusal = scrape_refusal(request)
    if refusal is not None:
        response = HttpResponse("Unauthorized.\n" if refusal == 401 else "Forbidden.\n",
                                status=refusal, content_type="text/plain; charset=utf-8")
        if refusal == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    from billing_site.celery import app

    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        with app.connection_for_write() as conn:
            # One attempt, no back-off sleep: a probe must answer within its own timeout.
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"error: {exc.__class__.__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


def api_not_found_body() -> dict:
    return error_body("not_found", "No such endpoint or object.")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    # Never request.get_host() here: a bad Host header is what brought us here.
    from core.limits import limit_response

    return limit_response(request, 400, "bad_request", "The request is malformed or unsafe and was refused.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            error_body("permission_denied", "You do not have permission to perform this action."), status=403
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse(api_not_found_body(), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("server_error", "Something went wrong on our side; it was logged."), status=500)
    return defaults.server_error(request)
