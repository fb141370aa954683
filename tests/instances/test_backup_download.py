"""Downloading a backup: functional admins and maintainers get a short-lived signed link, audited; nobody else."""

import hashlib
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.models import AuditEvent
from instances.choices import BackupStatus, BackupTrigger
from instances.engine import storage
from instances.models import Backup
from tests.backup_fixtures import give_backup_credentials

DUMP = b"PGDMP the dump\n"


@pytest.fixture
def backups(instance_unistra, backup_storage, settings):
    """A verified backup whose dump is in the storage, and a failed one."""
    instance = give_backup_credentials(instance_unistra)
    key = storage.dump_key(instance, "smile-timemachine-manual-7")
    backup_storage.client().put_object(Bucket=settings.PORTAL_BACKUP_S3_BUCKET, Key=key, Body=DUMP,
                                       Metadata={"sha256": hashlib.sha256(DUMP).hexdigest(),
                                                 "size": str(len(DUMP))})  # fmt: skip
    verified = Backup.objects.create(instance=instance, job_name="smile-timemachine-manual-7",
                                     trigger=BackupTrigger.MANUAL, status=BackupStatus.VERIFIED, storage_key=key,
                                     size=len(DUMP), sha256=hashlib.sha256(DUMP).hexdigest())  # fmt: skip
    failed = Backup.objects.create(instance=instance, job_name="smile-timemachine-manual-8",
                                   trigger=BackupTrigger.MANUAL, status=BackupStatus.FAILED)  # fmt: skip
    return verified, failed


def page_url(backup) -> str:
    return reverse("instances:backup_download", args=[backup.instance.slug, backup.pk])


def api_url(backup) -> str:
    return f"/api/v1/instances/{backup.instance.slug}/backups/{backup.pk}/download/"


def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("who", ["admin_unistra", "maintainer"])
def test_admins_and_maintainers_are_sent_to_a_short_lived_signed_link_and_it_is_audited(
    who, request, client, backups, settings
):
    user = request.getfixturevalue(who)
    verified, _failed = backups
    client.force_login(user)
    for response in (client.get(page_url(verified)), api_client(user).get(api_url(verified))):
        assert response.status_code == 302
        location = response["Location"]
        assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == [str(settings.PORTAL_BACKUP_DOWNLOAD_SECONDS)]
        with urllib.request.urlopen(location, timeout=10) as dump:
            assert dump.read() == DUMP
    events = AuditEvent.objects.filter(action="backup.downloaded")
    assert events.count() == 2
    assert {(e.actor_id, e.organisation_id, e.target_id) for e in events} == {
        (user.pk, verified.instance.organisation_id, str(verified.pk))
    }
    assert all(e.after["storage_key"] == verified.storage_key for e in events)


def test_viewers_may_not_download(client, backups, viewer_unistra):
    verified, _failed = backups
    client.force_login(viewer_unistra)
    assert client.get(page_url(verified)).status_code == 403
    assert api_client(viewer_unistra).get(api_url(verified)).status_code == 403
    assert not AuditEvent.objects.filter(action="backup.downloaded").exists()


def test_another_organisation_gets_404(client, backups, admin_unicaen):
    verified, _failed = backups
    client.force_login(admin_unicaen)
    assert client.get(page_url(verified)).status_code == 404
    assert api_client(admin_unicaen).get(api_url(verified)).status_code == 404
    assert api_client(admin_unicaen).get("/api/v1/instances/smile-unistra/backups/999999/download/").status_code == 404


def test_a_backup_that_is_not_verified_is_a_409_or_a_message(client, backups, admin_unistra):
    _verified, failed = backups
    response = api_client(admin_unistra).get(api_url(failed))
    assert response.status_code == 409
    assert response.json() == {"detail": "Only a verified backup can be downloaded.", "status": "failed"}
    client.force_login(admin_unistra)
    response = client.get(page_url(failed), follow=True)
    assert response.redirect_chain == [(failed.instance.get_absolute_url(), 302)]
    assert "Only a verified backup can be downloaded." in response.content.decode()
    assert not AuditEvent.objects.filter(action="backup.downloaded").exists()


def test_the_instance_page_and_the_api_show_size_checksum_key_and_the_link(
    client, backups, admin_unistra, viewer_unistra
):
    verified, failed = backups
    client.force_login(admin_unistra)
    content = client.get(verified.instance.get_absolute_url()).content.decode()
    assert f'title="SHA-256 {verified.sha256}">{verified.sha256[:12]}</code>' in content
    assert verified.storage_key in content and "15\xa0bytes" in content
    assert content.count('class="backup-download"') == 1 and page_url(verified) in content  # the verified one only
    client.force_login(viewer_unistra)
    assert 'class="backup-download"' not in client.get(verified.instance.get_absolute_url()).content.decode()
    rows = api_client(admin_unistra).get(f"/api/v1/instances/{verified.instance.slug}/backups/").json()["results"]
    row = next(r for r in rows if r["id"] == verified.pk)
    assert (row["storage_key"], row["size"], row["sha256"]) == (verified.storage_key, len(DUMP), verified.sha256)
    assert next(r for r in rows if r["id"] == failed.pk)["size"] is None
