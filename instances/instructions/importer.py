"""Turning an instruction file into change requests, through the same workflow functions as the pages and the API.

The import runs in one transaction, in three passes, so that a dry run (rolled back at the end) reports exactly what
a real import would:

1. every line is resolved without writing: the instance (among those the actor may see: another organisation's is
   "unknown", never "not yours"), the version, and whether a request already asks for the same thing — same kind,
   instance, version and time (to the minute; a past time also matches a request due "now"). An open or succeeded
   one makes the line *unchanged*, and so does a rejected one (with a warning): re-importing a file never files a
   request twice, nor again after a maintainer said no;
2. for a git source, its requests that no line asks for any more and that have not started are *cancelled*, first,
   so that a line whose version or date was edited can replace its old request at once;
3. the other lines are filed with :mod:`instances.workflow` (which checks permissions, the catalogue and conflicts),
   each in a savepoint: a refused line is reported and rolls back alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import messages
from core.audit import AuditContext
from core.errors import DomainError
from core.messages import Message, msg
from core.models import Organisation
from instances import workflow
from instances.choices import RequestKind, RequestSource, RequestStatus
from instances.instructions.parser import Instruction, Parsed, check_size, parse
from instances.instructions.report import ImportReport, LineResult, LineStatus
from instances.models import Application, ApplicationVersion, ChangeRequest, Instance, InstructionSource

# Requests that make a line "unchanged": still open, done, or refused by a maintainer.
MATCHED_STATUSES = (*RequestStatus.open(), RequestStatus.SUCCEEDED, RequestStatus.REJECTED)


class _Refused(Exception):
    def __init__(self, message: Message):
        self.message = message


@dataclasses.dataclass
class _Plan:
    instruction: Instruction
    warning: Message | None
    file: Callable[[], ChangeRequest]


def default_application() -> Application | None:
    """The application of ``C`` lines when the caller names none: ``PORTAL_INSTRUCTIONS_APPLICATION``, or the only
    application of the catalogue."""
    if settings.PORTAL_INSTRUCTIONS_APPLICATION:
        return Application.objects.filter(slug=settings.PORTAL_INSTRUCTIONS_APPLICATION).first()
    applications = list(Application.objects.all()[:2])
    return applications[0] if len(applications) == 1 else None


def import_instructions(
    ctx: AuditContext,
    text: str,
    *,
    dry_run: bool = False,
    application: Application | None = None,
    source: InstructionSource | None = None,
    commit: str = "",
) -> ImportReport:
    """Import ``text`` as ``ctx`` (a user, scoped to their organisations, or the system for a git source).

    Raises :class:`~instances.instructions.parser.InstructionFileError` for a file refused whole (too big, too many
    lines); anything else is reported on its line.
    """
    check_size(len(text.encode("utf-8", "surrogatepass")), settings.PORTAL_INSTRUCTIONS_MAX_BYTES)
    parsed = parse(text, zone=zoneinfo.ZoneInfo(settings.TIME_ZONE), max_lines=settings.PORTAL_INSTRUCTIONS_MAX_LINES)
    with transaction.atomic():
        report = _Importer(ctx, application=application, source=source, commit=commit).run(parsed)
        report.dry_run = dry_run
        if dry_run:
            # Mails, previews and hand-overs wait for a commit: rolled back, they never leave.
            transaction.set_rollback(True)
    if dry_run:
        # The requests filed were rolled back: the report names none of them (a repeated line named its first's).
        rolled_back = {line.request for line in report.lines if line.status == LineStatus.CREATED}
        for line in report.lines:
            if line.status == LineStatus.CREATED:
                line.message = Message(msg("A request would be filed."))
            if line.request in rolled_back:
                line.request = None
    return report


def _error_text(exc: Exception) -> Message:
    if isinstance(exc, DomainError):
        return Message.plain(str(exc.message))
    return Message.plain(" ".join(exc.messages))


class _Importer:
    def __init__(self, ctx: AuditContext, *, application, source, commit: str):
        self.ctx, self.source, self.commit = ctx, source, commit
        self._application = application
        self.now = timezone.now()

    # --- what the actor may see: everything for the system, their organisations' objects otherwise ---------------

    def _visible(self, queryset):
        return queryset if self.ctx.user is None else queryset.visible_to(self.ctx.user)

    @property
    def application(self) -> Application:
        if self._application is None:
            self._application = default_application()
        if self._application is None:
            raise _Refused(
                Message(
                    msg(
                        "No application for C lines: the catalogue has several (or none); "
                        "set PORTAL_INSTRUCTIONS_APPLICATION or choose one."
                    )
                )
            )
        return self._application

    # --- the three passes -----------------------------------------------------------------------------------------

    def run(self, parsed: Parsed) -> ImportReport:
        results: dict[int, LineResult] = {
            error.line: LineResult(error.line, LineStatus.ERROR, error.message, instruction=error.text)
            for error in parsed.errors
        }
        plans: list[_Plan] = []
        kept: set[int] = set()
        first_line: dict[tuple, int] = {}
        repeats: dict[int, tuple[int, str]] = {}
        for instruction in parsed.instructions:
            key = (instruction.kind, instruction.instance, instruction.version, instruction.when)
            if key in first_line:
                repeats[instruction.line] = (first_line[key], instruction.text)
                continue
            first_line[key] = instruction.line
            try:
                outcome = self._plan(instruction)
            except _Refused as refused:
                results[instruction.line] = self._result(instruction, LineStatus.ERROR, refused.message)
                continue
            if isinstance(outcome, LineResult):
                results[instruction.line] = outcome
                if outcome.request:
                    kept.add(outcome.request)
            else:
                plans.append(outcome)
        cancelled = self._cancel_removed(kept) if self.source is not None else []
        for plan in plans:
            results[plan.instruction.line] = self._file(plan)
        for line, (original, text) in repeats.items():
            first = results[original]
            results[line] = LineResult(
                line,
                LineStatus.ERROR if first.status == LineStatus.ERROR else LineStatus.UNCHANGED,
                Message(msg("Same instruction as line %(line)d."), {"line": original}),
                request=first.request,
                instruction=text,
            )
        return ImportReport(lines=[results[line] for line in sorted(results)] + cancelled, commit=self.commit)

    def _result(self, instruction: Instruction, status: str, message: Message, **kwargs) -> LineResult:
        return LineResult(instruction.line, status, message, instruction=instruction.text, **kwargs)

    def _plan(self, instruction: Instruction) -> _Plan | LineResult:
        """What the line needs: a decided outcome (unchanged), or a request to file. Writes nothing."""
        warning = None
        scheduled_for = instruction.when
        if instruction.when <= self.now:
            scheduled_for = None
            warning = Message(
                msg("%(when)s is past: the request is due as soon as it is approved."),
                {"when": instruction.when_text},
            )
        if instruction.kind == RequestKind.CREATE:
            filters = {"proposed_slug": instruction.instance, "target_version__version": instruction.version}
            existing = self._existing(instruction, filters)
            if existing is not None:
                return self._unchanged(instruction, existing, warning)
            return _Plan(instruction, warning, self._creation(instruction, scheduled_for))
        instance = self._instance(instruction.instance)
        if instruction.kind == RequestKind.DELETE:
            existing = self._existing(instruction, {"instance": instance})
            if existing is not None:
                return self._unchanged(instruction, existing, warning)
            current = instance.current_version
            if instruction.version and (current is None or current.version != instruction.version):
                raise _Refused(
                    Message(
                        msg("%(instance)s runs %(current)s, not %(version)s: correct the version or leave it empty."),
                        {"instance": instance.slug, "current": current or "—", "version": instruction.version},
                    )
                )
            return _Plan(
                instruction,
                warning,
                lambda: workflow.request_delete(
                    self.ctx, instance, scheduled_for=scheduled_for, source=RequestSource.INSTRUCTIONS
                ),
            )
        version = self._version(instance.application, instruction.version)
        existing = self._existing(instruction, {"instance": instance, "target_version": version})
        if existing is not None:
            return self._unchanged(instruction, existing, warning)
        return _Plan(
            instruction,
            warning,
            lambda: workflow.request_update(
                self.ctx, instance, version=version, scheduled_for=scheduled_for, source=RequestSource.INSTRUCTIONS
            ),
        )

    def _creation(self, instruction: Instruction, scheduled_for) -> Callable[[], ChangeRequest]:
        application = self.application
        organisation = self._organisation(instruction.instance, application)
        version = self._version(application, instruction.version)
        return lambda: workflow.request_create(
            self.ctx,
            organisation=organisation,
            application=application,
            slug=instruction.instance,
            version=version,
            scheduled_for=scheduled_for,
            source=RequestSource.INSTRUCTIONS,
        )

    def _file(self, plan: _Plan) -> LineResult:
        instruction = plan.instruction
        try:
            with transaction.atomic():
                request = plan.file()
                # The workflow files requests for every path alike; where this one came from is recorded here, in
                # the same savepoint, so a request never exists without its line.
                ChangeRequest.objects.filter(pk=request.pk).update(
                    instruction_line=instruction.line,
                    instruction_source=self.source,
                    instruction_commit=self.commit,
                )
        except (ValidationError, DomainError) as exc:
            return self._result(instruction, LineStatus.ERROR, _error_text(exc), warning=plan.warning)
        message = Message(
            msg("Request #%(id)d filed (%(status)s)."),
            {"id": request.pk, "status": messages.label(RequestStatus, request.status)},
        )
        return self._result(instruction, LineStatus.CREATED, message, request=request.pk, warning=plan.warning)

    # --- lookups --------------------------------------------------------------------------------------------------

    def _instance(self, slug: str) -> Instance:
        instance = (
            self._visible(Instance.objects.select_related("application", "current_version")).filter(slug=slug).first()
        )
        if instance is None:
            raise _Refused(Message(msg("There is no instance named %(instance)s."), {"instance": slug}))
        return instance

    def _version(self, application: Application, version: str) -> ApplicationVersion:
        found = ApplicationVersion.objects.filter(application=application, version=version).first()
        if found is None:
            raise _Refused(
                Message(
                    msg("%(application)s has no version %(version)s."),
                    {"application": application.name, "version": version},
                )
            )
        return found

    def _organisation(self, name: str, application: Application) -> Organisation:
        """A new instance belongs to the organisation named like it: ``unistra``, or ``smile-unistra``."""
        candidates = [name]
        prefix = f"{application.slug}-"
        if name.startswith(prefix) and len(name) > len(prefix):
            candidates.append(name[len(prefix) :])
        found = {org.slug: org for org in self._visible(Organisation.objects.filter(slug__in=candidates))}
        for slug in candidates:
            if slug in found:
                return found[slug]
        raise _Refused(
            Message(
                msg(
                    "No organisation matches %(instance)s: a C line names the instance after its organisation's "
                    "slug, alone or after “%(prefix)s”."
                ),
                {"instance": name, "prefix": prefix},
            )
        )

    def _existing(self, instruction: Instruction, filters: dict) -> ChangeRequest | None:
        """The newest request, visible to the actor, that already asks for what the line asks."""
        when = instruction.when
        window = Q(scheduled_for__gte=when, scheduled_for__lt=when + datetime.timedelta(minutes=1))
        if when <= self.now:
            window |= Q(scheduled_for__isnull=True)
        candidates = self._visible(ChangeRequest.objects.filter(kind=instruction.kind, **filters)).filter(window)
        matched = {
            status: pk
            for pk, status in candidates.filter(status__in=MATCHED_STATUSES).order_by("id").values_list("pk", "status")
        }
        for status in MATCHED_STATUSES:  # in this order of preference
            if status in matched:
                return ChangeRequest(pk=matched[status], status=status)
        return None

    def _unchanged(self, instruction: Instruction, existing: ChangeRequest, warning: Message | None) -> LineResult:
        if existing.status == RequestStatus.SUCCEEDED:
            message = Message(msg("Already done by request #%(id)d."), {"id": existing.pk})
        elif existing.status == RequestStatus.REJECTED:
            message = Message(msg("Request #%(id)d asked for this and was rejected."), {"id": existing.pk})
            warning = Message(msg("Rejected: change the line (its date, for instance) to ask again."))
        else:
            message = Message(
                msg("Request #%(id)d (%(status)s) already asks for this."),
                {"id": existing.pk, "status": messages.label(RequestStatus, existing.status)},
            )
        return self._result(instruction, LineStatus.UNCHANGED, message, request=existing.pk, warning=warning)

    # --- a git source's removed lines -----------------------------------------------------------------------------

    def _cancel_removed(self, kept: set[int]) -> list[LineResult]:
        """Cancel the source's requests that have not started and that no line of this file asks for any more."""
        results = []
        stale = (
            ChangeRequest.objects.filter(instruction_source=self.source, status__in=RequestStatus.cancellable())
            .exclude(pk__in=kept)
            .order_by("instruction_line", "id")
        )
        for request in stale:
            removed = Message(
                msg("Request #%(id)d cancelled: line %(line)s of commit %(commit)s was removed from the file."),
                {"id": request.pk, "line": request.instruction_line or "?", "commit": request.instruction_commit[:10]},
            )
            try:
                with transaction.atomic():
                    request.cancel(self.ctx, reason=removed.english)
            except DomainError as exc:  # it started meanwhile: it runs, and the report says so
                results.append(LineResult(None, LineStatus.ERROR, _error_text(exc), request=request.pk))
                continue
            results.append(LineResult(None, LineStatus.CANCELLED, removed, request=request.pk))
        return results
