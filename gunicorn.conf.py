"""gunicorn's settings, read from the working directory (gunicorn's default: start it from
the repository root, as usage/benchmarks/ingest.py does) or with `-c gunicorn.conf.py`.

Django answers over-long URIs (414) and headers (431) itself, in the error format
(core/limits.py, REQUEST_MAX_* in the settings). gunicorn's own limits are set at twice
Django's so that a request over Django's limit reaches Django and gets that answer instead
of gunicorn's bare text page; only a request over twice the limit meets gunicorn's.
core/tests/test_request_limits.py checks the factor."""

wsgi_app = "billing_site.wsgi:application"

# The request line: method, URI and protocol. gunicorn accepts at most 8190 here.
limit_request_line = 8_188  # Django: REQUEST_MAX_URI_BYTES = 4,094
limit_request_field_size = 16_380  # Django: REQUEST_MAX_HEADER_BYTES = 8,190
limit_request_fields = 200  # Django: REQUEST_MAX_HEADERS = 100


# Prometheus (core/metrics.py): with PROMETHEUS_MULTIPROC_DIR in gunicorn's environment,
# every worker (and every Celery process on this host given the same directory) writes
# its counters there and /metrics sums them. The master clears what earlier runs' dead
# processes left before it forks; a worker that exits has its live gauges dropped.
def on_starting(server):
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from core.metrics import fresh_multiprocess_dir

        fresh_multiprocess_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker):
    from core.metrics import process_exited

    process_exited(worker.pid)
