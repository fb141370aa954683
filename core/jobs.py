"""Background work on django-rq: enqueue after commit, explicit queues, and the periodic schedule.

Queues are looked up when a job is enqueued (never at import time), so settings changed by tests or by the
environment reach them. Jobs receive primary keys only and reload their object.
"""

from __future__ import annotations

import datetime
import logging

import django_rq
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


class JobFailed(Exception):
    """An expected failure: the job ends "failed" with this message (no traceback kept)."""


def get_queue(name: str = "default"):
    return django_rq.get_queue(name, is_async=settings.RQ_ASYNC)


def enqueue(func, *args, queue: str = "default", job_id: str | None = None, delay: float | None = None, **options):
    """Enqueue now (or after ``delay`` seconds, through the worker's scheduler)."""
    q = get_queue(queue)
    options.setdefault("job_timeout", settings.RQ_QUEUES[queue]["DEFAULT_TIMEOUT"])
    options.setdefault("result_ttl", 3600)
    options.setdefault("failure_ttl", 7 * 24 * 3600)
    if delay:
        return q.enqueue_in(datetime.timedelta(seconds=delay), func, *args, job_id=job_id, **options)
    return q.enqueue(func, *args, job_id=job_id, **options)


def enqueue_on_commit(func, *args, **kwargs) -> None:
    """Enqueue once the current transaction commits, so the worker never sees a row that is not there yet."""
    transaction.on_commit(lambda: enqueue(func, *args, **kwargs))


def job_exists(job_id: str, queue: str = "default") -> bool:
    """Whether Redis still knows the job (it may have been flushed: PostgreSQL is the truth, Redis is not)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=get_queue(queue).connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) not in ("failed", "stopped", "canceled")
