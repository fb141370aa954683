"""Settings of SaaS Portal, read from the environment.

Every setting that differs between a laptop and production comes from an environment variable documented
in the README. With ``DJANGO_DEBUG=0`` the portal refuses to start unless the production settings are given.
"""

import datetime
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean variable; an unrecognised value stops start-up rather than guessing."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no, not {raw!r}.")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from exc


DEBUG = env_bool("DJANGO_DEBUG", default=False)

# Development defaults exist only with DEBUG on; production must say everything explicitly.
_missing = []
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "django-insecure-development-only-key-not-for-production"
    else:
        _missing.append("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if not ALLOWED_HOSTS:
    _missing.append("DJANGO_ALLOWED_HOSTS")
if not DEBUG and "DATABASE_URL" not in os.environ:
    _missing.append("DATABASE_URL")
if _missing:
    raise ImproperlyConfigured(
        "SaaS Portal runs with DJANGO_DEBUG=0 (production) but these settings are missing: "
        + ", ".join(_missing)
        + ". Set them in the environment (see README, 'Configuration'), or set DJANGO_DEBUG=1 for development."
    )

CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "csp",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_rq",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "portal",
    "core",
    "instances",
    "registry",
]

MIDDLEWARE = [
    "core.middleware.HealthCheckMiddleware",
    "core.middleware.DatabaseBusyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "core.middleware.ApiBodyLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "django.template.context_processors.i18n",
                "core.context_processors.roles",
                "instances.context_processors.review_queue",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A stuck database must not hang a request or a worker forever.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 10)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded database of `make run` serves a web server and several workers at once: readers never wait for
    # the writer (WAL), a writer takes its lock when its transaction begins (IMMEDIATE, so two transactions never
    # both read then both fail to upgrade their lock) and waits for it rather than failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("DATABASE_BUSY_TIMEOUT", 20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_TIMEOUT = env_int("REDIS_TIMEOUT", 5)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache"
        if env_bool("PORTAL_REDIS_CACHE", default=not DEBUG)
        else "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT}
        if env_bool("PORTAL_REDIS_CACHE", default=not DEBUG)
        else {},
    }
}

RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": env_int("PORTAL_JOB_TIMEOUT", 900)}
    # storage: reading dumps back and pruning them may take long; the dispatcher and the syncs never wait for it.
    for name in ("default", "operations", "sync", "storage")
}
# Tests flip this to run jobs inline; production and `make run` always use real workers.
RQ_ASYNC = env_bool("PORTAL_RQ_ASYNC", default=True)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a login from a locked-out user and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# Reverse proxies in front of the portal that append to X-Forwarded-For (0: none, REMOTE_ADDR is the client).
# The client address they give is the one the audit trail records and every login and token limit counts.
PORTAL_TRUSTED_PROXIES = env_int("PORTAL_TRUSTED_PROXIES", 0)

# Failed logins on every path that checks a password (the portal's login, the admin's) and failed API token
# attempts are counted by django-axes per account *and* address: an attacker locks out only their own
# attempts on that account, never every user behind the same proxy.
AXES_FAILURE_LIMIT = env_int("PORTAL_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("PORTAL_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "core.middleware.client_ip_of"
AXES_USERNAME_CALLABLE = "core.auth.login_name_of"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.auth.lockout_response"

# Content-Security-Policy: scripts and styles only from the portal's own files, never inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # The style attribute of the stand-alone error pages (500, 503), which load no file.
        "style-src": ["'self'", "'unsafe-hashes'", "'sha256-zjSYI4AguKmsFULmGjxwNx9kEu4021eldGqiDXg9mJ4='"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
# Accounts are created by maintainers (or by SSO), never by self-service sign-up.
ACCOUNT_ADAPTER = "core.auth.PortalAccountAdapter"
SOCIALACCOUNT_ADAPTER = "core.auth.PortalSocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# An address a user adds is theirs only once they confirm it: allauth's "change e-mail" flow keeps the old one
# until the new one is verified, so the account's address (notifications, SSO linking, password reset) is always one
# that was verified or that a maintainer set (core/auth.py).
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_FORMS = {"reset_password": "core.auth.TrustedAddressResetPasswordForm"}
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {
    # Failed logins per client address (through the trusted proxies); per account *and* address, django-axes
    # counts them (below). No limit per account alone: anyone could lock a user out by failing in their name.
    "login_failed": os.environ.get("PORTAL_LOGIN_RATE_LIMIT", "20/m/ip"),
    "reset_password": "20/m/ip,5/m/key",
}
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_LOGIN_ON_GET = False

# University single sign-on through a generic OpenID Connect provider (optional).
OIDC_PROVIDER_ID = os.environ.get("OIDC_PROVIDER_ID", "university")
OIDC_SERVER_URL = os.environ.get("OIDC_SERVER_URL", "")
# The claim that identifies a person for good: `sub`, or e.g. `eduPersonPrincipalName` in university federations.
OIDC_UID_CLAIM = os.environ.get("OIDC_UID_CLAIM", "sub")
# Whether the provider's e-mail addresses are verified even without an `email_verified` claim (a university's own
# provider, which issues the addresses). Off: an SSO login links to an account only if the provider says verified.
OIDC_TRUST_EMAIL = env_bool("OIDC_TRUST_EMAIL", default=False)
SOCIALACCOUNT_PROVIDERS = {}
if OIDC_SERVER_URL:
    _oidc_client_id = os.environ.get("OIDC_CLIENT_ID", "")
    _oidc_secret = os.environ.get("OIDC_CLIENT_SECRET", "")
    if not _oidc_client_id or not _oidc_secret:
        raise ImproperlyConfigured("OIDC_SERVER_URL is set, so OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are required.")
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": OIDC_PROVIDER_ID,
                "name": os.environ.get("OIDC_NAME", "University SSO"),
                "client_id": _oidc_client_id,
                "secret": _oidc_secret,
                "settings": {
                    "server_url": OIDC_SERVER_URL,
                    "token_auth_method": os.environ.get("OIDC_TOKEN_AUTH_METHOD", "client_secret_basic"),
                    "uid_field": OIDC_UID_CLAIM,
                },
            }
        ],
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Personal tokens, hashed at rest: `Authorization: Bearer <token>` (or `Token <token>`).
        "core.api.auth.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "core.api.auth.TokenScopePermission",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PortalPagination",
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    # DRF's throttles find the client address through the same trusted proxies as everything else.
    "NUM_PROXIES": PORTAL_TRUSTED_PROXIES,
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("PORTAL_API_ANON_RATE", "60/minute"),
        "user": os.environ.get("PORTAL_API_USER_RATE", "1200/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Personal API tokens (django-rest-knox, our own model): only a SHA-512 digest and a 15-character prefix are stored.
KNOX_TOKEN_MODEL = "core.ApiToken"
# knox's own migrations create its own token table even when its model is replaced; the portal never uses it.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": None,  # each token chooses its expiry (or none) when it is created
    "TOKEN_PREFIX": "sp_",  # recognisable in a leaked file or a secret scanner
    "AUTH_HEADER_PREFIX": "Bearer",
}
# The API refuses bodies larger than this (413) and JSON nested deeper than this (400).
PORTAL_API_MAX_BODY_BYTES = env_int("PORTAL_API_MAX_BODY_BYTES", 2 * 1024 * 1024)
PORTAL_API_MAX_JSON_DEPTH = env_int("PORTAL_API_MAX_JSON_DEPTH", 20)
SPECTACULAR_SETTINGS = {
    "TITLE": "SaaS Portal API",
    "DESCRIPTION": "Instances of shared applications for universities: requests, approvals, rollouts, backups.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "InstanceStatusEnum": "instances.choices.InstanceStatus",
        "RequestStatusEnum": "instances.choices.RequestStatus",
        "RequestKindEnum": "instances.choices.RequestKind",
        "OperationStatusEnum": "instances.choices.OperationStatus",
        "OperationKindEnum": "instances.choices.OperationKind",
        "BackupStatusEnum": "instances.choices.BackupStatus",
        "RolloutStateEnum": "instances.choices.RolloutState",
    },
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("PORTAL_TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True
# Day-first dates and a 24-hour clock in English too (see portal/formats/en/formats.py).
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# E-mail: console under `make run`, SMTP in production.
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env_int("DJANGO_EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "SaaS Portal <portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Fernet keys (newest first) that encrypt kubeconfigs at rest; derived from the secret key when empty.
PORTAL_ENCRYPTION_KEYS = env_list("PORTAL_ENCRYPTION_KEYS")
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000")
# Every instance gets the namespace <prefix><slug>; the prefix keeps them apart from the cluster's own namespaces.
PORTAL_NAMESPACE_PREFIX = os.environ.get("PORTAL_NAMESPACE_PREFIX", "saas-")
PORTAL_INSTANCE_DOMAIN = os.environ.get("PORTAL_INSTANCE_DOMAIN", "apps.example.org")
# On-demand backups run without approval unless the hosting team wants to review them too.
PORTAL_BACKUP_NEEDS_APPROVAL = env_bool("PORTAL_BACKUP_NEEDS_APPROVAL", default=False)

# --- Deployment engine ---------------------------------------------------------------------------------------
# How long an upgrade may take to become available before it counts as failed (and is rolled back).
PORTAL_ROLLOUT_DEADLINE = env_int("PORTAL_ROLLOUT_DEADLINE", 600)
PORTAL_BACKUP_DEADLINE = env_int("PORTAL_BACKUP_DEADLINE", 1800)
PORTAL_NAMESPACE_DELETE_DEADLINE = env_int("PORTAL_NAMESPACE_DELETE_DEADLINE", 600)
# One watch call never blocks longer than this; waits are a sequence of bounded watches up to their deadline.
PORTAL_WATCH_TIMEOUT = env_int("PORTAL_WATCH_TIMEOUT", 30)
PORTAL_ROLLBACK_ON_FAILURE = env_bool("PORTAL_ROLLBACK_ON_FAILURE", default=True)
# Transient cluster errors (409, 429, 5xx, timeouts) are retried with exponential backoff, then fail.
PORTAL_OPERATION_MAX_ATTEMPTS = env_int("PORTAL_OPERATION_MAX_ATTEMPTS", 4)
PORTAL_RETRY_BASE_DELAY = env_int("PORTAL_RETRY_BASE_DELAY", 10)
# A running operation that shows no sign of life for this long lost its worker; the dispatcher ends it.
PORTAL_OPERATION_STALE_AFTER = env_int("PORTAL_OPERATION_STALE_AFTER", 300)
PORTAL_DISPATCH_INTERVAL = env_int("PORTAL_DISPATCH_INTERVAL", 30)
# Runs of the periodic jobs (the "Jobs" page) are kept this many days.
PORTAL_JOB_HISTORY_DAYS = env_int("PORTAL_JOB_HISTORY_DAYS", 7)
PORTAL_SYNC_INTERVAL = env_int("PORTAL_SYNC_INTERVAL", 60)
# An instance without a successful backup for this long is flagged.
PORTAL_BACKUP_MAX_AGE_HOURS = env_int("PORTAL_BACKUP_MAX_AGE_HOURS", 26)
PORTAL_KUBE_CONNECT_TIMEOUT = env_int("PORTAL_KUBE_CONNECT_TIMEOUT", 5)
PORTAL_KUBE_READ_TIMEOUT = env_int("PORTAL_KUBE_READ_TIMEOUT", 30)
# Where every instance's timemachine uploads its dumps (each under its own prefix, instances/<slug>/, with a key of
# its own). The access key below is the portal's own: it never leaves the portal (never put in a namespace).
PORTAL_BACKUP_S3_ENDPOINT = os.environ.get("PORTAL_BACKUP_S3_ENDPOINT", "https://s3.example.org")
PORTAL_BACKUP_S3_BUCKET = os.environ.get("PORTAL_BACKUP_S3_BUCKET", "smile-backups")
PORTAL_BACKUP_S3_REGION = os.environ.get("PORTAL_BACKUP_S3_REGION", "")
PORTAL_BACKUP_S3_ACCESS_KEY_ID = os.environ.get("PORTAL_BACKUP_S3_ACCESS_KEY_ID", "")
PORTAL_BACKUP_S3_SECRET_ACCESS_KEY = os.environ.get("PORTAL_BACKUP_S3_SECRET_ACCESS_KEY", "")
# The portal's calls to the storage (verification, retention, download links): timeouts and attempts per call.
PORTAL_BACKUP_S3_CONNECT_TIMEOUT = env_int("PORTAL_BACKUP_S3_CONNECT_TIMEOUT", 5)
PORTAL_BACKUP_S3_READ_TIMEOUT = env_int("PORTAL_BACKUP_S3_READ_TIMEOUT", 30)
PORTAL_BACKUP_S3_ATTEMPTS = env_int("PORTAL_BACKUP_S3_ATTEMPTS", 3)
# A backup's download link (a presigned GET) is valid this many seconds.
PORTAL_BACKUP_DOWNLOAD_SECONDS = env_int("PORTAL_BACKUP_DOWNLOAD_SECONDS", 300)
# Regular backups kept per instance size: the newest of each of the last `daily` days and `weekly` weeks.
PORTAL_BACKUP_RETENTION = {
    "small": {"daily": 7, "weekly": 4},
    "medium": {"daily": 14, "weekly": 8},
    "large": {"daily": 30, "weekly": 12},
}
# How often retention and the missed-backup check run (seconds).
PORTAL_BACKUP_RETENTION_INTERVAL = env_int("PORTAL_BACKUP_RETENTION_INTERVAL", 6 * 3600)
PORTAL_BACKUP_ALERT_INTERVAL = env_int("PORTAL_BACKUP_ALERT_INTERVAL", 900)
# How long a restore Job may run (a restore or a drill) before it counts as failed; drills run this often (seconds).
PORTAL_RESTORE_DEADLINE = env_int("PORTAL_RESTORE_DEADLINE", 3600)
PORTAL_RESTORE_DRILL_INTERVAL = env_int("PORTAL_RESTORE_DRILL_INTERVAL", 7 * 24 * 3600)
# An operation's job must outlive its longest sequence of waits, or RQ would kill it half-way: an upgrade or a
# deletion backs up (then reads the dump back to verify it), rolls out, rolls back, waits for a namespace; a restore
# backs up, restores, scales down and up, and at worst restores the pre-restore dump and scales again.
RQ_QUEUES["operations"]["DEFAULT_TIMEOUT"] = max(
    RQ_QUEUES["operations"]["DEFAULT_TIMEOUT"],
    2 * PORTAL_BACKUP_DEADLINE + 2 * PORTAL_ROLLOUT_DEADLINE + PORTAL_NAMESPACE_DELETE_DEADLINE + 300,
    2 * PORTAL_BACKUP_DEADLINE + 2 * PORTAL_RESTORE_DEADLINE + 4 * PORTAL_ROLLOUT_DEADLINE + 300,
)

# --- Cluster isolation (README: "Security", "On the cluster") ------------------------------------------------------
# Who gives each instance its own backup storage key (a dotted path to a provider class): by default the key a
# maintainer created at the storage, limited to the instance's prefix, and entered on the instance in the admin.
PORTAL_BACKUP_CREDENTIALS_PROVIDER = os.environ.get(
    "PORTAL_BACKUP_CREDENTIALS_PROVIDER", "instances.engine.credentials.StaticCredentials"
)
# The backup storage's addresses (comma-separated CIDRs), the only ones the backup Jobs may reach, on the port of
# PORTAL_BACKUP_S3_ENDPOINT. Empty: any address on that port, for a storage known by a name whose addresses change.
PORTAL_BACKUP_S3_CIDRS = env_list("PORTAL_BACKUP_S3_CIDRS")
# The version of the Pod Security Standards the instances' namespaces enforce: pinned, never "latest", so that a
# cluster upgrade does not change what the instances' pods must satisfy.
PORTAL_POD_SECURITY_VERSION = os.environ.get("PORTAL_POD_SECURITY_VERSION", "v1.31")
# Image registries: every call has a (connect, read) timeout; 429 and 5xx answers are retried with backoff,
# honouring Retry-After up to a limit; a paginated answer longer than MAX_PAGES is refused.
PORTAL_REGISTRY_CONNECT_TIMEOUT = env_int("PORTAL_REGISTRY_CONNECT_TIMEOUT", 5)
PORTAL_REGISTRY_READ_TIMEOUT = env_int("PORTAL_REGISTRY_READ_TIMEOUT", 20)
PORTAL_REGISTRY_RETRIES = env_int("PORTAL_REGISTRY_RETRIES", 3)
PORTAL_REGISTRY_MAX_RETRY_WAIT = env_int("PORTAL_REGISTRY_MAX_RETRY_WAIT", 10)
PORTAL_REGISTRY_MAX_PAGES = env_int("PORTAL_REGISTRY_MAX_PAGES", 200)
PORTAL_REGISTRY_SYNC_INTERVAL = env_int("PORTAL_REGISTRY_SYNC_INTERVAL", 900)
# A scanned image "fails" its scan when a vulnerability reaches this severity (critical, high, medium, low);
# each application's scan policy decides on top of that what blocks a deployment.
PORTAL_REGISTRY_FAIL_SEVERITY = os.environ.get("PORTAL_REGISTRY_FAIL_SEVERITY", "critical")
# The sandbox: with no cluster configured, `make run` starts an emulated Kubernetes API with simulated controllers.
PORTAL_SANDBOX = env_bool("PORTAL_SANDBOX", default=DEBUG)
# The demo's image registry (`make run`): a local Distribution server, its storage kept in this directory.
PORTAL_DEMO_REGISTRY_PORT = env_int("PORTAL_DEMO_REGISTRY_PORT", 8091)
PORTAL_DEMO_REGISTRY_DIR = Path(os.environ.get("PORTAL_DEMO_REGISTRY_DIR", BASE_DIR / "demo-registry"))
# The legacy instruction file (README, "The instruction file"): a bigger file is refused whole, nothing imported.
PORTAL_INSTRUCTIONS_MAX_BYTES = env_int("PORTAL_INSTRUCTIONS_MAX_BYTES", 256 * 1024)
PORTAL_INSTRUCTIONS_MAX_LINES = env_int("PORTAL_INSTRUCTIONS_MAX_LINES", 1000)
# Slug of the application that `C` lines create; empty: the only application of the catalogue.
PORTAL_INSTRUCTIONS_APPLICATION = os.environ.get("PORTAL_INSTRUCTIONS_APPLICATION", "")
# Git sources of instruction files: how often the periodic job looks for due sources, each git call's time limit,
# the transports a source URL may use, and where each poll makes its scratch repository (deleted after the poll;
# empty: the system's temporary directory).
PORTAL_INSTRUCTIONS_POLL_TICK = env_int("PORTAL_INSTRUCTIONS_POLL_TICK", 60)
PORTAL_INSTRUCTIONS_GIT_TIMEOUT = env_int("PORTAL_INSTRUCTIONS_GIT_TIMEOUT", 60)
# `file` (a repository on the portal's own disk) only in development: in production it would let a source read
# any repository the portal's user can read.
PORTAL_INSTRUCTIONS_GIT_PROTOCOLS = env_list(
    "PORTAL_INSTRUCTIONS_GIT_PROTOCOLS", "https,ssh,file" if DEBUG else "https,ssh"
)
PORTAL_INSTRUCTIONS_GIT_DIR = os.environ.get("PORTAL_INSTRUCTIONS_GIT_DIR", "")

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PORTAL_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
