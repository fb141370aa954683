"""Retention: which dumps go (a table over dates), and the periodic job that deletes, marks and audits them."""

import datetime
import hashlib

import pytest

from core.models import AuditEvent
from instances import workflow
from instances.choices import BackupStatus, BackupTrigger
from instances.engine import storage
from instances.engine.retention import Policy, apply_backup_retention, expired
from instances.models import Backup
from tests.backup_fixtures import give_backup_credentials
from tests.engine_fixtures import ctx

UTC = datetime.UTC
# A Friday; backups at 02:00 UTC fall on the same date in Paris (the portal's zone).
NOW = datetime.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
S, M, PU, PR, F = (BackupTrigger.SCHEDULE, BackupTrigger.MANUAL, BackupTrigger.PRE_UPGRADE,
                   BackupTrigger.PRE_RESTORE, BackupTrigger.FINAL)  # fmt: skip
V, FAILED, EXPIRED = BackupStatus.VERIFIED, BackupStatus.FAILED, BackupStatus.EXPIRED


def at(days_ago: int, hour: int = 2) -> datetime.datetime:
    return (NOW - datetime.timedelta(days=days_ago)).replace(hour=hour)


def rows(spec) -> list[Backup]:
    """(name, days ago, hour, trigger, status) -> unsaved Backup rows, their pk the position in the list."""
    return [
        Backup(pk=index + 1, job_name=name, trigger=trigger, status=status, finished_at=at(days, hour))
        for index, (name, days, hour, trigger, status) in enumerate(spec)
    ]


def daily(days: range, trigger=S, status=V, prefix="d"):
    return [(f"{prefix}{d}", d, 2, trigger, status) for d in days]


POLICY = Policy(daily=3, weekly=2)
TABLE = [
    # Every day for 20 days: the last 3 days, and the newest of last week (Sunday, 5 days ago); this week's
    # newest is today's.
    ("twenty daily backups", daily(range(20)), {f"d{d}" for d in range(20)} - {"d0", "d1", "d2", "d5"}),
    # Two a day: only the newest of each day counts.
    (
        "two a day",
        daily(range(3)) + [(f"m{d}", d, 1, M, V) for d in range(3)],
        {"m0", "m1", "m2"},
    ),
    # Backups stopped a month ago: the last ones are kept, not all deleted as the calendar moves on.
    ("stopped a month ago", daily(range(30, 40)), {f"d{d}" for d in range(30, 40)} - {"d30", "d31", "d32", "d33"}),
    # Dumps taken before an upgrade, a restore, a deletion: kept while regular backups of their time are.
    (
        "special dumps",
        [*daily(range(12)), ("pu3", 3, 9, PU, V), ("pr10", 10, 9, PR, V), ("f0", 0, 9, F, V)],
        ({f"d{d}" for d in range(12)} - {"d0", "d1", "d2", "d5"}) | {"pr10"},
    ),
    # Failed and expired rows have nothing to delete; they are never returned.
    ("failed and expired", daily(range(10), status=FAILED) + daily(range(10, 12), status=EXPIRED, prefix="e"), set()),
    # Only special dumps (a new instance upgraded before its first scheduled backup): nothing to measure against.
    ("only special dumps", [("pu9", 9, 2, PU, V), ("pu30", 30, 2, PU, V)], set()),
    # A backup stamped in the future (a clock's skew) is kept, and does not push the others out.
    ("from the future", [*daily(range(4)), ("future", -1, 2, S, V)], {"d3"}),
]


@pytest.mark.parametrize("name, spec, gone", TABLE, ids=[t[0] for t in TABLE])
def test_retention_keeps_daily_and_weekly_backups_and_the_special_dumps_of_their_time(name, spec, gone, settings):
    result = expired(rows(spec), POLICY, NOW)
    assert {b.job_name for b in result} == gone
    assert [b.taken_at for b in result] == sorted(b.taken_at for b in result)  # oldest first


def test_the_policy_follows_the_instance_size(settings):
    settings.PORTAL_BACKUP_RETENTION = {"small": {"daily": 7, "weekly": 4}, "large": {"daily": 30, "weekly": 12}}
    assert Policy.for_size("large") == Policy(daily=30, weekly=12)
    assert Policy.for_size("medium") == Policy(daily=7, weekly=4)  # a size without a policy gets the smallest


def test_the_periodic_job_deletes_expired_dumps_marks_and_audits_them(instance_unistra, backup_storage, settings):
    settings.PORTAL_BACKUP_RETENTION = {"small": {"daily": 2, "weekly": 0}}
    instance = give_backup_credentials(instance_unistra)
    client, bucket = backup_storage.client(), settings.PORTAL_BACKUP_S3_BUCKET
    backups = []
    for days in range(4):
        name = f"smile-timemachine-{days}"
        key = storage.dump_key(instance, name)
        body = f"dump {days}".encode()
        client.put_object(Bucket=bucket, Key=key, Body=body,
                          Metadata={"sha256": hashlib.sha256(body).hexdigest(), "size": str(len(body))})  # fmt: skip
        backups.append(Backup.objects.create(instance=instance, job_name=name, trigger=S, status=V,
                                             storage_key=key, finished_at=at(days)))  # fmt: skip
    assert apply_backup_retention(now=NOW) == "2 dumps deleted, 0 left for the next run"
    statuses = {b.job_name: (b.status, b.expired_at) for b in Backup.objects.filter(instance=instance)}
    assert statuses == {
        "smile-timemachine-0": (V, None),
        "smile-timemachine-1": (V, None),
        "smile-timemachine-2": (EXPIRED, NOW),
        "smile-timemachine-3": (EXPIRED, NOW),
    }
    left = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert left == {backups[0].storage_key, backups[1].storage_key}
    events = AuditEvent.objects.filter(action="backup.expired").order_by("pk")
    assert [e.target_label for e in events] == [f"{instance.slug} smile-timemachine-{d}" for d in (3, 2)]
    assert {e.actor_label for e in events} == {"system: backup retention"}
    assert all(e.organisation_id == instance.organisation_id for e in events)
    # A second run finds nothing more to delete.
    assert apply_backup_retention(now=NOW) == "0 dumps deleted, 0 left for the next run"


def test_a_dump_a_restore_is_about_to_read_is_kept(instance_unistra, backup_storage, settings, admin_unistra):
    settings.PORTAL_BACKUP_RETENTION = {"small": {"daily": 1, "weekly": 0}}
    instance = give_backup_credentials(instance_unistra)
    old, new = [
        Backup.objects.create(instance=instance, job_name=f"tm-{days}", trigger=S, status=V,
                              storage_key=storage.dump_key(instance, f"tm-{days}"), finished_at=at(days))
        for days in (3, 0)
    ]  # fmt: skip
    workflow.request_restore(ctx(admin_unistra), instance, backup=old)
    assert apply_backup_retention(now=NOW) == "0 dumps deleted, 0 left for the next run"
    assert Backup.objects.get(pk=old.pk).status == V and Backup.objects.get(pk=new.pk).status == V
