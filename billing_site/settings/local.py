"""`make run`: a laptop demo. The embedded PostgreSQL under var/ and a filesystem broker
unless DATABASE_URL / REDIS_URL say otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Static files straight from the apps' folders: no collectstatic on every start (~50 s).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (WhiteNoise warns about a missing root)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The demo's /metrics answers curl on this machine without a token.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
# No cloud platform in the demo: the Usage page's sandbox panel stands in for it.
USAGE_SANDBOX_PROVISIONING = env.bool("USAGE_SANDBOX_PROVISIONING", default=True)
# The demo's webhook receiver listens on 127.0.0.1 (python manage.py webhook_receiver).
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=True)
# WeasyPrint says on every PDF that it subsets fonts with fontTools because the system's
# HarfBuzz has no subsetter (Debian: libharfbuzz-subset0). True, harmless, and repeated.
LOGGING["filters"] = {  # noqa: F405
    "weasyprint_font_subsetting": {
        "()": "core.logfilters.DropMessagesStartingWith",
        "prefixes": ["Using fontTools instead of HarfBuzz-Subset"],
    },
}
# On the logger, not a handler: the Celery worker logs through handlers of its own.
LOGGING["loggers"]["weasyprint"] = {"filters": ["weasyprint_font_subsetting"]}  # noqa: F405
