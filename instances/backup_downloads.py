"""Downloading a backup: a short-lived signed link to the dump, for the instance's functional admins and the
maintainers only, each download audited (``backup.downloaded``).

The portal never streams the dump itself: the browser fetches it from the storage with a presigned GET made with
the instance's own key, valid ``PORTAL_BACKUP_DOWNLOAD_SECONDS``.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.audit import AuditContext, record
from core.errors import Conflict, InvalidTransition, NotAllowed
from core.models.organisations import can_request_for
from instances.choices import BackupStatus
from instances.engine.storage import StorageError, signed_url
from instances.models import Backup


def download_url(ctx: AuditContext, user, backup: Backup) -> str:
    """A signed URL of ``backup``'s dump for ``user`` (who may see its instance), audited.

    Raises :class:`NotAllowed` for a viewer, :class:`InvalidTransition` for a backup that is not verified (its
    dump is missing, unchecked or deleted) and :class:`Conflict` when the storage cannot sign a link.
    """
    instance = backup.instance
    if not can_request_for(user, instance.organisation):
        raise NotAllowed(_("Only the organisation's functional admins and the maintainers may download its backups."))
    if backup.status != BackupStatus.VERIFIED or not backup.storage_key:
        raise InvalidTransition(_("Only a verified backup can be downloaded."), current=backup.status)
    seconds = settings.PORTAL_BACKUP_DOWNLOAD_SECONDS
    try:
        url = signed_url(instance, backup.storage_key, seconds)
    except StorageError as error:
        raise Conflict(_("The storage cannot give a download link: %(reason)s") % {"reason": error.reason}) from None
    record(
        ctx,
        "backup.downloaded",
        backup,
        organisation_id=instance.organisation_id,
        label=f"{instance.slug} {backup.job_name}",
        after={"storage_key": backup.storage_key, "size": backup.size, "sha256": backup.sha256, "seconds": seconds},
    )
    return url
