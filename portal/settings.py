"""Django settings: everything from the environment, with zero-set-up defaults for the demo.

See .env.example for every variable.
"""

import base64
import datetime as dt
import secrets
from pathlib import Path

import dj_database_url

from portal.env import env_bool, env_int, env_list, env_str, require_secret
from portal.logs import logging_config
from portal.storage import default_storage_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)


def _dev_secret(filename: str, make):
    """A random secret kept under var/, so a demo installation keeps its sessions and encrypted data."""

    def fallback() -> str:
        path = VAR_DIR / filename
        if not path.exists():
            path.write_text(make(), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()

    return fallback


SECRET_KEY = require_secret("SECRET_KEY", DEBUG, _dev_secret("dev-secret-key", lambda: secrets.token_urlsafe(50)))
# Fernet key (32 url-safe base64 bytes) for CSD keys, CSD passwords and PAC credentials at rest.
FIELD_ENCRYPTION_KEY = require_secret(
    "FIELD_ENCRYPTION_KEY",
    DEBUG,
    _dev_secret("dev-encryption-key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()),
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "infra.admin_apps.ScopedAdminConfig",  # django.contrib.admin with a site that is merchant-scoped or superuser-only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "infra",  # shared infrastructure below the apps (the event log, queues, API auth, admin scoping)
    "tickets",
    "invoicing",  # before django_q: its qcluster command warms the CFDI engine first (see that command)
    "portal",
    "django_q",
    "axes",  # admin login throttling
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # /metrics: request counts and latencies
    "portal.request_context.RequestContextMiddleware",  # X-Request-ID, and the context of every log line
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.ServiceUnavailableMiddleware",  # database or broker away → 503, before any database user
    "portal.middleware.ApiRateLimitHeadersMiddleware",  # X-RateLimit-* on API answers
    "portal.middleware.ApiNulGuardMiddleware",  # a NUL in an API path, query or Idempotency-Key: 404/400, not a 500
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.language.ShopperLanguageMiddleware",  # es-MX, or the shopper's choice on the shoppers' pages
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a refused login into the lockout page
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: sees the response every other one made
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
            ],
        },
    },
]

# --- Database: SQLite under var/ by default; DATABASE_URL switches (PostgreSQL in production and CI).
DATABASE_URL = env_str("DATABASE_URL")
CONN_MAX_AGE = env_int("CONN_MAX_AGE", 600)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Server-side prepared statements for the hot statements run through infra/db/prepared.py (Django's own
        # queries bind on the client and are never prepared). Behind PgBouncer in transaction mode
        # (docs/operations.md): DB_PREPARED_STATEMENTS=0 unless it is 1.21 or later with max_prepared_statements,
        # and always DB_SERVER_SIDE_CURSORS=0 (a cursor of .iterator() outlives the transaction that the pooler
        # ties to one server connection).
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
            5 if env_bool("DB_PREPARED_STATEMENTS", True) else None)
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not env_bool("DB_SERVER_SIDE_CURSORS", True)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # WAL + busy timeout let the web process and the worker share the file.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The tenant and its API keys, named for infra/ (shared infrastructure), which imports nothing of the apps: the
# event log's and the admin scoping's merchant, and the model API-key authentication looks keys up in.
TENANT_MODEL = "tickets.Merchant"
API_KEY_MODEL = "tickets.ApiKey"

# --- Task queues: django-q2, ORM broker by default, Redis when REDIS_URL is set.
# Three queues, each drained by its own cluster so that none can starve another (docs/operations.md):
#   stamp    stamping batches (and nothing else: an invoice never waits behind a PDF or a webhook),
#   deliver  PDFs and emails of ordinary invoices, webhooks,
#   bulk     background POS batches, global invoices, late requests, PDFs of large invoices, housekeeping.
# A queue is a django-q2 cluster name: `manage.py qcluster --queue stamp` (or Q_CLUSTER_NAME=stamp) runs one,
# `manage.py qcluster` runs all three. Every task is routed by infra.queues.enqueue.
REDIS_URL = env_str("REDIS_URL")
Q_KEEP_RESULTS_HOURS = env_int("Q_KEEP_RESULTS_HOURS", 24)
Q_QUEUES = {
    "stamp": env_str("Q_QUEUE_STAMP", "stamp"),
    "deliver": env_str("Q_QUEUE_DELIVER", "deliver"),
    "bulk": env_str("Q_QUEUE_BULK", "bulk"),
}
_Q_WORKERS = env_int("Q_WORKERS", 1)
_Q_TIMEOUT = env_int("Q_TIMEOUT", 300)
_Q_RETRY = env_int("Q_RETRY", 360)
# Per queue: workers and timeout (Q_STAMP_WORKERS, Q_DELIVER_TIMEOUT, ...); the broker's retry follows the timeout.
Q_QUEUE_OPTIONS = {}
for _queue, _workers in (("stamp", _Q_WORKERS), ("deliver", 1), ("bulk", 1)):
    _timeout = env_int(f"Q_{_queue.upper()}_TIMEOUT", _Q_TIMEOUT)
    Q_QUEUE_OPTIONS[_queue] = {
        "workers": env_int(f"Q_{_queue.upper()}_WORKERS", _workers),
        "timeout": _timeout,
        "retry": max(_Q_RETRY, _timeout + 1),
    }
Q_CLUSTER = {
    # The site's name, shared by every cluster: django-q2 signs task payloads with it. Not a queue: tasks are
    # always sent to one of Q_QUEUES (ALT_CLUSTERS below), never to this default cluster.
    "name": env_str("Q_SITE_NAME", "autofactura"),
    "workers": _Q_WORKERS,
    "timeout": _Q_TIMEOUT,
    "retry": _Q_RETRY,
    # A recycled worker re-imports everything and recompiles SAT's schema and XSLT (~1 s): not every 500 tasks.
    "recycle": env_int("Q_RECYCLE", 5000),
    "max_attempts": 1,  # our tasks handle their own retries with backoff
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.2,
    "label": "Tareas",
    # 0 = django-q2 never prunes on its own: its pruning reads every stored result under a lock for each finished
    # task, which capped a cluster at ~25 tasks/s. portal.tasks.prune_task_results deletes old ones instead.
    "save_limit": env_int("Q_SAVE_LIMIT", 0),
    # django-q2 applies the entry named by Q_CLUSTER_NAME over the options above (its multi-queue set-up).
    "ALT_CLUSTERS": {Q_QUEUES[q]: dict(options) for q, options in Q_QUEUE_OPTIONS.items()},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Admin login throttling (django-axes, counters in the database: SQLite or PostgreSQL alike). After
# ADMIN_LOGIN_FAILURE_LIMIT failed logins of one username from one IP, that pair is refused, even with the right
# password, for ADMIN_LOGIN_COOLOFF_MINUTES (counted from the last failure); other users and other addresses are
# not affected. `manage.py axes_reset_username <user>` lifts a lockout early.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"

# --- Locale: merchants read Spanish (es-MX), and so do shoppers unless they switch their pages (and the emails
# of the invoices they request) to English (portal/language.py); times are aware, Mexico City by default.
LANGUAGE_CODE = "es-mx"
LANGUAGES = [("es-mx", "Español"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # the .po and their compiled .mo are committed: no gettext tools needed
TIME_ZONE = env_str("TIME_ZONE", "America/Mexico_City")
USE_I18N = True
USE_TZ = True

# --- Static and media
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing directory
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MERCHANT_LOGO_MAX_BYTES = env_int("MERCHANT_LOGO_MAX_BYTES", 1024 * 1024)  # PNG/JPEG, re-encoded (tickets/logos.py)
# Stored files (PDFs, exports, logos): under MEDIA_ROOT, or in an S3-compatible bucket (portal/storage.py).
STORAGES = {
    "default": default_storage_from_env(),  # STORAGE_S3_* (portal/storage.py), else DEFAULT_FILE_STORAGE
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Email: console by default; SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "facturas@localhost")

# --- PAC: the in-process sandbox unless a merchant chooses a real provider.
DEFAULT_PAC = env_str("DEFAULT_PAC", "sandbox")
PAC_TIMEOUT_SECONDS = env_int("PAC_TIMEOUT_SECONDS", 30)
# Sandbox PAC: injected latency and transient-failure rate (0-1) for demos and tests; seconds before a
# cancellation that needs the receptor's acceptance is accepted.
SANDBOX_PAC_LATENCY_MS = env_int("SANDBOX_PAC_LATENCY_MS", 0)
SANDBOX_PAC_FAILURE_RATE = float(env_str("SANDBOX_PAC_FAILURE_RATE", "0") or 0)
SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = env_int("SANDBOX_PAC_CANCEL_ACCEPT_SECONDS", 120)
# Sandbox PAC: what its receptors answer to a cancellation that needs acceptance, once the delay above passes
# ("accept" or "reject"), and SAT's cancellation and status services down (every call a transient error).
SANDBOX_PAC_CANCEL_ANSWER = env_str("SANDBOX_PAC_CANCEL_ANSWER", "accept")
SANDBOX_PAC_SAT_DOWN = env_bool("SANDBOX_PAC_SAT_DOWN", False)
# The shopper's progress page: after this many seconds without a stamp it says what is happening and that the
# invoice will arrive by email.
PORTAL_SLOW_STAMP_SECONDS = env_int("PORTAL_SLOW_STAMP_SECONDS", 6)
# Cancellations (invoicing/services/cancel.py): first and longest pause between follow-ups of a request
# (backoff doubles from one to the other), and how many days before the legal deadline (CFF 29-A) a request
# warns the merchant.
CANCELLATION_POLL_BASE_SECONDS = env_int("CANCELLATION_POLL_BASE_SECONDS", 60)
CANCELLATION_POLL_MAX_SECONDS = env_int("CANCELLATION_POLL_MAX_SECONDS", 3600)
CANCELLATION_DEADLINE_WARNING_DAYS = env_int("CANCELLATION_DEADLINE_WARNING_DAYS", 10)
# Stamping queue (invoicing/stamp_queue.py): batch tasks that may be queued at once (one per worker that
# should stamp; raise it when more machines run workers), invoices per claim, pause after a short batch so
# the next one is fuller, seconds a task drains before
# handing over to a fresh one, and the lease: a claimed invoice untouched this long is taken by another task.
INVOICE_STAMP_SLOTS = env_int("INVOICE_STAMP_SLOTS", max(2, Q_QUEUE_OPTIONS["stamp"]["workers"]))
INVOICE_STAMP_BATCH = env_int("INVOICE_STAMP_BATCH", 50)
INVOICE_STAMP_LINGER_MS = env_int("INVOICE_STAMP_LINGER_MS", 300)
INVOICE_STAMP_TASK_SECONDS = env_int("INVOICE_STAMP_TASK_SECONDS",
                                     max(1, min(60, Q_QUEUE_OPTIONS["stamp"]["timeout"] // 3)))
INVOICE_STUCK_AFTER_SECONDS = env_int("INVOICE_STUCK_AFTER_SECONDS", 120)
INVOICE_SWEEP_MAX_BACKLOG = env_int("INVOICE_SWEEP_MAX_BACKLOG", 1000)
# A transient PAC error retries after this many seconds, doubling per attempt (up to an hour). Each queue's
# cluster looks every INVOICE_QUEUE_TICK_MS for work that became due (a retry, an expired lease), so a retry
# fires at its time, not at the sweeper's next minute.
INVOICE_RETRY_BACKOFF_SECONDS = env_int("INVOICE_RETRY_BACKOFF_SECONDS", 5)
INVOICE_QUEUE_TICK_MS = env_int("INVOICE_QUEUE_TICK_MS", 500)
# Network PACs: documents of a batch sent at once.
PAC_STAMP_CONCURRENCY = env_int("PAC_STAMP_CONCURRENCY", 4)
# Failover to a merchant's secondary PAC (docs/pac.md): service failures in a row that open a PAC's circuit,
# seconds it stays open before one document probes it, how long a probe may take before another worker may
# probe, and when (seconds after the primary answered without a stamp) a failed-over invoice's primary is asked
# again whether it stamped the lost request late (then that extra stamp is cancelled).
PAC_CIRCUIT_FAILURES = env_int("PAC_CIRCUIT_FAILURES", 5)
PAC_CIRCUIT_OPEN_SECONDS = env_int("PAC_CIRCUIT_OPEN_SECONDS", 30)
PAC_CIRCUIT_PROBE_SECONDS = env_int("PAC_CIRCUIT_PROBE_SECONDS", 2 * PAC_TIMEOUT_SECONDS + 10)
PAC_LATE_STAMP_CHECKS = [int(s) for s in env_list("PAC_LATE_STAMP_CHECKS", ["60", "600", "3600", "21600", "86400",
                                                                          "259200"])]
# The PDF of a stamped invoice, rendered in the background right after stamping (docs/stamping.md, "Delivery");
# off, it is rendered when first downloaded or emailed.
INVOICE_PDF_AFTER_STAMP = env_bool("INVOICE_PDF_AFTER_STAMP", True)
# Concepts (ticket lines) one invoice may hold: its PDF must render well inside a task's timeout
# (bench/pdf.py --concepts: ~9 s for 1,000 and ~18 s for 2,000 on a 2-core machine, 57 s for 5,000).
INVOICE_MAX_CONCEPTS = env_int("INVOICE_MAX_CONCEPTS", 2000)
# Above this many concepts an invoice is "large": its PDF is rendered only in the background, on the bulk
# queue, never inside a web request (~1 s at 100) nor beside the small invoices' emails.
INVOICE_PDF_LARGE_CONCEPTS = env_int("INVOICE_PDF_LARGE_CONCEPTS", 100)
# Per-invoice delivery (PDF stored, email sent): attempts, first backoff (doubling up to an hour), seconds a
# delivery task works before handing over to a fresh one, and the lease of a claimed delivery (past it another
# task may take the invoice: longer than a task can live).
INVOICE_DELIVERY_MAX_ATTEMPTS = env_int("INVOICE_DELIVERY_MAX_ATTEMPTS", 10)
INVOICE_DELIVERY_BACKOFF_SECONDS = env_int("INVOICE_DELIVERY_BACKOFF_SECONDS", 30)
INVOICE_DELIVERY_TASK_SECONDS = env_int("INVOICE_DELIVERY_TASK_SECONDS",
                                        max(1, min(60, Q_QUEUE_OPTIONS["deliver"]["timeout"] // 3)))
INVOICE_DELIVERY_LEASE_SECONDS = env_int(
    "INVOICE_DELIVERY_LEASE_SECONDS",
    max(Q_QUEUE_OPTIONS["deliver"]["timeout"], Q_QUEUE_OPTIONS["bulk"]["timeout"]) + 60)
# Factura global: tickets per CFDI (bigger periods are split), alert this long before the 24-h deadline,
# automatic attempts per period before a person must press "generar ahora".
GLOBAL_INVOICE_MAX_TICKETS = env_int("GLOBAL_INVOICE_MAX_TICKETS", 5000)
GLOBAL_INVOICE_ALERT_HOURS = env_int("GLOBAL_INVOICE_ALERT_HOURS", 6)
GLOBAL_INVOICE_AUTO_ATTEMPTS = env_int("GLOBAL_INVOICE_AUTO_ATTEMPTS", 3)
# Webhooks: per-request timeout, attempts before a delivery is "failed", exponential backoff between them;
# private/loopback destinations are refused unless WEBHOOK_ALLOW_PRIVATE (SSRF guard; DEBUG does not matter).
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 10)
WEBHOOK_BACKOFF_BASE_SECONDS = env_int("WEBHOOK_BACKOFF_BASE_SECONDS", 60)
WEBHOOK_BACKOFF_MAX_SECONDS = env_int("WEBHOOK_BACKOFF_MAX_SECONDS", 6 * 3600)
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
# After a secret rotation the old secret keeps signing (a second signature) this long (docs/webhooks.md).
WEBHOOK_SECRET_OVERLAP_HOURS = env_int("WEBHOOK_SECRET_OVERLAP_HOURS", 24)

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Not DRF's JSONParser: that one reads request.body, capped by the pages' DATA_UPLOAD_MAX_MEMORY_SIZE.
    "DEFAULT_PARSER_CLASSES": ["infra.api.parsers.ApiJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["infra.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": ["infra.api.auth.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "infra.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "6000/min")  # per API key; "" disables
API_BATCH_MAX_TICKETS = env_int("API_BATCH_MAX_TICKETS", 10_000)
API_BATCH_SYNC_MAX = env_int("API_BATCH_SYNC_MAX", 1_000)  # larger batches go to the background worker
# Large batches: a worker holds one under a lease renewed with every chunk (1,000 tickets); a batch whose
# lease ran out (worker killed, cluster restarted) is queued again by the sweeper, and failed after
# API_BATCH_MAX_ATTEMPTS such tries. A POS may resend a failed or abandoned batch_id to finish it.
API_BATCH_LEASE_SECONDS = env_int("API_BATCH_LEASE_SECONDS", 120)
API_BATCH_MAX_ATTEMPTS = env_int("API_BATCH_MAX_ATTEMPTS", 3)
# Bodies of the API (JSON or ZIP upload); the pages keep Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 64 * 1024 * 1024)
API_ZIP_MAX_BYTES = env_int("API_ZIP_MAX_BYTES", 64 * 1024 * 1024)
API_ZIP_MAX_MEMBERS = env_int("API_ZIP_MAX_MEMBERS", 10_000)
API_ZIP_MAX_UNCOMPRESSED = env_int("API_ZIP_MAX_UNCOMPRESSED", 256 * 1024 * 1024)
API_ZIP_MAX_RATIO = env_int("API_ZIP_MAX_RATIO", 100)
API_LIST_MAX_LIMIT = env_int("API_LIST_MAX_LIMIT", 500)

# --- Cache (rate-limit counters, django-q2's statistics): per process by default, shared Redis with CACHE_URL
# (default REDIS_URL; set CACHE_URL alone to keep the task queue in the database). An optimisation only: while
# Redis does not answer, the counters live in each process (infra/resilient_cache.py). Short socket timeouts
# and the breaker's CACHE_RETRY_SECONDS keep a dead Redis from slowing every request.
CACHE_URL = env_str("CACHE_URL") or REDIS_URL
CACHE_TIMEOUT_MS = env_int("CACHE_TIMEOUT_MS", 250)
CACHE_RETRY_SECONDS = env_int("CACHE_RETRY_SECONDS", 5)
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "infra.resilient_cache.ResilientRedisCache", "LOCATION": CACHE_URL,
                          "OPTIONS": {"socket_connect_timeout": CACHE_TIMEOUT_MS / 1000,
                                      "socket_timeout": CACHE_TIMEOUT_MS / 1000}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SPECTACULAR_SETTINGS = {
    "TITLE": "Autofactura API",
    # The full page (auth, idempotency, errors, limits, pagination, webhooks) is portal/api_description.md,
    # put in by portal.api_schema.postprocess with the parts that come from the code.
    "DESCRIPTION": "API para puntos de venta: tickets, facturas CFDI 4.0, facturas globales y webhooks.",
    "VERSION": "1.0.0",
    # 3.1: a nullable object is oneOf [$ref, null]; 3.0 has no way to say it that strict validators accept.
    "OAS_VERSION": "3.1.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from drf-spectacular-sidecar's files, served by this site: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "displayOperationId": True, "persistAuthorization": True,
                            "defaultModelsExpandDepth": 0},
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "portal.api_schema.postprocess"],
    # Several models have a "status": give each enum its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "BatchStatusEnum": "tickets.models.Batch.Status",
        "InvoiceStatusEnum": "invoicing.models.Invoice.Status",
        "WebhookDeliveryStatusEnum": "invoicing.webhooks.models.WebhookDelivery.Status",
        "CancellationStatusEnum": "invoicing.models.Cancellation.Status",
        "CancellationTicketsEnum": "invoicing.models.Cancellation.Tickets",
        "RefundKindEnum": "invoicing.models.Refund.Kind",
        "InvoiceKindEnum": "invoicing.models.Invoice.Kind",
    },
}

# "Mis facturas" (portal/shopper/my_invoices.py): minutes a link emailed to a shopper stays valid (it opens once),
# and minutes the list stays open in her browser after that.
MY_INVOICES_LINK_MINUTES = env_int("MY_INVOICES_LINK_MINUTES", 30)
MY_INVOICES_SESSION_MINUTES = env_int("MY_INVOICES_SESSION_MINUTES", 30)

# --- /metrics (portal/metrics.py): Prometheus, for a scraper sending «Authorization: Bearer <METRICS_TOKEN>» or a
# signed-in superuser; 404 to anyone else. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself): a directory
# per host where every gunicorn worker keeps its request metrics, so that one scrape sees them all.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# --- /healthz answers only up/down, unless asked by logged-in staff or with this token in «X-Healthz-Token».
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN", "")
# Debug pages and error reports: connection URLs (they carry passwords) are masked like keys and passwords.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.debug.SafeReporterFilter"
CSRF_FAILURE_VIEW = "portal.errors.csrf_failure"  # Spanish, branded (Django's own page is English)

# --- Security when not in DEBUG
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Logs on stderr: LOG_FORMAT "plain" (default) or "json" (one object per line), each line with the request id
# (X-Request-ID, echoed), merchant and invoice when known (portal/logs.py, infra/logcontext.py). LOG_REQUESTS=1
# adds one line per request (method, path, status, milliseconds).
LOG_FORMAT = env_str("LOG_FORMAT", "plain").strip().lower()
LOG_REQUESTS = env_bool("LOG_REQUESTS", False)
LOGGING = logging_config(fmt=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))
