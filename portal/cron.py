"""Periodic jobs, run by `manage.py rqcron portal.cron` (the `scheduler` process)."""

from django.conf import settings
from rq import cron

from instances.engine.alerts import check_missed_backups
from instances.engine.dispatcher import dispatch
from instances.engine.drills import restore_drills
from instances.engine.health import check_clusters
from instances.engine.retention import apply_backup_retention
from instances.engine.sync import sync_backups, sync_status
from instances.instructions.jobs import poll_sources
from registry.sync import sync_registries

cron.register(dispatch, queue_name="default", interval=settings.PORTAL_DISPATCH_INTERVAL, job_timeout=300)
cron.register(sync_status, queue_name="sync", interval=settings.PORTAL_SYNC_INTERVAL, job_timeout=300)
cron.register(sync_backups, queue_name="sync", interval=settings.PORTAL_SYNC_INTERVAL, job_timeout=300)
cron.register(check_clusters, queue_name="sync", interval=300, job_timeout=120)
cron.register(sync_registries, queue_name="sync", interval=settings.PORTAL_REGISTRY_SYNC_INTERVAL, job_timeout=600)
cron.register(poll_sources, queue_name="sync", interval=settings.PORTAL_INSTRUCTIONS_POLL_TICK, job_timeout=900)
cron.register(restore_drills, queue_name="default", interval=settings.PORTAL_RESTORE_DRILL_INTERVAL, job_timeout=300)
# Retention deletes dumps from the storage (each call with its timeouts); the missed-backup check only reads.
cron.register(
    apply_backup_retention, queue_name="storage", interval=settings.PORTAL_BACKUP_RETENTION_INTERVAL, job_timeout=1800
)
cron.register(check_missed_backups, queue_name="sync", interval=settings.PORTAL_BACKUP_ALERT_INTERVAL, job_timeout=300)
