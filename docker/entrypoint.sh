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
    exec python manage.py rqworker --with-scheduler default operations sync "$@"
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
