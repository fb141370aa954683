# Production image: the portal under gunicorn, or an RQ worker/scheduler with the same code.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_STATIC_ROOT=/app/staticfiles

# kubectl brings Kustomize, which renders every instance's manifests.
ARG KUBECTL_VERSION=v1.32.4
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && curl -fsSLo /usr/local/bin/kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl" \
    && chmod +x /usr/local/bin/kubectl \
    && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY . .
RUN DJANGO_DEBUG=1 python manage.py collectstatic --noinput \
    && DJANGO_DEBUG=1 python manage.py compilemessages --ignore '.venv/*' \
    && useradd --system --uid 10001 --home-dir /app portal \
    && chown -R portal /app/staticfiles
USER 10001

EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
