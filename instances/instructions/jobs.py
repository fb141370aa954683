"""Polling the git sources of instruction files: the periodic job, and a maintainer's "import now".

A poll reads the branch's head; when the commit is the one imported last, it stops there (the periodic job), else it
fetches the file and imports it as the system actor, then stores the commit and the report. A failure — the
repository unreachable, the branch or the file missing, a file too big or not text — imports nothing, keeps the last
commit and report as they were, and is stored in ``last_error`` (scrubbed of any credential).
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import AuditContext
from core.crypto import UnreadableSecret
from core.jobs import enqueue_on_commit, periodic
from core.messages import Message, msg
from instances.instructions.importer import import_instructions
from instances.instructions.parser import InstructionFileError, decode
from instances.instructions.sources import GitError, GitRemote
from instances.models import InstructionSource

logger = logging.getLogger(__name__)


def source_context(source: InstructionSource) -> AuditContext:
    """The actor of a source's imports: the system, reading that source's file."""
    return AuditContext.system(f"instructions file {source.name}")


def remote_for(source: InstructionSource) -> GitRemote:
    if isinstance(source.secret, UnreadableSecret):
        raise GitError(Message(msg("The stored password or token cannot be decrypted: the encryption keys changed.")))
    return GitRemote(source.url, username=source.username, secret=source.secret or "")


def _failed(source: InstructionSource, message: Message, now: datetime.datetime) -> str:
    InstructionSource.objects.filter(pk=source.pk).update(
        last_polled_at=now, last_error=message.english, last_error_message=message.as_json()
    )
    logger.warning("instruction source %s: %s", source.name, message.english)
    return f"{source.name}: {message.english}"


def poll_source(source_pk: int, force: bool = False) -> str:
    """Import the source's file if its branch moved (always, with ``force``); returns a line for the job's record."""
    source = InstructionSource.objects.select_related("application").filter(pk=source_pk).first()
    if source is None:
        return "source gone"
    now = timezone.now()
    max_bytes = settings.PORTAL_INSTRUCTIONS_MAX_BYTES
    try:
        remote = remote_for(source)
        if not force and remote.head(source.branch) == source.last_commit:
            InstructionSource.objects.filter(pk=source.pk).update(
                last_polled_at=now, last_error="", last_error_message=None
            )
            return f"{source.name}: no new commit"
        commit, data = remote.read(source.branch, source.path, max_bytes=max_bytes)
        text = decode(data, max_bytes=max_bytes)
        with transaction.atomic():
            # One import of a source at a time; one that ran meanwhile for this commit leaves nothing to do.
            locked = (
                InstructionSource.objects.select_for_update(of=("self",))
                .select_related("application")
                .get(pk=source.pk)
            )
            if not force and locked.last_commit == commit:
                return f"{source.name}: {commit[:10]} already imported"
            report = import_instructions(
                source_context(locked), text, source=locked, commit=commit, application=locked.application
            )
            InstructionSource.objects.filter(pk=source.pk).update(
                last_commit=commit,
                last_report=report.as_json(),
                last_imported_at=now,
                last_polled_at=now,
                last_error="",
                last_error_message=None,
            )
    except (GitError, InstructionFileError) as error:
        return _failed(source, error.message, now)
    return f"{source.name}: {commit[:10]}: {report}"


def due_sources(now: datetime.datetime | None = None) -> list[InstructionSource]:
    now = now or timezone.now()
    enabled = InstructionSource.objects.filter(enabled=True).only("pk", "name", "poll_interval", "last_polled_at")
    return [
        source
        for source in enabled
        if source.last_polled_at is None
        or source.last_polled_at + datetime.timedelta(seconds=source.poll_interval) <= now
    ]


@periodic("instruction sources")
def poll_sources() -> str:
    """The periodic poll of every enabled source that is due (its run is recorded on the Jobs page).

    A source that crashes (a bug, not a git failure) does not stop the others; the run ends failed, naming it."""
    lines, crashed = [], []
    for source in due_sources():
        try:
            lines.append(poll_source(source.pk))
        except Exception:
            logger.exception("instruction source %s crashed", source.name)
            internal = Message(msg("Internal error while importing; the server log has the details."))
            _failed(source, internal, timezone.now())
            crashed.append(source.name)
    if crashed:
        raise RuntimeError(f"instruction sources crashed: {', '.join(crashed)}; " + "; ".join(lines))
    return "\n".join(lines) or "no source due"


def enqueue_poll(source: InstructionSource) -> None:
    """A maintainer's "import now": import the file even if its commit did not change, in the background."""
    enqueue_on_commit(poll_source, source.pk, True, queue="sync", job_id=f"instruction-source-{source.pk}")
