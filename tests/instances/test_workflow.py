"""The change-request state machine: every allowed and forbidden transition, guards, audit, e-mail."""

import datetime
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections
from django.utils import timezone

from core.audit import AuditContext
from core.choices import APPROVE_PERMISSION
from core.errors import Conflict, InvalidTransition, NotAllowed
from core.models import AuditEvent
from instances import workflow
from instances.choices import REQUEST_TRANSITIONS, InstanceStatus, RequestKind, RequestSource, RequestStatus
from instances.models import ChangeRequest, Instance
from tests.conftest import ctx, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def upgrade(admin_unistra, instance_unistra, versions):
    return workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])


def force_status(request: ChangeRequest, status: str) -> ChangeRequest:
    """Put a request in a given status without going through the machine (test set-up only)."""
    ChangeRequest.objects.filter(pk=request.pk).update(status=status)
    request.refresh_from_db()
    return request


def attempt(request: ChangeRequest, target: str, maintainer) -> None:
    system = AuditContext.system("test")
    actions = {
        RequestStatus.APPROVED: lambda: request.approve(ctx(maintainer)),
        RequestStatus.REJECTED: lambda: request.reject(ctx(maintainer), "not now"),
        RequestStatus.CANCELLED: lambda: request.cancel(ctx(maintainer)),
        RequestStatus.SCHEDULED: lambda: request.schedule(system),
        RequestStatus.RUNNING: lambda: request.mark_running(system),
        RequestStatus.SUCCEEDED: lambda: request.mark_succeeded(system, "done"),
        RequestStatus.FAILED: lambda: request.mark_failed(system, "boom"),
    }
    actions[target]()


ALL_PAIRS = [
    (source, target) for source in RequestStatus.values for target in RequestStatus.values if target != "submitted"
]


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS)
def test_every_transition_is_allowed_or_refused_per_the_table(source, target, upgrade, maintainer):
    force_status(upgrade, source)
    events_before = AuditEvent.objects.count()
    if target in REQUEST_TRANSITIONS[source]:
        attempt(upgrade, target, maintainer)
        upgrade.refresh_from_db()
        assert upgrade.status == target
        event = AuditEvent.objects.filter(action=f"request.{target}").latest("id")
        assert event.before["status"] == source
        assert event.after["status"] == target
        assert event.target_id == str(upgrade.pk)
    else:
        with pytest.raises(InvalidTransition):
            attempt(upgrade, target, maintainer)
        upgrade.refresh_from_db()
        assert upgrade.status == source
        assert AuditEvent.objects.count() == events_before


def test_terminal_statuses_have_no_way_out():
    for status in RequestStatus.terminal():
        assert REQUEST_TRANSITIONS[status] == frozenset()


def test_approval_records_reviewer_and_time(upgrade, maintainer):
    upgrade.approve(ctx(maintainer), reason="looks fine")
    upgrade.refresh_from_db()
    assert upgrade.status == RequestStatus.APPROVED
    assert upgrade.reviewer == maintainer
    assert upgrade.reviewed_at is not None
    event = AuditEvent.objects.get(action="request.approved")
    assert event.actor == maintainer
    assert event.reason == "looks fine"
    assert event.ip_address == "127.0.0.1"
    assert event.organisation_id == upgrade.organisation_id


def test_approval_of_a_future_request_schedules_it(admin_unistra, instance_unistra, versions, maintainer):
    when = timezone.now() + datetime.timedelta(days=2)
    request = workflow.request_update(
        ctx(admin_unistra), instance_unistra, version=versions["1.2.6"], scheduled_for=when
    )
    request.approve(ctx(maintainer))
    request.refresh_from_db()
    assert request.status == RequestStatus.SCHEDULED
    actions = list(AuditEvent.objects.filter(target_id=str(request.pk)).order_by("id").values_list("action", flat=True))
    assert actions == ["request.submitted", "request.approved", "request.scheduled"]
    assert not ChangeRequest.objects.due().filter(pk=request.pk).exists()
    assert ChangeRequest.objects.due(now=when + datetime.timedelta(minutes=1)).filter(pk=request.pk).exists()


def test_approval_without_schedule_is_due_now(upgrade, maintainer):
    upgrade.approve(ctx(maintainer))
    assert ChangeRequest.objects.due().filter(pk=upgrade.pk).exists()


def test_nobody_approves_their_own_request(maintainer, instance_unistra, versions):
    own = workflow.request_update(ctx(maintainer), instance_unistra, version=versions["1.2.5"])
    with pytest.raises(NotAllowed):
        own.approve(ctx(maintainer))
    with pytest.raises(NotAllowed):
        own.reject(ctx(maintainer), "no")
    own.refresh_from_db()
    assert own.status == RequestStatus.SUBMITTED


def test_functional_admin_cannot_approve_or_reject(upgrade, admin_unistra, admin_unicaen):
    for user in (admin_unistra, admin_unicaen):
        with pytest.raises(NotAllowed):
            upgrade.approve(ctx(user))
        with pytest.raises(NotAllowed):
            upgrade.reject(ctx(user), "no")
    upgrade.refresh_from_db()
    assert upgrade.status == RequestStatus.SUBMITTED


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reject_needs_a_reason(upgrade, maintainer, reason):
    with pytest.raises(InvalidTransition) as excinfo:
        upgrade.reject(ctx(maintainer), reason)
    assert excinfo.value.field == "reason"
    upgrade.refresh_from_db()
    assert upgrade.status == RequestStatus.SUBMITTED


def test_reject_keeps_the_reason(upgrade, maintainer):
    upgrade.reject(ctx(maintainer), "  maintenance freeze until January ")
    upgrade.refresh_from_db()
    assert upgrade.status == RequestStatus.REJECTED
    assert upgrade.reason == "maintenance freeze until January"
    assert AuditEvent.objects.get(action="request.rejected").reason == "maintenance freeze until January"


def test_requester_and_maintainer_can_cancel_but_not_others(upgrade, admin_unistra, admin_unicaen, maintainer):
    with pytest.raises(NotAllowed):
        upgrade.cancel(ctx(admin_unicaen))
    upgrade.cancel(ctx(admin_unistra), reason="changed my mind")
    upgrade.refresh_from_db()
    assert upgrade.status == RequestStatus.CANCELLED
    assert upgrade.finished_at is not None


def test_cancel_refused_once_running(upgrade, admin_unistra, maintainer):
    upgrade.approve(ctx(maintainer))
    upgrade.mark_running(AuditContext.system("engine"))
    with pytest.raises(InvalidTransition):
        upgrade.cancel(ctx(admin_unistra))


def test_concurrent_approvals_leave_exactly_one(
    transactional_db, admin_unistra, instance_unistra, versions, maintainer, maintainer2
):
    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    barrier = threading.Barrier(2)
    outcomes = []

    def approve(user):
        try:
            copy = ChangeRequest.objects.get(pk=request.pk)  # each thread its own stale copy and connection
            barrier.wait(timeout=10)
            copy.approve(ctx(user))
            outcomes.append("approved")
        except InvalidTransition:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(user,)) for user in (maintainer, maintainer2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["approved", "refused"]
    assert AuditEvent.objects.filter(action="request.approved", target_id=str(request.pk)).count() == 1
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


# --- filing requests ------------------------------------------------------------------------------------


def test_second_open_upgrade_or_delete_is_refused_naming_the_first(upgrade, admin_unistra, instance_unistra, versions):
    with pytest.raises(Conflict) as excinfo:
        workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.5"])
    assert f"#{upgrade.pk}" in str(excinfo.value.message)
    with pytest.raises(Conflict) as excinfo:
        workflow.request_delete(ctx(admin_unistra), instance_unistra)
    assert f"#{upgrade.pk}" in str(excinfo.value.message)
    assert ChangeRequest.objects.count() == 1


def test_the_database_refuses_a_second_open_exclusive_request(upgrade, admin_unistra, instance_unistra, versions):
    """Even if two submissions race past the check, the partial unique constraint catches the second."""
    duplicate = ChangeRequest(
        kind=RequestKind.DELETE,
        organisation=instance_unistra.organisation,
        application=instance_unistra.application,
        instance=instance_unistra,
    )
    with pytest.raises(Conflict) as excinfo:
        workflow._file(ctx(admin_unistra), duplicate)
    assert f"#{upgrade.pk}" in str(excinfo.value.message)


def test_after_the_first_ends_a_new_upgrade_is_accepted(upgrade, admin_unistra, instance_unistra, versions):
    upgrade.cancel(ctx(admin_unistra))
    second = workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    assert second.status == RequestStatus.SUBMITTED


def test_upgrade_must_target_a_newer_available_version(admin_unistra, instance_unistra, versions, smile):
    for version in ("1.2.4",):
        with pytest.raises(ValidationError) as excinfo:
            workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions[version])
        assert "version" in excinfo.value.message_dict
    versions["1.2.6"].is_available = False
    versions["1.2.6"].save()
    with pytest.raises(ValidationError):
        workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])


@pytest.mark.parametrize("delta", [datetime.timedelta(minutes=-1), datetime.timedelta(0), datetime.timedelta(days=400)])
def test_schedule_must_be_in_the_coming_year(admin_unistra, instance_unistra, versions, delta):
    with pytest.raises(ValidationError) as excinfo:
        workflow.request_update(
            ctx(admin_unistra), instance_unistra, version=versions["1.2.6"], scheduled_for=timezone.now() + delta
        )
    assert "scheduled_for" in excinfo.value.message_dict
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize(
    ("slug", "fragment"),
    [
        ("Smile-Upper", "lowercase"),
        ("-leading", "start and end"),
        ("trailing-", "start and end"),
        ("under_score", "lowercase"),
        ("x" * 41, "At most 40"),
        ("", "name"),
        ("new", "reserved"),
    ],
)
def test_create_refuses_bad_slugs(admin_unistra, unistra, smile, versions, slug, fragment):
    with pytest.raises(ValidationError) as excinfo:
        workflow.request_create(
            ctx(admin_unistra), organisation=unistra, application=smile, slug=slug, version=versions["1.2.6"]
        )
    assert fragment in " ".join(excinfo.value.message_dict["slug"])


def test_create_accepts_a_40_character_dns_label(admin_unistra, unistra, smile, versions):
    request = workflow.request_create(
        ctx(admin_unistra), organisation=unistra, application=smile, slug="a" * 40, version=versions["1.2.6"]
    )
    assert request.proposed_slug == "a" * 40
    assert request.instance is None


def test_create_refuses_a_taken_or_pending_slug(
    admin_unistra, admin_unicaen, unistra, unicaen, smile, versions, instance_unicaen
):
    with pytest.raises(ValidationError) as excinfo:
        workflow.request_create(
            ctx(admin_unistra), organisation=unistra, application=smile, slug="smile-unicaen", version=versions["1.2.6"]
        )
    assert "already exists" in excinfo.value.message_dict["slug"][0]
    first = workflow.request_create(
        ctx(admin_unistra), organisation=unistra, application=smile, slug="smile-new", version=versions["1.2.6"]
    )
    with pytest.raises(ValidationError) as excinfo:
        workflow.request_create(
            ctx(admin_unicaen), organisation=unicaen, application=smile, slug="smile-new", version=versions["1.2.6"]
        )
    # Refused, but without naming another organisation's request.
    assert excinfo.value.message_dict["slug"] == ["smile-new is already asked for; choose another name."]
    assert f"#{first.pk}" not in str(excinfo.value)
    with pytest.raises(ValidationError) as excinfo:
        workflow.request_create(
            ctx(admin_unistra), organisation=unistra, application=smile, slug="smile-new", version=versions["1.2.6"]
        )
    assert f"Request #{first.pk} already asks" in excinfo.value.message_dict["slug"][0], "its own request is named"


def test_viewer_and_other_organisation_cannot_file(viewer_unistra, admin_unicaen, instance_unistra, versions):
    for user in (viewer_unistra, admin_unicaen):
        with pytest.raises(NotAllowed):
            workflow.request_update(ctx(user), instance_unistra, version=versions["1.2.6"])
        with pytest.raises(NotAllowed):
            workflow.request_backup(ctx(user), instance_unistra)
    assert not ChangeRequest.objects.exists()


def test_deleted_instance_accepts_no_request(admin_unistra, instance_unistra, versions):
    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.DELETED)
    instance_unistra.refresh_from_db()
    with pytest.raises(Conflict):
        workflow.request_delete(ctx(admin_unistra), instance_unistra)


def test_backup_is_approved_at_once_unless_configured(admin_unistra, instance_unistra, settings):
    backup = workflow.request_backup(ctx(admin_unistra), instance_unistra)
    assert backup.status == RequestStatus.APPROVED
    assert AuditEvent.objects.get(action="request.approved").actor_label.startswith("system:")
    with pytest.raises(Conflict):
        workflow.request_backup(ctx(admin_unistra), instance_unistra)
    backup.cancel(ctx(admin_unistra))
    settings.PORTAL_BACKUP_NEEDS_APPROVAL = True
    second = workflow.request_backup(ctx(admin_unistra), instance_unistra)
    assert second.status == RequestStatus.SUBMITTED


def test_instructions_source_and_system_actor(instance_unistra, versions):
    request = workflow.request_update(
        AuditContext.system("instructions file"),
        instance_unistra,
        version=versions["1.2.6"],
        source=RequestSource.INSTRUCTIONS,
    )
    assert request.requested_by is None
    assert request.requested_by_label == "system: instructions file"
    assert request.source == RequestSource.INSTRUCTIONS


# --- audit trail and e-mail ------------------------------------------------------------------------------


def test_audit_events_are_append_only(upgrade):
    event = AuditEvent.objects.get(action="request.submitted")
    event.reason = "rewritten"
    with pytest.raises(PermissionDenied):
        event.save()
    with pytest.raises(PermissionDenied):
        event.delete()
    with pytest.raises(PermissionDenied):
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(PermissionDenied):
        AuditEvent.objects.all().delete()


def test_the_database_itself_refuses_audit_rewrites(upgrade):
    from django.db import DatabaseError, transaction

    assert connection.vendor == "postgresql"
    event = AuditEvent.objects.get(action="request.submitted")
    for sql in (
        f"UPDATE {AuditEvent._meta.db_table} SET reason = 'x' WHERE id = %s",
        f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    event.refresh_from_db()
    assert event.reason == ""


def test_submission_mails_maintainers(
    django_capture_on_commit_callbacks, admin_unistra, instance_unistra, versions, maintainer
):
    with django_capture_on_commit_callbacks(execute=True):
        request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [maintainer.email]
    assert f"#{request.pk}" in mail.outbox[0].subject
    assert f"/requests/{request.pk}/" in mail.outbox[0].body


def test_maintainers_are_those_who_may_approve(maintainer, admin_unistra):
    from django.contrib.auth.models import Permission

    from core.notifications import maintainer_emails

    make_user("direct").user_permissions.add(Permission.objects.get(codename=APPROVE_PERMISSION.split(".")[1]))
    make_user("root")
    make_user("gone", maintainer=True)
    make_user("silent", email="", maintainer=True)
    get_user_model().objects.filter(username="root").update(is_superuser=True)
    get_user_model().objects.filter(username="gone").update(is_active=False)

    assert maintainer_emails() == sorted([maintainer.email, "direct@example.org", "root@example.org"])


def test_review_mails_requester_and_contacts(django_capture_on_commit_callbacks, upgrade, admin_unistra, maintainer):
    with django_capture_on_commit_callbacks(execute=True):
        workflow.reject(ctx(maintainer), upgrade, "freeze")
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {admin_unistra.email, "team@unistra.fr"}
    assert "freeze" in mail.outbox[0].body
    with django_capture_on_commit_callbacks(execute=True):
        second = workflow.request_delete(ctx(admin_unistra), upgrade.instance)
        workflow.approve(ctx(maintainer), second)
    assert any("approved" in message.subject.lower() for message in mail.outbox[1:])


def test_nothing_is_mailed_when_the_transaction_rolls_back(
    django_capture_on_commit_callbacks, admin_unistra, instance_unistra, versions, maintainer
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert callbacks == []
    assert mail.outbox == []
    assert not ChangeRequest.objects.exists()
