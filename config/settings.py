"""Settings, read from the environment (README "Configuration" lists every variable)."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("REVIEWS_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is off")
    SECRET_KEY = "debug-only-not-secret"  # noqa: S105 - only with DEBUG on
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "axes",
    "reviews",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Security (config/security.py): CSP and other headers on every response; body size limits
    # before anything reads the body; django-axes last, as it asks.
    "config.security.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",
]
MIDDLEWARE.insert(1, "config.security.RequestSizeLimitMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "reviews.context_processors.role",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": SQLITE_PATH}}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Django's SQLite backend; its writers wait for each other in short steps (config/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Several labelers write at once: IMMEDIATE takes the write lock at BEGIN so a
    # read-then-write transaction never fails with "database is locked" midway, and WAL
    # lets readers proceed while one writer holds it (RECIPES.md).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": VAR_DIR / "test.sqlite3"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the embedded server that `make run` starts listens on this socket by default.
REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env_str("REDIS_URL", f"unix://{REDIS_SOCKET}?db=0")
RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): AXES_FAILURE_LIMIT wrong passwords for one username from one
# address lock that pair out for AXES_COOLOFF_MINUTES; a success resets the count. Attempts are
# kept in the database, so every web process sees them. `manage.py axes_reset` lifts lockouts.
AUTHENTICATION_BACKENDS = [
    "config.throttling.ThrottledLoginBackend",
    # Django's model backend that also loads the user's roles (one query per request, not two).
    "reviews.people.backends.RoleBackend",
    # Sessions signed in before RoleBackend existed name this one; they keep working.
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_SENSITIVE_PARAMETERS = ["password", "csrfmiddlewaretoken"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "reviews:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app's static folders too, so a fresh checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True

# Behind TLS in production: SECURE_HTTPS=true turns on redirects, HSTS and secure cookies.
SECURE_HTTPS = env_bool("SECURE_HTTPS", False)
SECURE_SSL_REDIRECT = SECURE_HTTPS
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_HSTS_SECONDS = 31536000 if SECURE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Sessions end after REVIEWS_SESSION_HOURS (default a working day) or when the browser closes.
SESSION_COOKIE_AGE = env_int("REVIEWS_SESSION_HOURS", 12) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Request bodies: forms (everything but uploaded files) up to REVIEWS_FORM_MAX_BYTES; a whole request,
# uploads included, up to REVIEWS_MAX_REQUEST_BYTES (a pool file for the import page; 413 above it).
# Uploads above 2.5 MB stream to a temporary file, never into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("REVIEWS_FORM_MAX_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
REVIEWS_MAX_REQUEST_BYTES = env_int("REVIEWS_MAX_REQUEST_BYTES", 1024 * 1024 * 1024)

# App settings, with their defaults in one place.
REVIEWS_IMPORT_MAX_LINE_BYTES = env_int("REVIEWS_IMPORT_MAX_LINE_BYTES", 10 * 1024 * 1024)
REVIEWS_IMPORT_BATCH_SIZE = env_int("REVIEWS_IMPORT_BATCH_SIZE", 1000)
# Datasets and the ingest API (docs/areas/datasets.md).
REVIEWS_DATASET_DIR = Path(env_str("REVIEWS_DATASET_DIR", str(VAR_DIR / "datasets")))
# Dataset versions of larger campaigns are built by the RQ worker, not inside the web request.
REVIEWS_DATASET_INLINE_ITEMS = env_int("REVIEWS_DATASET_INLINE_ITEMS", 20000)
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 32 * 1024 * 1024)
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 120)
API_RATE_WINDOW_SECONDS = env_int("API_RATE_WINDOW_SECONDS", 60)
SCORING_CHUNK_SIZE = env_int("SCORING_CHUNK_SIZE", 2000)
SCORING_STALE_SECONDS = env_int("SCORING_STALE_SECONDS", 300)
SCORING_JOB_TIMEOUT = env_int("SCORING_JOB_TIMEOUT", 3600)
SCORING_MAX_REPRESENTATIVES = env_int("SCORING_MAX_REPRESENTATIVES", 1000)
SCORING_KEEP_RUNS = env_int("SCORING_KEEP_RUNS", 3)
SCORING_SCHEDULE_SECONDS = env_int("SCORING_SCHEDULE_SECONDS", 300)
# Campaigns with at least this many items are rescored by chunk jobs that any worker can take
# (scoring.chunked); smaller ones in one job, where the fan-out would cost more than it saves.
SCORING_SPLIT_MIN_ITEMS = env_int("SCORING_SPLIT_MIN_ITEMS", 50_000)
# Items (or texts to hash) per chunk job.
SCORING_SPLIT_CHUNK_ITEMS = env_int("SCORING_SPLIT_CHUNK_ITEMS", 20_000)
# Monitoring: how often the scheduled job snapshots every campaign's figures.
REVIEWS_METRICS_SCHEDULE_SECONDS = env_int("REVIEWS_METRICS_SCHEDULE_SECONDS", 3600)
# Gold items: a labeler whose accuracy on at least GOLD_ALERT_MIN_ANSWERS gold answers is below
# GOLD_ALERT_ACCURACY is listed for the leads on the escalation queue.
GOLD_ALERT_ACCURACY = float(env_str("GOLD_ALERT_ACCURACY", "0.7"))
GOLD_ALERT_MIN_ANSWERS = env_int("GOLD_ALERT_MIN_ANSWERS", 10)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every handler carries the redaction filter: no secret, password or token reaches a log.
    "filters": {"redact_secrets": {"()": "config.redaction.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}
