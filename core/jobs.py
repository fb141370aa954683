"""Background work on django-rq: enqueue after commit, explicit queues, and a record of every periodic run.

Queues are looked up when a job is enqueued (never at import time), so settings changed by tests or by the
environment reach them. Jobs receive primary keys only and reload their object.
"""

from __future__ import annotations

import datetime
import functools
import logging

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def get_queue(name: str = "default"):
    return django_rq.get_queue(name, is_async=settings.RQ_ASYNC)


def _options(queue: str, options: dict) -> dict:
    options.setdefault("job_timeout", settings.RQ_QUEUES[queue]["DEFAULT_TIMEOUT"])
    options.setdefault("result_ttl", 3600)
    options.setdefault("failure_ttl", 7 * 24 * 3600)
    return options


def enqueue(func, *args, queue: str = "default", job_id: str | None = None, delay: float | None = None, **options):
    """Enqueue now (or after ``delay`` seconds, through the worker's scheduler)."""
    q = get_queue(queue)
    options = _options(queue, options)
    if delay:
        return q.enqueue_in(datetime.timedelta(seconds=delay), func, *args, job_id=job_id, **options)
    return q.enqueue(func, *args, job_id=job_id, **options)


def enqueue_at(when: datetime.datetime, func, *args, queue: str = "default", job_id: str | None = None, **options):
    """Enqueue at ``when``, through the workers' scheduler (a job id makes a second call replace the first)."""
    return get_queue(queue).enqueue_at(when, func, *args, job_id=job_id, **_options(queue, options))


def enqueue_on_commit(func, *args, **kwargs) -> None:
    """Enqueue once the current transaction commits, so the worker never sees a row that is not there yet.

    Robust: if Redis is down the error is logged and the caller's work stands — PostgreSQL holds the truth and
    the periodic dispatcher enqueues again what it finds waiting.
    """
    transaction.on_commit(lambda: enqueue(func, *args, **kwargs), robust=True)


def job_exists(job_id: str, queue: str = "default") -> bool:
    """Whether Redis still knows the job (it may have been flushed: PostgreSQL is the truth, Redis is not)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=get_queue(queue).connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) not in ("failed", "stopped", "canceled")


def periodic(name: str):
    """Record every run of a periodic job as a ``JobRun``: start, end, result, or the error it ended with.

    The error is re-raised after it is recorded, so RQ marks the job failed as well; the traceback goes to the
    server log. Runs older than ``PORTAL_JOB_HISTORY_DAYS`` are deleted as new ones finish.
    """

    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            from rq import get_current_job

            from core.models import JobRun, JobRunStatus

            current = get_current_job()
            record = JobRun.objects.create(
                name=name, started_at=timezone.now(), rq_job_id=current.id if current is not None else ""
            )
            try:
                result = func(*args, **kwargs)
            except Exception as error:
                logger.exception("periodic job %s failed (run %s)", name, record.pk)
                JobRun.objects.filter(pk=record.pk).update(
                    status=JobRunStatus.FAILED,
                    finished_at=timezone.now(),
                    error=f"{type(error).__name__}: {error}"[:2000],
                )
                raise
            JobRun.objects.filter(pk=record.pk).update(
                status=JobRunStatus.SUCCEEDED, finished_at=timezone.now(), result=str(result)[:10000]
            )
            cutoff = timezone.now() - datetime.timedelta(days=settings.PORTAL_JOB_HISTORY_DAYS)
            JobRun.objects.filter(name=name, started_at__lt=cutoff).delete()
            return result

        return run

    return decorate
