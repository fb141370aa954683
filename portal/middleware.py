"""Request-scoped facts the audit trail needs: a request id and the client's address."""

import ipaddress
import uuid

from django.conf import settings


class RequestIdMiddleware:
    """Give each request an id (kept from ``X-Request-ID`` when a proxy set one) and echo it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        request.client_ip = self.client_ip(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response

    @staticmethod
    def client_ip(request) -> str | None:
        # Behind the production proxy the first X-Forwarded-For hop is the client; trust it only there.
        candidate = request.META.get("REMOTE_ADDR", "")
        if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded:
                candidate = forwarded.split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return None
