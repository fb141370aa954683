"""Missed backups: an alert opens once per incident, mails once, shows on the dashboard, and closes."""

import datetime

from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse
from django.utils import timezone

from instances.choices import BackupStatus, BackupTrigger, InstanceStatus
from instances.engine.alerts import check_missed_backups
from instances.models import Backup, BackupAlert, Instance


def verified(instance, hours_ago: float, name: str) -> Backup:
    at = timezone.now() - datetime.timedelta(hours=hours_ago)
    return Backup.objects.create(instance=instance, job_name=name, trigger=BackupTrigger.SCHEDULE,
                                 status=BackupStatus.VERIFIED, started_at=at, finished_at=at)  # fmt: skip


def aged(instance, days=10):
    """An instance that has existed long enough to be expected to have backups."""
    Instance.objects.filter(pk=instance.pk).update(created_at=timezone.now() - datetime.timedelta(days=days))


def test_a_missed_backup_alerts_once_mails_once_and_closes(
    client, instance_unistra, instance_unicaen, admin_unistra, viewer_unistra, maintainer, admin_unicaen
):
    for instance in (instance_unistra, instance_unicaen):
        aged(instance)
    last = verified(instance_unistra, 30, "old")  # older than the 26 hours allowed
    verified(instance_unicaen, 2, "fresh")
    Backup.objects.create(instance=instance_unistra, job_name="bad", trigger=BackupTrigger.SCHEDULE,
                          status=BackupStatus.FAILED, finished_at=timezone.now())  # a failure is no backup  # fmt: skip
    assert check_missed_backups() == "1 alerts opened, 0 closed"
    alert = BackupAlert.objects.get()
    assert (alert.instance, alert.is_open, alert.notified) == (instance_unistra, True, True)
    assert alert.last_verified_at == last.finished_at
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.subject == "[SaaS Portal] No verified backup of smile-unistra"
    assert set(sent.to) == {admin_unistra.email, maintainer.email}  # not the viewer, not the other university
    assert "more than 26 hours" in sent.body and "/instances/smile-unistra/" in sent.body
    # The next runs find the incident already open: no second alert, no second mail.
    assert check_missed_backups() == "0 alerts opened, 0 closed"
    assert BackupAlert.objects.count() == 1 and len(mail.outbox) == 1
    # The dashboard shows it to the organisation's members and the maintainers, not to other universities.
    for user, shown in ((viewer_unistra, True), (maintainer, True), (admin_unicaen, False)):
        client.force_login(user)
        content = client.get(reverse("home")).content.decode()
        assert ('id="backup-alerts"' in content) is shown, user
        assert ("smile-unistra</a>" in content) is shown
    # A verified backup arrives: the alert closes, and a later incident opens a new one.
    verified(instance_unistra, 0.1, "new")
    assert check_missed_backups() == "0 alerts opened, 1 closed"
    assert not BackupAlert.objects.get().is_open
    client.force_login(viewer_unistra)
    assert 'id="backup-alerts"' not in client.get(reverse("home")).content.decode()
    Backup.objects.filter(instance=instance_unistra).update(status=BackupStatus.EXPIRED)
    assert check_missed_backups() == "1 alerts opened, 0 closed"
    assert BackupAlert.objects.count() == 2 and len(mail.outbox) == 2


def test_no_alert_for_new_or_deleted_instances(instance_unistra, instance_unicaen, admin_unistra):
    aged(instance_unicaen)
    Instance.objects.filter(pk=instance_unicaen.pk).update(status=InstanceStatus.DELETED)
    # instance_unistra was created just now: it has had no chance to back up yet.
    assert check_missed_backups() == "0 alerts opened, 0 closed"
    aged(instance_unistra)
    assert check_missed_backups() == "1 alerts opened, 0 closed"
    # Its deletion closes the incident.
    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.DELETED)
    assert check_missed_backups() == "0 alerts opened, 1 closed"
    assert [m.to for m in mail.outbox] == [[admin_unistra.email]]  # the one mail of the one incident


def test_a_mail_that_could_not_be_sent_is_sent_at_the_next_check(instance_unistra, admin_unistra, settings):
    aged(instance_unistra)
    settings.EMAIL_BACKEND = "tests.instances.test_backup_alerts.RefusingBackend"
    assert check_missed_backups() == "1 alerts opened, 0 closed"
    assert not BackupAlert.objects.get().notified and len(mail.outbox) == 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert check_missed_backups() == "0 alerts opened, 0 closed"
    assert BackupAlert.objects.get().notified and len(mail.outbox) == 1
    assert check_missed_backups() == "0 alerts opened, 0 closed"
    assert len(mail.outbox) == 1  # once sent, never again


class RefusingBackend(BaseEmailBackend):
    """A mail server that cannot be reached."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("the mail server is down")
