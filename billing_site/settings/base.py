"""Settings shared by every environment.

Values that differ between machines come from the environment (django-environ).
`local` is the `make run` default (the embedded PostgreSQL under var/ + a filesystem
broker), `test` is PostgreSQL + Redis on localhost, and `production` refuses to start
without real secrets. PostgreSQL is the only database, everywhere.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF

from billing_site.celery_queues import QUEUES_BY_KIND
from core import embedded_db

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None
# The demo's state: its database cluster, broker folders, cache, uploaded files.
VAR_DIR = Path(env("CLOUDBILL_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "accounts.console.ConsoleAdminConfig",  # Django's admin as the billing console
    "django.contrib.auth",
    "django_otp",
    "csp",
    "django_otp.plugins.otp_totp",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Project apps, in dependency order: an app imports only from apps above it.
    "core",
    "accounts",
    # Every app after it emits events through webhooks.services.emit (docs/webhooks.md).
    "webhooks",
    "pricing",
    "usage",
    "credits",
    "invoices",
    "payments",
    # Budgets: reads month-to-date spend and the forecast, hibernates through credits' outbox (docs/budgets.md).
    "budgets",
    # Reads credits, invoices and payments; nothing imports it (docs/finance.md).
    "finance",
    # Reads usage's rated spans and sends them to Gnocchi; nothing imports it (docs/usage.md).
    "gnocchi_export",
]

MIDDLEWARE = [
    # Request counts and latencies for /metrics (django-prometheus): first and last, so
    # they time every other middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 in the error format (core/limits.py).
    "core.limits.RequestLimitsMiddleware",
    "core.middleware.ApiNotFoundMiddleware",
    # Redis down during a view (login throttle counters) is a 503 with Retry-After.
    "core.middleware.RedisOutageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed a second factor.
    "django_otp.middleware.OTPMiddleware",
    # Times in the signed-in person's own zone (User.time_zone); UTC for everyone else.
    "accounts.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Sessions that owe a second factor (or an enrolment) are sent to it first.
    "accounts.middleware.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "accounts.middleware.CurrentOrganizationMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "billing_site.urls"
WSGI_APPLICATION = "billing_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.portal",
            ],
            # money, rate and when: the one way any template writes money and time.
            "builtins": ["core.templatetags.formats"],
        },
    },
]

# --- Database -------------------------------------------------------------
# PostgreSQL 15 or newer (core/checks.py refuses anything else). DATABASE_URL selects the
# server; without it, the demo's embedded server under var/ that `make run` starts.
DATABASES = {"default": env.db("DATABASE_URL", default=embedded_db.url(VAR_DIR))}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
POSTGRESQL_MIN_VERSION = 15

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "login"
# Failed logins per email (and per client address) before sign-in is refused for LOGIN_LOCKOUT_SECONDS.
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("LOGIN_MAX_FAILURES_PER_ADDRESS", default=50)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# Proxies in front of the app that append to X-Forwarded-For (core/net.py); 0 = none.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Dates as ISO-like "2026-12-03 14:05 UTC" wherever Django formats one (the console),
# like core.formatting everywhere else.
FORMAT_MODULE_PATH = ["billing_site.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Cache ----------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    # A 2 s socket timeout: with Redis gone a sign-in fails fast (a 503, core.middleware).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Email ----------------------------------------------------------------
# Development prints emails to the terminal, attachments named, not dumped (core/mail.py).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="core.mail.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="cloudbill <billing@cloudbill.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ---------------------------------------------------------------
# Without REDIS_URL the broker is kombu's filesystem transport under var/: nothing to install.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        # Longer than the longest task's hard time limit, so a message is never
        # redelivered to a second worker while the first still runs it.
        "visibility_timeout": 3600,
    }
else:
    for _folder in ("queue", "processed", "control"):
        (VAR_DIR / "broker" / _folder).mkdir(parents=True, exist_ok=True)
    # A hostname, though the transport ignores it: without one kombu warns on every connection.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "broker" / "queue"),
        "data_folder_out": str(VAR_DIR / "broker" / "queue"),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        "control_folder": str(VAR_DIR / "broker" / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# Exactly-once rests on idempotent tasks plus at-least-once delivery: ack after the
# task ran, and put the message back if the worker process dies mid-task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 900
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# One queue per kind of work, so a monthly invoice run, a burst of PDFs or a provider
# that answers slowly never waits in front of the minute's metering. Every task is routed
# by name (core/tests/test_celery_routes.py refuses a task without a queue); a worker
# consumes the queues it is given with -Q (docs/ARCHITECTURE.md, "Celery"). The table is
# billing_site/celery_queues.py, which the launcher reads without Django.
CELERY_QUEUES_BY_KIND = QUEUES_BY_KIND
CELERY_TASK_ROUTES = {task: {"queue": queue} for queue, tasks in CELERY_QUEUES_BY_KIND.items() for task in tasks}
# Anything unrouted (Celery's own tasks) goes to maintenance, which every worker set consumes.
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
# Each app adds its periodic jobs here (see the sections below).
CELERY_BEAT_SCHEDULE: dict = {}

# Request bodies over this many bytes are a 413 (core/limits.py); Django's default, set
# explicitly because the docs promise it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# A request URI (path + query) longer than this is a 414; a header line ("Name: value")
# longer than REQUEST_MAX_HEADER_BYTES, or more than REQUEST_MAX_HEADERS headers, a 431
# (core/limits.py). gunicorn's defaults; gunicorn.conf.py sets gunicorn's own at twice these.
REQUEST_MAX_URI_BYTES = 4_094
REQUEST_MAX_HEADER_BYTES = 8_190
REQUEST_MAX_HEADERS = 100

# Content-Security-Policy on every response, in every settings (django-csp). Scripts come
# from our origin or carry the response's nonce (request.csp_nonce); no template has an
# inline script or an on*= handler (core/tests/test_csp.py). style-src allows
# 'unsafe-inline' because Swagger UI sets inline styles; img-src allows data: for its icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ApiKeyAuthentication",
        "accounts.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.permissions.HasScope"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["core.api.filters.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"login": "10/min"},
    # DRF's default (None) would trust a client's own X-Forwarded-For; see core/net.py.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "cloudbill API",
    "DESCRIPTION": (
        "Billing for cloud servers. Authenticate with `Authorization: Bearer <api key>`. "
        "Every 4xx has the body `{\"error\": {\"code\", \"message\", \"fields\"}}`. "
        "POST endpoints accept an `Idempotency-Key` header. "
        "A request body over 2,621,440 bytes is a 413 `request_too_large`; JSON nested deeper "
        "than 32 levels is a 400 `parse_error`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Security schemes come from accounts.api.schema; 4xx answers from this hook.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Idempotency records are kept this long; a key reused later is treated as new. An
# hourly purge deletes older records in bounded batches (core/api/idempotency.py).
IDEMPOTENCY_KEY_TTL = timedelta(hours=env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24))
# Sends what a broker outage left in the transactional outbox (core.outbox).
CELERY_BEAT_SCHEDULE["core-outbox-relay"] = {"task": "core.outbox_relay", "schedule": 30.0, "options": {"expires": 25}}
CELERY_BEAT_SCHEDULE["core-purge-idempotency-records"] = {
    "task": "core.purge_idempotency_records",
    "schedule": crontab(minute=43),
    # A purge that waited out an outage in the queue is pointless: the next one catches up.
    "options": {"expires": 3000},
}

# Prometheus metrics at /metrics (core/metrics.py): a scraper sends `Authorization: Bearer
# METRICS_TOKEN` or calls from a network in METRICS_ALLOWED_NETWORKS (CIDRs; the address as
# core.net.client_address reads it); anyone else gets 401 (nothing offered) or 403 (a
# wrong token). Neither set: nobody scrapes.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# Gauges read at scrape time: each app appends its `state() -> Iterable[core.metrics.Sample]`.
METRICS_STATE_SOURCES = ["core.metrics.celery_queue_lengths"]

# --- Demo data ------------------------------------------------------------
# `seed_demo` calls each of these in order; each must be idempotent.
DEMO_SEEDERS = [
    "accounts.demo.seed",
]

# `python manage.py benchmark NAME`: each app registers its benchmarks in its section below.
BENCHMARKS: dict[str, str] = {}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- accounts -------------------------------------------------------------
INVITATION_TTL = timedelta(days=7)
# Two-factor sign-in (accounts/two_factor.py). Staff always need it; an organisation's
# owner may require it of every member. The issuer is what authenticator apps show.
OTP_TOTP_ISSUER = "cloudbill"
# Wrong codes in a row make a device wait 1, 2, 4, 8 … seconds (django-otp's throttling).
OTP_TOTP_THROTTLE_FACTOR = 1
TWO_FACTOR_RECOVERY_CODES = 10
PORTAL_BRAND = "cloudbill"
# (label, url name, scope needed, icon). Pages appear once their app provides the URL.
PORTAL_NAV = [
    ("Dashboard", "portal:dashboard", None, "home"),
    ("Usage", "usage:index", "usage:read", "activity"),
    ("Pricing", "pricing:index", "account:read", "tag"),
    ("Credits", "credits:index", "billing:read", "wallet"),
    ("Invoices", "invoices:index", "billing:read", "file"),
    ("Payments", "payments:index", "billing:read", "card"),
    ("Team", "portal:team", "account:read", "users"),
    ("API keys", "portal:api_keys", "account:read", "key"),
    ("Settings", "portal:settings", "account:read", "settings"),
]
# URL names of views that may skip CSRF: only webhooks that verify a provider's signature
# (payments appends its own). core/tests/test_security.py refuses any other exempt view.
CSRF_EXEMPT_VIEWS: list[str] = []
# Dashboard cards, in order: callables (request, organization) -> {"template": ..., **context} | None.
PORTAL_DASHBOARD_CARDS = [
    "accounts.cards.account_card",
]
# The schema's tags: each app's area (AppConfig.api_tag) and Platform for platform-only operations.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] += ["accounts.api.schema.tag_operations"]

# --- webhooks -------------------------------------------------------------
# Outbound webhooks (Standard Webhooks; docs/webhooks.md). Production refuses endpoints
# on private, loopback and link-local addresses and plain http; local.py and test.py allow them.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=False)
WEBHOOKS_TIMEOUT = env.float("WEBHOOKS_TIMEOUT", default=10.0)  # seconds for one request, connect and read
# Backoff: RETRY_BASE × 4^(n-1) after the n-th failure, capped at RETRY_CAP, for RETRY_WINDOW.
WEBHOOKS_RETRY_BASE = timedelta(seconds=30)
WEBHOOKS_RETRY_CAP = timedelta(hours=12)
WEBHOOKS_RETRY_WINDOW = timedelta(days=3)
# How long the old secret keeps signing beside the new one after a rotation.
WEBHOOKS_ROTATION_OVERLAP = timedelta(hours=24)
WEBHOOKS_REPLAY_MAX = 1000  # deliveries one replay request may send again
CELERY_BEAT_SCHEDULE["webhooks-deliver-due"] = {
    "task": "webhooks.deliver_due", "schedule": 30.0, "options": {"expires": 25},
}
DEMO_SEEDERS += ["webhooks.demo.seed"]
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "WebhookEndpointStatusEnum": "webhooks.models.EndpointStatus",
    "WebhookDeliveryStatusEnum": "webhooks.models.DeliveryStatus",
})
PORTAL_NAV.insert(PORTAL_NAV.index(("API keys", "portal:api_keys", "account:read", "key")) + 1,
                  ("Webhooks", "webhooks:index", "webhooks:write", "send"))

# --- pricing --------------------------------------------------------------
DEMO_SEEDERS += ["pricing.demo.seed"]
BENCHMARKS["pricing"] = "pricing.benchmarks.resolve"
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "ProductKindEnum": "pricing.models.ProductKind",
    "OverrideKindEnum": "pricing.models.OverrideKind",
    "ResourceStateEnum": "pricing.models.ResourceState",
})

# --- usage ----------------------------------------------------------------
# Each event type POST /events takes, as a oneOf component with an example.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] += ["usage.api.schema.document_event_types"]
# Metering rates every minute up to now − grace, so events a little late still land
# before their minute is rated; later ones are corrected (README: Usage and metering).
USAGE_METERING_GRACE = timedelta(minutes=env.int("USAGE_METERING_GRACE_MINUTES", default=2))
# Organisations per chunk = organisations / chunks; chunks are rated in parallel. Size it
# to the fleet: one chunk per 8,000 running resources (`usage.metering.chunks_for_fleet`;
# each chunk costs a fixed ~10-15 ms a minute, and closes its hour in one statement).
# Change only while every chunk's watermark is the same (`manage.py meter` first).
USAGE_METERING_CHUNKS = env.int("USAGE_METERING_CHUNKS", default=16)
# One metering task walks at most this many one-hour slices of a chunk before handing
# over to the next tick: a 24-hour outage is caught up in one tick per chunk.
USAGE_METERING_MAX_SLICES_PER_TASK = 24
# Events: how far ahead of our clock a timestamp may be, and how late an event may come.
USAGE_FUTURE_TOLERANCE = timedelta(minutes=5)
USAGE_MAX_EVENT_AGE = timedelta(days=7)
# Raw events are kept this many days (daily partitions by event time, dropped whole). At
# least 62: invoices aggregate a month's metered events after the month ends.
USAGE_EVENT_RETENTION_DAYS = env.int("USAGE_EVENT_RETENTION_DAYS", default=100)
# Per-minute rated rows are kept this many days (daily partitions on PostgreSQL, dropped
# whole); longer than USAGE_MAX_EVENT_AGE so a late event always finds what it corrects.
USAGE_DETAIL_RETENTION_DAYS = 10
# Hourly rollups are kept ~13 months for charts; daily rollups for ever.
USAGE_HOURLY_RETENTION_DAYS = 400
# Called with the run id after each committed metering run (credits syncs the ledger).
USAGE_AFTER_METERING: list[str] = []
# MONTH_TO_DATE, the one month-to-date figure shown by usage's pages and cards
# ((organization=, now=) → an object with month, as_of, currency, total), is set by
# invoices below (its interim invoice); check usage.E001 refuses a start without it.
CELERY_BEAT_SCHEDULE["usage-meter"] = {
    "task": "usage.meter",
    "schedule": 60.0,
    # A tick that waited out an outage in the queue is pointless: the next one catches up.
    "options": {"expires": 50},
}
CELERY_BEAT_SCHEDULE["usage-rollup"] = {"task": "usage.rollup", "schedule": 60.0, "options": {"expires": 50}}
CELERY_BEAT_SCHEDULE["usage-retention"] = {"task": "usage.retention", "schedule": crontab(minute=7)}
# Demo/development only: a panel on the Usage page starts and stops servers as the cloud
# platform's events would (usage/sandbox.py). Production refuses to start with it on.
USAGE_SANDBOX_PROVISIONING = env.bool("USAGE_SANDBOX_PROVISIONING", default=False)
# What the sandbox panel asks before it starts a server, as a platform asks
# POST /api/v1/admission (credits come after usage, so through a setting).
USAGE_ADMISSION = "credits.admission.admit_sandbox"
DEMO_SEEDERS += ["usage.demo.seed"]
# Called by usage.demo.seed in its transaction once the demo history is written, before
# it is metered (credits' demo ladder meters up to the minute TinyML's credit ran out).
USAGE_DEMO_BEFORE_METERING: list[str] = []
PORTAL_DASHBOARD_CARDS += ["usage.cards.month_to_date_card"]
BENCHMARKS["metering"] = "usage.benchmarks.metering"
BENCHMARKS["ingest"] = "usage.benchmarks.ingest"
METRICS_STATE_SOURCES += ["usage.metrics.state"]



# --- credits --------------------------------------------------------------
from decimal import Decimal  # noqa: E402

# Top-up handlers (credits/topup_contract.py has the contract): called with a TopUp id after commit.
# Requested and automatic top-ups charge the saved card through payments, whose sandbox
# gateway moves no money until provider keys are set. `credits.topup_contract.sandbox_handler`
# completes top-ups locally without payments at all.
CREDITS_TOPUP_HANDLER = env("CREDITS_TOPUP_HANDLER", default="payments.card_topups.charge_topup")
CREDITS_AUTO_TOPUP_HANDLER = env("CREDITS_AUTO_TOPUP_HANDLER", default="payments.card_topups.charge_topup")
CREDITS_TOPUP_MAX_AMOUNT = Decimal(env("CREDITS_TOPUP_MAX_AMOUNT", default="100000"))
# The one minimum of a customer's top-up (portal, hosted checkout, saved card, API), per
# currency, "default" for the rest (credits.services.topups.topup_minimum; checked at
# start-up by credits.checks). Env: CREDITS_TOPUP_MIN=default=5,JPY=500
CREDITS_TOPUP_MIN = {
    code: (Decimal(value) if value.replace(".", "", 1).isdigit() else value)
    for code, value in env.dict("CREDITS_TOPUP_MIN", default={"default": "5", "JPY": "500"}).items()
}
# The amounts the top-up form offers with one click, in the organisation's currency.
CREDITS_TOPUP_PRESETS = [Decimal("25"), Decimal("50"), Decimal("100"), Decimal("250")]
# Where the one top-up flow lives (payments' page: amount, how to pay, a confirmation
# naming the saved card before it is charged). A URL name: credits links to it.
CREDITS_TOPUP_PAGE = "payments:topup"
# A failed top-up is retried with backoff (5 min, 20 min, 80 min, …) this many attempts in all.
CREDITS_TOPUP_MAX_ATTEMPTS = env.int("CREDITS_TOPUP_MAX_ATTEMPTS", default=4)
# Console "Adjust credit": the largest amount (either sign) staff who are not superusers may
# post, per currency, "default" for the rest. Env: CREDITS_ADJUSTMENT_STAFF_LIMITS=default=5000,JPY=750000
# (checked at start-up by credits.checks: a value that is not a positive amount stops the site).
CREDITS_ADJUSTMENT_STAFF_LIMITS = {
    code: (Decimal(value) if value.replace(".", "", 1).isdigit() else value)
    for code, value in env.dict("CREDITS_ADJUSTMENT_STAFF_LIMITS", default={"default": "5000", "JPY": "750000"}).items()
}
# Warnings: hours of runway, and a balance amount (in the organisation's currency).
CREDITS_RUNWAY_WARNING_HOURS = [72, 24, 1]
# Runway admission (credits.admission): hours of runway an organisation must keep after a
# start unless its AdmissionPolicy says otherwise.
CREDITS_ADMISSION_MIN_RUNWAY_HOURS = Decimal(env("CREDITS_ADMISSION_MIN_RUNWAY_HOURS", default="1"))
# Further refusals other apps add: callables (organization=, now=) -> (reason, message) | None.
CREDITS_ADMISSION_CHECKS: list[str] = []
BENCHMARKS["admission"] = "credits.benchmarks.admission"
CREDITS_LOW_BALANCE_WARNING = Decimal(env("CREDITS_LOW_BALANCE_WARNING", default="10"))
CREDITS_BURN_WINDOW = timedelta(hours=1)
CREDITS_PORTAL_URL = env("CREDITS_PORTAL_URL", default="http://127.0.0.1:8000/credits/")
# Hibernation of prepaid organisations out of credit: how far below zero, and for how long.
CREDITS_HIBERNATE_GRACE_AMOUNT = Decimal(env("CREDITS_HIBERNATE_GRACE_AMOUNT", default="0"))
CREDITS_HIBERNATE_GRACE_PERIOD = timedelta(minutes=env.int("CREDITS_HIBERNATE_GRACE_MINUTES", default=0))
# "automatic": resume as soon as a credit lifts the balance above zero; "manual": a person clicks Resume.
CREDITS_RESUME_MODE = env("CREDITS_RESUME_MODE", default="automatic")
# The zero-balance ladder after a hibernation for lack of credit (credits/ladder.py): notices
# on these days, then the hibernated resources' disks are deleted on day N. Per organisation
# a LadderPolicy row overrides both (there are no plans). 0 days: never delete by default.
CREDITS_LADDER_NOTICE_DAYS = [int(d) for d in env.list("CREDITS_LADDER_NOTICE_DAYS", default=["1", "7", "12"])]
CREDITS_LADDER_DELETE_AFTER_DAYS = env.int("CREDITS_LADDER_DELETE_AFTER_DAYS", default=14)
# Hibernate/resume requests to the provisioning platform. Without a URL the demo's
# logging backend only logs them (credits/provisioning.py documents the signature).
PROVISIONING_URL = env("PROVISIONING_URL", default="")
PROVISIONING_SECRET = env("PROVISIONING_SECRET", default="")
PROVISIONING_TIMEOUT = 10
PROVISIONING_BACKEND = env(
    "PROVISIONING_BACKEND",
    default="credits.provisioning.HttpBackend" if PROVISIONING_URL else "credits.provisioning.LoggingBackend",
)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "LedgerEntryKindEnum": "credits.models.EntryKind",
    "CreditEventKindEnum": "credits.models.EventKind",
    "TopUpStatusEnum": "credits.models.TopUpStatus",
    # accounts never needed a name for its key kind until another "kind" appeared in the API.
    "ApiKeyKindEnum": "accounts.models.ApiKeyKind",
})
# Deduct every metering run's rated usage right after it commits (credits/sync.py).
USAGE_AFTER_METERING += ["credits.sync.after_metering"]
PORTAL_DASHBOARD_CARDS += ["credits.cards.credit_card"]
PORTAL_DASHBOARD_CARDS.insert(0, "credits.cards.ladder_banner")  # across the top while resources are hibernated
BENCHMARKS["credit-sync"] = "credits.benchmarks.credit_sync"
METRICS_STATE_SOURCES += ["credits.metrics.state"]
# Opening credit goes in before usage's demo history is metered (and deducted by the
# sync); runway and warnings are computed once that history is in.
DEMO_SEEDERS.insert(DEMO_SEEDERS.index("usage.demo.seed"), "credits.demo.seed")
DEMO_SEEDERS += ["credits.demo.seed_runway"]
# TinyML hibernated at the minute its credit ran out, days ago, and its ladder since.
USAGE_DEMO_BEFORE_METERING += ["credits.demo.seed_ladder"]
CELERY_BEAT_SCHEDULE["credits-sync-pending"] = {"task": "credits.sync_pending", "schedule": timedelta(minutes=5)}
CELERY_BEAT_SCHEDULE["credits-runway"] = {"task": "credits.runway", "schedule": timedelta(minutes=5)}
CELERY_BEAT_SCHEDULE["credits-promo-expiry"] = {"task": "credits.promo_expiry", "schedule": timedelta(minutes=5)}
CELERY_BEAT_SCHEDULE["credits-topup-retry"] = {"task": "credits.topup_retry", "schedule": timedelta(minutes=1)}
CELERY_BEAT_SCHEDULE["credits-hibernate"] = {"task": "credits.hibernate_due", "schedule": timedelta(minutes=1)}
CELERY_BEAT_SCHEDULE["credits-ladder"] = {"task": "credits.ladder_due", "schedule": timedelta(minutes=15)}
CELERY_BEAT_SCHEDULE["credits-provisioning-retry"] = {
    "task": "credits.provisioning_retry", "schedule": timedelta(seconds=30),
}

# --- invoices -------------------------------------------------------------
# The billing pipeline (see invoices/pipeline.py): each entry is one handler over the
# shared context, in order. Each handler declares what it requires and provides, and
# `manage.py check` refuses an order that breaks it. The on-demand (interim) engine runs
# these same steps without those with side effects (finalize, notify), derived when it
# runs, so its figures are always the scheduled ones; it is not listed here.
BILLING_PIPELINES = {
    "scheduled": [
        "invoices.handlers.gather.GatherCharges",
        "invoices.handlers.recurring.RecurringFees",
        "invoices.handlers.usage_lines.HourlyUsage",
        "invoices.handlers.usage_lines.MeteredOverage",
        "invoices.handlers.minimum.ContractMinimum",
        "invoices.handlers.discounts.Coupons",
        "invoices.handlers.taxes.Taxes",
        "invoices.handlers.totals.Totals",
        "invoices.handlers.balance.CreditsAndBalance",
        "invoices.handlers.finalize.Finalize",
        "invoices.handlers.notify.Notify",
    ],
}
# Organisations per scheduled-run task: the pipeline reads a chunk's inputs set-based,
# then stores and numbers each organisation in its own short transactions.
INVOICE_RUN_CHUNK_SIZE = env.int("INVOICE_RUN_CHUNK_SIZE", default=200)
# Who issues the invoices (snapshotted onto each at finalization).
INVOICE_SELLER = {
    "name": env("INVOICE_SELLER_NAME", default="cloudbill Europe B.V."),
    "address": env.list("INVOICE_SELLER_ADDRESS", default=["Keizersgracht 123", "1015 CJ Amsterdam", "Netherlands"]),
    "country": env("INVOICE_SELLER_COUNTRY", default="NL"),
    "vat_id": env("INVOICE_SELLER_VAT_ID", default="NL859876543B01"),
    "registration": env("INVOICE_SELLER_REGISTRATION", default="KvK 87654321"),
    "email": env("INVOICE_SELLER_EMAIL", default="billing@cloudbill.example"),
}
INVOICE_PAYMENT_INSTRUCTIONS = {
    "bank": env("INVOICE_BANK_NAME", default="ING Bank N.V."),
    "iban": env("INVOICE_BANK_IBAN", default="NL91 INGB 0001 2345 67"),
    "bic": env("INVOICE_BANK_BIC", default="INGBNL2A"),
}
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "InvoiceLineKindEnum": "invoices.models.LineKind",
    "InvoiceStatusEnum": "invoices.models.InvoiceStatus",
})
# Two hours after each month closes (UTC), so metering's grace and catch-up are done.
CELERY_BEAT_SCHEDULE["invoices-monthly-run"] = {
    "task": "invoices.monthly_run",
    "schedule": crontab(minute=0, hour=2, day_of_month=1),
}
PORTAL_DASHBOARD_CARDS += ["invoices.cards.interim_invoice_card"]
MONTH_TO_DATE = "invoices.month_to_date.month_to_date"
# What a postpaid organisation's open invoices still ask for, for credits' pages (credits
# come before invoices): (organization_id=) -> (count, total).
CREDITS_OPEN_INVOICES = "invoices.selectors.open_invoices_total"
# Panels on the portal's invoice page, in order: callables (request, invoice) ->
# {"template": ..., **context} | None (payments appends its Pay panel).
INVOICE_DETAIL_PANELS: list[str] = []
CELERY_BEAT_SCHEDULE["invoices-overdue-webhooks"] = {
    "task": "invoices.overdue_webhooks", "schedule": crontab(minute=17), "options": {"expires": 3000},
}
DEMO_SEEDERS += ["invoices.demo.seed"]
BENCHMARKS["invoicing"] = "invoices.benchmarks.invoicing"
BENCHMARKS["pdf"] = "invoices.benchmarks.pdf"
METRICS_STATE_SOURCES += ["invoices.metrics.state"]

# --- payments -------------------------------------------------------------
# With keys in the environment the real providers are used; without any, the SANDBOX
# provider (labelled as such in the portal; no money moves) completes payments locally.
from decimal import Decimal  # noqa: E402

STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
# Seconds a Stripe-Signature timestamp may be old (replay protection; Stripe's default).
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
PAYPAL_CLIENT_ID = env("PAYPAL_CLIENT_ID", default="")
PAYPAL_CLIENT_SECRET = env("PAYPAL_CLIENT_SECRET", default="")
PAYPAL_WEBHOOK_ID = env("PAYPAL_WEBHOOK_ID", default="")
PAYPAL_ENVIRONMENT = env("PAYPAL_ENVIRONMENT", default="sandbox")  # "sandbox" or "production"
PAYPAL_API_BASE = env("PAYPAL_API_BASE", default="")  # empty: PayPal's URL for PAYPAL_ENVIRONMENT
PAYPAL_WEBHOOK_TOLERANCE = env.int("PAYPAL_WEBHOOK_TOLERANCE", default=300)
# Provider calls: seconds before giving up on an answer, and the SDK's own retries (each
# retry carries the same idempotency key, so an unanswered call is never doubled).
PAYMENTS_PROVIDER_TIMEOUT = env.float("PAYMENTS_PROVIDER_TIMEOUT", default=20.0)
PAYMENTS_PROVIDER_MAX_RETRIES = env.int("PAYMENTS_PROVIDER_MAX_RETRIES", default=2)
# Dunning: a failed automatic invoice charge is retried this many days after the first
# failure; after the last one fails, FINAL_ACTION: "mark_uncollectible" or "suspend".
PAYMENTS_DUNNING_RETRY_DAYS = [int(d) for d in env.list("PAYMENTS_DUNNING_RETRY_DAYS", default=["1", "3", "5", "7"])]
PAYMENTS_DUNNING_FINAL_ACTION = env("PAYMENTS_DUNNING_FINAL_ACTION", default="mark_uncollectible")
# Checkouts nobody finished are canceled after this long (reconciliation).
PAYMENTS_CHECKOUT_EXPIRY = timedelta(hours=24)
PAYMENTS_RECONCILE_WINDOW = timedelta(days=3)
PORTAL_DASHBOARD_CARDS += ["payments.cards.payments_card"]
INVOICE_DETAIL_PANELS += ["payments.cards.invoice_pay_panel"]
DEMO_SEEDERS += ["payments.demo.seed"]
# The only CSRF-exempt views: each verifies its provider's signature on the raw body.
CSRF_EXEMPT_VIEWS += ["payments:stripe_webhook", "payments:paypal_webhook"]
CELERY_BEAT_SCHEDULE["payments-reconcile"] = {"task": "payments.reconcile", "schedule": timedelta(minutes=15)}
CELERY_BEAT_SCHEDULE["payments-autopay"] = {"task": "payments.autopay_due", "schedule": crontab(minute=7)}
CELERY_BEAT_SCHEDULE["payments-dunning"] = {"task": "payments.dunning_due", "schedule": crontab(minute=37)}

# --- budgets --------------------------------------------------------------
# Every five minutes: each budget's actual and forecast spend, alerts, hard caps (docs/budgets.md).
CELERY_BEAT_SCHEDULE["budgets-evaluate"] = {"task": "budgets.evaluate", "schedule": timedelta(minutes=5),
                                            "options": {"expires": 280}}
PORTAL_NAV.insert(PORTAL_NAV.index(("Payments", "payments:index", "billing:read", "card")) + 1,
                  ("Budgets", "budgets:index", "billing:read", "wallet"))
PORTAL_DASHBOARD_CARDS += ["budgets.cards.budget_card"]
# Runway admission refuses a start while a hard cap holds (budgets/admission.py).
CREDITS_ADMISSION_CHECKS += ["budgets.admission.cap_reached"]
DEMO_SEEDERS += ["budgets.demo.seed"]
# Budgets' recipient roles are the members' roles: one enum in the schema.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({"RoleEnum": "accounts.scopes.Role"})

# --- Finance -------------------------------------------------------------------
# The journal of the day before, once it has settled (finance.journal.SETTLE_AFTER, an
# hour): 03:15 UTC, after the 02:00 invoice run of the 1st.
DEMO_SEEDERS += ["finance.demo.seed"]
CELERY_BEAT_SCHEDULE["finance-build-journal"] = {"task": "finance.build_journal", "schedule": crontab(minute=15, hour=3)}
# DATEV export header: the tax adviser's and client's numbers, the first month of the
# fiscal year, and the account length of the chart (SKR03: 4).
FINANCE_DATEV = {
    "adviser_number": env.int("FINANCE_DATEV_ADVISER", default=1001),
    "client_number": env.int("FINANCE_DATEV_CLIENT", default=1),
    "fiscal_year_start_month": env.int("FINANCE_DATEV_FISCAL_YEAR_START_MONTH", default=1),
    "account_length": 4,
}
# Every registered report (finance/reports/registry.py) once over a fleet's year, beside bare SQL.
BENCHMARKS["reports"] = "finance.benchmarks.reports"

# --- History export to Gnocchi (gnocchi_export, docs/usage.md) --------------------
# Per-resource cost and usage series, sent to Gnocchi's REST API every five minutes when
# GNOCCHI_EXPORT_URL is set (empty: the task does nothing). Auth: Gnocchi's "basic" or
# "noauth" mode as GNOCCHI_EXPORT_USER, who must be allowed to create archive policies
# and resource types (Gnocchi's admin).
GNOCCHI_EXPORT_URL = env("GNOCCHI_EXPORT_URL", default="")
GNOCCHI_EXPORT_AUTH = env("GNOCCHI_EXPORT_AUTH", default="basic")
GNOCCHI_EXPORT_USER = env("GNOCCHI_EXPORT_USER", default="admin")
GNOCCHI_EXPORT_TIMEOUT = 10.0  # seconds per request
GNOCCHI_EXPORT_ARCHIVE_POLICY = env("GNOCCHI_EXPORT_ARCHIVE_POLICY", default="cloudbill-billing")
# A run is exported once it is rolled up and this old: longer than any metering or rollup
# transaction lives (their tasks are killed after 300 s), so no run below it can still commit.
GNOCCHI_EXPORT_SETTLE = timedelta(minutes=10)
GNOCCHI_EXPORT_RUNS_PER_BATCH = 500
GNOCCHI_EXPORT_RESOURCES_PER_REQUEST = 500
CELERY_BEAT_SCHEDULE["gnocchi-export"] = {
    "task": "gnocchi_export.export", "schedule": timedelta(minutes=5), "options": {"expires": 280}}

_ = crontab  # imported for the app sections above that schedule periodic jobs
