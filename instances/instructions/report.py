"""What an import answers, line by line: the same shape for the page, the API, the command and a git source.

Messages are kept as :class:`~core.messages.Message` so that a report stored with a git source is shown in each
reader's language; :meth:`ImportReport.as_dict` renders them in the active language (the API serialises it as is).
"""

from __future__ import annotations

import dataclasses

from django.db import models
from django.utils.translation import gettext_lazy as _

from core import messages
from core.messages import Message, msg


class LineStatus(models.TextChoices):
    CREATED = "created", _("Created")
    UNCHANGED = "unchanged", _("Unchanged")
    CANCELLED = "cancelled", _("Cancelled")
    ERROR = "error", _("Error")


@dataclasses.dataclass
class LineResult:
    """The outcome of one line (``line`` is None for a request cancelled because its line was removed)."""

    line: int | None
    status: str
    message: Message
    request: int | None = None
    warning: Message | None = None
    instruction: str = ""

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "status": self.status,
            "request": self.request,
            "message": self.message.render(),
            "warning": self.warning.render() if self.warning else None,
            "instruction": self.instruction,
        }

    def as_json(self) -> dict:
        return {
            **self.as_dict(),
            "message": self.message.english,
            "warning": self.warning.english if self.warning else None,
            "message_i18n": self.message.as_json(),
            "warning_i18n": self.warning.as_json() if self.warning else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> LineResult:
        def message(key: str) -> Message | None:
            stored = data.get(f"{key}_i18n")
            if stored:
                return Message.from_json(stored)
            return Message.plain(data[key]) if data.get(key) else None

        return cls(
            line=data.get("line"),
            status=data.get("status", LineStatus.ERROR),
            message=message("message") or Message.plain(""),
            request=data.get("request"),
            warning=message("warning"),
            instruction=data.get("instruction", ""),
        )

    @property
    def message_display(self) -> str:
        return self.message.render()

    @property
    def warning_display(self) -> str:
        return self.warning.render() if self.warning else ""

    @property
    def status_display(self) -> str:
        return messages.label(LineStatus, self.status).render()


@dataclasses.dataclass
class ImportReport:
    """Every line's outcome, in line order (cancelled requests last), and the counts by status."""

    lines: list[LineResult] = dataclasses.field(default_factory=list)
    dry_run: bool = False
    commit: str = ""

    def count(self, status: str) -> int:
        return sum(1 for line in self.lines if line.status == status)

    @property
    def created(self) -> int:
        return self.count(LineStatus.CREATED)

    @property
    def unchanged(self) -> int:
        return self.count(LineStatus.UNCHANGED)

    @property
    def cancelled(self) -> int:
        return self.count(LineStatus.CANCELLED)

    @property
    def errors(self) -> int:
        return self.count(LineStatus.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for line in self.lines if line.warning)

    def counts(self) -> dict:
        return {
            "created": self.created,
            "unchanged": self.unchanged,
            "cancelled": self.cancelled,
            "errors": self.errors,
            "warnings": self.warnings,
        }

    def as_dict(self) -> dict:
        """The answer of the API, in the active language."""
        return {"dry_run": self.dry_run, **self.counts(), "lines": [line.as_dict() for line in self.lines]}

    def as_json(self) -> dict:
        """What a git source stores: English text plus the messages to translate for each reader."""
        return {
            "dry_run": self.dry_run,
            "commit": self.commit,
            **self.counts(),
            "lines": [line.as_json() for line in self.lines],
        }

    @classmethod
    def from_json(cls, data: dict | None) -> ImportReport | None:
        if not data:
            return None
        return cls(
            lines=[LineResult.from_json(line) for line in data.get("lines", [])],
            dry_run=bool(data.get("dry_run")),
            commit=data.get("commit", ""),
        )

    def summary(self) -> Message:
        return Message(
            msg_summary(self.dry_run),
            {"created": self.created, "unchanged": self.unchanged, "cancelled": self.cancelled, "errors": self.errors},
        )

    def __str__(self) -> str:
        return self.summary().english


def msg_summary(dry_run: bool) -> str:
    if dry_run:
        return msg(
            "Dry run, nothing was saved: %(created)d would be created, %(unchanged)d unchanged, "
            "%(cancelled)d cancelled, %(errors)d in error."
        )
    return msg("%(created)d created, %(unchanged)d unchanged, %(cancelled)d cancelled, %(errors)d in error.")
