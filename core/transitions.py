"""Guarded status changes for models driven by background work (instances, operations).

A model lists its allowed moves in a transition table; :meth:`GuardedStatus.transition` checks the table,
writes the new status (and any other fields) in one conditional UPDATE — ``WHERE status = <what was read>``, so
a concurrent change is noticed rather than overwritten — and appends an audit event with the status and those
fields before and after. Nothing else writes ``status``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from django.db import models, transaction
from django.db.models.expressions import Combinable
from django.utils.translation import gettext as _

from core.audit import AuditContext, record
from core.errors import InvalidTransition

# How many times a transition re-reads the status when another writer changed it between read and write.
RACE_RETRIES = 5


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(value)  # what a reader of the audit trail recognises ("1.2.6"), not a primary key
    if isinstance(value, str | int | float | bool | type(None) | list | dict):
        return value
    return str(value)


class GuardedStatus(models.Model):
    """Mixin for a model whose ``status`` field changes only through :meth:`transition`."""

    TRANSITIONS: ClassVar[Mapping[str, Iterable[str]]] = {}
    # What the audit trail calls the model ("instance" gives actions such as "instance.running").
    audit_name: ClassVar[str] = ""
    # The lookup, from the model, of the organisation the audit event belongs to.
    audit_organisation: ClassVar[str] = "organisation_id"
    # The fields a transition records before and after (besides the status); others are written, not recorded.
    audit_fields: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True

    def audit_label(self) -> str:
        return str(self)

    def transition(
        self,
        ctx: AuditContext,
        to: str,
        *,
        fields: Mapping[str, Any] | None = None,
        only_from: Iterable[str] | None = None,
        reason: str = "",
    ) -> bool:
        """Move to ``to`` (or stay, writing ``fields``) if the table allows it; returns whether anything changed.

        ``only_from`` makes the move conditional: from any other status nothing happens and False is returned
        (the status sync uses it never to overwrite an operation's status). Otherwise a move the table does not
        allow raises ``InvalidTransition``. Field values may be expressions (``F("attempts") + 1``).
        """
        fields = dict(fields or {})
        only_from = None if only_from is None else frozenset(only_from)
        manager = type(self)._base_manager
        plain = [name for name in fields if name in self.audit_fields and not isinstance(fields[name], Combinable)]
        for _attempt in range(RACE_RETRIES):
            row = manager.filter(pk=self.pk).values("status", self.audit_organisation, *plain).first()
            if row is None:
                raise InvalidTransition(_("%(what)s no longer exists.") % {"what": self.audit_label()})
            current = row["status"]
            if only_from is not None and current not in only_from:
                return False
            if to != current and to not in self.TRANSITIONS.get(current, ()):
                labels = dict(self._meta.get_field("status").choices)
                raise InvalidTransition(
                    _("%(what)s is %(status)s and cannot become %(to)s.")
                    % {"what": self.audit_label(), "status": labels.get(current, current), "to": labels.get(to, to)},
                    current=current,
                )
            before = {"status": current, **{name: self._audited_value(name, row[name]) for name in plain}}
            after = {"status": to, **{name: _json_value(fields[name]) for name in plain}}
            if before == after and not set(fields) - set(plain):
                self._sync_attributes(to, {})
                return False
            with transaction.atomic():
                if not manager.filter(pk=self.pk, status=current).update(status=to, **fields):
                    continue  # another writer moved it meanwhile: read again
                if before != after:
                    record(
                        ctx,
                        f"{self.audit_name}.{to}",
                        self,
                        organisation_id=row[self.audit_organisation],
                        label=self.audit_label(),
                        before=before,
                        after=after,
                        reason=str(reason),
                    )
            self._sync_attributes(to, fields)
            return True
        raise InvalidTransition(_("%(what)s keeps changing; try again.") % {"what": self.audit_label()})

    transition.alters_data = True

    def _audited_value(self, name: str, value: Any) -> Any:
        """A field's value as read from the row, shown as the audit trail shows it (a related object by name)."""
        field = self._meta.get_field(name)
        if field.is_relation and value is not None:
            value = field.related_model._base_manager.filter(pk=value).first()
        return _json_value(value)

    def _sync_attributes(self, status: str, fields: Mapping[str, Any]) -> None:
        """Keep this object in step with the row (expressions are read back from the database)."""
        self.status = status
        computed = [name for name, value in fields.items() if isinstance(value, Combinable)]
        for name, value in fields.items():
            if name not in computed:
                setattr(self, name, value)
        if computed:
            values = type(self)._base_manager.filter(pk=self.pk).values(*computed).first() or {}
            for name, value in values.items():
                setattr(self, name, value)
