"""Settings for the test suite: production settings (DEBUG off) with test-only secrets and plain HTTP."""

import os

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-with-enough-length-and-entropy-0123456789")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saas_portal")
os.environ.setdefault("PORTAL_REDIS_CACHE", "0")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
# Tests use their own Redis database, flushed by the fixtures that need it.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from portal.settings import *  # noqa: F403

# The browser tests talk plain HTTP to a live server on 127.0.0.1.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# django-axes refuses authenticate() calls without a request, which the test client's login() makes; the tests of
# login limits turn it on (tests/core/test_login_limits.py).
AXES_ENABLED = False
# The instruction sources' tests use local bare repositories (production allows only https and ssh).
PORTAL_INSTRUCTIONS_GIT_PROTOCOLS = ["https", "ssh", "file"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# The engine against the emulator: short waits so that failures and deadlines show within seconds.
PORTAL_WATCH_TIMEOUT = 1
PORTAL_ROLLOUT_DEADLINE = 20
PORTAL_BACKUP_DEADLINE = 20
PORTAL_NAMESPACE_DELETE_DEADLINE = 20
PORTAL_RETRY_BASE_DELAY = 0
PORTAL_KUBE_READ_TIMEOUT = 5
