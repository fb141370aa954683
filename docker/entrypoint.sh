#!/bin/sh
# One image, three roles: `web` (migrate, then gunicorn), `worker` (RQ worker) and `scheduler` (periodic jobs).
set -eu
role="${1:-web}"
shift || true
case "$role" in
  web)
    python manage.py migrate --noinput
    exec gunicorn portal.wsgi:application --bind 0.0.0.0:8000 --workers "${GUNICORN_WORKERS:-3}" \
      --timeout "${GUNICORN_TIMEOUT:-60}" --access-logfile - "$@"
    ;;
  worker)
    # Queues as arguments (default: all). Operations can run for minutes, so production gives them their own
    # workers and keeps one for the dispatcher and status sync (see docker-compose.yml).
    [ "$#" -gt 0 ] || set -- default operations sync
    exec python manage.py rqworker --with-scheduler "$@"
    ;;
  scheduler)
    exec python manage.py rqcron portal.cron "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    echo "unknown role '$role' (expected web, worker, scheduler or manage)" >&2
    exit 64
    ;;
esac
