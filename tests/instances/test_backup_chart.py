"""The backup-history chart: one size bar per dump, one duration bar per finished Job, a cross per failure."""

import datetime
import re

import pytest
from django.utils import timezone

from instances.backup_chart import render_backup_chart
from instances.choices import BackupStatus, BackupTrigger
from instances.models import Backup

pytestmark = pytest.mark.django_db


def backup(instance, n, status, *, size=None, seconds=None):
    start = timezone.now() - datetime.timedelta(days=10 - n)
    return Backup.objects.create(
        instance=instance, job_name=f"job-{n}", trigger=BackupTrigger.SCHEDULE, status=status, size=size,
        started_at=start, finished_at=start + datetime.timedelta(seconds=seconds) if seconds else None,
    )  # fmt: skip


def test_sizes_durations_and_failures_are_drawn(instance_unistra):
    backup(instance_unistra, 1, BackupStatus.VERIFIED, size=2_000_000, seconds=60)
    backup(instance_unistra, 2, BackupStatus.FAILED, seconds=5)
    backup(instance_unistra, 3, BackupStatus.VERIFIED, size=4_000_000, seconds=120)
    backup(instance_unistra, 4, BackupStatus.RUNNING)
    svg = str(render_backup_chart(Backup.objects.filter(instance=instance_unistra), width=400, height=96))
    sizes = re.findall(r'<rect class="backup-size" x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)
    durations = re.findall(r'<rect class="backup-duration"[^>]*height="([\d.]+)"', svg)
    assert len(sizes) == 2 and len(durations) == 3
    # Oldest on the left; the 4 MB dump is twice as tall as the 2 MB one (the panel is 45 px high).
    assert float(sizes[0][0]) < float(sizes[1][0])
    assert float(sizes[1][1]) == pytest.approx(45.0) and float(sizes[0][1]) == pytest.approx(22.5)
    assert svg.count('class="backup-failed"') == 1
    assert "3.8\xa0MB" in svg and "2 min 00 s" in svg  # the tooltips say size (4,000,000 bytes) and duration


def test_no_backup_no_chart(instance_unistra):
    assert render_backup_chart(Backup.objects.none()) == ""
