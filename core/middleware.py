"""Request-scoped facts the audit trail needs: a request id and the client's address."""

import ipaddress
import re
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext as _

# What a request id from a proxy may look like: letters, digits and a few separators, at most 64 characters (a UUID,
# a W3C trace id, an AWS or nginx id). Anything else is replaced, so that logs and the audit trail hold no junk.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,63}")


def client_ip_of(request) -> str | None:
    """The client's address, seen through ``PORTAL_TRUSTED_PROXIES`` reverse proxies.

    Each trusted proxy appends the address it received the request from to ``X-Forwarded-For``; the rightmost
    entries are theirs, anything further left was written by the client and proves nothing. With N trusted proxies
    the client is the N-th address from the right of ``X-Forwarded-For, REMOTE_ADDR``. With none, ``REMOTE_ADDR``.
    The audit trail and every rate limit (logins, the admin, API tokens) use this same address.
    """
    hops = [request.META.get("REMOTE_ADDR", "")]
    trusted = settings.PORTAL_TRUSTED_PROXIES
    if trusted:
        forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        hops = forwarded + hops
    candidate = hops[-(trusted + 1)] if len(hops) > trusted else hops[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class RequestIdMiddleware:
    """Give each request an id (kept from ``X-Request-ID`` when a proxy set one of a safe form) and echo it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.client_ip = client_ip_of(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class HealthCheckMiddleware:
    """Answer ``/health/`` before host validation and HTTPS redirects, so probes can use 127.0.0.1 over HTTP.

    It reports only whether the database answers; nothing else is revealed.
    """

    path = "/health/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path != self.path:
            return self.get_response(request)
        from django.db import DatabaseError, connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            return JsonResponse({"status": "database unavailable"}, status=503)
        return JsonResponse({"status": "ok"})


class DatabaseBusyMiddleware:
    """A database too busy to take a write in time (SQLite's lock, PostgreSQL's lock timeout) answers 503 with
    ``Retry-After`` — the request changed nothing and can be sent again — instead of a server error."""

    RETRY_AFTER = 2

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import OperationalError
        from django.template.loader import render_to_string

        text = str(exception).lower()
        if not isinstance(exception, OperationalError) or not ("locked" in text or "lock timeout" in text):
            return None
        message = _("The portal is busy; nothing was changed. Try again in a moment.")
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": message}, status=503)
        else:
            from django.http import HttpResponse

            response = HttpResponse(render_to_string("503.html", {"message": message}), status=503)
        response["Retry-After"] = str(self.RETRY_AFTER)
        return response


class ApiBodyLimitMiddleware:
    """Refuse an API request whose body is larger than ``PORTAL_API_MAX_BODY_BYTES`` with a JSON 413, unread.

    Django's own limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``) guards forms, but DRF's parsers read the raw stream,
    which that limit does not cover. The declared length is checked before anything is read.
    """

    prefix = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(self.prefix):
            return self.get_response(request)
        limit = settings.PORTAL_API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": _("Invalid Content-Length header.")}, status=400)
        if length > limit:
            message = _("The request body is too large: at most %(limit)d bytes.") % {"limit": limit}
            return JsonResponse({"detail": message}, status=413)
        return self.get_response(request)
