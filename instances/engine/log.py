"""The operation's log: lines written to the database as they happen, so the page shows progress live.

Each line keeps its sentence untranslated with its parameters (see ``core.messages``), so each reader sees it
in their language, and its English rendering under ``message`` for everything that reads plain text.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from core.messages import Message
from instances.models import Operation

logger = logging.getLogger("instances.engine")
MAX_LINES = 2000


def log_line(message: Message, level: str = "info") -> dict:
    """One line of an operation's log, as stored."""
    return {"time": timezone.now().isoformat(), "level": level, "message": message.english, **message.as_json()}


class OperationLog:
    """Append lines to an operation; every line is also a heartbeat that proves the worker is alive."""

    def __init__(self, operation: Operation):
        self.operation = operation

    def __call__(self, text: str, level: str = "info", **params) -> None:
        """Log ``text`` (a msgid marked with ``msg``) with its ``params``."""
        self.message(Message(text, params), level)

    def message(self, message: Message, level: str = "info") -> None:
        """Log a message made elsewhere (a wait's outcome, say)."""
        line = log_line(message, level)
        lines = self.operation.log
        lines.append(line)
        if len(lines) > MAX_LINES:
            del lines[: len(lines) - MAX_LINES]
        self.operation.heartbeat_at = timezone.now()
        Operation.objects.filter(pk=self.operation.pk).update(log=lines, heartbeat_at=self.operation.heartbeat_at)
        logger.log(
            logging.WARNING if level in ("warning", "error") else logging.INFO,
            "operation %s: %s",
            self.operation.pk,
            line["message"],
        )

    def heartbeat(self) -> None:
        now = timezone.now()
        self.operation.heartbeat_at = now
        Operation.objects.filter(pk=self.operation.pk).update(heartbeat_at=now)
