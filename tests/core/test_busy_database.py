"""A database too busy to take a write answers 503 with Retry-After, never a server error."""

import json

import pytest
from django.db import OperationalError
from django.test import RequestFactory

from core.middleware import DatabaseBusyMiddleware


@pytest.fixture
def middleware():
    return DatabaseBusyMiddleware(lambda request: None)


@pytest.mark.parametrize("path", ["/api/requests/1/approve/", "/requests/1/approve/"])
def test_a_locked_database_answers_503_and_asks_to_retry(middleware, path):
    response = middleware.process_exception(RequestFactory().post(path), OperationalError("database is locked"))
    assert response.status_code == 503 and response["Retry-After"] == "2"
    body = response.content.decode()
    assert "nothing was changed" in (json.loads(body)["detail"] if path.startswith("/api/") else body)


def test_other_database_errors_are_left_to_the_error_handling(middleware):
    assert middleware.process_exception(RequestFactory().get("/"), OperationalError("no such table: x")) is None
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("database is locked")) is None


def test_the_embedded_database_is_configured_for_concurrent_use():
    import os
    from importlib import reload

    import portal.settings as project_settings

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = "sqlite:////tmp/portal-settings-check.sqlite3"
    try:
        options = reload(project_settings).DATABASES["default"]["OPTIONS"]
    finally:
        os.environ["DATABASE_URL"] = previous
        reload(project_settings)
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 5 and "journal_mode=WAL" in options["init_command"]
