"""The API through the same WSGI handler `make run` and gunicorn use, under a validator of the WSGI rules
(header values must be strings): what Django's test client does not check."""

import io
import json
import wsgiref.validate

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from core.models import ApiToken
from instances.models import ChangeRequest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """A real server closes the database connection at each request's end; here it holds the test's transaction,
    so the handler leaves it open, as Django's own test client does."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


def call(method: str, path: str, token: str, body: dict) -> tuple[str, dict, bytes]:
    payload = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)
        return lambda data: None

    application = wsgiref.validate.validator(WSGIHandler())
    result = application(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()
    return answer["status"], answer["headers"], body


def test_a_successful_post_answers_201_with_a_string_location(admin_unistra, instance_unistra, versions):
    token = ApiToken.objects.create(user=admin_unistra, name="tests")[1]
    body = {"kind": "update", "instance": "smile-unistra", "version": "1.2.6"}

    status, headers, content = call("POST", "/api/v1/requests/", token, body)

    request = ChangeRequest.objects.get(instance=instance_unistra)
    assert status.startswith("201")
    assert headers["Location"] == f"http://127.0.0.1/api/v1/requests/{request.pk}/"
    assert json.loads(content)["id"] == request.pk
