"""Restore requests: who may file them, which backups they may choose, the four-eyes review, the web form, the
API, and how requests and their lists show the backup."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone

from core.errors import Conflict, InvalidTransition, NotAllowed
from instances import workflow
from instances.choices import BackupStatus, BackupTrigger, OperationKind, OperationStatus, RequestKind, RequestStatus
from instances.models import Backup, ChangeRequest, Operation
from tests.conftest import ctx
from tests.instances.test_api import token_client
from tests.instances.test_views import count_queries, make_instances

pytestmark = pytest.mark.django_db


def make_backup(instance, status=BackupStatus.VERIFIED, *, hours_ago=1, size=2_500_000, job="smile-timemachine-1"):
    finished = timezone.now() - datetime.timedelta(hours=hours_ago)
    return Backup.objects.create(
        instance=instance,
        job_name=job,
        trigger=BackupTrigger.SCHEDULE,
        status=status,
        started_at=finished - datetime.timedelta(minutes=2),
        finished_at=finished,
        storage_key=f"instances/{instance.slug}/{job}.dump",
        size=size,
        sha256="ab" * 32,
    )


@pytest.fixture
def verified(instance_unistra):
    return make_backup(instance_unistra)


@pytest.fixture
def restore_request(admin_unistra, instance_unistra, verified):
    return workflow.request_restore(ctx(admin_unistra), instance_unistra, backup=verified, comment="oops")


# --- the domain ----------------------------------------------------------------------------------------------


def test_admin_files_a_restore_of_a_verified_backup(restore_request, verified):
    assert restore_request.kind == RequestKind.RESTORE
    assert restore_request.status == RequestStatus.SUBMITTED
    assert restore_request.backup == verified
    assert restore_request.comment == "oops"


def test_maintainer_may_file_a_restore(maintainer, instance_unistra, verified):
    request = workflow.request_restore(ctx(maintainer), instance_unistra, backup=verified)
    assert request.requested_by == maintainer


def test_viewer_may_not_file_a_restore(viewer_unistra, instance_unistra, verified):
    with pytest.raises(NotAllowed):
        workflow.request_restore(ctx(viewer_unistra), instance_unistra, backup=verified)
    assert not ChangeRequest.objects.exists()


def test_admin_of_another_organisation_may_not_file_a_restore(admin_unicaen, instance_unistra, verified):
    with pytest.raises(NotAllowed):
        workflow.request_restore(ctx(admin_unicaen), instance_unistra, backup=verified)


@pytest.mark.parametrize(
    "status", [BackupStatus.RUNNING, BackupStatus.SUCCEEDED, BackupStatus.FAILED, BackupStatus.EXPIRED]
)
def test_only_a_verified_backup_can_be_chosen(admin_unistra, instance_unistra, status):
    backup = make_backup(instance_unistra, status)
    with pytest.raises(ValidationError) as error:
        workflow.request_restore(ctx(admin_unistra), instance_unistra, backup=backup)
    assert "backup" in error.value.message_dict


def test_a_backup_of_another_instance_is_refused(admin_unistra, instance_unistra, instance_unicaen):
    other = make_backup(instance_unicaen)
    with pytest.raises(ValidationError) as error:
        workflow.request_restore(ctx(admin_unistra), instance_unistra, backup=other)
    assert "smile-unistra" in error.value.message_dict["backup"][0]


def test_a_restore_date_must_be_in_the_future(admin_unistra, instance_unistra, verified):
    with pytest.raises(ValidationError) as error:
        workflow.request_restore(
            ctx(admin_unistra), instance_unistra, backup=verified, scheduled_for=timezone.now() - datetime.timedelta(1)
        )
    assert "scheduled_for" in error.value.message_dict


@pytest.mark.parametrize("first", ["restore", "update", "delete"])
def test_one_open_restore_upgrade_or_delete_per_instance(first, admin_unistra, instance_unistra, verified, versions):
    filers = {
        "restore": lambda: workflow.request_restore(ctx(admin_unistra), instance_unistra, backup=verified),
        "update": lambda: workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"]),
        "delete": lambda: workflow.request_delete(ctx(admin_unistra), instance_unistra),
    }
    filers[first]()
    for kind, file in filers.items():
        if kind == first:
            continue
        with pytest.raises(Conflict):
            file()
    if first != "restore":
        with pytest.raises(Conflict):
            filers["restore"]()
    assert ChangeRequest.objects.count() == 1


def test_the_database_refuses_a_second_open_restore(restore_request, instance_unistra, verified, admin_unistra):
    with pytest.raises(IntegrityError):
        ChangeRequest.objects.create(
            kind=RequestKind.RESTORE, organisation=instance_unistra.organisation,
            application=instance_unistra.application, instance=instance_unistra, backup=verified,
        )  # fmt: skip


def test_a_backup_with_restores_is_not_deleted(restore_request, verified):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        verified.delete()


def test_four_eyes_the_requester_may_not_approve_their_own_restore(maintainer, maintainer2, instance_unistra, verified):
    request = workflow.request_restore(ctx(maintainer), instance_unistra, backup=verified)
    with pytest.raises(NotAllowed):
        request.approve(ctx(maintainer))
    request.approve(ctx(maintainer2))
    request.refresh_from_db()
    assert request.status in (RequestStatus.APPROVED, RequestStatus.RUNNING)


def test_transitions_of_a_restore_request(restore_request, maintainer):
    restore_request.reject(ctx(maintainer), "not now")
    assert restore_request.status == RequestStatus.REJECTED
    with pytest.raises(InvalidTransition):
        restore_request.approve(ctx(maintainer))


def test_a_restore_may_be_cancelled_before_it_starts(restore_request, admin_unistra, instance_unistra, verified):
    restore_request.cancel(ctx(admin_unistra))
    assert restore_request.status == RequestStatus.CANCELLED
    # Cancelled, it no longer blocks another one.
    assert workflow.request_restore(ctx(admin_unistra), instance_unistra, backup=verified).pk


def test_a_scheduled_restore_waits_for_its_time(admin_unistra, maintainer, instance_unistra, verified):
    when = timezone.now() + datetime.timedelta(days=2)
    request = workflow.request_restore(ctx(admin_unistra), instance_unistra, backup=verified, scheduled_for=when)
    request.approve(ctx(maintainer))
    request.refresh_from_db()
    assert request.status == RequestStatus.SCHEDULED
    assert request.scheduled_for == when


# --- the web form --------------------------------------------------------------------------------------------


def test_restore_form_offers_verified_backups_newest_first(client, admin_unistra, instance_unistra):
    old = make_backup(instance_unistra, hours_ago=30, job="tm-old", size=1024)
    new = make_backup(instance_unistra, hours_ago=2, job="tm-new", size=3 * 1024 * 1024)
    failed = make_backup(instance_unistra, BackupStatus.FAILED, hours_ago=1, job="tm-failed")
    client.force_login(admin_unistra)
    response = client.get(reverse("instances:request_restore", args=[instance_unistra.slug]))
    assert response.status_code == 200
    choices = [choice for choice, _label in response.context["form"].fields["backup"].choices]
    assert [c.value for c in choices] == [new.pk, old.pk]
    assert failed.pk not in [c.value for c in choices]
    body = response.content.decode()
    assert "3.0\xa0MB" in body and "1.0\xa0KB" in body and "Schedule" in body


def test_restore_form_files_the_request(client, admin_unistra, instance_unistra, verified):
    client.force_login(admin_unistra)
    url = reverse("instances:request_restore", args=[instance_unistra.slug])
    response = client.post(url, {"backup": verified.pk, "comment": "students deleted"})
    request = ChangeRequest.objects.get(kind=RequestKind.RESTORE)
    assert response.status_code == 302 and response.url == request.get_absolute_url()
    assert request.backup == verified and request.comment == "students deleted"


def test_restore_form_refuses_a_backup_of_another_instance(client, admin_unistra, instance_unistra, instance_unicaen):
    other = make_backup(instance_unicaen)
    client.force_login(admin_unistra)
    response = client.post(reverse("instances:request_restore", args=[instance_unistra.slug]), {"backup": other.pk})
    assert response.status_code == 200
    assert "backup" in response.context["form"].errors
    assert not ChangeRequest.objects.exists()


def test_restore_form_shows_the_open_conflict(client, admin_unistra, instance_unistra, verified, versions):
    workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    client.force_login(admin_unistra)
    response = client.post(reverse("instances:request_restore", args=[instance_unistra.slug]), {"backup": verified.pk})
    assert response.status_code == 200
    assert "is already open" in str(response.context["form"].non_field_errors())


def test_restore_form_access(client, viewer_unistra, admin_unicaen, maintainer, instance_unistra, verified):
    url = reverse("instances:request_restore", args=[instance_unistra.slug])
    client.force_login(viewer_unistra)
    assert client.get(url).status_code == 403
    assert client.post(url, {"backup": verified.pk}).status_code == 403
    client.force_login(admin_unicaen)
    assert client.get(url).status_code == 404
    client.force_login(maintainer)
    assert client.get(url).status_code == 200
    assert not ChangeRequest.objects.exists()


def test_instance_page_offers_restore_to_those_who_may_file(client, admin_unistra, viewer_unistra, instance_unistra):
    url = reverse("instances:request_restore", args=[instance_unistra.slug])
    client.force_login(admin_unistra)
    assert url in client.get(instance_unistra.get_absolute_url()).content.decode()
    client.force_login(viewer_unistra)
    assert url not in client.get(instance_unistra.get_absolute_url()).content.decode()


def test_request_page_and_lists_show_the_backup_date_and_size(client, maintainer2, restore_request, verified):
    client.force_login(maintainer2)
    taken = timezone.localtime(verified.taken_at).strftime("%H:%M")
    for url in (restore_request.get_absolute_url(), reverse("instances:request_list"),
                restore_request.instance.get_absolute_url()):  # fmt: skip
        body = client.get(url).content.decode()
        assert "2.4\xa0MB" in body, url
        assert taken in body, url


def test_request_list_query_count_does_not_grow_with_restores(
    client, maintainer2, instance_unistra, instance_unicaen, admin_unicaen, restore_request
):
    client.force_login(maintainer2)
    url = reverse("instances:request_list")
    one = count_queries(client, url)
    workflow.request_restore(ctx(admin_unicaen), instance_unicaen, backup=make_backup(instance_unicaen, job="tm-u"))
    assert count_queries(client, url) == one


def add_drills(instances, status):
    now = timezone.now()
    Operation.objects.bulk_create(
        [Operation(kind=OperationKind.DRILL, instance=i, status=status, finished_at=now) for i in instances]
    )


def test_fleet_shows_the_last_drill_with_a_constant_number_of_queries(client, maintainer, unistra, smile, versions):
    client.force_login(maintainer)
    url = reverse("instances:instance_list")
    first = make_instances(unistra, smile, versions["1.2.4"], 3, prefix="drilled")
    add_drills(first, OperationStatus.FAILED)
    add_drills(first[:1], OperationStatus.SUCCEEDED)  # the newest drill of drilled-0 passed
    few = count_queries(client, url)
    more = make_instances(unistra, smile, versions["1.2.4"], 30, prefix="more")
    add_drills(more, OperationStatus.SUCCEEDED)
    assert count_queries(client, url) == few
    rows = {i.slug: i for i in client.get(url).context["instances"]}
    assert rows["drilled-0"].last_drill_status == OperationStatus.SUCCEEDED
    assert rows["drilled-1"].last_drill_status == OperationStatus.FAILED
    assert rows["more-0"].last_drill_at is not None


# --- the API -------------------------------------------------------------------------------------------------


def test_api_files_a_restore(admin_unistra, instance_unistra, verified):
    response = token_client(admin_unistra).post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unistra", "backup": verified.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "restore" and body["backup"]["id"] == verified.pk
    assert body["backup"]["size"] == verified.size and body["backup"]["taken_at"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "restore", "instance": "smile-unistra"}, "backup"),
        ({"kind": "restore", "backup": 1}, "instance"),
        ({"kind": "restore", "instance": "smile-unistra", "backup": "x"}, "backup"),
        ({"kind": "restore", "instance": "smile-unistra", "backup": 10**30}, "backup"),
        ({"kind": "restore", "instance": "smile-unistra", "backup": 1, "version": "1.2.6"}, "version"),
        ({"kind": "update", "instance": "smile-unistra", "version": "1.2.6", "backup": 1}, "backup"),
    ],
)
def test_api_restore_field_errors(admin_unistra, instance_unistra, verified, payload, field):
    response = token_client(admin_unistra).post("/api/v1/requests/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_api_refuses_an_unverified_backup(admin_unistra, instance_unistra):
    failed = make_backup(instance_unistra, BackupStatus.FAILED, job="tm-f")
    response = token_client(admin_unistra).post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unistra", "backup": failed.pk}, format="json"
    )
    assert response.status_code == 400 and "backup" in response.json()


def test_api_maintainer_restoring_a_backup_of_another_instance_is_400(maintainer, instance_unistra, instance_unicaen):
    other = make_backup(instance_unicaen)
    response = token_client(maintainer).post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unistra", "backup": other.pk}, format="json"
    )
    assert response.status_code == 400 and "backup" in response.json()


def test_api_another_organisations_backup_or_instance_is_not_found(admin_unistra, instance_unistra, instance_unicaen):
    own, other = make_backup(instance_unistra), make_backup(instance_unicaen)
    api = token_client(admin_unistra)
    hidden_backup = api.post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unistra", "backup": other.pk}, format="json"
    )
    missing_backup = api.post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unistra", "backup": 999999}, format="json"
    )
    # The same answer as for a backup that does not exist: nothing tells that it exists.
    assert hidden_backup.status_code == missing_backup.status_code == 400
    assert hidden_backup.json()["backup"] == missing_backup.json()["backup"]
    hidden_instance = api.post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unicaen", "backup": own.pk}, format="json"
    )
    assert hidden_instance.status_code == 400 and "instance" in hidden_instance.json()
    assert not ChangeRequest.objects.exists()


def test_api_viewer_cannot_file_a_restore(viewer_unistra, instance_unistra, verified):
    response = token_client(viewer_unistra).post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unistra", "backup": verified.pk}, format="json"
    )
    assert response.status_code == 403


def test_api_restore_conflicts_with_an_open_upgrade(admin_unistra, instance_unistra, verified, versions):
    workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    response = token_client(admin_unistra).post(
        "/api/v1/requests/", {"kind": "restore", "instance": "smile-unistra", "backup": verified.pk}, format="json"
    )
    assert response.status_code == 409


def test_api_another_organisations_restore_request_is_404(admin_unicaen, restore_request):
    assert token_client(admin_unicaen).get(f"/api/v1/requests/{restore_request.pk}/").status_code == 404
