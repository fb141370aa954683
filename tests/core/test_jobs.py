"""Periodic jobs leave a record of every run, which maintainers read on the Jobs page."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.jobs import periodic
from core.models import JobRun, JobRunStatus

pytestmark = pytest.mark.django_db


@periodic("sample")
def sample_job(fail: bool = False) -> str:
    if fail:
        raise RuntimeError("the cluster list failed")
    return "3 instances synced"


def test_a_run_is_recorded_with_its_result_and_duration():
    assert sample_job() == "3 instances synced"
    run = JobRun.objects.get(name="sample")
    assert run.status == JobRunStatus.SUCCEEDED and run.result == "3 instances synced" and run.error == ""
    assert run.finished_at >= run.started_at and run.duration is not None


def test_a_failed_run_is_recorded_and_still_fails():
    with pytest.raises(RuntimeError):
        sample_job(fail=True)
    run = JobRun.objects.get(name="sample")
    assert run.status == JobRunStatus.FAILED
    assert run.error == "RuntimeError: the cluster list failed" and run.finished_at is not None


def test_old_runs_are_deleted_as_new_ones_finish(settings):
    settings.PORTAL_JOB_HISTORY_DAYS = 7
    old = JobRun.objects.create(name="sample", started_at=timezone.now() - datetime.timedelta(days=8))
    other = JobRun.objects.create(name="other", started_at=timezone.now() - datetime.timedelta(days=8))
    sample_job()
    assert not JobRun.objects.filter(pk=old.pk).exists()
    assert JobRun.objects.filter(pk=other.pk).exists()  # another job's history is its own


def test_the_engine_periodic_jobs_are_recorded():
    from instances.engine.dispatcher import dispatch
    from instances.engine.health import check_clusters
    from instances.engine.sync import sync_backups, sync_status

    for job in (dispatch, sync_status, sync_backups, check_clusters):
        job()
    assert set(JobRun.objects.values_list("name", flat=True)) == {
        "dispatch",
        "sync_status",
        "sync_backups",
        "check_clusters",
    }
    assert not JobRun.objects.exclude(status=JobRunStatus.SUCCEEDED).exists()


def runs(name, count, status=JobRunStatus.SUCCEEDED):
    start = timezone.now() - datetime.timedelta(minutes=count)
    for i in range(count):
        started = start + datetime.timedelta(minutes=i)
        finished = started + datetime.timedelta(seconds=2)
        JobRun.objects.create(
            name=name, status=status, started_at=started, finished_at=finished, result=f"{name} run {i}"
        )


def test_the_jobs_page_is_for_maintainers(client, admin_unistra):
    client.force_login(admin_unistra)
    assert client.get(reverse("jobrun_list")).status_code == 403


def test_the_jobs_page_shows_the_last_run_of_each_job_with_a_constant_number_of_queries(client, maintainer):
    runs("dispatch", 3)
    runs("sync_status", 2, JobRunStatus.FAILED)
    client.force_login(maintainer)

    response = client.get(reverse("jobrun_list"))

    latest = response.context["latest"]
    assert [(run.name, run.result) for run in latest] == [
        ("dispatch", "dispatch run 2"),
        ("sync_status", "sync_status run 1"),
    ]
    content = response.content.decode()
    assert "2 s" in content and "table-danger" in content
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("jobrun_list"))
    runs("check_clusters", 40)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("jobrun_list"))
    assert len(many) == len(few)


def test_the_jobs_page_filters_by_job(client, maintainer):
    runs("dispatch", 2)
    runs("sync_status", 2)
    client.force_login(maintainer)
    response = client.get(reverse("jobrun_list"), {"name": "sync_status"})
    assert {run.name for run in response.context["runs"]} == {"sync_status"}
