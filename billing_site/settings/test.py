"""`make test`: real PostgreSQL and Redis on localhost, overridable by environment."""

import os
from urllib.parse import urlsplit, urlunsplit

from .base import *  # noqa: F403
from .base import env


def per_worker_redis_url(url: str, worker: int) -> str:
    """`url` with database number n replaced by n - worker (redis://host:6379/15, 1 -> /14)."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0) - worker
    if db < 0:
        raise ValueError(
            f"REDIS_URL {url}: no Redis database left for pytest-xdist worker gw{worker}; "
            "give REDIS_URL a higher database number or run fewer workers"
        )
    return urlunsplit(parts._replace(path=f"/{db}"))


DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@localhost:5432/cloudbill")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
# A commit does not wait for its WAL to reach the disk: the suite commits tens of thousands
# of times (transactional tests, threads, metering passes) and never needs a commit to
# survive a crash of the database server. What a commit makes visible, and when, is unchanged.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"
REDIS_URL = env("REDIS_URL", default="redis://localhost:6379/15")
# Under pytest-xdist (`make test` runs `-n 2`) each worker gets its own Redis database, counting
# down from REDIS_URL's: gw0 15, gw1 14, … by default. Workers must never share one: the cache
# is cleared (FLUSHDB) before every test, and a broker queue is read by whoever asks first. The
# result is exported, marked as done, so a process a test starts (a real Celery worker) uses the
# same database, and a REDIS_URL a test hands it on purpose is taken as it is.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("CLOUDBILL_TEST_REDIS_PER_WORKER"):
    REDIS_URL = per_worker_redis_url(REDIS_URL, int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw")))
    os.environ.update(REDIS_URL=REDIS_URL, CLOUDBILL_TEST_REDIS_PER_WORKER="1")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Tasks run in-process unless a test starts a real worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

# Tests start their webhook receivers on 127.0.0.1; production refuses such endpoints.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
WEBHOOKS_TIMEOUT = 2.0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

MEDIA_ROOT = tempfile.mkdtemp(prefix="cloudbill-media-")
# Tests never run collectstatic: WhiteNoise serves from the finders, and STATIC_ROOT is an
# existing empty directory so the middleware has nothing to warn about.
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="cloudbill-static-"))
WHITENOISE_USE_FINDERS = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# /metrics: the token the tests scrape with; no address is trusted (the test client's 127.0.0.1 is not).
METRICS_TOKEN = "test-metrics-token"
METRICS_ALLOWED_NETWORKS = []
