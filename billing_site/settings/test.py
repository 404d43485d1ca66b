"""`make test`: real PostgreSQL and Redis on localhost, overridable by environment."""

from .base import *  # noqa: F403
from .base import env

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@localhost:5432/cloudbill")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
REDIS_URL = env("REDIS_URL", default="redis://localhost:6379/15")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Tasks run in-process unless a test starts a real worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

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
