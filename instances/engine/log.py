"""The operation's log: lines written to the database as they happen, so the page shows progress live."""

from __future__ import annotations

import logging

from django.utils import timezone

from instances.models import Operation

logger = logging.getLogger("instances.engine")
MAX_LINES = 2000


class OperationLog:
    """Append lines to an operation; every line is also a heartbeat that proves the worker is alive."""

    def __init__(self, operation: Operation):
        self.operation = operation

    def __call__(self, message: str, level: str = "info") -> None:
        now = timezone.now()
        lines = self.operation.log
        lines.append({"time": now.isoformat(), "level": level, "message": message})
        if len(lines) > MAX_LINES:
            del lines[: len(lines) - MAX_LINES]
        self.operation.heartbeat_at = now
        Operation.objects.filter(pk=self.operation.pk).update(log=lines, heartbeat_at=now)
        logger.log(
            logging.WARNING if level == "warning" else logging.INFO, "operation %s: %s", self.operation.pk, message
        )

    def heartbeat(self) -> None:
        now = timezone.now()
        self.operation.heartbeat_at = now
        Operation.objects.filter(pk=self.operation.pk).update(heartbeat_at=now)
