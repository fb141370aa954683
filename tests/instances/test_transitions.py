"""Instance and operation statuses change only through their transition tables, each change audited."""

import ast
from pathlib import Path

import pytest

from core.audit import AuditContext
from core.errors import InvalidTransition
from core.models import AuditEvent
from instances.choices import (
    INSTANCE_TRANSITIONS,
    OPERATION_TRANSITIONS,
    InstanceStatus,
    OperationKind,
    OperationStatus,
)
from instances.models import Instance, Operation

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
ENGINE = AuditContext.engine(7)


def events(obj):
    return list(AuditEvent.objects.filter(target_type=obj._meta.label_lower, target_id=str(obj.pk)).order_by("id"))


def check_pair(obj, model, source, target, table):
    """One (status, transition) pair: allowed ones change the row and leave one event; others change nothing."""
    model.objects.filter(pk=obj.pk).update(status=source)  # the fixture's way to put the row in a state
    stale = model.objects.get(pk=obj.pk)
    before = len(events(obj))
    if target == source:
        assert stale.transition(ENGINE, target) is False
        assert len(events(obj)) == before
    elif target in table[source]:
        assert stale.transition(ENGINE, target, reason="because") is True
        assert model.objects.get(pk=obj.pk).status == target == stale.status
        event = events(obj)[-1]
        assert len(events(obj)) == before + 1
        assert event.action == f"{obj.audit_name}.{target}"
        assert (event.before["status"], event.after["status"]) == (source, target)
        assert (event.actor_label, event.request_id, event.reason) == ("engine", "operation-7", "because")
        assert event.organisation_id == obj_organisation(obj)
    else:
        with pytest.raises(InvalidTransition):
            stale.transition(ENGINE, target)
        assert model.objects.get(pk=obj.pk).status == source
        assert len(events(obj)) == before


def obj_organisation(obj):
    return obj.organisation_id if isinstance(obj, Instance) else obj.instance.organisation_id


@pytest.mark.parametrize("source", InstanceStatus.values)
@pytest.mark.parametrize("target", InstanceStatus.values)
def test_every_instance_status_pair(instance_unistra, source, target):
    check_pair(instance_unistra, Instance, source, target, INSTANCE_TRANSITIONS)


@pytest.mark.parametrize("source", OperationStatus.values)
@pytest.mark.parametrize("target", OperationStatus.values)
def test_every_operation_status_pair(instance_unistra, source, target):
    operation = Operation.objects.create(kind=OperationKind.DEPLOY, instance=instance_unistra)
    check_pair(operation, Operation, source, target, OPERATION_TRANSITIONS)


def test_terminal_statuses_lead_nowhere():
    assert INSTANCE_TRANSITIONS[InstanceStatus.DELETED] == frozenset()
    for status in OperationStatus.terminal():
        assert OPERATION_TRANSITIONS[status] == frozenset()


def test_fields_move_with_the_status_and_are_audited(instance_unistra, versions):
    instance_unistra.transition(ENGINE, InstanceStatus.UPGRADING)
    instance_unistra.transition(ENGINE, InstanceStatus.RUNNING, fields={"current_version": versions["1.2.6"]})

    assert Instance.objects.get(pk=instance_unistra.pk).current_version == versions["1.2.6"]
    event = events(instance_unistra)[-1]
    assert event.before == {"status": "upgrading", "current_version": "1.2.4"}
    assert event.after == {"status": "running", "current_version": "1.2.6"}


def test_staying_with_new_audited_fields_is_recorded_but_an_identical_write_is_not(instance_unistra, versions):
    assert instance_unistra.transition(ENGINE, InstanceStatus.RUNNING, fields={"current_version": versions["1.2.5"]})
    assert events(instance_unistra)[-1].after == {"status": "running", "current_version": "1.2.5"}
    count = len(events(instance_unistra))
    assert not instance_unistra.transition(
        ENGINE, InstanceStatus.RUNNING, fields={"current_version": versions["1.2.5"]}
    )
    assert len(events(instance_unistra)) == count


def test_only_from_leaves_other_statuses_alone(instance_unistra):
    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.UPGRADING)
    sync = AuditContext.system("status sync")
    assert instance_unistra.transition(sync, InstanceStatus.DEGRADED, only_from=InstanceStatus.observed()) is False
    assert Instance.objects.get(pk=instance_unistra.pk).status == InstanceStatus.UPGRADING
    assert events(instance_unistra) == []


def test_a_transition_reads_the_row_not_the_stale_object(instance_unistra):
    stale = Instance.objects.get(pk=instance_unistra.pk)
    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.DELETED)  # another writer
    with pytest.raises(InvalidTransition, match="is Deleted and cannot become Upgrading"):
        stale.transition(ENGINE, InstanceStatus.UPGRADING)
    assert Instance.objects.get(pk=instance_unistra.pk).status == InstanceStatus.DELETED


def test_an_expression_field_is_written_and_read_back(instance_unistra):
    from django.db.models import F

    operation = Operation.objects.create(kind=OperationKind.DEPLOY, instance=instance_unistra)
    operation.transition(ENGINE, OperationStatus.RUNNING, fields={"attempts": F("attempts") + 1})
    assert operation.attempts == 1 == Operation.objects.get(pk=operation.pk).attempts
    assert events(operation)[-1].after == {"status": "running"}


def _status_updates(path: Path) -> list[str]:
    """``Instance``/``Operation`` querysets whose ``update()`` writes ``status`` in the file at ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"):
            continue
        if not any(keyword.arg == "status" for keyword in node.keywords):
            continue
        names = {n.id for n in ast.walk(node.func.value) if isinstance(n, ast.Name)}
        if names & {"Instance", "Operation"}:
            found.append(f"{path}:{node.lineno}")
    return found


def test_no_code_writes_an_instance_or_operation_status_but_the_transition(tmp_path):
    offenders = [hit for app in ("core", "instances") for path in (ROOT / app).rglob("*.py")
                 if "migrations" not in path.parts for hit in _status_updates(path)]  # fmt: skip
    assert offenders == []
    # The check finds what it is meant to find.
    sample = tmp_path / "sample.py"
    sample.write_text("def f(pk):\n    Operation.objects.filter(pk=pk).update(status='failed', error='x')\n")
    assert _status_updates(sample) == [f"{sample}:2"]
