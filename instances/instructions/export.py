"""The open scheduled requests in the instruction format, so that the legacy file can be written again from the portal.

Importing what this writes reports every line unchanged (the round trip the tests check): each line names the same
kind, instance, version and minute as its request.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings

from instances.choices import RequestKind, RequestStatus
from instances.instructions.parser import FORMAT, LETTERS, format_time
from instances.models import ChangeRequest

# Not started yet: what the file can still change.
EXPORTED_STATUSES = RequestStatus.cancellable()
EXPORTED_KINDS = (RequestKind.CREATE, RequestKind.UPDATE, RequestKind.DELETE)


def exported_requests(user=None):
    """Requests waiting for their time, visible to ``user`` (every one for the system, ``user=None``)."""
    requests = ChangeRequest.objects.all() if user is None else ChangeRequest.objects.visible_to(user)
    return (
        requests.filter(status__in=EXPORTED_STATUSES, kind__in=EXPORTED_KINDS, scheduled_for__isnull=False)
        .select_related("instance", "target_version")
        .order_by("scheduled_for", "id")
    )


def instruction_line(request: ChangeRequest, zone: zoneinfo.ZoneInfo) -> str:
    version = request.target_version.version if request.kind != RequestKind.DELETE and request.target_version else ""
    return "|".join((LETTERS[request.kind], request.target_name, version, format_time(request.scheduled_for, zone)))


def export_text(user=None) -> str:
    """The file: a comment saying what it is, then one line per request, by time (one query)."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    lines = [
        f"# {FORMAT}",
        f"# Open scheduled requests exported by SaaS Portal; times in {settings.TIME_ZONE}.",
        *(instruction_line(request, zone) for request in exported_requests(user)),
    ]
    return "\n".join(lines) + "\n"
