"""Push notifications from the registries: each asks the portal to sync the repository that changed.

One endpoint per registry (``/registry/hooks/<id>/``), authenticated by that registry's webhook secret, compared
in constant time. It is sent as ``Authorization: Bearer <secret>`` (or the bare secret, as Harbor's "auth header"
sends it), as ``X-Portal-Webhook-Secret``, or, for registries that cannot set a header (Quay), as ``?secret=``.
Wrong secret: 403; unreadable payload: 400; no repository of the portal in it: 404. A replay only syncs again.
"""

from __future__ import annotations

import hmac
import json
import logging

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from core.crypto import UnreadableSecret
from registry.choices import RegistryKind
from registry.models import ImageRepository, Registry
from registry.sync import enqueue_repository_sync

logger = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
HARBOR_EVENTS = frozenset({"PUSH_ARTIFACT", "SCANNING_COMPLETED", "SCANNING_FAILED", "DELETE_ARTIFACT"})
DISTRIBUTION_ACTIONS = frozenset({"push", "delete"})


class MalformedPayload(ValueError):
    pass


def _presented_secret(request) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return header.strip() or request.headers.get("X-Portal-Webhook-Secret", "") or request.GET.get("secret", "")


def _quay_paths(payload: dict) -> set[str]:
    """Quay's repository notification (repo_push): ``{"repository": "namespace/name", "updated_tags": [...]}``."""
    repository = payload.get("repository")
    if not isinstance(repository, str) or not repository:
        raise MalformedPayload("no repository")
    return {repository}


def _harbor_paths(payload: dict) -> set[str]:
    """Harbor's webhook: ``{"type": "PUSH_ARTIFACT", "event_data": {"repository": {"repo_full_name": ...}}}``."""
    if payload.get("type") not in HARBOR_EVENTS:
        return set()
    repository = ((payload.get("event_data") or {}).get("repository") or {}).get("repo_full_name")
    if not isinstance(repository, str) or not repository:
        raise MalformedPayload("no event_data.repository.repo_full_name")
    return {repository}


def _distribution_paths(payload: dict) -> set[str]:
    """Distribution's notification envelope: ``{"events": [{"action": "push", "target": {"repository": ...}}]}``."""
    events = payload.get("events")
    if not isinstance(events, list):
        raise MalformedPayload("no events")
    paths = set()
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("target"), dict):
            raise MalformedPayload("an event without target")
        if event.get("action") in DISTRIBUTION_ACTIONS and isinstance(event["target"].get("repository"), str):
            paths.add(event["target"]["repository"])
    return paths


PARSERS = {
    RegistryKind.QUAY: _quay_paths,
    RegistryKind.HARBOR: _harbor_paths,
    RegistryKind.DISTRIBUTION: _distribution_paths,
}


@method_decorator(csrf_exempt, name="dispatch")
class RegistryWebhookView(View):
    http_method_names = ["post"]

    def post(self, request, pk):
        registry = Registry.objects.filter(pk=pk).first()
        if registry is None:
            return JsonResponse({"detail": _("No such registry.")}, status=404)
        expected = registry.webhook_secret
        presented = _presented_secret(request)
        if (
            isinstance(expected, UnreadableSecret)
            or not expected
            or not hmac.compare_digest(presented.encode(), expected.encode())
        ):
            return JsonResponse({"detail": _("Wrong or missing webhook secret.")}, status=403)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        # The declared length is checked before the body is read (Django would refuse a huge one with a bare 400).
        if declared > MAX_BODY or len(request.body) > MAX_BODY:
            return JsonResponse({"detail": _("The payload is too large.")}, status=413)
        try:
            payload = json.loads(request.body)
            if not isinstance(payload, dict):
                raise MalformedPayload("not a JSON object")
            paths = PARSERS[registry.kind](payload)
        except (ValueError, RecursionError) as error:
            return JsonResponse({"detail": _("Malformed payload: %(error)s") % {"error": error}}, status=400)
        if not paths:
            return JsonResponse({"queued": [], "detail": _("Nothing to sync in this event.")}, status=200)
        repositories = list(ImageRepository.objects.filter(registry=registry, path__in=paths))
        if not repositories:
            return JsonResponse({"detail": _("No repository of this registry is known to the portal.")}, status=404)
        for repository in repositories:
            repository.registry = registry
            enqueue_repository_sync(repository)
        logger.info("registry %s notified a change of %s", registry, ", ".join(sorted(paths)))
        return JsonResponse({"queued": sorted(r.path for r in repositories)}, status=202)
