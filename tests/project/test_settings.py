"""Configuration from the environment: production refuses to start half-configured and passes check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x7Qp2-production-like-secret-key-for-the-deploy-check-9f3kLm0aZ81vR5tY",
    "DJANGO_ALLOWED_HOSTS": "portal.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/saas_portal",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "OIDC_", "PORTAL_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL"])
def test_missing_production_setting_stops_start_up_with_a_clear_message(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode == 2
    assert missing in result.stderr
    assert "Configuration error" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_garbled_boolean_is_refused_rather_than_guessed():
    result = manage("check", env={**PRODUCTION, "DJANGO_DEBUG": "maybe"})
    assert result.returncode == 2
    assert "DJANGO_DEBUG" in result.stderr


def test_oidc_needs_its_client_credentials():
    result = manage("check", env={**PRODUCTION, "OIDC_SERVER_URL": "https://sso.example.org/realms/uni"})
    assert result.returncode == 2
    assert "OIDC_CLIENT_ID" in result.stderr


def test_development_defaults_need_nothing():
    result = manage("check", env={"DJANGO_DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:"})
    assert result.returncode == 0, result.stderr


def test_time_zone_comes_from_the_environment():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.TIME_ZONE)",
        env={"DJANGO_DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:", "PORTAL_TIME_ZONE": "America/Montreal"},
    )
    assert result.stdout.strip().splitlines()[-1] == "America/Montreal"


@pytest.mark.parametrize(("debug", "expected"), [("0", "https,ssh"), ("1", "https,ssh,file")])
def test_git_sources_read_local_repositories_only_in_development(debug, expected):
    env = {**PRODUCTION, "DJANGO_DEBUG": debug}
    code = "from django.conf import settings; print(','.join(settings.PORTAL_INSTRUCTIONS_GIT_PROTOCOLS))"

    result = manage("shell", "-c", code, env=env)

    assert result.stdout.strip().splitlines()[-1] == expected, result.stderr
