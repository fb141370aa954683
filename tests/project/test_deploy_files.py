"""The Docker files cannot be run here (no engine); check what can be checked without one."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (ROOT / "portal" / "settings.py").read_text()


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_stack():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "worker-system", "worker-storage", "scheduler"} <= set(services)
    assert services["web"]["command"] == ["web"]
    # Every queue the settings define is served by some worker.
    workers = ("worker", "worker-system", "worker-storage")
    served = {q for name in workers for q in services[name]["command"][1:]}
    assert {services[name]["command"][0] for name in workers} == {"worker"}
    assert served == {"default", "operations", "sync", "storage"}
    assert services["scheduler"]["command"] == ["scheduler"]
    for name in ("web", *workers, "scheduler"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_environment_matches_the_settings():
    env = compose()["services"]["web"]["environment"]
    for name in env:
        assert f'"{name}"' in SETTINGS, f"{name} is set in docker-compose.yml but never read by the settings"
    for required in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
        assert required in env
    assert env["DJANGO_DEBUG"] == "0"
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")


def test_compose_holds_no_literal_secret():
    text = (ROOT / "docker-compose.yml").read_text()
    for key in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"):
        for value in re.findall(rf"{key}: (.+)", text):
            assert value.strip().startswith("${"), f"{key} must come from the environment, not the file"


def test_dockerfile_entrypoint_and_roles_exist():
    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = re.search(r'ENTRYPOINT \["(/app/[^"]+)"\]', dockerfile).group(1)
    script = ROOT / entrypoint.removeprefix("/app/")
    assert script.is_file()
    assert script.stat().st_mode & 0o111, "the entrypoint must be executable"
    body = script.read_text()
    for role in ("web)", "worker)", "scheduler)"):
        assert role in body
    assert "gunicorn portal.wsgi:application" in body
    assert (ROOT / "portal" / "wsgi.py").is_file()
    assert "COPY requirements.lock" in dockerfile


def test_entrypoint_commands_exist():
    """Every manage.py command the entrypoint runs is a real Django command."""
    from django.core.management import get_commands

    body = (ROOT / "docker" / "entrypoint.sh").read_text()
    for command in re.findall(r"python manage.py (\w+)", body):
        assert command in get_commands(), command
    for queue in re.search(r"set -- ([\w ]+)", body).group(1).split():
        assert f'"{queue}"' in SETTINGS


def test_every_service_restarts_and_has_a_health_check():
    from django.core.management import get_commands

    for name, service in compose()["services"].items():
        assert service.get("restart") == "unless-stopped", name
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        if "healthcheck" in test:
            assert test[1:4] == ["/app/docker/entrypoint.sh", "manage", "healthcheck"]
            assert "healthcheck" in get_commands()


@pytest.mark.django_db
def test_the_health_checks_of_workers_and_scheduler(queues):
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.utils import timezone
    from rq import SimpleWorker

    from core.jobs import get_queue
    from core.models import JobRun

    for role in ("worker", "scheduler"):
        with pytest.raises(CommandError):
            call_command("healthcheck", role)
    worker = SimpleWorker([get_queue("default")], connection=get_queue("default").connection)
    worker.register_birth()  # what a running worker does, and keeps fresh with its heartbeat
    try:
        call_command("healthcheck", "worker")
    finally:
        worker.register_death()
    JobRun.objects.create(name="dispatch", started_at=timezone.now())
    call_command("healthcheck", "scheduler")
